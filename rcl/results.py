"""Saved results: each table a notebook computes is written once, beside the settings that produced it.

A result is a CSV file ``<results_dir>/<kind>-<dataset>-<profile>-<key>.csv`` with a JSON sidecar
(``….json``: the kind, the settings, the code version, when it was written). The key hashes the settings
and the code version, so the same settings find the same file again (a rerun of the book reloads it) and
a changed library never shows a stale table. Both files are written atomically (:mod:`rcl.cache`), sidecar
last, so a file without its sidecar is never taken for a result.

:func:`cached` is what notebooks call; :func:`saved` lists what is there (the results page and
``python -m rcl sweep`` read results through it). When the environment variable ``RCL_RESULTS_LOG`` names a
file, every result a process saves or reloads is also appended to it as one JSON line — this is how a
sweep learns which results each of its notebook executions produced.

A study too long for the book's build (the sensitivity and backbone studies) can be *published*: :func:`publish`
copies a current saved result, reduced to the means the book reads (:func:`reduce`), into a committed folder
(:data:`STUDIES_DIR`, ``book/studies/``) with its provenance — the commit, the machine, when it was saved and
published, the command. It stays a saved result (same name, settings and code version; :func:`saved` reads it)
whose :attr:`Saved.provenance` is set. :func:`find` (:func:`preferred`) picks what a notebook shows: a result of
the current library before an older one, one computed here before a published copy; :func:`describe` says in a
line where it came from, and whether the library has changed since.

Layer: studies (imports :mod:`rcl.cache`, :mod:`rcl.provenance` and the configuration; never the engine or the
evaluation).
"""

from __future__ import annotations

import functools
import json
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from rcl import cache, provenance
from rcl.config import numerics

__all__ = [
    "FOLDER_KEYS",
    "LOG_ENV",
    "STUDIES_DIR",
    "Saved",
    "cached",
    "code_version",
    "describe",
    "find",
    "key",
    "load",
    "path_for",
    "preferred",
    "publish",
    "reduce",
    "reduction",
    "save",
    "saved",
]

#: Environment variable naming a JSON-lines file that records each result saved or reloaded.
LOG_ENV = "RCL_RESULTS_LOG"
#: The project's folder of published studies (committed), relative to the project's root.
STUDIES_DIR = "book/studies"

def code_version(machine_numerics: str | None = None) -> str:
    """The version of the code that computes saved results (:data:`rcl.cache.CODE` ``"results"``) and of
    this machine's numerics (:func:`rcl.config.numerics`: runs trained in bfloat16 on this CPU are other
    runs, so the results from them are other results), or of ``machine_numerics`` where given."""
    return cache.key({"numerics": numerics() if machine_numerics is None else machine_numerics}, code="results")


def _canonical(settings: Mapping[str, Any]) -> Any:
    return cache.canonical(dict(settings))


#: Settings that name a folder of images, each with the setting that names its dataset: the images' contents
#: (:func:`rcl.cache.folder_identity` of :func:`rcl.data.image_root`) are part of the key, so a table is never
#: reloaded after its images changed (and other downloads under a download root change nothing).
FOLDER_KEYS = {"data_dir": "dataset", "test_dir": "test_dataset"}


def _folders(settings: Any) -> list[str]:
    """The image folders named in ``settings`` and in the mappings and lists nested in it."""
    from rcl.data import image_root

    if isinstance(settings, (list, tuple)):
        return [f for v in settings for f in _folders(v)]
    if not isinstance(settings, Mapping):
        return []
    out = [image_root(settings.get(ds, "folder"), v) for k, ds in FOLDER_KEYS.items() if (v := settings.get(k))]
    return [str(f) for f in out if f] + [f for v in settings.values() for f in _folders(v)]


#: Settings that name a file whose contents the result depends on: the consistency encoder's weights (a run's key
#: digests them, so its runs are trained again when they change — and a table of them must not be reloaded).
FILE_KEYS = ("g_e_weights",)


def _files(settings: Any) -> list[str]:
    """The digests of the files named in ``settings`` (:data:`FILE_KEYS`), nested mappings and lists included."""
    if isinstance(settings, (list, tuple)):
        return [f for v in settings for f in _files(v)]
    if not isinstance(settings, Mapping):
        return []
    own = [cache.file_digest(v, k) for k in FILE_KEYS if (v := settings.get(k))]
    return own + [f for v in settings.values() for f in _files(v)]


def key(settings: Mapping[str, Any]) -> str:
    """Hash of ``settings`` (JSON, keys sorted), of :func:`code_version`, of the contents of the folders of
    images they name (:data:`FOLDER_KEYS`) and of the files they name (:data:`FILE_KEYS`)."""
    payload = {"settings": _canonical(settings), "code": code_version()}
    if files := _files(settings):  # only where one is named: the keys of every other result stay as they were
        payload["files"] = files
    return cache.key(payload, folders=_folders(settings), length=10)


def path_for(kind: str, settings: Mapping[str, Any], results_dir: str | os.PathLike) -> Path:
    """Where the result of ``kind`` for ``settings`` lives (whether or not it exists yet)."""
    if not kind or not kind.replace("_", "").isalnum():
        raise ValueError(f"kind={kind!r}: use letters, digits and underscores (e.g. 'proxy', 'labels')")
    dataset = str(settings.get("dataset", "any"))
    profile = str(settings.get("profile", "any"))
    return Path(results_dir) / f"{kind}-{dataset}-{profile}-{key(settings)}.csv"


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
    cache.atomic_write_text(path, frame.to_csv(index=False))
    meta = {"kind": kind, "settings": _canonical(settings), "code": code_version(), "created": time.time()}
    cache.atomic_write_json(path.with_suffix(".json"), meta)
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
    #: A published copy's provenance (:func:`publish`); None for a result computed into a results folder.
    provenance: dict[str, Any] | None = None

    def frame(self) -> pd.DataFrame:
        return pd.read_csv(self.path)

    @property
    def numerics(self) -> str | None:
        """A published copy's numerics (those of the machine that computed it); None for a result computed here."""
        return (self.provenance or {}).get("device", {}).get("numerics") if self.published else None

    @property
    def current(self) -> bool:
        """Computed by the library as it is now (not by an older version of the code): with this machine's
        numerics, or for a published copy with the numerics it records (another machine's runs are other runs,
        not an older library's) and reduced by this module as it is now (:func:`reduction`)."""
        reduced = not self.published or (self.provenance or {}).get("reduction") == reduction()
        return self.code == code_version(self.numerics) and reduced

    @property
    def published(self) -> bool:
        """A published copy (committed with its provenance), not a result computed into a results folder."""
        return self.provenance is not None


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
        prov = meta.get("provenance")
        out.append(Saved(csv, meta["kind"], settings, meta.get("code", ""), float(meta.get("created", 0)),
                         prov if isinstance(prov, dict) else None))  # fmt: skip
    return sorted(out, key=lambda s: s.created, reverse=True)


def preferred(found: list[Saved]) -> Saved | None:
    """What a notebook shows of ``found``: a result of the current library before one of an older version, and
    among those one computed here before a published copy; then the newest. None if ``found`` is empty."""
    return max(found, key=lambda s: (s.current, s.current and not s.published, s.created), default=None)


def _utc(seconds: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


#: The values a published copy keeps, each as its mean over a group (the other columns are its keys, or dropped).
VALUES = ("psnr", "mse", "ssim", "psnr_vs_input")


@functools.lru_cache(maxsize=1)
def reduction() -> str:
    """The version of the code that reduces a published copy (this module's digest): a copy reduced by another
    is not current. (This module is not among the modules of :func:`code_version`, whose change would rename
    every run: :mod:`rcl.cache` counts in the training code.)"""
    return cache.file_digest(__file__)[:12]


def reduce(frame: pd.DataFrame, by: Sequence[str]) -> pd.DataFrame:
    """Per group of ``by`` (in order of appearance), the mean of each of :data:`VALUES` the frame has, and the
    group's row count ``n``: what a published copy keeps of a result whose readers average over the rest."""
    g = frame.groupby(list(by), sort=False, dropna=False)  # a row without a key is kept, in a group of its own
    out = g[[c for c in VALUES if c in frame]].mean()
    out["n"] = g.size()
    return out.reset_index()


def publish(result: Saved, by: Sequence[str], folder: str | os.PathLike, same: Sequence[str], command: str = "",
            extra: Mapping[str, Any] | None = None) -> Path:  # fmt: skip
    """Publish ``result`` — a saved result of the current library — in ``folder``, reduced to its means per group
    of ``by`` (:func:`reduce`), under its own name, with its settings, code version and creation time and a
    ``provenance``: the commit at publication (and whether ``rcl/`` had uncommitted changes), the device, when
    the result was saved (a study saves its table each time it runs, from its cached runs and evaluations) and
    published, how many rows the full result had, ``command``. The published copies in ``folder`` of the same
    study — the same kind and the same values of the settings ``same`` (what its reader matches on) — are
    removed once the new one is written (git keeps the history). ``extra`` (JSON data) joins the provenance: what
    the study's reader needs that the rows cannot carry (the sensitivity study's runs' loss logs). Returns the
    CSV's path."""
    folder = Path(folder)
    if not result.current:
        raise ValueError(f"{result.path}: computed by library version {result.code}, not the current "
                         f"{code_version()}; run the study again, then publish it")  # fmt: skip
    if folder.resolve() == result.path.parent.resolve():
        raise ValueError(f"--studies-dir {folder}: the folder the result was saved in; publish into another")
    full = result.frame()
    rows = reduce(full, by)
    if int(rows.n.sum()) != len(full):
        raise ValueError(f"{result.path}: its {len(full)} rows reduce to {int(rows.n.sum())}; not published")
    clash = set(extra or {}) & {*provenance.git(), "device", "saved", "published", "rows_computed", "reduction",
                                "command"}
    if clash:
        raise ValueError(f"extra {sorted(clash)}: names the provenance gives itself; choose others")
    prov = {**provenance.git(), "device": provenance.device(), "saved": _utc(result.created),
            "published": provenance.utc(), "rows_computed": len(full), "reduction": reduction(),
            "command": command, **(extra or {})}  # fmt: skip
    meta = {"kind": result.kind, "settings": result.settings, "code": result.code, "created": result.created,
            "provenance": prov}  # fmt: skip
    older = saved(folder, result.kind, **{k: result.settings.get(k) for k in same})
    path = folder / result.path.name
    cache.atomic_write_text(path, rows.to_csv(index=False))
    cache.atomic_write_json(path.with_suffix(".json"), meta)
    for old in older:
        if old.path != path:
            old.path.with_suffix(".json").unlink(missing_ok=True)  # the sidecar first: never a result without it
            old.path.unlink(missing_ok=True)
    return path


def find(kind: str, folders: Sequence[str | os.PathLike | None], **match: Any) -> Saved | None:
    """The result of ``kind`` a notebook shows, among those saved in ``folders`` (a results folder and the
    published studies; None is skipped) with the given settings values: :func:`preferred`."""
    return preferred([s for f in folders if f is not None for s in saved(f, kind, **match)])


def describe(result: Saved, refresh: str) -> str:
    """Where ``result`` came from, in a Markdown sentence for the book: a published copy's folder, commit, device
    and dates, marked as not recomputed by this build (and its numerics where this machine's differ, or else its
    processor where this machine's is another); and
    whether the library has changed since (``refresh``: the command that computes it again)."""
    if result.published:
        p = result.provenance or {}
        dev = p.get("device", {})
        state = {True: " with uncommitted changes", False: ""}.get(p.get("modified"), " (uncommitted changes unknown)")
        count = f"{dev.get('count', '?')} {'GPU' if dev.get('type') == 'cuda' else 'core'}(s)"
        where = (f"the **published** study `{result.path.name}` (from `{result.path.parent.name}/`; not recomputed "
                 f"by this build): saved {p.get('saved', '?')}, published {p.get('published', '?')} at commit "
                 f"`{str(p.get('commit') or 'unknown')[:12]}`{state}, on {dev.get('name', '?')} ({count}; torch "
                 f"{dev.get('torch', '?')}, numerics `{result.numerics}`), its {p.get('rows_computed', '?')} rows "
                 f"reduced to {len(result.frame())} means")  # fmt: skip
        if result.numerics != numerics():
            where += f" (this machine's numerics are `{numerics()}`: runs trained here would differ slightly)"
        elif dev.get("name") and dev["name"] != (here := provenance.device()["name"]):
            where += (f" (this machine is another processor, {here}: the same code, settings and seeds "
                      "would compute other numbers here)")
    else:
        where = f"`{result.path.name}`, computed {_utc(result.created)} into this project's results folder"
    code = (f"by library version `{result.code}`, the current one" if result.current else
            f"by library version `{result.code}` (**the library has changed since**: now "
            f"`{code_version(result.numerics)}`; `{refresh}` computes it again)")  # fmt: skip
    return f"Read {where}, {code}."
