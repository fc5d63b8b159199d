"""Executing the book's notebooks with papermill.

The source notebooks in ``notebooks/`` are committed without outputs; executed copies are build
products. :func:`execute` runs one notebook with parameters into an output folder;
:func:`execute_all` runs the whole walk in order (used by ``make book`` and the tests).

An executed copy records, in its metadata, the digest of its source notebook (:func:`rcl.cache.file_digest`),
the library's code version (:func:`rcl.cache.code_version` of kind ``"notebooks"``: every module of the
package, since a notebook may show anything the library computes), its parameters and — for a notebook that
shows a separately computed study (:data:`READS`: the backbone and sensitivity studies) — the saved results
of that study it found. When the walk is run again into the same folder with
the same parameters, a notebook whose copy is current — same source, same library, same parameters, same
studies, and every notebook before it current too — is not executed again (``force=True`` executes
everything). So ``make backbones`` or ``make sensitivity`` followed by ``make book`` shows the new study,
and a second ``make book`` with nothing changed only re-renders the book. The executed copy appears
atomically (:func:`rcl.cache.atomic_write_text`), so an interrupted run never leaves a complete-looking copy.

Layer: outer shell (imports :mod:`rcl.cache` and the configuration; papermill lazily; nothing of the core,
engine or evaluation imports it).
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from rcl import cache
from rcl.config import check_profile

__all__ = ["NOTEBOOK_DIR", "execute", "execute_all", "is_current", "notebook_paths"]

NOTEBOOK_DIR = Path(__file__).resolve().parent.parent / "notebooks"


#: Result kinds (rcl.results) computed outside the walk that a notebook shows when they exist.
READS = {"03_pretraining": ("backbones",), "06_sensitivity": ("sensitivity",), "07_results_summary": ("sensitivity",)}


def _studies(notebook: Path, params: Mapping[str, Any]) -> str:
    """A hash of the saved results of the studies ``notebook`` reads (their file names carry their keys)."""
    kinds = READS.get(notebook.stem, ())
    if not kinds:
        return ""
    folder = Path(str(params.get("results_dir", "../results")))
    folder = folder if folder.is_absolute() else (NOTEBOOK_DIR / folder)
    names = sorted(p.name for k in kinds for p in folder.glob(f"{k}-*.json"))
    return cache.key(names, length=16)


def _fingerprint(notebook: Path) -> dict[str, str]:
    """The source notebook's digest and the code version of every module of the library."""
    return {"source": cache.file_digest(notebook, "notebook"), "code": cache.code_version("notebooks")}


def _json_params(params: Mapping[str, Any]) -> Any:
    return cache.canonical(dict(params))


def is_current(notebook: str | os.PathLike, out_dir: str | os.PathLike, parameters: Mapping[str, Any]) -> bool:
    """Whether ``out_dir`` holds an executed copy of ``notebook`` from this source, this library and these
    parameters."""
    target = Path(out_dir) / Path(notebook).name
    if not target.exists():
        return False
    try:
        meta = json.loads(target.read_text()).get("metadata", {})
    except json.JSONDecodeError:
        return False
    expected = {**_fingerprint(Path(notebook)), "parameters": _json_params(parameters),
                "studies": _studies(Path(notebook), parameters)}
    return meta.get("rcl", {}) == expected


def notebook_paths(folder: str | os.PathLike = NOTEBOOK_DIR) -> list[Path]:
    """The walk's notebooks in order (``NN_name.ipynb``)."""
    folder = Path(folder)
    paths = sorted(folder.glob("[0-9][0-9]_*.ipynb"))
    if not paths:
        raise FileNotFoundError(f"{folder}: no notebooks named NN_name.ipynb")
    return paths


def execute(
    notebook: str | os.PathLike,
    out_dir: str | os.PathLike,
    parameters: Mapping[str, Any] | None = None,
    progress: bool = True,
    kernel_name: str = "python3",
) -> Path:
    """Execute ``notebook`` with papermill ``parameters`` into ``out_dir``; returns the output path.

    The output is written under a temporary name and renamed when execution succeeds, so a failed or
    interrupted run never leaves a complete-looking executed notebook behind (the failed copy is kept
    as ``*.failed.ipynb`` for inspection).
    """
    import papermill as pm

    notebook = Path(notebook)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / notebook.name
    partial = out_dir / f".{notebook.stem}.partial.ipynb"
    params = dict(parameters or {})
    if "profile" in params:
        check_profile(params["profile"])
    env_backup = os.environ.get("TQDM_DISABLE")
    os.environ["TQDM_DISABLE"] = "1"  # progress bars inside notebooks stay quiet in the book
    try:
        pm.execute_notebook(
            str(notebook),
            str(partial),
            parameters=params,
            kernel_name=kernel_name,
            progress_bar=progress,
            cwd=str(notebook.parent),
            # stream what cells print to stderr (rcl.config.status lines) to the terminal as they come
            stderr_file=sys.stderr if progress else None,
        )
    except BaseException:
        if partial.exists():
            partial.replace(out_dir / f"{notebook.stem}.failed.ipynb")
        raise
    finally:
        if env_backup is None:
            os.environ.pop("TQDM_DISABLE", None)
        else:
            os.environ["TQDM_DISABLE"] = env_backup
    _stamp(partial, notebook, params, target)
    partial.unlink()
    return target


def _stamp(path: Path, notebook: Path, params: Mapping[str, Any], target: Path | None = None) -> None:
    """Record in the executed notebook ``path`` what it was computed from (:func:`is_current` compares it);
    written atomically to ``target`` (default: ``path`` itself)."""
    nb = json.loads(path.read_text())
    nb.setdefault("metadata", {})["rcl"] = {**_fingerprint(notebook), "parameters": _json_params(params),
                                            "studies": _studies(notebook, params)}
    cache.atomic_write_text(target or path, json.dumps(nb, indent=1, ensure_ascii=False) + "\n")


def execute_all(
    profile: str,
    out_dir: str | os.PathLike,
    parameters: Mapping[str, Any] | None = None,
    notebooks: Sequence[str | os.PathLike] | None = None,
    progress: bool = True,
    force: bool = False,
) -> list[Path]:
    """Execute the walk's notebooks in order at ``profile``; returns the executed paths.

    Unless ``force``, leading notebooks whose executed copy in ``out_dir`` is current (:func:`is_current`)
    are kept; from the first one that is not, every later notebook is executed (it may read what the
    earlier ones saved).
    """
    check_profile(profile)
    paths = [Path(p) for p in notebooks] if notebooks else notebook_paths()
    params = {**(parameters or {}), "profile": profile}
    out, stale = [], force
    for i, nb in enumerate(paths, 1):
        stale = stale or not is_current(nb, out_dir, params)
        if not stale:
            print(f"[{i}/{len(paths)}] {nb.name}: up to date at profile={profile}, not executed again", flush=True)
            out.append(Path(out_dir) / nb.name)
            continue
        print(f"[{i}/{len(paths)}] executing {nb.name} at profile={profile}", flush=True)
        t0 = time.perf_counter()
        out.append(execute(nb, out_dir, params, progress=progress))
        print(f"[{i}/{len(paths)}] {nb.name} done in {time.perf_counter() - t0:.0f} s", flush=True)
    return out
