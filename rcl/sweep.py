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

The module is two: :mod:`rcl.sweep_plan` says what a sweep is before anything runs (values, grid, file
names, the check of an earlier sweep in the same folder) and this module runs it and collects it;
everything of :mod:`rcl.sweep_plan` is re-exported here, so callers use ``rcl.sweep`` alone.

Layer: outer shell (imports :mod:`rcl.cache`, :mod:`rcl.results`, :mod:`rcl.notebooks` — which each
execution runs in its own process — and :mod:`rcl.sweep_plan`; nothing of the core, engine or evaluation
imports it).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path
from typing import Any

import pandas as pd

from rcl import cache, config, notebooks
from rcl.results import LOG_ENV, code_version
from rcl.sweep_plan import (  # noqa: F401 - re-exported: rcl.sweep is the one name callers use (_cell too)
    MANIFEST,
    RESULTS,
    Execution,
    SweepError,
    _cell,
    check_names,
    default_out_dir,
    execution_name,
    grid,
    notebook_parameters,
    parse_value,
    parse_values,
    plan,
    read_manifest,
)

__all__ = [
    "SweepError",
    "check_names",
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

_ERROR_MARK = "rcl.sweep error: "


# ----------------------------------------------------------------------------------------------------- run


default_jobs = config.default_jobs  # one rule for sweeps and studies


def _fmt_seconds(s: float) -> str:
    m, s = divmod(int(round(s)), 60)
    return f"{m}m {s:02d}s" if m else f"{s}s"


class _Runner:
    """Executes a sweep's executions, each in a worker process (``python -m rcl.sweep``), up to ``jobs`` at
    once, and keeps the manifest on disk current after each one."""

    def __init__(self, notebook: Path, out_dir: Path, profile: str, fixed: Mapping[str, Any], jobs: int,
                 manifest: dict[str, Any], executions: list[Execution]) -> None:
        self.notebook, self.out_dir, self.profile, self.fixed, self.jobs = notebook, out_dir, profile, fixed, jobs
        self.manifest, self.executions = manifest, executions
        self.lock = threading.Lock()
        self.slots: list[int] = list(range(jobs))
        self.procs: dict[str, subprocess.Popen] = {}
        self.gpus = config.gpu_ids()
        self.cores = os.cpu_count() or 1

    def write_manifest(self) -> None:
        with self.lock:
            self.manifest["executions"] = [e.record() for e in self.executions]
            cache.atomic_write_json(self.out_dir / MANIFEST, self.manifest)

    def _env(self, e: Execution, slot: int) -> dict[str, str]:
        """The worker's environment: its results log, and its share of the threads and GPUs."""
        env = dict(os.environ)
        env[LOG_ENV] = str((self.out_dir / "logs" / f"{e.name}.results.jsonl").resolve())
        if self.jobs > 1:
            threads = str(max(1, self.cores // self.jobs))
            env.update(OMP_NUM_THREADS=threads, MKL_NUM_THREADS=threads)
            if len(self.gpus) > 1:
                env["CUDA_VISIBLE_DEVICES"] = self.gpus[slot % len(self.gpus)]
        return env

    def execute(self, e: Execution) -> Execution:
        """Run one execution in a worker process and record how it ended."""
        with self.lock:
            slot = self.slots.pop()
        env = self._env(e, slot)
        Path(env[LOG_ENV]).unlink(missing_ok=True)  # a failed earlier attempt's entries
        spec = {
            "notebook": str(self.notebook.resolve()),
            "out_dir": str(self.out_dir.resolve()),
            "name": e.name,
            "parameters": {**self.fixed, **e.parameters, "profile": self.profile},
        }
        output = self.out_dir / "logs" / f"{e.name}.out"
        start = time.monotonic()
        try:
            with open(output, "w") as log:
                proc = subprocess.Popen(
                    [sys.executable, "-m", "rcl.sweep", json.dumps(spec)], stdout=log, stderr=subprocess.STDOUT, env=env
                )
                with self.lock:
                    self.procs[e.name] = proc
                code = proc.wait()
        finally:
            with self.lock:
                self.procs.pop(e.name, None)
                self.slots.append(slot)
        e.seconds = time.monotonic() - start
        if code == 0 and (self.out_dir / f"{e.name}.ipynb").exists():
            e.status = "done"
        else:
            e.status, e.error = "failed", _error_line(output, code)
        return e

    def interrupt(self) -> None:
        """Interrupt the running workers (papermill keeps each partial notebook as ``*.failed.ipynb``) and
        wait for them, killing any that takes more than 30 s."""
        with self.lock:
            running = list(self.procs.values())
        for proc in running:
            proc.send_signal(signal.SIGINT)
        for proc in running:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()

    def run_all(self, todo: list[Execution], progress: bool) -> list[Execution]:
        """Execute ``todo``, one line per finished execution (and a bar on a terminal); returns the failed."""
        failed: list[Execution] = []
        bar = None
        if progress and todo:
            from tqdm.auto import tqdm

            # disable=None: a bar on a terminal only; the one line per execution is printed either way
            bar = tqdm(total=len(todo), desc="executions", unit="nb", file=sys.stderr, disable=None)
        pool = ThreadPoolExecutor(max_workers=self.jobs)
        try:
            for future in as_completed([pool.submit(self.execute, e) for e in todo]):
                e = future.result()
                self.write_manifest()
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
            self.interrupt()
            pool.shutdown(wait=True, cancel_futures=True)
            raise
        finally:
            pool.shutdown(wait=True)
            if bar is not None:
                bar.close()
        return failed


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
    several GPUs, a GPU of its own. Executions whose executed notebook is current
    (:func:`rcl.notebooks.is_current`: the same notebook, library and parameters, and what it reads unchanged)
    are skipped, and run again where it is not; a failure does not stop the others. Returns the manifest (also
    written to ``out_dir/sweep.json``).
    """
    notebook = Path(notebook)
    fixed = dict(fixed or {})
    out_dir = Path(out_dir) if out_dir is not None else default_out_dir(notebook, profile, fixed)
    combos, executions = plan(notebook, params_grid, out_dir, profile, fixed)
    stale = [e for e in executions if e.skipped and not notebooks.is_current(
        notebook, out_dir, {**fixed, **e.parameters, "profile": profile}, f"{e.name}.ipynb")]
    for e in stale:  # executed by another version of the notebook or the library, or before its inputs changed
        e.status, e.skipped, e.seconds = "pending", False, None
    jobs = max(1, int(jobs if jobs is not None else default_jobs()))
    todo = [e for e in executions if e.status == "pending"]
    manifest: dict[str, Any] = {
        "notebook": str(notebook.resolve()),
        "profile": profile,
        "fixed": fixed,
        "swept": list(combos[0]),
        "grid": combos,
        "jobs": jobs,
        "started": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "finished": None,
        "executions": [e.record() for e in executions],
    }
    print(
        f"sweep of {notebook.name} at profile={profile}: {len(executions)} execution(s), "
        f"{len(executions) - len(todo)} already done, {len(todo)} to run"
        + (f" ({len(stale)} of them again: the notebook, the library or what it reads changed since)" if stale else "")
        + f", {min(jobs, max(len(todo), 1))} at a time; "
        f"output in {out_dir}",
        flush=True,
    )
    if dry_run:
        for e in executions:
            print(f"  {'done' if e.skipped else 'would run'}: {e.name}.ipynb")
        return manifest
    (out_dir / "logs").mkdir(parents=True, exist_ok=True)
    runner = _Runner(notebook, out_dir, profile, fixed, jobs, manifest, executions)
    runner.write_manifest()
    failed = runner.run_all(todo, progress)
    manifest["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S")
    runner.write_manifest()
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


def _same(column: pd.Series, value: Any) -> bool:
    try:
        return bool((column == value).all()) or bool((column.astype(str) == str(value)).all())
    except (TypeError, ValueError):
        return False


def _logged(out_dir: Path, e: Mapping[str, Any], notes: list[str]) -> list[tuple[Path, str | None]]:
    """The result files execution ``e`` logged (each once, in order), noting what is missing in ``notes``."""
    if not (out_dir / e["notebook"]).exists():
        notes.append(f"{e['name']}: not finished ({e['status']}), left out")
        return []
    log = out_dir / e["results_log"]
    entries = [json.loads(line) for line in log.read_text().splitlines() if line.strip()] if log.exists() else []
    if not entries:
        notes.append(
            f"{e['notebook']} saved no results (the notebook probably does not save them with "
            f"rcl.results.cached or save)"
        )
    paths: dict[str, str | None] = {}
    for entry in entries:
        paths.setdefault(entry["path"], entry.get("kind"))
    found = []
    for path, kind in paths.items():
        if Path(path).exists():
            found.append((Path(path), kind))
        else:
            notes.append(f"{e['name']}: logged result {path} no longer exists, left out")
    return found


def _columns(manifest: Mapping[str, Any], e: Mapping[str, Any], dict_keys: Mapping[str, list[str]],
             kind: str | None) -> dict[str, Any]:
    """The columns that label execution ``e``'s rows: every swept parameter (and a dict's keys), profile,
    notebook, execution, kind."""
    extra: dict[str, Any] = {}
    for n, keys in dict_keys.items():
        value = e["parameters"].get(n)
        extra[n] = _cell(value)
        for k in keys:
            extra[f"{n}.{k}"] = _cell(value.get(k)) if isinstance(value, dict) else None
    extra.update(profile=manifest["profile"], notebook=Path(manifest["notebook"]).name, execution=e["name"], kind=kind)
    return extra


def _labelled(frame: pd.DataFrame, extra: Mapping[str, Any]) -> pd.DataFrame:
    """``frame`` with the ``extra`` columns in front; a column of the same name is dropped where it holds the
    same value, else renamed ``<name>_result``."""
    for col, value in extra.items():
        if col in frame.columns:
            if _same(frame[col], value):
                frame = frame.drop(columns=col)
            else:
                frame = frame.rename(columns={col: f"{col}_result"})
    return pd.concat([pd.DataFrame({c: [v] * len(frame) for c, v in extra.items()}), frame], axis=1)


def _is_stale(path: Path) -> bool:
    """Whether the result at ``path`` was computed by another version of the library than this one."""
    try:
        code = cache.read_json(path.with_suffix(".json")).get("code")
    except (OSError, json.JSONDecodeError):
        code = None
    return code != code_version()


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
    executions = manifest["executions"]
    dict_keys = {
        n: sorted({k for e in executions if isinstance(e["parameters"].get(n), dict) for k in e["parameters"][n]})
        for n in swept
    }
    notes, frames, stale = [], [], []
    for e in executions:
        for path, kind in _logged(out_dir, e, notes):
            if _is_stale(path):
                stale.append(e["name"])
            frames.append(_labelled(pd.read_csv(path), _columns(manifest, e, dict_keys, kind)))
    table = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=[*swept, "profile", "notebook"])
    cache.atomic_write_text(out_dir / RESULTS, table.to_csv(index=False))
    if stale:
        notes.append(
            f"{len(set(stale))} execution(s) used results computed by an older version of the library "
            f"(e.g. {stale[0]}); run the same sweep again to recompute them (it executes again what is not current)"
        )
    if not quiet:
        for note in notes:
            print(note)
        print(f"collected {len(table)} row(s) from {len(frames)} result table(s) into {out_dir / RESULTS}")
    return table


def summary(table: pd.DataFrame, swept: Sequence[str]) -> str:
    """PSNR mean ± std per swept parameter value, task and method (a label study's: arm and label count),
    as text for a terminal.

    Rows with a test ``condition`` are the paper's cases only (:func:`rcl.evaluate.paper_cases`: the mixed
    noise range, and the noiseless tasks' cases), as in the book's tables: averaged with the fixed noise
    levels, σ = 0 would lift the noisy input above every method. With a swept ``seed``, each seed's mean is
    taken first and the ± is the standard deviation over seeds (``n`` seeds); otherwise it is over the
    table's rows (``n`` rows). Empty when the table has no ``psnr`` column or neither ``task`` nor ``method``.
    """
    if table.empty or "psnr" not in table or not ({"method", "task"} & set(table.columns)):
        return ""
    if "condition" in table:
        from rcl.evaluate import paper_cases  # here only: the sweep's runner does not need the evaluation

        has = table.condition.notna()  # rows of results without test conditions are kept as they are
        table = pd.concat([table[~has], paper_cases(table[has].assign(condition=table.condition[has].astype(str)))])
    keys = [n for n in swept if n in table and n != "seed"]
    keys += [c for c in ("task", "method", "arm", "labels") if c in table]  # a label study's arms and counts apart
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
