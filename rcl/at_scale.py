"""At-scale results: the headline comparison computed once at a profile on real photographs, with its provenance.

The book's build runs the ``cpu`` profile on the bundled images; the paper's scale (the ``gpu`` profile) needs
a GPU and a folder of photographs, which the build has neither of. Its results are computed once by
:func:`run` (``python -m rcl at-scale``) and committed as one small JSON file per run under
``book/at_scale/``, which the book's "At scale" page shows — marked as not recomputed by the build, with
where each number came from. A file holds:

* ``provenance``: what was run (profile, the engine's overrides, the proxy protocol's settings, methods,
  tasks, pre-training seeds), with which code (package version, git commit and whether the tree had
  uncommitted changes, the training and evaluation code versions of :func:`rcl.cache.code_version`), on
  what (device type and name, their count, torch's version), when (UTC start and end, seconds), each run's
  steps, training seconds and final loss, and the data: the dataset's name and, per image folder, its
  number of files and a digest of their names, sizes and modification times (what the caches key folders
  by, :func:`rcl.cache.folder_identity`) — never a path of the machine it ran on — and, where the runner gave
  one, a note saying in words what the photographs are;
* ``rows``: per method, task, test condition, pre-training seed and trial, the mean PSNR, MSE and SSIM over
  the held-out test images and their count (and, for networks, the mean PSNR of their own output against
  their input, ``psnr_vs_input``) — what :mod:`rcl.summary`'s tables aggregate (means of equal-size
  groups, so its per-σ tables, controls and comparisons read these rows as they read per-image ones);
* ``per_image`` (files written before it was added lack it): for the paper's test setting only (the mixed
  noise range, and SR's clean cases), each method's, task's and pre-training seed's PSNR per held-out test image
  (a list in the images' sorted order, each the mean over trials and the image's test cases) — what the
  comparisons' intervals over seeds × test images need (:func:`agreement`);
* ``residuals`` (files written before it was added lack it): per pre-training seed, what each denoising network's
  residual ``x − f(x)`` is on its own training instances — its correlation with the true noise and with the
  image's detail, its size, the contrastive loss it reaches beside the true noise's
  (:func:`rcl.analysis.residual_report`, notebook 03's table): whether RCL learned the noise at this scale.

:func:`load` reads a file back: JSON only (nothing loaded executes code), every field checked, a
``ValueError`` naming the file and the field otherwise. :func:`load_folder` reads every file of a folder, newest first.
:func:`agreement` gives a file's comparisons with the paper, :func:`residuals` its residual table, :func:`describe`
and :func:`training` its provenance; :func:`of_the_books_runs` and :func:`beside` set the files that evaluate the
book's own runs on other photographs beside the book's verdicts (the results summary, section 6).
An interrupted :func:`run` resumes: finished pre-training runs and proxy evaluations are reused
(:func:`rcl.evaluate.study`).

Layer: studies (imports the evaluation's study, the engine's run configs and run folders, the residual analysis,
the summary's comparisons, the cache and the configuration; never the CLI, plots or notebooks).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from rcl import __version__
from rcl import analysis as _analysis
from rcl import cache as _cache
from rcl import config as _config
from rcl import data as _data
from rcl import evaluate as _evaluate
from rcl import methods as _methods
from rcl import profiles as _profiles
from rcl import provenance as _provenance
from rcl import runs as _runs
from rcl import summary as _summary
from rcl import train as _train

__all__ = ["METHODS", "SCHEMA", "TASKS", "AtScale", "agreement", "beside", "describe", "load", "load_folder",
           "library", "not_the_books_runs", "of_the_books_runs", "residuals", "run", "training"]

#: The headline comparison — RCL-EMD, its consistency-only ablation, N2N, N2S and the supervised Oracle —, the
#: copy-the-input control, without which the comparison's controls do not hold (:func:`rcl.summary.controls`), and
#: the random-init control, the baseline every pre-training is read against (:func:`rcl.summary.over_init`; no step).
METHODS = _methods.HEADLINE_AND_CONTROLS
TASKS = ("denoise", "sr")
SCHEMA = 1
#: The columns of a row, and the provenance fields a file must have.
ROW_KEYS = ("method", "task", "condition", "seed", "trial", "psnr", "mse", "ssim", "n")
#: Columns a row may have: the mean PSNR of the network's own output against its input (not of references).
OPTIONAL_KEYS = ("psnr_vs_input",)
#: The columns of a residual row: the pre-training seed, whose residual (a method's, or ``true noise``), the
#: temperature of its contrastive loss (RCL's), and :func:`rcl.analysis.residual_report`'s numbers.
RESIDUAL_KEYS = ("seed", "residual", "tau", "corr. with noise", "corr. with image detail", "EMD to noise",
                 "std / noise std", "contrastive loss", "positive nearest (%)")
#: At most this many training instances (one crop pair each) in the residual table: a seeded subset, so that
#: the pairwise EMD of a large dataset stays small; 256 crops of the profile's size hold over half a million
#: pixels.
RESIDUAL_INSTANCES = 256
#: The sections a file may have beside its provenance and rows (files written before one was added lack it).
OPTIONAL_SECTIONS = ("per_image", "residuals")
PROVENANCE_KEYS = ("schema", "profile", "pretrain", "proxy", "methods", "tasks", "seeds", "code", "device",
                   "started", "finished", "seconds", "runs", "data", "command")  # fmt: skip


@dataclass(frozen=True)
class AtScale:
    """One at-scale results file, read back: its path, provenance and rows."""

    path: Path
    provenance: dict[str, Any]
    rows: pd.DataFrame
    #: One row per pre-training seed and residual (:data:`RESIDUAL_KEYS`); empty where the file records none.
    residual_rows: pd.DataFrame
    #: The paper's test setting per test image (method, task, condition, seed, image: its index, psnr); empty
    #: where the file records none.
    image_rows: pd.DataFrame


def _folder(dataset: str, data_dir: str | None, split: str) -> dict[str, Any]:
    """A folder's identity without its path: the number of files and a digest of names, sizes and times (of the
    whole folder, every split in it); for the bundled photographs, the number of the split's, and no digest."""
    if dataset in (None, "builtin"):
        return {"dataset": "builtin", "files": len(_data.BUILTIN_TRAIN if split == "train" else _data.BUILTIN_TEST),
                "digest": None}
    root = _data.image_root(dataset, data_dir)
    ident = _cache.folder_identity(root)
    digest = hashlib.sha256(json.dumps(ident).encode()).hexdigest()[:16] if ident else None
    return {"dataset": dataset, "files": len(ident), "digest": digest}


def _public(settings: dict) -> dict:
    """``settings`` without the machine's folders: where runs are kept is left out, an image folder is named by
    its identity (the file's ``data`` field) instead of its path."""
    out = {k: v for k, v in settings.items() if k not in ("runs_dir", "progress", "device")}
    out.update({k: "FOLDER (see data)" for k in ("data_dir", "test_dir") if out.get(k)})
    return _cache.canonical(out)


def _compact(df: pd.DataFrame) -> list[dict]:
    """Per (method, task, condition, seed, trial): the mean PSNR, MSE and SSIM over test images, their count,
    and where the rows have it the mean ``psnr_vs_input`` (the network's own output against its input, which
    the copy-the-input control reads; absent from the reference rows)."""
    keys = ["method", "task", "condition", "seed", "trial"]
    g = df.groupby(keys)
    out = g[[c for c in ("psnr", "mse", "ssim", *OPTIONAL_KEYS) if c in df]].mean()
    out["n"] = g.size()
    return [{k: (v.item() if hasattr(v, "item") else v) for k, v in r.items()
             if not (k in OPTIONAL_KEYS and pd.isna(v))} for r in out.reset_index().to_dict("records")]  # fmt: skip


#: The keys of a ``per_image`` entry: its PSNR list follows the test images' sorted order.
PER_IMAGE_KEYS = ("method", "task", "condition", "seed", "psnr")


def _per_image(df: pd.DataFrame) -> list[dict]:
    """The paper's test setting (:func:`rcl.evaluate.paper_cases`) per test image: for each method, task,
    condition and pre-training seed, the PSNR of every test image (sorted by name; mean over trials and the
    image's test cases). Entries that lack an image are left out."""
    images = sorted(df.image.unique())
    g = _evaluate.paper_cases(df).groupby(["method", "task", "condition", "seed", "image"]).psnr.mean()
    out = []
    for (method, task, cond, seed), per in g.groupby(level=[0, 1, 2, 3]):
        values = per.droplevel([0, 1, 2, 3]).reindex(images)
        if values.notna().all():
            out.append({"method": method, "task": task, "condition": cond, "seed": int(seed),
                        "psnr": [float(v) for v in values]})
    return out


def _run_summaries(df: pd.DataFrame, runs_dir: str | os.PathLike) -> dict[str, dict]:
    """Each pre-training run the rows came from: the rows' methods and tasks it gave (``used_as``), its steps,
    training seconds and final loss, and its largest logged loss with its step (a spike above the first logged
    losses shows there, if it falls on a logged step: ``benchmarks/stability.py``)."""
    out = {}
    for name in sorted(set(df.run) - {"reference"}):
        metrics = _cache.read_json(Path(runs_dir) / name / "result.json")["metrics"]
        used = df.loc[df.run == name, ["method", "task"]].drop_duplicates().itertuples(index=False)
        out[name] = {"used_as": [f"{m} ({t})" for m, t in sorted(used)],
                     **{k: metrics.get(k) for k in ("steps", "seconds", "final_loss")}}
        logged = _runs.history(Path(runs_dir) / name)
        if logged:
            worst = max(logged, key=lambda e: e["loss"])
            out[name].update(max_loss=worst["loss"], max_loss_step=worst["step"])
    return out


def _residuals(df: pd.DataFrame, profile: str, pretrain: dict) -> list[dict]:
    """Per pre-training seed, :func:`rcl.analysis.residual_report` of every network evaluated on denoising (by
    its label there: the Oracle as ``oracle``) and of the true noise, on that seed's training instances (at
    most :data:`RESIDUAL_INSTANCES`), at the run's crop and RCL's temperature."""
    nets = df[(df.task == "denoise") & (df.run != "reference")][["method", "seed", "run"]].drop_duplicates()
    device = _config.default_device()
    out = []
    for seed, part in nets.groupby("seed", sort=True):
        cfg = _train.make_config("rcl-emd", profile, **{**pretrain, "seed": int(seed), "progress": False})
        models = {m: _runs.load_model(Path(cfg.runs_dir) / r, device) for m, r in zip(part.method, part.run)}
        report = _analysis.residual_report(_train.build_data(cfg), cfg.crop, {**models, "true noise": None},
                                           tau=cfg.tau, seed=int(seed), device=device, limit=RESIDUAL_INSTANCES)
        out.extend({"seed": int(seed), "residual": name, "tau": cfg.tau, **{k: float(v) for k, v in row.items()}}
                   for name, row in report.iterrows())  # fmt: skip
    return out


def run(profile: str, out: str | os.PathLike, pretrain: dict | None = None, proxy: dict | None = None,
        methods: tuple[str, ...] | list[str] = METHODS, tasks: tuple[str, ...] | list[str] = TASKS,
        seeds: tuple[int, ...] | list[int] = (0,), command: str = "", progress: bool = True,
        data_note: str = "") -> Path:
    """Pre-train (or reuse) ``methods`` at ``profile`` with ``pretrain`` overrides (a folder of photographs:
    ``{"dataset": "folder", "data_dir": …}``), evaluate them by the proxy protocol on ``tasks`` with the
    profile's proxy settings updated by ``proxy`` (held-out photographs: ``{"test_dir": …}``), and write the
    results file ``out`` (atomically; an existing file is an error). ``data_note`` says in words what the
    photographs are (the file's digests identify them but do not name them). Returns its path."""
    out = Path(out)
    if out.exists():
        raise FileExistsError(f"{out}: an at-scale results file is never overwritten; give another --out")
    _cache.check_writable(out, "results file")  # before hours of work, not after them
    pretrain, proxy = dict(pretrain or {}), dict(proxy or {})
    pvalues = _profiles.values("proxy", profile)
    proxy = {**{k: pvalues[k] for k in _profiles.PROXY_KEYS}, **proxy}
    if "method" in pretrain:
        raise ValueError(f"pre-training setting method={pretrain['method']!r}: the methods are chosen by methods "
                         "(--methods on the command line), not by a pre-training setting")
    if "seed" in pretrain:  # the file would record a seed its runs were not trained with
        raise ValueError(f"pre-training setting seed={pretrain['seed']!r}: the seeds are chosen by seeds (--seeds on "
                         "the command line), not by a pre-training setting")
    base = _train.make_config(methods[0], profile, **{**pretrain, "progress": False})
    held_out = proxy.get("test_dataset") or proxy.get("test_dir")  # else the training dataset's test split
    test = (proxy.get("test_dataset") or "folder", proxy.get("test_dir")) if held_out else (base.dataset, base.data_dir)
    started, t0 = _provenance.utc(), time.perf_counter()
    df = _evaluate.study(list(methods), list(tasks), profile, proxy=proxy, pretrain=pretrain, progress=progress,
                         seeds=list(seeds))  # fmt: skip
    residual_rows = _residuals(df, profile, pretrain) if "denoise" in tasks else []
    provenance = {
        "schema": SCHEMA, "profile": profile, "pretrain": _public(pretrain), "proxy": _public(proxy),
        "methods": list(methods), "tasks": list(tasks), "seeds": list(seeds),
        "code": {"rcl": __version__, **_provenance.git(), "training": _cache.code_version("training"),
                 "evaluation": _cache.code_version("evaluation")},
        "device": _provenance.device(),
        "started": started, "finished": _provenance.utc(), "seconds": round(time.perf_counter() - t0, 1),
        "runs": _run_summaries(df, base.runs_dir),
        "data": {"train": _folder(base.dataset, base.data_dir, "train"), "test": _folder(*test, "test"),
                 "test_images": int(df.image.nunique()), **({"note": data_note} if data_note else {})},
        "command": command,
    }  # fmt: skip
    blob = {"provenance": provenance, "rows": _compact(df), "per_image": _per_image(df),
            **({"residuals": residual_rows} if residual_rows else {})}
    _cache.atomic_write_json(out, blob, indent=1)
    return out


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _check(path: Path, blob: Any) -> None:
    def bad(what: str) -> ValueError:
        return ValueError(f"{path}: not an at-scale results file of this package ({what})")

    sections = {"provenance", "rows"}
    if not isinstance(blob, dict) or not sections <= set(blob) <= {*sections, *OPTIONAL_SECTIONS}:
        raise bad(f"expected an object with 'provenance' and 'rows', and optionally {' and '.join(OPTIONAL_SECTIONS)}")
    prov, rows = blob["provenance"], blob["rows"]
    missing = [k for k in PROVENANCE_KEYS if not isinstance(prov, dict) or k not in prov]
    if missing:
        raise bad(f"provenance lacks {missing}")
    if prov["schema"] != SCHEMA:
        raise bad(f"schema {prov['schema']!r}, this package reads schema {SCHEMA}")
    data = prov["data"]
    folders = [data.get(k) if isinstance(data, dict) else None for k in ("train", "test")]
    if not all(isinstance(prov[k], dict) for k in ("pretrain", "proxy", "code", "device", "runs", "data")) or not all(
            isinstance(f, dict) and {"dataset", "files", "digest"} <= set(f) for f in folders):
        raise bad("provenance's pretrain, proxy, code, device, runs and data must be objects, data's train and test "
                  "each with dataset, files and digest")  # fmt: skip
    if not isinstance(data.get("note", ""), str) or type(data.get("test_images")) is not int:
        raise bad("provenance's data must have an integer test_images and a note in text, if any")
    if not isinstance(prov["seeds"], list) or not prov["seeds"] or not all(type(x) is int for x in prov["seeds"]):
        raise bad("provenance's seeds must be a list of integers")
    if not all(isinstance(prov[k], str) for k in ("started", "finished")) or not _number(prov["seconds"]):
        raise bad("provenance's started and finished must be times in text, seconds a number")
    if not all(isinstance(prov["device"].get(k), str) for k in ("name", "type", "torch")) or not isinstance(
            prov["device"].get("count"), int) or not all(isinstance(prov["code"].get(k), str) for k in
                                                         ("rcl", "training", "evaluation")):
        raise bad("provenance's device must name its name, type, count and torch; its code its rcl, training and "
                  "evaluation versions")  # fmt: skip
    if not all(isinstance(r, dict) for r in prov["runs"].values()):
        raise bad("provenance's runs must map each run's name to an object")
    if not isinstance(rows, list) or not rows:
        raise bad("no rows")
    for i, r in enumerate(rows):
        if not isinstance(r, dict) or any(k not in r for k in ROW_KEYS):
            raise bad(f"row {i} lacks one of {list(ROW_KEYS)}")
        if not all(isinstance(r[k], str) for k in ("method", "task", "condition")) or not all(
                type(r[k]) is int for k in ("seed", "trial")):
            raise bad(f"row {i}: method, task and condition must be names, seed and trial integers")
        numbers = ("psnr", "mse", "ssim", "n", *(k for k in OPTIONAL_KEYS if k in r))
        if not all(_number(r[k]) for k in numbers):
            raise bad(f"row {i}: {', '.join(numbers)} must be finite numbers")
    for section in OPTIONAL_SECTIONS:
        if not isinstance(blob.get(section, []), list):
            raise bad(f"'{section}' must be a list of rows")
    _check_sections(blob, bad)


def _check_sections(blob: dict, bad: Any) -> None:
    n, seeds = blob["provenance"]["data"]["test_images"], set(blob["provenance"]["seeds"])
    seen = set()
    for i, r in enumerate(blob.get("per_image", [])):
        if not isinstance(r, dict) or set(r) != set(PER_IMAGE_KEYS):
            raise bad(f"per-image row {i} must have exactly {list(PER_IMAGE_KEYS)}")
        names = tuple(r[k] for k in PER_IMAGE_KEYS[:3])
        if not all(isinstance(v, str) for v in names) or type(r["seed"]) is not int or r["seed"] not in seeds:
            raise bad(f"per-image row {i}: method, task and condition must be names, seed one of the file's seeds")
        if not isinstance(r["psnr"], list) or len(r["psnr"]) != n or not all(_number(v) for v in r["psnr"]):
            raise bad(f"per-image row {i}: psnr must be a list of {n} finite numbers (one per test image)")
        if (*names, r["seed"]) in seen:
            raise bad(f"per-image row {i} repeats {names} at seed {r['seed']}")
        seen.add((*names, r["seed"]))
    keys = ["method", "task", "condition", "seed"]
    paper = set(_evaluate.paper_cases(pd.DataFrame(blob["rows"]))[keys].itertuples(index=False, name=None))
    if seen and seen != paper:
        raise bad(f"per-image rows and rows hold different methods, tasks or seeds ({sorted(seen ^ paper)[:3]} …)")
    for i, r in enumerate(blob.get("residuals", [])):
        if not isinstance(r, dict) or set(r) != set(RESIDUAL_KEYS):
            raise bad(f"residual row {i} must have exactly {list(RESIDUAL_KEYS)}")
        if type(r["seed"]) is not int or r["seed"] not in seeds or not isinstance(r["residual"], str) or not all(
                _number(r[k]) for k in RESIDUAL_KEYS[2:]):
            raise bad(f"residual row {i}: seed must be one of the file's seeds, residual a name, the rest finite "
                      "numbers")  # fmt: skip


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not a number a results file may hold")


def load(path: str | os.PathLike) -> AtScale:
    """Read an at-scale results file (plain JSON; checked field by field)."""
    path = Path(path)
    try:
        blob = json.loads(path.read_text(), parse_constant=_no_constant)  # NaN and Infinity are refused
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: not valid JSON ({err.msg} at line {err.lineno})") from err
    except ValueError as err:
        raise ValueError(f"{path}: not an at-scale results file of this package ({err})") from err
    _check(path, blob)
    per_image = [{**{k: r[k] for k in PER_IMAGE_KEYS[:4]}, "image": i, "psnr": v}
                 for r in blob.get("per_image", []) for i, v in enumerate(r["psnr"])]  # fmt: skip
    return AtScale(path, blob["provenance"], pd.DataFrame(blob["rows"]),
                   pd.DataFrame(blob.get("residuals", []), columns=list(RESIDUAL_KEYS)),
                   pd.DataFrame(per_image, columns=[*PER_IMAGE_KEYS[:4], "image", "psnr"]))


def load_folder(folder: str | os.PathLike) -> list[AtScale]:
    """Every at-scale results file (``*.json``) of ``folder``, read, newest first by its recorded start."""
    folder = Path(folder)
    found = [load(p) for p in sorted(folder.glob("*.json"))] if folder.is_dir() else []
    return sorted(found, key=lambda r: r.provenance["started"], reverse=True)


def training(result: AtScale) -> pd.DataFrame:
    """Each pre-training run of ``result``: what it was evaluated as (method and task), its steps, minutes, final
    loss and largest logged loss with its step (files written before these were recorded leave them empty). A
    largest loss far above the final one, logged after the first steps, is a loss spike
    (``benchmarks/stability.py``)."""
    rows = {name: {"used as": ", ".join(r.get("used_as", [])), "steps": r.get("steps"),
                   "minutes": None if r.get("seconds") is None else r["seconds"] / 60,
                   "final loss": r.get("final_loss"), "largest logged loss": r.get("max_loss"),
                   "at step": r.get("max_loss_step")}
            for name, r in result.provenance["runs"].items()}  # fmt: skip
    return pd.DataFrame.from_dict(rows, orient="index")


def _data_line(folder: dict, split: str) -> str:
    if folder["dataset"] == "builtin" and folder["digest"] is None:  # files written before counted none here
        return "the bundled photographs" + (f" ({folder['files']} {split})" if folder["files"] else "")
    return (f"{folder['dataset']}: a folder holding {folder['files']} files over all its splits, the {split} split "
            f"among them (files digest {folder['digest']})")


def library(result: AtScale) -> str:
    """Which library computed ``result``, in words: ``"the current library"`` where its training and evaluation
    code versions are this build's, else another one, with its commit and which of the two differ — a file is
    never recomputed by the book's build, so a reader must be told when the code is not the one the book runs
    (older, as a rule; a file from another branch could be newer). Without parentheses: it is said inside them."""
    code = result.provenance["code"]
    other = [kind for kind in ("training", "evaluation") if code.get(kind) != _cache.code_version(kind)]
    if not other:
        return "the current library"
    return (f"another library, commit {(code.get('commit') or 'unknown')[:12]}, whose {' and '.join(other)} code "
            f"{'differs' if len(other) == 1 else 'differ'} from this build's")


def describe(result: AtScale) -> pd.DataFrame:
    """Where every number of ``result`` came from, one line per fact, for the book."""
    p = result.provenance
    code, dev, data = p["code"], p["device"], p["data"]
    steps = sorted({r["steps"] for r in p["runs"].values() if r.get("steps")})  # not the random init's 0
    state = {True: " (with uncommitted changes)", False: "",
             None: " (given, run from a copy without git history: uncommitted changes unknown)"}[code.get("modified")]
    commit = (code.get("commit") or "unknown")[:12] + (state if code.get("commit") else "")
    facts = {
        "computed on": f"{dev['name']} ({dev['type']}, {dev['count']}), torch {dev['torch']}",
        "written (UTC)": f"{p['started']} to {p['finished']} ({p['seconds'] / 60:.1f} min; evaluations already "
        "computed by the same code versions are reused, so not necessarily how long they took)",
        "code": f"rcl {code['rcl']}, commit {commit}; training code {code['training']}, "
        f"evaluation code {code['evaluation']}: {library(result)}",
        "command": p["command"] or "(not recorded)",
        "profile and overrides": f"{p['profile']}: " + (", ".join(f"{k}={v}" for k, v in p["pretrain"].items())
                                                         or "none"),
        "pre-training steps": ", ".join(map(str, steps)) or "unknown",
        "methods, tasks, seeds": f"{', '.join(p['methods'])}; {', '.join(p['tasks'])}; seeds {p['seeds']}",
        "training images": _data_line(data["train"], "training"),
        **({"the photographs, as described": data["note"]} if data.get("note") else {}),
        "held-out test images": f"{data['test_images']} evaluated; " + _data_line(data["test"], "test"),
        "proxy protocol": ", ".join(f"{k}={v}" for k, v in p["proxy"].items()),
    }  # fmt: skip
    return pd.DataFrame({"": list(facts.values())}, index=list(facts))


def residuals(result: AtScale) -> pd.DataFrame:
    """What each network's residual is (:func:`rcl.analysis.residual_report`), the mean over the file's
    pre-training seeds, in the order recorded, with the number of seeds; empty where the file records none."""
    r = result.residual_rows
    if r.empty:
        return pd.DataFrame(columns=[*RESIDUAL_KEYS[2:], "seeds"])
    g = r.groupby("residual", sort=False)
    return g[list(RESIDUAL_KEYS[2:])].mean().assign(seeds=g.size())


def not_the_books_runs(result: AtScale, runs: set[str] | list[str], seeds: list[int], profile: str) -> str:
    """Why ``result`` is not an evaluation of the book's own runs on other held-out photographs, in words, or
    ``""`` where it is: every pre-training run of the file is one of ``runs`` (the book's, by name: a run's name
    is its key, so its settings, training code and numerics are the book's), with the book's pre-training
    ``seeds`` (the first seeds the test cases), ``profile``'s proxy protocol and this code's evaluation, on test
    images other than the training dataset's own split (``--test-dir``, or ``--test-dataset`` naming another)."""
    p, data = result.provenance, result.provenance["data"]
    protocol = _cache.canonical({k: v for k, v in _profiles.values("proxy", profile).items()
                                 if k in _profiles.PROXY_KEYS})  # fmt: skip
    proxy = {k: v for k, v in p["proxy"].items() if k not in ("test_dir", "test_dataset")}
    ident = {k: (data[k]["dataset"], data[k]["digest"]) for k in ("train", "test")}
    numerics = _config.numerics(_config.default_device())
    reasons = [
        (p["profile"] != profile, f"another profile ({p['profile']})"),
        (p["seeds"] != list(seeds), f"other pre-training seeds ({p['seeds']}, the book's {list(seeds)})"),
        (proxy != protocol, "another proxy protocol"),
        (ident["test"] == ident["train"], "tested on its training data's own test split"),
        (p["device"].get("numerics") != numerics, f"runs trained with other numerics ({p['device'].get('numerics')}; "
                                                  f"this build's {numerics})"),
        (not p["runs"] or not set(p["runs"]) <= set(runs), "runs other than the book's (other settings or code)"),
        (p["code"].get("evaluation") != _cache.code_version("evaluation"), "evaluated by another evaluation code"),
    ]  # fmt: skip
    return "; ".join(why for failed, why in reasons if failed)


def of_the_books_runs(found: list[AtScale], runs: set[str] | list[str], seeds: list[int], profile: str
                      ) -> list[AtScale]:  # fmt: skip
    """The files of ``found`` that evaluate the book's own runs on other held-out photographs
    (:func:`not_the_books_runs` finds no reason against them)."""
    return [r for r in found if not not_the_books_runs(r, runs, seeds, profile)]


def agreement(result: AtScale) -> pd.DataFrame:
    """The paper's comparisons on ``result`` (:func:`rcl.summary.agreement`, under the controls of its rows): where
    both methods have several pre-training seeds and the file keeps per-image PSNRs, the interval is over seeds ×
    test images, as the book's own; where it keeps none, over seeds only (the spread over photographs left out);
    with one seed, over the trials of one network (the rows). Without the columns of the other aggregation
    (:data:`rcl.summary.BY_MSE`): a file keeps each trial's MSE over all its test images, not each test case's."""
    both = pd.concat([result.image_rows, result.rows], ignore_index=True)  # grouping drops the other's empty keys
    table = _summary.agreement(both if len(result.image_rows) else result.rows, _summary.controls(result.rows))
    return table.drop(columns=[_summary.BY_MSE, _summary.MSE_DIFFERS], errors="ignore")


#: What :func:`beside` says of a comparison of the book's that a file does not hold.
ABSENT = "not in this file"


def beside(ours: pd.DataFrame, result: AtScale) -> pd.DataFrame:
    """The paper's comparisons of ``ours`` (:func:`rcl.summary.agreement` of the book's own test images)
    beside the same comparisons on ``result``'s test images: each verdict, difference and 95% interval, side by
    side, with the paper's difference; a comparison the file does not hold (its methods or tasks) says so."""
    n = result.provenance["data"]["test_images"]
    cols = ["verdict", "ours (dB)", "95% CI", "over"]
    left = ours.set_index(["task", "comparison"])
    there = agreement(result)
    right = (there.set_index(["task", "comparison"])[cols] if len(there) else pd.DataFrame(columns=cols)
             ).reindex(left.index)  # fmt: skip
    right = right.astype(object).where(right.notna(), "")
    right.loc[right.verdict == "", "verdict"] = ABSENT
    return pd.concat({"this book's test images": left[cols], f"{n} other held-out photographs": right,
                      "paper": left[["paper (dB)"]]}, axis=1)
