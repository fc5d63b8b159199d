"""Where a committed result came from: the code's commit, the machine, the time.

A result computed once and committed (an at-scale file, :mod:`rcl.at_scale`; a published study,
:func:`rcl.results.publish`) carries these facts, so that a reader of the book can tell what computed it and
when, and whether the code has changed since. One home for how they are read.

Layer: studies (imports the configuration and torch; never the engine or the evaluation).
"""

from __future__ import annotations

import os
import subprocess
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch

from rcl import config as _config

__all__ = ["COMMIT_ENV", "device", "git", "utc"]

#: Where a copy of the code runs without its git history (a copied working tree), this environment variable
#: names the commit it was copied from; the provenance then records it with ``modified`` unknown (None).
COMMIT_ENV = "RCL_COMMIT"


def utc() -> str:
    """Now, in UTC, to the second (``2026-12-06T17:00:00Z``)."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def git() -> dict[str, Any]:
    """The commit of the package's checkout and whether its ``rcl/`` had uncommitted changes; outside a checkout
    the commit :data:`COMMIT_ENV` names (or None), with ``modified`` None."""
    root = Path(__file__).resolve().parent.parent
    unknown = {"commit": os.environ.get(COMMIT_ENV) or None, "modified": None}
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10)
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "rcl"], cwd=root, capture_output=True,
                               text=True, timeout=10)  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return unknown
    if commit.returncode != 0:
        return unknown
    return {"commit": commit.stdout.strip(), "modified": bool(dirty.stdout.strip())}


def device() -> dict[str, Any]:
    """The device results are computed on here: its type, name (the GPU's, or the CPU's model), count (GPUs, or
    CPU cores), the numerics of the runs' keys (:func:`rcl.config.numerics`: autocast precision and float32
    modes) and torch's version."""
    dev = _config.default_device()
    if dev.type == "cuda":
        return {"type": "cuda", "name": torch.cuda.get_device_name(), "count": torch.cuda.device_count(),
                "numerics": _config.numerics(dev), "torch": torch.__version__}  # fmt: skip
    name = ""
    try:
        with open("/proc/cpuinfo") as f:
            name = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), "")
    except OSError:
        pass
    return {"type": dev.type, "name": name or dev.type, "count": os.cpu_count(), "numerics": _config.numerics(dev),
            "torch": torch.__version__}  # fmt: skip
