"""Executing the book's notebooks with papermill.

The source notebooks in ``notebooks/`` are committed without outputs; executed copies are build
products. :func:`execute` runs one notebook with parameters into an output folder;
:func:`execute_all` runs the whole walk in order (used by ``make book`` and the tests).

An executed copy records, in its metadata, the digest of its source notebook (:func:`rcl.cache.file_digest`),
the library's code version (:func:`rcl.cache.code_version` of kind ``"notebooks"``: every module of the
package, since a notebook may show anything the library computes), its parameters and — for a notebook that
shows a separately computed study (:data:`READS`: the backbone and sensitivity studies) — the saved results
of that study it found, and for one that shows committed files (:data:`READS_FILES`: the at-scale results, the
published studies) their names and contents. When the walk is run again into the same folder with
the same parameters, a notebook whose copy is current — same source, same library, same parameters, same
studies, and every notebook before it current too — is not executed again (``force=True`` executes
everything). So ``make backbones`` or ``make sensitivity`` followed by ``make book`` shows the new study,
and a second ``make book`` with nothing changed only re-renders the book. The executed copy appears
atomically (:func:`rcl.cache.atomic_write_text`), so an interrupted run never leaves a complete-looking copy.

Each notebook is given the parameters its ``parameters`` cell defines (so one set serves the whole walk); a
parameter that none of the notebooks defines is refused before anything runs, naming the valid ones.
:func:`project_dir` is the default of the notebooks' ``runs_dir`` and ``results_dir``: the project's own
``runs/`` and ``results/``, whatever folder the kernel runs in.

Layer: outer shell (imports :mod:`rcl.cache`, the configuration and :mod:`rcl.sweep_plan`'s reading of
parameters cells; papermill lazily; nothing of the core, engine or evaluation imports it).
"""

from __future__ import annotations

import errno
import json
import os
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from rcl import cache
from rcl.config import check_profile, numerics
from rcl.sweep_plan import notebook_parameters, parse_values

__all__ = [
    "NOTEBOOK_DIR",
    "execute",
    "execute_all",
    "is_current",
    "notebook_paths",
    "parameters_for",
    "parse_parameters",
    "project_dir",
    "project_root",
]

#: The notebooks of the repository this package is used from (a checkout or an editable install).
NOTEBOOK_DIR = Path(__file__).resolve().parent.parent / "notebooks"


def _is_project(folder: Path) -> bool:
    return (folder / "pyproject.toml").is_file() and (folder / "notebooks").is_dir()


def project_root() -> Path | None:
    """The project's folder: the one above the package when it holds ``pyproject.toml`` and ``notebooks/``
    (the package used from its repository), else the nearest such folder at or above the working directory
    (a clone used with an installed package); None when there is neither."""
    cwd = Path.cwd().resolve()
    return next((f for f in (NOTEBOOK_DIR.parent, cwd, *cwd.parents) if _is_project(f)), None)


def _project_path(name: str, base: Path) -> Path:
    """The project's folder ``name`` as an absolute path; ``base / name`` without a project."""
    root = project_root()
    return (root if root is not None else base.resolve()) / name


def project_dir(name: str) -> str:
    """The project's folder ``name`` (``"runs"``, ``"results"``), whatever the working directory: the
    notebooks' default ``runs_dir`` and ``results_dir``. Relative to the working directory when that lies
    inside the project (``../runs`` from ``notebooks/``), absolute otherwise; without a project (an
    installed package used elsewhere), ``name`` in the working directory."""
    cwd = Path.cwd().resolve()
    path = _project_path(name, cwd)
    if path.parent == cwd or path.parent in cwd.parents:
        return os.path.relpath(path, cwd)
    return str(path)


#: Result kinds (rcl.results) computed outside the walk that a notebook shows when they exist.
READS = {"03_pretraining": ("backbones",), "06_sensitivity": ("sensitivity",), "07_results_summary": ("sensitivity",)}


#: The published copies of the studies (rcl.results.STUDIES_DIR, kept equal by a test): the notebooks'
#: parameter naming their folder, and its default in the project.
STUDIES = ("studies_dir", "book/studies")
_AT_SCALE = ("at_scale_dir", "book/at_scale", "*.json")
#: Committed files a notebook shows, each as its parameter naming their folder, the folder's default (in the
#: project) and the files' pattern: the at-scale results, and the published copies of the studies it reads
#: (:data:`READS`). Their names and contents are part of the executed notebook's fingerprint.
READS_FILES = {name: [(*STUDIES, f"{kind}-*") for kind in kinds] for name, kinds in READS.items()}
for _name in ("07_results_summary", "08_at_scale"):
    READS_FILES.setdefault(_name, []).insert(0, _AT_SCALE)


def _folder(notebook: Path, params: Mapping[str, Any], param: str, default: str) -> Path:
    given = params.get(param)  # relative paths are read in the notebook's folder, where it runs
    return notebook.parent / str(given) if given is not None else _project_path(default, notebook.parent)


def _studies(notebook: Path, params: Mapping[str, Any]) -> str:
    """A hash of the saved results of the studies ``notebook`` reads (their file names carry their keys), of
    the committed files it shows (:data:`READS_FILES`: names and contents) and of the folders of images its
    ``data_dir`` and ``test_dir`` parameters name (names, sizes, modification times)."""
    kinds = READS.get(notebook.stem, ())
    files = READS_FILES.get(notebook.stem, [])
    images = [(params.get(ds, "folder"), notebook.parent / str(params[k]))
              for k, ds in (("data_dir", "dataset"), ("test_dir", "test_dataset")) if params.get(k)]
    if images:  # rcl.data imports torch: only where a folder is named
        from rcl.data import image_root

        images = [f for f in (image_root(*n) for n in images) if f]  # the built-in images ship with packages
    if not kinds and not files and not images:
        return ""
    folder = _folder(notebook, params, "results_dir", "results")
    names: list = sorted(p.name for k in kinds for p in folder.glob(f"{k}-*.json"))
    names += [cache.folder_identity(f) for f in images]  # a user's folder of images, whose contents may change
    for param, default, pattern in files:
        shown = sorted(_folder(notebook, params, param, default).glob(pattern))
        names += [[p.name, cache.file_digest(p)] for p in shown]
    return cache.key(names, length=16)


def _fingerprint(notebook: Path) -> dict[str, str]:
    """The source notebook's digest, the code version of every module of the library, and this machine's
    numerics (:func:`rcl.config.numerics`, as the runs and results it shows are keyed): a notebook executed on a
    machine that computes otherwise (a GPU, a CPU without bfloat16) is not current here."""
    return {"source": cache.file_digest(notebook, "notebook"), "code": cache.code_version("notebooks"),
            "numerics": numerics()}


def _json_params(params: Mapping[str, Any]) -> Any:
    return cache.canonical(dict(params))


def is_current(notebook: str | os.PathLike, out_dir: str | os.PathLike, parameters: Mapping[str, Any],
               name: str | None = None) -> bool:
    """Whether ``out_dir`` holds an executed copy of ``notebook`` (as ``name``, default the notebook's own file
    name) from this source, this library and these parameters."""
    target = Path(out_dir) / (name or Path(notebook).name)
    if not target.exists():
        return False
    try:
        meta = json.loads(target.read_text()).get("metadata", {})
    except json.JSONDecodeError:
        return False
    expected = {**_fingerprint(Path(notebook)), "parameters": _json_params(parameters),
                "studies": _studies(Path(notebook), parameters)}
    return meta.get("rcl", {}) == expected


def notebook_paths(folder: str | os.PathLike | None = None) -> list[Path]:
    """The walk's notebooks in order (``NN_name.ipynb``), from ``folder`` (default: the project's
    ``notebooks/``, see :func:`project_root`)."""
    if folder is None:
        root = project_root()
        if root is None:
            raise FileNotFoundError(
                errno.ENOENT,
                "no project here or in a folder above (pyproject.toml beside notebooks/), nor beside the package "
                f"({NOTEBOOK_DIR.parent}); the notebooks are not part of the installed package: clone the "
                "project's repository and run the command inside it, or pass the notebooks' paths",
                str(Path.cwd()),
            )
        folder = root / "notebooks"
    folder = Path(folder)
    paths = sorted(folder.glob("[0-9][0-9]_*.ipynb"))
    if not paths:
        raise FileNotFoundError(errno.ENOENT, "no notebooks named NN_name.ipynb", str(folder))
    return paths


def parse_parameters(pairs: Sequence[tuple[str, str]]) -> dict[str, Any]:
    """The parameters given on the command line as ``-p NAME VALUE`` pairs, each value read as ``rcl sweep``
    reads one (papermill-style scalars, JSON or Python lists, dicts and quoted strings). A name given twice,
    ``profile`` (given on its own) or several values raise ValueError naming the parameter."""
    params: dict[str, Any] = {}
    for name, text in pairs:
        if name in params:
            raise ValueError(f"-p {name} is given twice; give each parameter once")
        if name == "profile":
            raise ValueError("-p profile: give the profile with --profile")
        try:
            values = parse_values(text)
        except ValueError as err:
            raise ValueError(f"-p {name}: {err}") from None
        if text.strip().startswith("[") and all(isinstance(v, dict) for v in values):
            values = [values]  # one list of dicts (a sweep would run each dict)
        if len(values) != 1:
            raise ValueError(f"-p {name} {text!r}: one value per parameter here (a list is JSON, e.g. "
                             f"'{json.dumps(values)}'; python -m rcl sweep runs one value after another)")  # fmt: skip
        params[name] = values[0]
    return params


def parameters_for(notebooks: Sequence[str | os.PathLike], parameters: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Each notebook's share of ``parameters``: those its ``parameters`` cell defines. Raises ValueError
    naming any parameter that none of ``notebooks`` defines, and the parameters they do define."""
    defined = [notebook_parameters(nb) for nb in notebooks]
    unknown = [name for name in parameters if not any(name in d for d in defined)]
    if unknown:
        valid = ", ".join(dict.fromkeys(name for d in defined for name in d))
        which = Path(notebooks[0]).name if len(notebooks) == 1 else f"any of the {len(notebooks)} notebooks"
        raise ValueError(f"no parameter {', '.join(map(repr, unknown))} in the parameters cell of {which}; "
                         f"valid: {valid}")  # fmt: skip
    return [{k: v for k, v in parameters.items() if k in d} for d in defined]


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

    Each notebook gets the ``parameters`` its parameters cell defines; one that no notebook defines, or a
    ``profile`` among them, is refused before anything runs (ValueError). Unless ``force``, leading
    notebooks whose executed copy in ``out_dir`` is current (:func:`is_current`) are kept; from the first
    one that is not, every later notebook is executed (it may read what the earlier ones saved).
    """
    check_profile(profile)
    if "profile" in (parameters or {}):
        raise ValueError(f"parameter profile={parameters['profile']!r}: the profile is given on its own "
                         "(--profile), not among the parameters")  # fmt: skip
    paths = [Path(p) for p in notebooks] if notebooks else notebook_paths()
    shares = [{**share, "profile": profile} for share in parameters_for(paths, parameters or {})]
    out, stale = [], force
    for i, (nb, params) in enumerate(zip(paths, shares), 1):
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
