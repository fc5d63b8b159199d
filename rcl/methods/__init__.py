"""Pre-training methods, one small class each behind one interface (:class:`Method`).

``build(name, model, config, consistency)`` makes one by name; ``METHODS`` lists the names. The dense
contrastive baselines live in :mod:`rcl.methods.dense`, RCL and the noisy-image baselines in
:mod:`rcl.methods.core`.
"""

from __future__ import annotations

import importlib

from rcl.methods.base import Batch, Method, MethodConfig

__all__ = ["METHODS", "Batch", "Method", "MethodConfig", "build", "method_class"]

_REGISTRY = {
    "rcl-emd": "core:RCLEMD",
    "rcl-bd": "core:RCLBD",
    "rcl-mmd": "core:RCLMMD",
    "n2n": "core:Noise2Noise",
    "n2s": "core:Noise2Self",
    "consistency": "core:Consistency",
    "supervised": "core:Supervised",
    "copy": "core:CopyInput",
    "vader": "dense:VADeR",
    "densecl": "dense:DenseCL",
    "pixcontrast": "dense:PixContrast",
    "vader+": "dense:VADeRPlus",
    "densecl+": "dense:DenseCLPlus",
    "pixcontrast+": "dense:PixContrastPlus",
}
METHODS = tuple(_REGISTRY)


def method_class(name: str) -> type[Method]:
    """The class registered under ``name``; unknown names raise listing the valid ones."""
    if name not in _REGISTRY:
        raise ValueError(f"unknown method {name!r}; valid methods: {', '.join(METHODS)}")
    module, cls = _REGISTRY[name].split(":")
    return getattr(importlib.import_module(f"rcl.methods.{module}"), cls)


def build(name: str, model, config: MethodConfig | None = None, consistency=None) -> Method:
    """Instantiate method ``name`` around ``model``."""
    return method_class(name)(model, config, consistency)
