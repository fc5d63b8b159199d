"""The one table of profiles: every value that depends on ``smoke``, ``cpu`` or ``gpu``.

Layer: configuration (imports the method registry only).

A profile is a scale: ``smoke`` runs in seconds (tests), ``cpu`` on a laptop (the book's default), ``gpu``
at the paper's scale. :data:`TABLE` holds, per section and profile, the values that change with it —
the pre-training engine's (``"pretrain"``, :func:`rcl.train.make_config`; anything not listed keeps the
:class:`rcl.train.PretrainConfig` default) and each notebook's and study's. :func:`rcl.config.settings`
reads a section with a notebook's overrides. A change of scale is a change here and nowhere else.
"""

from __future__ import annotations

import copy
from typing import Any

from rcl.methods import METHODS, family

__all__ = ["ALL_METHODS", "ALL_TASKS", "CPU_METHODS", "CROP", "DENSE_CL", "HEADLINE_SEEDS", "PROFILES", "PROXY_KEYS",
           "STUDY_PROFILES", "STUDY_TIMES", "STUDY_WHY", "TABLE", "check_study", "values"]

PROFILES = ("smoke", "cpu", "gpu")
#: The profiles the published studies (rcl.sensitivity, rcl.backbones) run at, and why not the other.
STUDY_PROFILES = ("smoke", "cpu")
STUDY_WHY = "the studies train on the bundled photographs, whose tiles cannot fill the gpu profile's batch"
#: How long each study takes at the cpu profile on two cores after `make book` (which trains the runs they share
#: with the book), in the words the command-line help, the Makefile, the READMEs and notebook 06 use (the docs are
#: checked against these by tests/test_publishing.py).
STUDY_TIMES = {"sensitivity": "an hour to an hour and a half", "backbones": "5 to 8 minutes"}

#: Every pre-training method, in the paper's table order (:data:`rcl.methods.REGISTRY`).
ALL_METHODS = list(METHODS)
#: The dense contrastive baselines (Table 1's first six rows): at the cpu profile they cost a third of the
#: book's pre-training and show what the paper already reports (task misalignment), so the cpu profile
#: leaves them out; the gpu profile and any `methods=[...]` run them.
DENSE_CL = family("dense")
#: The cpu profile's methods: the noisy-image baselines, RCL, its ablation and the controls.
CPU_METHODS = [m for m in ALL_METHODS if m not in DENSE_CL]
#: The downstream tasks (kept in sync with rcl.tasks.TASKS by a test).
ALL_TASKS = ["denoise", "sr", "jdensr", "demosaic", "jdd"]
#: The keys of the "proxy" section that are rcl.evaluate.ProxyConfig fields.
PROXY_KEYS = ("trials", "n_labels", "label_size", "head_steps", "test_draws", "sigma_grid", "test_crop")
#: The pre-training seeds of the methods notebook 04 pre-trains with every seed (rcl.methods.SEEDED) and of
#: the RCL runs the label-efficiency study fine-tunes (notebook 05): one list, so notebook 05 reuses notebook
#: 04's runs and both intervals are over the same pre-training seeds.
HEADLINE_SEEDS = {"smoke": [0, 1], "cpu": [0, 1, 2], "gpu": [0, 1, 2, 3, 4]}
#: The pre-training crop (px; Algorithm 1's two overlapping crops): notebook 02 measures the premise and the loss at
#: it and notebook 03 the EMD gap, so what they show is what pre-training sees.
CROP = {"smoke": 32, "cpu": 48, "gpu": 128}

TABLE: dict[str, dict[str, dict[str, Any]]] = {
    # The pre-training engine (rcl.train.PretrainConfig fields).
    "pretrain": {
        "smoke": {"max_side": 128, "tile": 64, "crop": CROP["smoke"], "batch_size": 4, "steps": 3, "width": 8,
                  "depth": 2, "g_e": "random", "g_e_arch": "resnet18", "g_e_layers": ("layer1",), "queue_size": 4,
                  "momentum": 0.99, "dense_samples": 32, "g_e_steps": 3, "checkpoint_every": 2, "log_every": 1},
        "cpu": {"max_side": 512, "tile": 128, "crop": CROP["cpu"], "batch_size": 8, "steps": 400, "width": 24,
                "depth": 3, "g_e": "random", "g_e_arch": "resnet18", "g_e_layers": ("layer1",), "queue_size": 16,
                "momentum": 0.99},
        "gpu": {"max_side": None, "tile": 256, "crop": CROP["gpu"], "batch_size": 64, "steps": 20000, "width": 32,
                "depth": 4, "g_e": "imagenet", "g_e_arch": "resnet50", "g_e_layers": ("layer1", "layer2", "layer3"),
                "queue_size": 2048, "momentum": 0.999, "dataset": "voc2012", "tau": 0.1, "checkpoint_every": 1000,
                "log_every": 50},
    },
    # Notebook 01: noise simulation.
    "noise": {
        "smoke": {"max_side": 128, "tile": 64, "n_draws": 16, "task_size": 64},
        "cpu": {"max_side": 512, "tile": 128, "n_draws": 64, "task_size": 128},
        "gpu": {"max_side": None, "tile": 128, "n_draws": 256, "task_size": 256},
    },
    # Notebook 02: residuals and the earth mover's distance.
    "residuals": {
        "smoke": {"max_side": 128, "tile": 64, "crop_sizes": [8, 16, 32], "crop": CROP["smoke"], "repeats": 1},
        "cpu": {"max_side": 512, "tile": 128, "crop_sizes": [8, 16, 32, 48, 64], "crop": CROP["cpu"], "repeats": 3},
        "gpu": {"max_side": None, "tile": 256, "crop_sizes": [16, 32, 64, 128], "crop": CROP["gpu"], "repeats": 5},
    },
    # Notebook 03: pre-training (the engine's values are the "pretrain" section).
    "pretraining": {
        "smoke": {"methods": ["rcl-emd", "n2n"], "steps": None, "gap_crop": CROP["smoke"]},
        "cpu": {"methods": CPU_METHODS, "steps": None, "gap_crop": CROP["cpu"]},
        "gpu": {"methods": ALL_METHODS, "steps": None, "gap_crop": CROP["gpu"]},
    },
    # Notebook 04: proxy evaluation (rcl.evaluate.ProxyConfig keys, PROXY_KEYS; "seeds": the pre-training
    # seeds of the methods pre-trained with every seed, rcl.methods.SEEDED). test_draws: the mixed-range draws
    # per test image, one per stratum of σ (rcl.evaluate.mixed_strata); the cpu profile has 4 test images, and
    # 10 draws each (a forward pass apiece) keep its 40-case mean from hanging on one near-clean draw.
    "proxy": {
        "smoke": {"methods": ["rcl-emd", "n2n"], "tasks": ["denoise", "sr"], "trials": 2, "n_labels": 4,
                  "label_size": 32, "head_steps": 50, "test_draws": 1, "sigma_grid": [0.0, 10.0, 20.0],
                  "test_crop": 96, "seeds": HEADLINE_SEEDS["smoke"]},
        "cpu": {"methods": CPU_METHODS, "tasks": ["denoise", "sr", "jdensr"], "trials": 2, "n_labels": 16,
                "label_size": 96, "head_steps": 300, "test_draws": 10, "sigma_grid": [0.0, 5.0, 10.0, 15.0, 20.0],
                "test_crop": 256, "seeds": HEADLINE_SEEDS["cpu"]},
        "gpu": {"methods": ALL_METHODS, "tasks": ALL_TASKS, "trials": 5, "n_labels": 64, "label_size": 128,
                "head_steps": 2000, "test_draws": 3, "sigma_grid": [0.0, 5.0, 10.0, 15.0, 20.0],
                "test_crop": None, "seeds": HEADLINE_SEEDS["gpu"]},
    },
    # Notebook 05: label efficiency (rcl.labels.LabelConfig keys; "seeds": the pre-training seeds of the RCL
    # runs, each fine-tuned with its own seed). At cpu, 150 steps of batch 16 left SL from scratch below the
    # noisy input on the mixed range whatever the count (σ = 10: +0.2 dB with 256 labels) and flat in the
    # count; 500 steps of batch 8 (the pre-training's batch) train it to +4.5 dB at σ = 10 with 256 labels
    # (mean of 3 seeds), rising with the count (summary.label_controls). With 0, 4, 16, 64, 256, SL was flat
    # from 16 on (33.00, 32.97, 32.91 dB): the count of 1 measures the scarce end, where the paper's gain is largest.
    "labels": {
        "smoke": {"counts": [0, 2, 4], "seeds": HEADLINE_SEEDS["smoke"], "steps": 3, "batch_size": 4,
                  "label_size": 32, "test_draws": 1, "sigma_grid": [10.0], "test_crop": 96},
        "cpu": {"counts": [0, 1, 4, 16, 64, 256], "seeds": HEADLINE_SEEDS["cpu"], "steps": 500, "batch_size": 8,
                "label_size": 64, "test_draws": 10, "sigma_grid": [0.0, 5.0, 10.0, 15.0, 20.0], "test_crop": 256},
        "gpu": {"counts": [0, 10, 100, 1000, 10000], "seeds": HEADLINE_SEEDS["gpu"], "steps": 5000, "batch_size": 16,
                "label_size": 128, "test_draws": 3, "sigma_grid": [0.0, 5.0, 10.0, 15.0, 20.0], "test_crop": None},
    },
    # The sensitivity study (rcl.sensitivity, notebook 06): its pre-training seeds (no gpu: STUDY_WHY).
    "sensitivity": {
        "smoke": {"seeds": [0]},
        "cpu": {"seeds": [0, 1, 2]},
    },
}  # fmt: skip


def values(section: str, profile: str) -> dict[str, Any]:
    """A copy of ``section``'s values at ``profile`` (raises naming the valid sections and profiles)."""
    if section not in TABLE:
        raise ValueError(f"parameter section={section!r} is not valid; choose one of {tuple(TABLE)}")
    if profile not in PROFILES:
        raise ValueError(f"parameter profile={profile!r} is not valid; choose one of {PROFILES}")
    if profile not in TABLE[section]:
        raise ValueError(f"parameter profile={profile!r} is not valid for section {section!r}; choose one of "
                         f"{tuple(TABLE[section])}")
    return copy.deepcopy(TABLE[section][profile])


def check_study(profile: str) -> str:
    """Return ``profile`` if the published studies run at it; otherwise raise saying which do and why."""
    if profile not in STUDY_PROFILES:
        raise ValueError(f"parameter profile={profile!r} is not valid for a study; choose one of {STUDY_PROFILES} "
                         f"({STUDY_WHY})")
    return profile
