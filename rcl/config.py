"""Profiles and parameter checking shared by the notebooks and the command line.

Every notebook has one ``parameters`` cell with a ``profile`` — ``smoke`` (seconds, for tests),
``cpu`` (a laptop; the default) or ``gpu`` (paper scale) — and explicit overrides that default to
``None``. :func:`settings` resolves them: profile values first, then any override that is not ``None``.
Unknown profiles, keys or choices raise errors that list what would be valid.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch

__all__ = [
    "ALL_METHODS",
    "ALL_TASKS",
    "METHOD_NAMES",
    "NAMED_CONFIGS",
    "PROXY_KEYS",
    "PROFILES",
    "SETTINGS",
    "autocast",
    "check_choice",
    "check_profile",
    "cpu_has_bf16",
    "default_device",
    "progress_disabled",
    "settings",
    "status",
]

PROFILES = ("smoke", "cpu", "gpu")

#: Every pre-training method, in the paper's table order (kept in sync with rcl.methods.METHODS by a test).
ALL_METHODS = [
    "vader",
    "densecl",
    "pixcontrast",
    "vader+",
    "densecl+",
    "pixcontrast+",
    "n2n",
    "n2s",
    "rcl-bd",
    "rcl-mmd",
    "rcl-emd",
    "consistency",
    "supervised",
    "copy",
]
#: The dense contrastive baselines (Table 1's first six rows): at the cpu profile they cost a third of the
#: book's pre-training and show what the paper already reports (task misalignment), so the cpu profile
#: leaves them out; the gpu profile and any `methods=[...]` run them.
DENSE_CL = ["vader", "densecl", "pixcontrast", "vader+", "densecl+", "pixcontrast+"]
#: The cpu profile's methods: the noisy-image baselines, RCL, its ablation and the controls.
CPU_METHODS = [m for m in ALL_METHODS if m not in DENSE_CL]

#: Named configurations: a method with fixed pre-training overrides, usable wherever a method name is
#: (``--method``, a notebook's ``methods``). They sit beside the paper's methods and never replace them;
#: ``why`` says where the setting comes from.
NAMED_CONFIGS: dict[str, dict[str, Any]] = {
    "rcl-emd-tuned": {
        "method": "rcl-emd",
        "overrides": {"tau": 1.0},
        "why": "the setting with the best mean denoising proxy PSNR in the sensitivity study at the cpu profile "
        "(notebook 06, three seeds), which also shows how far that is from the default and from N2N",
    },
}

#: Every name a notebook or the command line accepts as a method.
METHOD_NAMES = [*ALL_METHODS, *NAMED_CONFIGS]

#: The downstream tasks (kept in sync with rcl.tasks.TASKS by a test).
ALL_TASKS = ["denoise", "sr", "jdensr", "demosaic", "jdd"]

#: The keys of a notebook's "proxy" settings that are rcl.evaluate.ProxyConfig fields.
PROXY_KEYS = ("trials", "n_labels", "label_size", "head_steps", "test_draws", "sigma_grid", "test_crop")

#: Per-notebook values that depend on the profile.
SETTINGS: dict[str, dict[str, dict[str, Any]]] = {
    # Notebook 01: noise simulation.
    "noise": {
        "smoke": {"max_side": 128, "tile": 64, "n_draws": 16, "task_size": 64},
        "cpu": {"max_side": 512, "tile": 128, "n_draws": 64, "task_size": 128},
        "gpu": {"max_side": None, "tile": 128, "n_draws": 256, "task_size": 256},
    },
    # Notebook 02: residuals and the earth mover's distance.
    "residuals": {
        "smoke": {"max_side": 128, "tile": 64, "crop_sizes": [8, 16], "crop": 16, "repeats": 1},
        "cpu": {"max_side": 512, "tile": 128, "crop_sizes": [8, 16, 32, 64], "crop": 32, "repeats": 3},
        "gpu": {"max_side": None, "tile": 256, "crop_sizes": [16, 32, 64, 128], "crop": 128, "repeats": 5},
    },
    # Notebook 04: proxy evaluation (rcl.evaluate.ProxyConfig keys, PROXY_KEYS; "seeds": the pre-training
    # seeds of the headline methods, rcl.evaluate.HEADLINE).
    "proxy": {
        "smoke": {"methods": ["rcl-emd", "n2n"], "tasks": ["denoise", "sr"], "trials": 2, "n_labels": 4,
                  "label_size": 32, "head_steps": 50, "test_draws": 1, "sigma_grid": [0.0, 10.0, 20.0],
                  "test_crop": 96, "seeds": [0, 1]},
        "cpu": {"methods": CPU_METHODS, "tasks": ["denoise", "sr", "jdensr"], "trials": 2, "n_labels": 16,
                "label_size": 96, "head_steps": 300, "test_draws": 3, "sigma_grid": [0.0, 5.0, 10.0, 15.0, 20.0],
                "test_crop": 256, "seeds": [0, 1, 2]},
        "gpu": {"methods": ALL_METHODS, "tasks": ALL_TASKS, "trials": 5, "n_labels": 64, "label_size": 128,
                "head_steps": 2000, "test_draws": 3, "sigma_grid": [0.0, 5.0, 10.0, 15.0, 20.0],
                "test_crop": None, "seeds": [0, 1, 2, 3, 4]},
    },
    # Notebook 05: label efficiency (rcl.evaluate.LabelConfig keys).
    "labels": {
        "smoke": {"counts": [0, 2, 4], "seeds": [0, 1], "steps": 3, "label_size": 32, "test_draws": 1,
                  "sigma_grid": [10.0], "test_crop": 96},
        "cpu": {"counts": [0, 4, 16, 64, 256], "seeds": [0, 1], "steps": 150, "label_size": 64, "test_draws": 3,
                "sigma_grid": [0.0, 5.0, 10.0, 15.0, 20.0], "test_crop": 256},
        "gpu": {"counts": [0, 10, 100, 1000, 10000], "seeds": [0, 1, 2, 3, 4], "steps": 5000, "label_size": 128,
                "test_draws": 3, "sigma_grid": [0.0, 5.0, 10.0, 15.0, 20.0], "test_crop": None},
    },
    # Notebook 03: pre-training (the engine's own profile values live in rcl.train.PROFILE_VALUES).
    "pretraining": {
        "smoke": {"methods": ["rcl-emd", "n2n"], "steps": None, "gap_crop": 32},
        "cpu": {"methods": CPU_METHODS, "steps": None, "gap_crop": 48},
        "gpu": {"methods": ALL_METHODS, "steps": None, "gap_crop": 128},
    },
}


def check_choice(name: str, value: Any, valid: Iterable[Any]) -> Any:
    """Return ``value`` if it is one of ``valid``; otherwise raise naming the parameter and the choices."""
    valid = tuple(valid)
    if value not in valid:
        raise ValueError(f"parameter {name}={value!r} is not valid; choose one of {valid}")
    return value


def check_profile(profile: str) -> str:
    """Validate a ``profile`` parameter."""
    return check_choice("profile", profile, PROFILES)


def settings(section: str, profile: str, **overrides: Any) -> dict[str, Any]:
    """The values of ``section`` at ``profile``, with every non-``None`` override applied."""
    check_choice("section", section, SETTINGS)
    values = dict(SETTINGS[section][check_profile(profile)])
    unknown = sorted(set(overrides) - set(values))
    if unknown:
        raise ValueError(f"unknown parameter(s) {unknown} for {section!r}; valid: {sorted(values)}")
    for key, value in overrides.items():
        if value is None:
            continue
        allowed = {type(p[key]) for p in SETTINGS[section].values() if p[key] is not None} or {int}
        if float in allowed:
            allowed.add(int)
        if type(value) not in allowed:  # exact types: True is no int here
            names = " or ".join(sorted(t.__name__ for t in allowed))
            raise ValueError(f"parameter {key}={value!r} must be {names} (or None for the profile's value)")
        values[key] = value
    return values


def default_device() -> torch.device:
    """CUDA if available, then Apple's MPS, then the CPU."""
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def cpu_has_bf16() -> bool:
    """Whether this CPU computes bfloat16 natively (x86 ``avx512_bf16`` or AMX flags; Linux only)."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((line for line in f if line.startswith("flags")), "").split()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def autocast(device: torch.device | str, enabled: bool = True):
    """The mixed-precision context the project trains in: bfloat16 autocast on a CUDA GPU that supports it
    and on a CPU with native bfloat16 units (:func:`cpu_has_bf16`), else none."""
    import contextlib

    device = torch.device(device)
    if enabled and device.type == "cpu" and cpu_has_bf16():
        return torch.autocast("cpu", dtype=torch.bfloat16)
    if enabled and device.type == "cuda" and torch.cuda.is_bf16_supported():
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def progress_disabled(progress: bool = True) -> bool:
    """Whether a progress bar stays hidden: asked for none, or ``TQDM_DISABLE`` set (the book build)."""
    import os

    return not progress or os.environ.get("TQDM_DISABLE", "").lower() in ("1", "true", "yes")


def status(message: str) -> None:
    """One line of progress on stderr where progress bars are switched off (``TQDM_DISABLE``, as when the
    book's notebooks execute): ``python -m rcl notebooks`` streams it to the terminal, and the book leaves
    stderr out of its pages."""
    import os
    import sys

    if os.environ.get("TQDM_DISABLE"):
        print(message, file=sys.stderr, flush=True)
