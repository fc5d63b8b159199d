"""Saved results: each table a notebook computes is written once, beside the settings that produced it.

A result is a CSV file ``<results_dir>/<kind>-<dataset>-<profile>-<key>.csv`` with a JSON sidecar
(``….json``: the kind, the settings, the code version, when it was written). The key hashes the settings
and the code version, so the same settings find the same file again (a rerun of the book reloads it) and
a changed library never shows a stale table. Both files are written atomically (temporary name, then
rename), sidecar last, so a file without its sidecar is never taken for a result.

:func:`cached` is what notebooks call; :func:`saved` lists what is there (the results page and
``python -m rcl sweep`` read results through it). When the environment variable ``RCL_RESULTS_LOG`` names a
file, every result a process saves or reloads is also appended to it as one JSON line — this is how a
sweep learns which results each of its notebook executions produced.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

__all__ = [
    "LOG_ENV",
    "Saved",
    "atomic_write_text",
    "cached",
    "code_version",
    "key",
    "load",
    "path_for",
    "save",
    "saved",
]

#: Environment variable naming a JSON-lines file that records each result saved or reloaded.
LOG_ENV = "RCL_RESULTS_LOG"

#: Library files (besides the training code) whose content is part of every result's key.
_EVAL_FILES = ("evaluate.py", "tasks.py", "metrics.py", "analysis.py", "datasets.py", "backbones.py")


def code_version() -> str:
    """Hash of the training code (as in run keys) and of the evaluation code."""
    from rcl import train

    h = hashlib.sha256(train._code_version().encode())
    # runs trained in bfloat16 on this CPU are other runs (their keys say so): so are the results from them
    h.update(b"cpu-bf16" if train._cpu_autocast(train.PretrainConfig()) else b"")
    root = Path(__file__).resolve().parent
    for rel in _EVAL_FILES:
        h.update(rel.encode())
        h.update((root / rel).read_bytes())
    return h.hexdigest()[:12]


def _canonical(settings: Mapping[str, Any]) -> Any:
    return json.loads(json.dumps(dict(settings), sort_keys=True, default=str))


def key(settings: Mapping[str, Any]) -> str:
    """Hash of ``settings`` (JSON, keys sorted) and of :func:`code_version`."""
    payload = json.dumps({"settings": _canonical(settings), "code": code_version()}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:10]


def path_for(kind: str, settings: Mapping[str, Any], results_dir: str | os.PathLike) -> Path:
    """Where the result of ``kind`` for ``settings`` lives (whether or not it exists yet)."""
    if not kind or not kind.replace("_", "").isalnum():
        raise ValueError(f"kind={kind!r}: use letters, digits and underscores (e.g. 'proxy', 'labels')")
    dataset = str(settings.get("dataset", "any"))
    profile = str(settings.get("profile", "any"))
    return Path(results_dir) / f"{kind}-{dataset}-{profile}-{key(settings)}.csv"


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``path`` atomically: a temporary file of this process, then a rename. Processes
    writing the same file at once (parallel sweep executions filling a shared cache) never collide."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        tmp.write_text(text)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)



def _log(path: Path, kind: str, settings: Mapping[str, Any], reused: bool) -> None:
    log = os.environ.get(LOG_ENV)
    if not log:
        return
    entry = {"path": str(path.resolve()), "kind": kind, "settings": _canonical(settings), "reused": reused}
    Path(log).parent.mkdir(parents=True, exist_ok=True)
    with open(log, "a") as f:
        f.write(json.dumps(entry) + "\n")


def save(frame: pd.DataFrame, kind: str, settings: Mapping[str, Any], results_dir: str | os.PathLike) -> Path:
    """Write ``frame`` and its sidecar atomically; returns the CSV's path."""
    path = path_for(kind, settings, results_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, frame.to_csv(index=False))
    meta = {"kind": kind, "settings": _canonical(settings), "code": code_version(), "created": time.time()}
    atomic_write_text(path.with_suffix(".json"), json.dumps(meta, indent=1))
    _log(path, kind, settings, reused=False)
    return path


def load(kind: str, settings: Mapping[str, Any], results_dir: str | os.PathLike) -> pd.DataFrame | None:
    """The saved result of ``kind`` for ``settings``, or None."""
    path = path_for(kind, settings, results_dir)
    if not (path.exists() and path.with_suffix(".json").exists()):
        return None
    _log(path, kind, settings, reused=True)
    return pd.read_csv(path)


def cached(
    kind: str,
    settings: Mapping[str, Any],
    results_dir: str | os.PathLike,
    compute: Callable[[], pd.DataFrame],
) -> tuple[pd.DataFrame, Path, bool]:
    """Reload the result for ``settings``, or ``compute()`` and save it: ``(frame, path, reused)``."""
    frame = load(kind, settings, results_dir)
    if frame is not None:
        return frame, path_for(kind, settings, results_dir), True
    frame = compute()
    if not isinstance(frame, pd.DataFrame):
        raise TypeError(f"compute() for {kind!r} must return a pandas DataFrame, got {type(frame).__name__}")
    return frame, save(frame, kind, settings, results_dir), False


@dataclass(frozen=True)
class Saved:
    """One saved result: its CSV path, kind, settings, code version and creation time."""

    path: Path
    kind: str
    settings: dict[str, Any]
    code: str
    created: float

    def frame(self) -> pd.DataFrame:
        return pd.read_csv(self.path)

    @property
    def current(self) -> bool:
        """Computed by the library as it is now (not by an older version of the code)."""
        return self.code == code_version()


def saved(results_dir: str | os.PathLike, kind: str | None = None, **match: Any) -> list[Saved]:
    """Every complete saved result under ``results_dir``, newest first; optionally of ``kind`` and with the
    given settings values (``saved(d, "proxy", profile="cpu", seed=0)``)."""
    out = []
    for meta_path in Path(results_dir).glob("*.json"):
        csv = meta_path.with_suffix(".csv")
        if not csv.exists():
            continue
        try:
            meta = json.loads(meta_path.read_text())
        except json.JSONDecodeError:
            continue
        if kind is not None and meta.get("kind") != kind:
            continue
        settings = meta.get("settings", {})
        if any(settings.get(k) != _canonical({k: v})[k] for k, v in match.items()):
            continue
        out.append(Saved(csv, meta["kind"], settings, meta.get("code", ""), float(meta.get("created", 0))))
    return sorted(out, key=lambda s: s.created, reverse=True)
