"""rcl — Residual Contrastive Learning for image reconstruction (Dong et al.), reproduced.

One module per idea: :mod:`rcl.noise` (the NLF noise model), :mod:`rcl.data` (image sources and
positive-pair crops), :mod:`rcl.datasets` (real datasets with checksummed downloads),
:mod:`rcl.tasks` (downstream degradations), :mod:`rcl.distances` (residual distances),
:mod:`rcl.config` (profiles), :mod:`rcl.plots` (figures), :mod:`rcl.notebooks` (executing the book),
:mod:`rcl.results` (saved result tables), :mod:`rcl.summary` (tables beside the paper's),
:mod:`rcl.sweep` (papermill sweeps).
Submodules are imported on first use so ``import rcl`` stays cheap.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_SUBMODULES = (
    "config",
    "data",
    "datasets",
    "distances",
    "noise",
    "notebooks",
    "plots",
    "results",
    "summary",
    "sweep",
    "tasks",
)

__all__ = ["__version__", *_SUBMODULES]


def __getattr__(name: str):
    if name in _SUBMODULES:
        return importlib.import_module(f"rcl.{name}")
    raise AttributeError(f"module 'rcl' has no attribute {name!r}")
