"""Pre-training methods, one small class each behind one interface (:class:`Method`), and their registry.

The registry (:data:`REGISTRY`) is the one home of what the project knows about each method: its class,
the name the paper's tables give it, its family, and — by its position — the tables' order. Everything
else derives from it: :data:`METHODS` (every method, in table order), :data:`DISPLAY` (display names),
:data:`ORDER` (the rows of a results table), the profiles' method lists (:mod:`rcl.profiles`).
``build(name, model, config, consistency)`` makes one by name. The dense contrastive baselines live in
:mod:`rcl.methods.dense`, RCL and the noisy-image baselines in :mod:`rcl.methods.core`.

Layer: core (imports models, distances, losses; never the engine, evaluation, CLI, plots or notebooks).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any

from rcl.methods.base import Batch, Method, MethodConfig

__all__ = [
    "DISPLAY",
    "HEADLINE",
    "HEADLINE_AND_CONTROLS",
    "LABELS",
    "METHODS",
    "NAMED_CONFIGS",
    "NAMES",
    "ORDER",
    "REGISTRY",
    "SEEDED",
    "SELF_SUPERVISED_FAMILIES",
    "Batch",
    "Entry",
    "Method",
    "MethodConfig",
    "build",
    "check_methods",
    "family",
    "method_class",
    "self_supervised",
    "trained",
]


@dataclass(frozen=True)
class Entry:
    """A registered method: ``target`` is ``"module:Class"`` under :mod:`rcl.methods`; ``family`` one of
    ``"dense"`` (the dense contrastive baselines of Table 1), ``"noisy"`` (baselines that train on noisy
    images), ``"rcl"``, ``"ablation"``, ``"control"`` or ``"supervised"``."""

    name: str
    target: str
    display: str
    family: str


#: Every method, in the paper's table order (Table 1), then the project's ablation, control and the
#: supervised reference.
REGISTRY: dict[str, Entry] = {e.name: e for e in (
    Entry("vader", "dense:VADeR", "VADeR", "dense"),
    Entry("densecl", "dense:DenseCL", "DenseCL", "dense"),
    Entry("pixcontrast", "dense:PixContrast", "PixContrast", "dense"),
    Entry("vader+", "dense:VADeRPlus", "VADeR+", "dense"),
    Entry("densecl+", "dense:DenseCLPlus", "DenseCL+", "dense"),
    Entry("pixcontrast+", "dense:PixContrastPlus", "PixContrast+", "dense"),
    Entry("n2n", "core:Noise2Noise", "N2N", "noisy"),
    Entry("n2s", "core:Noise2Self", "N2S", "noisy"),
    Entry("rcl-bd", "core:RCLBD", "RCL-BD", "rcl"),
    Entry("rcl-mmd", "core:RCLMMD", "RCL-MMD", "rcl"),
    Entry("rcl-emd", "core:RCLEMD", "RCL-EMD", "rcl"),
    Entry("consistency", "core:Consistency", "Consistency only", "ablation"),
    Entry("copy", "core:CopyInput", "Copy input (control)", "control"),
    Entry("init", "core:RandomInit", "Random init (control)", "control"),
    Entry("supervised", "core:Supervised", "Supervised", "supervised"),
)}  # fmt: skip
METHODS = tuple(REGISTRY)


@dataclass(frozen=True)
class Named:
    """A named configuration: a registered method with fixed pre-training overrides, usable wherever a
    method name is (``--method``, a notebook's ``methods``); ``why`` says where the setting comes from."""

    name: str
    method: str
    display: str
    overrides: dict[str, Any] = field(default_factory=dict)
    why: str = ""


NAMED_CONFIGS: dict[str, Named] = {n.name: n for n in (
    Named("rcl-emd-tuned", "rcl-emd", "RCL-EMD (tuned)", {"tau": 1.0},
          "the setting with the best mean denoising proxy PSNR in an earlier run of the sensitivity study at "
          "the cpu profile (three seeds, the plain U-Net, before residual learning became the default backbone); "
          "notebook 06 shows where it stands in the study as it is now"),
)}  # fmt: skip

#: How the supervised baseline is labelled in evaluations: the Oracle of the task it is trained on, and
#: "SL (Den)" — trained on denoising — on the other tasks (Table 2).
LABELS = {"sl-den": "SL (Den)", "oracle": "Oracle"}

#: Every name a notebook or the command line accepts as a method.
NAMES = [*METHODS, *NAMED_CONFIGS]

#: Display names of every method, named configuration and evaluation label.
DISPLAY = {**{e.name: e.display for e in REGISTRY.values()}, **{n.name: n.display for n in NAMED_CONFIGS.values()},
           **LABELS}  # fmt: skip

#: The rows of a results table, in order: the methods (named configurations after their method), then the
#: supervised labels.
ORDER = [m for e in REGISTRY.values() if e.family != "supervised"
         for m in (e.name, *(n.name for n in NAMED_CONFIGS.values() if n.method == e.name))] + list(LABELS)


#: The headline comparison: RCL-EMD, its consistency-only ablation, the noisy-image baselines and the Oracle.
HEADLINE = ("rcl-emd", "consistency", "n2n", "n2s", "supervised")
#: The methods a study pre-trains with every seed (:func:`rcl.evaluate.study`), so their comparisons carry
#: verdicts with intervals that include the pre-training seed: the headline methods, RCL with the other two
#: distances (EMD − BD and EMD − MMD are among the paper's claims) and the random-init baseline (each method
#: against the network it started from, under the proxy protocol; it costs no step). The rest are pre-trained
#: once, with the first seed.
SEEDED = (*HEADLINE, "rcl-bd", "rcl-mmd", "init")
#: The headline methods, the copy-the-input control, which a verdict needs (:func:`rcl.summary.controls`), and
#: the random-init baseline: what the at-scale comparison pre-trains by default (:mod:`rcl.at_scale`,
#: ``python -m rcl at-scale``).
HEADLINE_AND_CONTROLS = (*HEADLINE, "copy", "init")


def family(*families: str) -> list[str]:
    """The registered methods of the given families, in table order."""
    return [e.name for e in REGISTRY.values() if e.family in families]


#: The families that learn from noisy images alone (not the control, not the supervised reference).
SELF_SUPERVISED_FAMILIES = ("dense", "noisy", "rcl", "ablation")


def self_supervised() -> list[str]:
    """The methods and named configurations that learn from noisy images alone, in table order."""
    names = set(family(*SELF_SUPERVISED_FAMILIES))
    return [m for m in ORDER if m in names or (m in NAMED_CONFIGS and NAMED_CONFIGS[m].method in names)]


def check_methods(methods, parameter: str = "methods") -> list[str]:
    """``methods`` as a list if every name is a method or named configuration; otherwise raise naming the
    parameter, the unknown names and the valid ones."""
    if isinstance(methods, str):
        methods = [methods]
    methods = list(methods)
    unknown = [m for m in methods if m not in NAMES]
    if unknown:
        raise ValueError(f"parameter {parameter} has unknown names {unknown}; valid: {NAMES}")
    return methods


def method_class(name: str) -> type[Method]:
    """The class registered under ``name``; unknown names raise listing the valid ones."""
    if name not in REGISTRY:
        raise ValueError(f"unknown method {name!r}; valid methods: {', '.join(METHODS)}")
    module, cls = REGISTRY[name].target.split(":")
    return getattr(importlib.import_module(f"rcl.methods.{module}"), cls)


def trained(names=METHODS) -> list[str]:
    """The methods (or named configurations) among ``names`` that take optimisation steps: all but the
    random-init control, which the engine saves as built (benchmarks of a step skip it)."""
    return [m for m in names if method_class(NAMED_CONFIGS[m].method if m in NAMED_CONFIGS else m).trains]


def build(name: str, model, config: MethodConfig | None = None, consistency=None) -> Method:
    """Instantiate method ``name`` around ``model``."""
    return method_class(name)(model, config, consistency)
