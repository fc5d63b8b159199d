"""Papermill sweeps: one notebook executed over a grid of parameters, its results collected into one table.

:func:`parse_values` reads a command-line value list, :func:`grid` expands swept values into combinations,
:func:`run` executes one parameterised copy of the notebook per combination into an output folder (several
at once where the machine allows), and :func:`collect` gathers the results those executions saved through
:mod:`rcl.results` into one long table, with the swept parameter values as columns::

    python -m rcl sweep notebooks/04_proxy_evaluation.ipynb --profile smoke -p seed 0,1,2
    from rcl import sweep; frame = sweep.collect("build/sweeps/04_proxy_evaluation-smoke-…")  # in Python

The output folder holds ``<stem>--<name>=<value>….ipynb`` per finished execution, ``sweep.json`` (the
manifest: notebook, profile, fixed parameters, grid, and per execution its status, time and files),
``logs/`` (per execution: what it printed, and the JSON lines :mod:`rcl.results` logged through
``RCL_RESULTS_LOG``) and ``results.csv`` (the collected table). Executions whose notebook already exists
are not run again, so rerunning a sweep resumes it.
"""

from __future__ import annotations

import ast
import hashlib
import itertools
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from rcl.config import check_profile
from rcl.results import LOG_ENV, code_version

__all__ = [
    "SweepError",
    "collect",
    "default_jobs",
    "default_out_dir",
    "execution_name",
    "grid",
    "notebook_parameters",
    "parse_value",
    "parse_values",
    "read_manifest",
    "run",
    "summary",
]

MANIFEST = "sweep.json"
RESULTS = "results.csv"
_ERROR_MARK = "rcl.sweep error: "
_SAFE = re.compile(r"[A-Za-z0-9_+-][A-Za-z0-9._+-]{0,31}")


class SweepError(ValueError):
    """A sweep that cannot start (bad notebook, parameter, value or output folder); the message says why."""


# ---------------------------------------------------------------------------------------------- parameters


def parse_value(text: str) -> Any:
    """Papermill-style parameter value: int, float, bool (any case), None/null, else the string itself."""
    lowered = text.lower()
    if lowered in ("none", "null"):
        return None
    if lowered in ("true", "false"):
        return lowered == "true"
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


def _split_top_level(text: str) -> list[str]:
    """Split at commas that are not inside brackets, braces or quotes."""
    items, depth, quote, start, i = [], 0, "", 0, 0
    while i < len(text):
        ch = text[i]
        if quote:
            if ch == "\\":
                i += 1
            elif ch == quote:
                quote = ""
        elif ch in "\"'":
            quote = ch
        elif ch in "[{(":
            depth += 1
        elif ch in "]})":
            depth -= 1
        elif ch == "," and depth == 0:
            items.append(text[start:i])
            start = i + 1
        i += 1
    items.append(text[start:])
    return items


def _literal(text: str) -> Any:
    """A JSON or Python literal (``{"tau": 0.1}``, ``{'tau': 0.1}``, ``["n2n"]``, ``"a,b"``), as JSON data."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        try:
            value = ast.literal_eval(text)
        except (ValueError, SyntaxError) as e:
            raise ValueError(f"cannot read {text!r} as JSON or a Python literal ({e})") from None
    try:
        return json.loads(json.dumps(value))  # tuples become lists; sets, bytes, ... are refused
    except TypeError:
        raise ValueError(f"{text!r} is not a JSON value (use numbers, strings, lists, dicts)") from None


def parse_values(text: str) -> list[Any]:
    """The values one ``-p NAME VALUES`` gives: a list of one value (fixed) or several (swept).

    VALUES is split at commas outside brackets, braces and quotes; each item starting with ``[``, ``{`` or a
    quote is a JSON (or Python) literal, any other item a papermill-style value (:func:`parse_value`).
    A single list whose items are all dicts is a sweep over those dicts (no notebook parameter takes a
    list of dicts). So ``0,1,2`` sweeps three ints, ``'{"tau": 0.1}'`` is one dict,
    ``'{"tau": 0.1},{"tau": 1}'`` and ``'[{"tau": 0.1}, {"tau": 1}]'`` sweep two dicts, ``'["n2n"]'`` is one
    list and ``'["n2n"],["n2n","rcl-emd"]'`` sweeps two lists; ``'"a,b"'`` is one string with a comma.
    """
    values = []
    for item in _split_top_level(text):
        item = item.strip()
        if not item:
            raise ValueError(f"empty value in {text!r}")
        values.append(_literal(item) if item[0] in "[{\"'" else parse_value(item))
    if len(values) == 1 and isinstance(values[0], list) and values[0] and all(isinstance(v, dict) for v in values[0]):
        values = values[0]
    seen: list[str] = []
    for v in values:
        canon = json.dumps(v, sort_keys=True)
        if canon in seen:
            raise ValueError(f"{v!r} is listed twice in {text!r}")
        seen.append(canon)
    return values


def grid(params: Mapping[str, Sequence[Any]]) -> list[dict[str, Any]]:
    """Every combination of the swept ``params`` (name → values), the first name varying slowest."""
    for name, values in params.items():
        if isinstance(values, (str, bytes)) or not isinstance(values, Sequence) or not values:
            raise ValueError(f"parameter {name}: give a non-empty list of values, got {values!r}")
    names = list(params)
    return [dict(zip(names, combo)) for combo in itertools.product(*(params[n] for n in names))]


def notebook_parameters(notebook: str | os.PathLike) -> dict[str, Any]:
    """The names the notebook's ``parameters`` cell assigns, with their defaults (the source text where the
    default is not a literal)."""
    import nbformat

    path = Path(notebook)
    if not path.is_file():
        raise SweepError(f"notebook {str(path)!r} does not exist")
    nb = nbformat.read(path, as_version=4)
    cells = [c for c in nb.cells if c.cell_type == "code" and "parameters" in c.metadata.get("tags", [])]
    if not cells:
        raise SweepError(f"{path}: no code cell tagged 'parameters', so papermill cannot set parameters")
    out: dict[str, Any] = {}
    for node in ast.parse(cells[0].source).body:
        if isinstance(node, ast.Assign):
            targets = node.targets
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            targets = [node.target]
        else:
            continue
        for target in targets:
            if isinstance(target, ast.Name):
                try:
                    out[target.id] = ast.literal_eval(node.value)
                except ValueError:
                    out[target.id] = ast.unparse(node.value)
    return out


def check_names(notebook: str | os.PathLike, names: Sequence[str]) -> None:
    """Raise :class:`SweepError` naming any of ``names`` the notebook's ``parameters`` cell does not define."""
    valid = notebook_parameters(notebook)
    unknown = [n for n in names if n not in valid]
    if unknown:
        listed = ", ".join(f"{k}={v!r}" for k, v in valid.items())
        raise SweepError(
            f"{Path(notebook).name} has no parameter {', '.join(map(repr, unknown))}; its parameters (with "
            f"defaults) are: {listed}"
        )


# --------------------------------------------------------------------------------------------------- names


def _canon(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _slug(value: Any) -> str:
    """A file-name-safe rendering: short plain values as they are, anything else readable part + hash."""
    if value is None or isinstance(value, (bool, int, float)):
        text = str(value)
        if _SAFE.fullmatch(text):
            return text
    if isinstance(value, str) and _SAFE.fullmatch(value):
        return value
    readable = re.sub(r"[^A-Za-z0-9.+-]+", "_", _canon(value)).strip("_.")[:24].rstrip("_.")
    digest = hashlib.sha256(_canon(value).encode()).hexdigest()[:8]
    return f"{readable}-{digest}" if readable else digest


def execution_name(stem: str, combo: Mapping[str, Any]) -> str:
    """``<stem>--<name>=<value>--…`` (no extension) for one combination of swept values."""
    return "--".join([stem, *(f"{k}={_slug(v)}" for k, v in combo.items())])


def _short_hash(payload: Any) -> str:
    return hashlib.sha256(_canon(payload).encode()).hexdigest()[:8]


def default_out_dir(notebook: str | os.PathLike, profile: str, fixed: Mapping[str, Any]) -> Path:
    """``build/sweeps/<stem>-<profile>-<hash of the fixed parameters>``.

    The swept values are not part of the folder name (each execution's file name carries them), so adding
    a value to a sweep reuses the executions that already finished.
    """
    stem = Path(notebook).stem
    return Path("build") / "sweeps" / f"{stem}-{profile}-{_short_hash({'notebook': stem, **fixed})}"


# ----------------------------------------------------------------------------------------------------- run


def default_jobs() -> int:
    """How many executions run at once: one per CUDA GPU if any, else a quarter of the CPU cores (at least 1)."""
    try:
        import torch

        gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    except ImportError:  # pragma: no cover - torch is a dependency
        gpus = 0
    if gpus:
        return gpus
    return max(1, (os.cpu_count() or 1) // 4)


def _gpu_ids() -> list[str]:
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return [v for v in visible.split(",") if v.strip()]
    try:
        import torch

        return [str(i) for i in range(torch.cuda.device_count())] if torch.cuda.is_available() else []
    except ImportError:  # pragma: no cover
        return []


def _atomic_json(path: Path, data: Any) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=1) + "\n")
    os.replace(tmp, path)


def read_manifest(out_dir: str | os.PathLike) -> dict[str, Any] | None:
    """The ``sweep.json`` of the sweep in ``out_dir``, or None."""
    path = Path(out_dir) / MANIFEST
    if not path.exists():
        return None
    return json.loads(path.read_text())


@dataclass
class _Execution:
    name: str
    parameters: dict[str, Any]
    status: str = "pending"  # pending, done, failed
    seconds: float | None = None
    error: str | None = None
    skipped: bool = False

    def record(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "parameters": self.parameters,
            "status": self.status,
            "skipped": self.skipped,
            "seconds": None if self.seconds is None else round(self.seconds, 1),
            "error": self.error,
            "notebook": f"{self.name}.ipynb",
            "failed_notebook": f"{self.name}.failed.ipynb" if self.status == "failed" else None,
            "results_log": f"logs/{self.name}.results.jsonl",
            "output": f"logs/{self.name}.out",
        }


def _fmt_seconds(s: float) -> str:
    m, s = divmod(int(round(s)), 60)
    return f"{m}m {s:02d}s" if m else f"{s}s"


def run(
    notebook: str | os.PathLike,
    params_grid: Sequence[Mapping[str, Any]],
    out_dir: str | os.PathLike | None = None,
    profile: str = "cpu",
    jobs: int | None = None,
    fixed: Mapping[str, Any] | None = None,
    progress: bool = True,
    dry_run: bool = False,
) -> dict[str, Any]:
    """Execute ``notebook`` once per combination in ``params_grid`` (plus ``fixed`` and ``profile``).

    Each execution runs in its own process (papermill, through :func:`rcl.notebooks.execute`) with
    ``RCL_RESULTS_LOG`` set to ``out_dir/logs/<name>.results.jsonl``; up to ``jobs`` run at once (default
    :func:`default_jobs`), each with ``OMP_NUM_THREADS``/``MKL_NUM_THREADS`` = cores // jobs and, with
    several GPUs, a GPU of its own. Executions whose notebook exists already are skipped; a failure does not
    stop the others. Returns the manifest (also written to ``out_dir/sweep.json``).
    """
    notebook = Path(notebook)
    fixed = dict(fixed or {})
    check_profile(profile)
    if "profile" in fixed or any("profile" in c for c in params_grid):
        raise SweepError("set the profile with profile=... (--profile), not as a notebook parameter")
    combos = [dict(c) for c in params_grid] or [{}]
    swept = list(combos[0])
    if any(list(c) != swept for c in combos):
        raise SweepError("every combination of the grid must set the same parameters, in the same order")
    both = sorted(set(swept) & set(fixed))
    if both:
        raise SweepError(f"parameter(s) {both} are both swept and fixed")
    check_names(notebook, [*swept, *fixed])
    out_dir = Path(out_dir) if out_dir is not None else default_out_dir(notebook, profile, fixed)

    executions = [_Execution(execution_name(notebook.stem, c), c) for c in combos]
    names = [e.name for e in executions]
    if len(set(names)) != len(names):
        dup = sorted({n for n in names if names.count(n) > 1})
        raise SweepError(f"two combinations would share the file name {dup[0]}.ipynb; make the values distinct")

    previous = read_manifest(out_dir)
    if previous is not None:
        mine = {"notebook": notebook.name, "profile": profile, "fixed": fixed}
        theirs = {
            "notebook": Path(previous.get("notebook", "")).name,
            "profile": previous.get("profile"),
            "fixed": previous.get("fixed"),
        }
        if _canon(mine) != _canon(theirs):
            raise SweepError(
                f"{out_dir} holds a sweep with other settings ({theirs}); this one is {mine}. Its finished "
                "notebooks would be taken for this sweep's: choose another output folder or remove that one"
            )
    before = {e["name"]: e for e in (previous or {}).get("executions", [])}
    for e in executions:
        if (out_dir / f"{e.name}.ipynb").exists():
            e.status, e.skipped = "done", True
            e.seconds = before.get(e.name, {}).get("seconds")

    jobs = max(1, int(jobs if jobs is not None else default_jobs()))
    todo = [e for e in executions if e.status == "pending"]
    manifest: dict[str, Any] = {
        "notebook": str(notebook.resolve()),
        "profile": profile,
        "fixed": fixed,
        "swept": swept,
        "grid": combos,
        "jobs": jobs,
        "started": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "finished": None,
        "executions": [e.record() for e in executions],
    }
    print(
        f"sweep of {notebook.name} at profile={profile}: {len(executions)} execution(s), "
        f"{len(executions) - len(todo)} already done, {len(todo)} to run, {min(jobs, max(len(todo), 1))} at a time; "
        f"output in {out_dir}",
        flush=True,
    )
    if dry_run:
        for e in executions:
            print(f"  {'done' if e.skipped else 'would run'}: {e.name}.ipynb")
        return manifest

    (out_dir / "logs").mkdir(parents=True, exist_ok=True)
    lock = threading.Lock()

    def write_manifest() -> None:
        with lock:
            manifest["executions"] = [e.record() for e in executions]
            _atomic_json(out_dir / MANIFEST, manifest)

    write_manifest()
    gpus = _gpu_ids()
    slots: list[int] = list(range(jobs))
    procs: dict[str, subprocess.Popen] = {}
    cores = os.cpu_count() or 1

    def execute(e: _Execution) -> _Execution:
        with lock:
            slot = slots.pop()
        env = dict(os.environ)
        env[LOG_ENV] = str((out_dir / "logs" / f"{e.name}.results.jsonl").resolve())
        if jobs > 1:
            threads = str(max(1, cores // jobs))
            env.update(OMP_NUM_THREADS=threads, MKL_NUM_THREADS=threads)
            if len(gpus) > 1:
                env["CUDA_VISIBLE_DEVICES"] = gpus[slot % len(gpus)]
        Path(env[LOG_ENV]).unlink(missing_ok=True)  # a failed earlier attempt's entries
        spec = {
            "notebook": str(notebook.resolve()),
            "out_dir": str(out_dir.resolve()),
            "name": e.name,
            "parameters": {**fixed, **e.parameters, "profile": profile},
        }
        start = time.monotonic()
        try:
            with open(out_dir / "logs" / f"{e.name}.out", "w") as log:
                proc = subprocess.Popen(
                    [sys.executable, "-m", "rcl.sweep", json.dumps(spec)],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=env,
                )
                with lock:
                    procs[e.name] = proc
                code = proc.wait()
        finally:
            with lock:
                procs.pop(e.name, None)
                slots.append(slot)
        e.seconds = time.monotonic() - start
        if code == 0 and (out_dir / f"{e.name}.ipynb").exists():
            e.status = "done"
        else:
            e.status, e.error = "failed", _error_line(out_dir / "logs" / f"{e.name}.out", code)
        return e

    failed: list[_Execution] = []
    bar = None
    if progress and todo:
        from tqdm.auto import tqdm

        # disable=None: a bar on a terminal only; the one line per execution is printed either way
        bar = tqdm(total=len(todo), desc="executions", unit="nb", file=sys.stderr, disable=None)
    pool = ThreadPoolExecutor(max_workers=jobs)
    try:
        futures = [pool.submit(execute, e) for e in todo]
        for future in as_completed(futures):
            e = future.result()
            write_manifest()
            if e.status == "failed":
                failed.append(e)
                line = f"failed {e.name} after {_fmt_seconds(e.seconds or 0)}: {e.error}"
            else:
                line = f"done   {e.name} in {_fmt_seconds(e.seconds or 0)}"
            if bar is not None:
                bar.write(line, file=sys.stdout)
                bar.update()
            else:
                print(line, flush=True)
    except BaseException:  # Ctrl-C or an error here: interrupt the running executions, then wait for them
        with lock:
            running = list(procs.values())
        for proc in running:
            proc.send_signal(signal.SIGINT)  # papermill keeps the partial notebook as *.failed.ipynb
        for proc in running:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    finally:
        pool.shutdown(wait=True)
        if bar is not None:
            bar.close()
    manifest["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S")
    write_manifest()
    if failed:
        print(f"{len(failed)} of {len(executions)} execution(s) failed:", flush=True)
        for e in failed:
            print(
                f"  {e.name}: {e.error}\n    see {out_dir / (e.name + '.failed.ipynb')} and "
                f"{out_dir / 'logs' / (e.name + '.out')}",
                flush=True,
            )
    return manifest


def _error_line(output: Path, code: int) -> str:
    """The first line of the error the worker reported, or how it ended."""
    text = output.read_text(errors="replace") if output.exists() else ""
    for line in reversed(text.splitlines()):
        if line.startswith(_ERROR_MARK):
            return line[len(_ERROR_MARK) :]
    if code < 0:
        return f"killed by signal {-code}"
    return f"exited with status {code} (see {output})"


def _worker(spec_json: str) -> int:
    """One execution, in its own process: the notebook into a private folder, then renamed into place."""
    from rcl import notebooks

    spec = json.loads(spec_json)
    out_dir, name = Path(spec["out_dir"]), spec["name"]
    stem = Path(spec["notebook"]).stem
    work = out_dir / ".work" / name
    shutil.rmtree(work, ignore_errors=True)
    try:
        notebooks.execute(spec["notebook"], work, spec["parameters"], progress=False)
    except BaseException as e:  # reported to the parent, which carries on with the others
        failed = work / f"{stem}.failed.ipynb"
        if failed.exists():
            failed.replace(out_dir / f"{name}.failed.ipynb")
        shutil.rmtree(work, ignore_errors=True)
        try:
            work.parent.rmdir()
        except OSError:
            pass
        kind, text = (e.ename, e.evalue) if hasattr(e, "ename") else (type(e).__name__, str(e))
        message = f"{kind}: {text}" if text.strip() else kind
        first = (message.strip().splitlines() or [type(e).__name__])[0]
        print(f"\n{_ERROR_MARK}{first}", flush=True)
        return 1
    (out_dir / f"{name}.failed.ipynb").unlink(missing_ok=True)
    (work / f"{stem}.ipynb").replace(out_dir / f"{name}.ipynb")
    shutil.rmtree(work, ignore_errors=True)
    try:
        work.parent.rmdir()  # the last execution to finish removes the empty .work folder
    except OSError:
        pass
    return 0


# ------------------------------------------------------------------------------------------------- collect


def _cell(value: Any) -> Any:
    """A parameter value as a table cell: plain values as they are, lists and dicts as sorted JSON text."""
    return _canon(value) if isinstance(value, (list, dict)) else value


def _same(column: pd.Series, value: Any) -> bool:
    try:
        return bool((column == value).all()) or bool((column.astype(str) == str(value)).all())
    except (TypeError, ValueError):
        return False


def collect(out_dir: str | os.PathLike, quiet: bool = False) -> pd.DataFrame:
    """The results every finished execution of the sweep in ``out_dir`` saved, as one long table.

    Each result table an execution logged (through :mod:`rcl.results`) is loaded once and given columns for
    every swept parameter (lists and dicts as JSON text; a dict parameter also as one ``<name>.<key>``
    column per key), ``profile``, ``notebook``, ``execution`` and ``kind``. Where a result table has a
    column of a swept parameter's name with other values, its own column is renamed ``<name>_result``.
    The table is also written to ``out_dir/results.csv``. Unless ``quiet``, prints what was left out.
    """
    out_dir = Path(out_dir)
    manifest = read_manifest(out_dir)
    if manifest is None:
        raise SweepError(f"{out_dir}: no {MANIFEST}; is this a sweep's output folder?")
    swept = list(manifest.get("swept", []))
    dict_keys = {
        n: sorted(
            {k for e in manifest["executions"] if isinstance(e["parameters"].get(n), dict) for k in e["parameters"][n]}
        )
        for n in swept
    }
    notes, frames, stale = [], [], []
    for e in manifest["executions"]:
        if not (out_dir / e["notebook"]).exists():
            notes.append(f"{e['name']}: not finished ({e['status']}), left out")
            continue
        log = out_dir / e["results_log"]
        entries = [json.loads(line) for line in log.read_text().splitlines() if line.strip()] if log.exists() else []
        if not entries:
            notes.append(
                f"{e['notebook']} saved no results (the notebook probably does not save them with "
                f"rcl.results.cached or save)"
            )
            continue
        seen = set()
        for entry in entries:
            if entry["path"] in seen:
                continue
            seen.add(entry["path"])
            path = Path(entry["path"])
            if not path.exists():
                notes.append(f"{e['name']}: logged result {path} no longer exists, left out")
                continue
            frame = pd.read_csv(path)
            try:
                code = json.loads(path.with_suffix(".json").read_text()).get("code")
            except (OSError, json.JSONDecodeError):
                code = None
            if code != code_version():
                stale.append(e["name"])
            extra: dict[str, Any] = {}
            for n in swept:
                value = e["parameters"].get(n)
                extra[n] = _cell(value)
                for k in dict_keys[n]:
                    extra[f"{n}.{k}"] = _cell(value.get(k)) if isinstance(value, dict) else None
            extra.update(
                profile=manifest["profile"],
                notebook=Path(manifest["notebook"]).name,
                execution=e["name"],
                kind=entry.get("kind"),
            )
            for col, value in extra.items():
                if col in frame.columns:
                    if _same(frame[col], value):
                        frame = frame.drop(columns=col)
                    else:
                        frame = frame.rename(columns={col: f"{col}_result"})
            frames.append(pd.concat([pd.DataFrame({c: [v] * len(frame) for c, v in extra.items()}), frame], axis=1))
    table = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=[*swept, "profile", "notebook"])
    tmp = out_dir / f".{RESULTS}.tmp"
    table.to_csv(tmp, index=False)
    os.replace(tmp, out_dir / RESULTS)
    if stale:
        notes.append(
            f"{len(set(stale))} execution(s) used results computed by an older version of the library "
            f"(e.g. {stale[0]}); remove their notebooks from {out_dir} and rerun the sweep to recompute them"
        )
    if not quiet:
        for note in notes:
            print(note)
        print(f"collected {len(table)} row(s) from {len(frames)} result table(s) into {out_dir / RESULTS}")
    return table


def summary(table: pd.DataFrame, swept: Sequence[str]) -> str:
    """PSNR mean ± std per swept parameter value, task and method, as text for a terminal.

    With a swept ``seed``, each seed's mean is taken first and the ± is the standard deviation over seeds
    (``n`` seeds); otherwise it is over the table's rows (``n`` rows). Empty when the table has no ``psnr``
    column or neither ``task`` nor ``method``.
    """
    if table.empty or "psnr" not in table or not ({"method", "task"} & set(table.columns)):
        return ""
    keys = [n for n in swept if n in table and n != "seed"]
    keys += [c for c in ("task", "method") if c in table]
    over = "rows"
    if "seed" in swept and "seed" in table:
        table = table.groupby([*keys, "seed"], dropna=False).psnr.mean().reset_index()
        over = "seeds"
    stats = table.groupby(keys, dropna=False).psnr.agg(["mean", "std", "count"]).reset_index()
    stats[f"psnr (dB), mean ± std over {over}"] = [
        f"{m:.2f} ± {s:.2f}" if pd.notna(s) else f"{m:.2f}" for m, s in zip(stats["mean"], stats["std"])
    ]
    stats = stats.rename(columns={"count": "n"}).drop(columns=["mean", "std"])
    return stats.to_string(index=False)


if __name__ == "__main__":
    sys.exit(_worker(sys.argv[1]))
