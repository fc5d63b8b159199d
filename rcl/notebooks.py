"""Executing the book's notebooks with papermill.

The source notebooks in ``notebooks/`` are committed without outputs; executed copies are build
products. :func:`execute` runs one notebook with parameters into an output folder;
:func:`execute_all` runs the whole walk in order (used by ``make book`` and the tests).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from rcl.config import check_profile

__all__ = ["NOTEBOOK_DIR", "execute", "execute_all", "notebook_paths"]

NOTEBOOK_DIR = Path(__file__).resolve().parent.parent / "notebooks"


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
    partial.replace(target)
    return target


def execute_all(
    profile: str,
    out_dir: str | os.PathLike,
    parameters: Mapping[str, Any] | None = None,
    notebooks: Sequence[str | os.PathLike] | None = None,
    progress: bool = True,
) -> list[Path]:
    """Execute the walk's notebooks in order at ``profile``; returns the executed paths."""
    check_profile(profile)
    paths = [Path(p) for p in notebooks] if notebooks else notebook_paths()
    out = []
    for i, nb in enumerate(paths, 1):
        print(f"[{i}/{len(paths)}] executing {nb.name} at profile={profile}", flush=True)
        out.append(execute(nb, out_dir, {**(parameters or {}), "profile": profile}, progress=progress))
    return out
