"""A run directory on disk: its checkpoints, its finished model, and what a failed run leaves.

Layer: engine (imports :mod:`rcl.cache`, :mod:`rcl.models` and torch; :mod:`rcl.train` writes and reads
through it, the evaluation loads finished models with :func:`load_model`).

* :func:`write` saves a checkpoint atomically and keeps the one before it as ``checkpoint.prev.pt``;
* :func:`read` returns the newest readable one: a truncated, empty or foreign ``checkpoint.pt`` is named on
  stderr with what happens instead — resuming from the previous checkpoint, or restarting from step 0;
* :func:`mark_failed` leaves a failed run so that a rerun starts cleanly: removed when it has nothing to
  resume, else kept with the reason in ``failed.json``.
* :func:`history` reads its log (``metrics.jsonl``: one entry per logged step).
Checkpoints and models are read with ``weights_only=True``: loading one never executes code.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import torch

from rcl import cache
from rcl.models import UNet, UNetConfig, memory_format

__all__ = ["CURRENT", "PREVIOUS", "history", "load_model", "mark_failed", "read", "read_config", "write"]

CURRENT, PREVIOUS = "checkpoint.pt", "checkpoint.prev.pt"
#: What every checkpoint of the engine holds.
KEYS = ("step", "method", "optimizer", "scaler", "rng_cpu")


def write(out: Path, state: dict[str, Any]) -> Path:
    """Save ``state`` as the run's checkpoint; the previous checkpoint becomes ``checkpoint.prev.pt``."""
    path = Path(out) / CURRENT
    if path.exists():
        os.replace(path, Path(out) / PREVIOUS)
    return cache.save_tensors(state, path)


def read(out: Path) -> dict[str, Any] | None:
    """The newest readable checkpoint of the run in ``out``, or None (then the run starts from step 0)."""
    found = [p for p in (Path(out) / CURRENT, Path(out) / PREVIOUS) if p.exists()]
    for i, path in enumerate(found):
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
            missing = [k for k in KEYS if k not in state] if isinstance(state, dict) else ["step"]
            if missing:
                raise ValueError(f"not a checkpoint of this engine (no {missing[0]!r})")
            return state
        except Exception as err:  # noqa: BLE001 — every unreadable file is skipped the same way
            reason = " ".join(str(err).split())[:200]
            then = (f"resuming from {found[i + 1]}" if i + 1 < len(found)
                    else "no readable checkpoint is left: restarting the run from step 0")
            print(f"rcl: warning: {path}: cannot read this checkpoint ({type(err).__name__}: {reason}); {then}",
                  file=sys.stderr, flush=True)
    return None


def mark_failed(out: Path, err: BaseException) -> None:
    """After a run failed with ``err``: remove its directory if it has no checkpoint to resume, else write
    ``failed.json`` (error type, reason, time) beside the checkpoint; a rerun resumes it and drops the mark."""
    out = Path(out)
    if not (out / CURRENT).exists() and not (out / PREVIOUS).exists():
        shutil.rmtree(out, ignore_errors=True)
    elif out.is_dir():
        cache.atomic_write_json(out / "failed.json", {"error": type(err).__name__, "reason": str(err),
                                                      "time": time.strftime("%Y-%m-%dT%H:%M:%S%z")})


def read_config(path: str | os.PathLike, needed: tuple[str, ...] = ("method", "dataset", "data_dir", "max_side",
                                                                  "sigma_max")) -> dict[str, Any]:
    """The settings a run was trained with (its ``config.json``); a ``ValueError`` naming the file if ``path`` is
    not a run directory or its config lacks one of ``needed``."""
    path = Path(path)
    if not (path / "config.json").is_file():
        raise ValueError(f"{path}: not a run directory (no config.json); pass a folder under runs/")
    try:
        trained = cache.read_json(path / "config.json")
    except ValueError as err:
        raise ValueError(f"{path / 'config.json'}: not readable JSON ({err})") from err
    if not isinstance(trained, dict) or not all(k in trained for k in needed):
        raise ValueError(f"{path / 'config.json'}: not a run's config (it needs the keys {', '.join(needed)})")
    return trained


def history(path: str | os.PathLike) -> list[dict[str, Any]]:
    """The entries of the run's ``metrics.jsonl`` (one per logged step), in order; none if it has no log.

    A last line that is not whole JSON is left out: a run interrupted while it appended an entry leaves one,
    and resuming rewrites the log without it. Any other line that is not JSON is an error naming it."""
    f = Path(path) / "metrics.jsonl"
    lines = f.read_text().splitlines() if f.exists() else []
    entries = []
    for number, line in enumerate(lines, 1):
        try:
            if line:
                entries.append(json.loads(line))
        except json.JSONDecodeError:
            if number == len(lines):
                break
            raise ValueError(f"{f}: line {number} is not JSON; the log is damaged (delete the run folder to "
                             "train it again)") from None
    return entries


def load_model(path: str | os.PathLike, device: str | torch.device = "cpu") -> UNet:
    """The pre-trained U-Net of a finished run directory (its ``model.pt``, read with ``weights_only=True``), on
    ``device`` in the layout it convolves fastest in there (:func:`rcl.models.memory_format`)."""
    path = Path(path)
    if not (path / "model.pt").exists():
        if not path.is_dir() or not (path / "config.json").exists():
            raise FileNotFoundError(f"{path}: not a run directory (no config.json): give a folder that `python -m rcl "
                                    "pretrain` made, runs/<method>-<key>")  # fmt: skip
        raise FileNotFoundError(f"{path}: the run has not finished (no model.pt); run the `python -m rcl pretrain` "
                                "command that started it again to resume it")  # fmt: skip
    try:
        blob = torch.load(path / "model.pt", map_location=device, weights_only=True)
        model = UNet(UNetConfig(**blob["unet"])).to(device)
        model.load_state_dict(blob["state"])
        model = model.to(memory_format=memory_format(device))
    except Exception as err:  # noqa: BLE001 — whatever the file holds, it is not a model of this engine
        reason = " ".join(str(err).split())[:200]
        raise ValueError(f"{path / 'model.pt'}: not a readable model of this engine ({type(err).__name__}: "
                         f"{reason}); delete the run directory to train it again") from err
    return model.eval()
