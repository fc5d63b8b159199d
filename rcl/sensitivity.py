"""What makes RCL work: one factor at a time, the others at their defaults, and what the study shows.

Layer: studies (imports the engine, the evaluation and the configuration; notebook 06 and the command line
call it).

The study varies the temperature τ (absolute, and relative to the batch's median distance), the weight α of the
contrastive term, the consistency encoder ``g_e`` (none: the contrastive loss alone), the residual distance, the
crop size, the noise range of the data and the length of pre-training (:data:`STEPS_MULTIPLES` of the profile's
steps: does the method gain from training longer?), and measures RCL's representation with the proxy protocol of
notebook 04 on denoising and super-resolution, over several seeds. Noise2Noise and the supervised Oracle, at the default
setting, are its references; Noise2Noise is also run at each noise range (which changes the test data too).

:func:`plan` lists the settings; :func:`run` evaluates each distinct setting and seed with
:func:`rcl.evaluate.study`, called as notebook 04 calls it (:func:`study_arguments`; several settings at
once in worker processes, :mod:`rcl.workers`), and saves the rows, labelled by factor and setting, as the
``sensitivity`` result (:mod:`rcl.results`), with the test inputs' own rows as the reference ``Input``.
Runs and evaluations are cached, so an interrupted study computes only what is missing. :func:`load` finds the
result again (or its published copy under ``book/studies/``, ``--publish``); :func:`analyse` (with
:func:`per_noise_level`), :func:`factor_points`, :func:`by_task`, :func:`findings` and :func:`rank_named` are what
notebook 06 shows (the figure: :func:`rcl.plots.sensitivity_factors`). The
profile decides the scale (``smoke`` one seed and one alternative per factor; ``cpu`` and ``gpu`` every
setting, the seeds of ``rcl.profiles.TABLE["sensitivity"]``)::

    python -m rcl sensitivity --profile cpu        # or: make sensitivity

Why one module: the plan, its run and its reading share the factors, the reference labels, the input's row and
the per-seed layout of one saved table, and :data:`PUBLISHED_BY` ties the published copy to what the reading
groups by; split, these would become an API that only this study uses.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd
from tqdm.auto import tqdm

from rcl import config, evaluate, paper, profiles, results, stability, stats, train, workers
from rcl import runs as _runs
from rcl.encoders import imagenet_weights_path
from rcl.methods import Named
from rcl.summary import bounds, count_of, signed

__all__ = ["COLUMNS", "DATASET", "FACTORS", "INPUT", "PUBLISHED_BY", "PUBLISHED_PER", "REFERENCES", "STEPS_MULTIPLES",
           "TASKS", "StudyIncomplete", "analyse", "by_task", "default_jobs", "describe", "factor_points", "findings",
           "load", "per_noise_level", "plan", "published_extra", "rank_named", "run", "seeds_of", "settings",
           "spikes_line", "study_arguments", "training_logs"]

class StudyIncomplete(RuntimeError):
    """Some settings of the study failed (a diverged loss, a full disk): the others are cached, and running the
    study again retries those alone. The command line says so in one line."""


FACTORS = ("tau", "alpha", "g_e", "distance", "crop", "noise", "steps")  # in the order the notebook shows them
TASKS = ("denoise", "sr")  # every setting is evaluated on these
#: The study pre-trains on the built-in photographs at every profile (notebook 04's default dataset).
DATASET = "builtin"
#: The result's columns.
COLUMNS = ["factor", "setting", "default", "method", "task", "seed", "trial", "image", "condition", "psnr", "mse",
           "ssim"]  # fmt: skip
#: Which evaluation rows a reference setting keeps: its method's own label (study() labels the Oracle).
_REFERENCE_LABELS = {"n2n": ["n2n"], "supervised": ["oracle"], "init": ["init"]}
#: The networks the study sets beside RCL's settings: the two that denoise, and the untrained one (random init).
REFERENCES = ("Oracle", "N2N", "Random init")
#: What a published copy keeps (:func:`rcl.results.publish`): the mean per setting, task, seed and test condition;
#: and the settings that name it (what :func:`load` matches on): publishing replaces the copy with the same.
PUBLISHED_BY = ("factor", "setting", "default", "method", "task", "seed", "condition")
PUBLISHED_PER = ("profile", "dataset")
#: The test inputs scored as they are (noisy input, bicubic), from N2N's evaluation at each noise range: the bar.
INPUT = "Input"
#: The steps factor's pre-training lengths, as multiples of the profile's steps.
STEPS_MULTIPLES = (0.25, 0.5, 1, 2, 4, 8)


def _round8(v: float) -> int:
    return max(16, int(round(v / 8)) * 8)


def plan(profile: str = "cpu") -> pd.DataFrame:
    """The settings of the study: one row per (factor, setting), with the method and the pre-training overrides it
    runs, whether it is the profile's default (its own values: run once, under every factor), and the reference
    runs (``factor="reference"``)."""
    profiles.check_study(config.check_profile(profile))
    cfg = train.make_config("rcl-emd", profile)
    p = {f: getattr(cfg, f) for f in ("tau", "alpha", "crop", "sigma_max", "g_e", "g_e_arch", "tile", "steps")}
    encoders = ["random", "self-supervised", "none"]
    if p["g_e"] == "imagenet" or imagenet_weights_path(p["g_e_arch"]).exists():
        encoders.insert(0, "imagenet")
    values: dict[str, list[tuple[str, str, dict[str, Any]]]] = {
        "tau": [(f"τ = {t:g}", "rcl-emd", {"tau": t}) for t in (0.001, 0.01, 0.1, 1.0)]
        + [(f"τ = {t:g} × median d", "rcl-emd", {"tau": t, "tau_scale": "median"}) for t in (0.1, 1.0)],
        "alpha": [(f"α = {a:g}", "rcl-emd", {"alpha": a}) for a in (1e-3, 1e-2, 1e-1, 1.0, 10.0)],
        "g_e": [(f"g_e = {g}", "rcl-emd", {"g_e": g}) for g in encoders],
        "distance": [(f"d = {d.upper()}", f"rcl-{d}", {}) for d in ("emd", "bd", "mmd")],
        "crop": [(f"crop {c}", "rcl-emd", {"crop": c})
                 for c in sorted({_round8(p["crop"] * 2 / 3), p["crop"], min(p["tile"], _round8(p["crop"] * 4 / 3))})],
        "noise": [(f"σ ∈ [0, {s:g}]", "rcl-emd", {"sigma_max": s}) for s in (10.0, 20.0, 40.0)],
        # a quarter to eight times the profile's pre-training: does RCL-EMD learn more with longer training?
        "steps": [(count_of(n, "step"), "rcl-emd", {"steps": n})
                  for n in sorted({max(1, round(p["steps"] * m)) for m in STEPS_MULTIPLES})],
    }  # fmt: skip
    rows = []
    for factor, settings_ in values.items():
        kept = []
        for label, method, over in settings_:
            default = method == "rcl-emd" and all(p.get(k) == v for k, v in over.items() if k != "tau_scale")
            default = default and "tau_scale" not in over
            kept.append((label, method, {} if default else over, default))
        if profile == "smoke":  # the default and one alternative
            kept = [k for k in kept if k[3]] + [k for k in kept if not k[3]][:1]
        for label, method, over, default in kept:
            rows.append({"factor": factor, "setting": label, "method": method, "overrides": over, "default": default})
    refs = [("N2N", ["n2n"], {}), ("Oracle", ["supervised"], {}), ("Random init", ["init"], {})]
    refs += [(f"N2N, σ ∈ [0, {r['overrides']['sigma_max']:g}]", ["n2n"], {"sigma_max": r["overrides"]["sigma_max"]})
             for r in rows if r["factor"] == "noise" and not r["default"]]  # fmt: skip
    for label, methods, over in refs:
        rows.append({"factor": "reference", "setting": label, "method": ",".join(methods), "overrides": over,
                     "default": False})  # fmt: skip
    return pd.DataFrame(rows)


def _evaluations(pl: pd.DataFrame) -> pd.DataFrame:
    """One row per distinct (methods, overrides) of the plan, in plan order, with the key the plan rows share
    (``pl`` gains the ``key`` column) and a label for progress lines."""
    pl["key"] = [f"{m}|{sorted(o.items())}" for m, o in zip(pl.method, pl.overrides)]
    distinct = pl.drop_duplicates("key")[["key", "method", "overrides"]].reset_index(drop=True)
    shared = pl.groupby("key", sort=False).setting.agg(list)
    distinct["label"] = [s[0] if len(s) == 1 else "default" for s in shared.reindex(distinct.key)]
    return distinct


def seeds_of(profile: str, seeds: Sequence[int] | None = None) -> list[int]:
    """The study's pre-training seeds: ``seeds``, else the profile's (``rcl.profiles.TABLE["sensitivity"]``)."""
    profiles.check_study(profile)
    return list(profiles.values("sensitivity", profile)["seeds"] if seeds is None else seeds)


def study_arguments(profile: str, methods: Sequence[str], overrides: dict[str, Any], seed: int,
                    runs_dir: str | os.PathLike = "runs", test_seed: int | None = None) -> dict[str, Any]:
    """The arguments of :func:`rcl.evaluate.study` for one setting and seed: those notebook 04 passes with
    ``methods``, ``overrides``, ``seed``, ``seeds=[seed]`` and the study's tasks (the profile's proxy protocol,
    its σ grid included: the paper's mixed range for the tables, each σ for :func:`per_noise_level`), and the test
    set's seed ``test_seed`` (default ``seed``): the study gives every pre-training seed its first seed's test
    cases, as notebook 04 does, so the spread over seeds is the pre-training's, not the test noise's."""
    proxy = {k: profiles.values("proxy", profile)[k] for k in profiles.PROXY_KEYS}
    proxy["seed"] = seed if test_seed is None else test_seed
    pretrain = {"dataset": DATASET, "data_dir": None, "seed": seed, "runs_dir": str(Path(runs_dir).resolve()),
                **overrides}  # fmt: skip
    return {"methods": list(methods), "tasks": list(TASKS), "profile": profile, "proxy": proxy,
            "pretrain": pretrain, "seeds": [seed], "progress": False}  # fmt: skip


def settings(profile: str, dataset: str = DATASET, seeds: Sequence[int] | None = None) -> dict[str, Any]:
    """The settings the saved ``sensitivity`` result is keyed by."""
    return {"profile": profile, "dataset": dataset, "seeds": seeds_of(profile, seeds), "tasks": list(TASKS),
            "plan": plan(profile).to_dict("records")}  # fmt: skip


default_jobs = config.default_jobs  # one rule for sweeps and studies


def _evaluate(arguments: dict[str, Any]) -> pd.DataFrame:
    return evaluate.study(**arguments)


def _label(pl: pd.DataFrame, frames: dict[tuple[str, int], pd.DataFrame], seeds: Sequence[int]) -> pd.DataFrame:
    """The rows of every plan setting, over the seeds, labelled by factor, setting and default: an RCL
    setting keeps its method's rows, a reference its method's (N2N, or the Oracle); N2N's evaluations also give
    the task inputs' rows, as the reference :data:`INPUT` at their noise range."""
    labelled = []
    for r in pl.itertuples():
        for seed in seeds:
            frame = frames[(r.key, seed)]
            keep = [r.method] if r.factor != "reference" else _REFERENCE_LABELS[r.method]
            labelled.append(frame[frame.method.isin(keep)].assign(factor=r.factor, setting=r.setting,
                                                                  default=r.default))  # fmt: skip
            if r.factor == "reference" and r.method == "n2n":
                inputs = frame[frame.run == "reference"]  # rcl.evaluate.study's rows of the inputs themselves
                labelled.append(inputs.assign(factor="reference", setting=INPUT + r.setting.removeprefix("N2N"),
                                              default=False))  # fmt: skip
    table = pd.concat(labelled, ignore_index=True)
    return table[[c for c in COLUMNS if c in table]]


def _compute(todo: list[tuple[str, int, str, dict[str, Any]]], jobs: int, progress: bool
             ) -> tuple[dict[tuple[str, int], pd.DataFrame], list[str]]:
    """Evaluate every (key, seed) of ``todo`` (with its label and study arguments), ``jobs`` at once: the
    frames by (key, seed), and a line per failed setting."""
    frames, failed = {}, []
    bar = tqdm(total=len(todo), desc="sensitivity settings", disable=config.progress_disabled(progress))

    def done(i: int, tag: tuple[str, int, str], frame: pd.DataFrame | None, error: BaseException | None):
        key, seed, label = tag
        if error is None:
            frames[(key, seed)] = frame
        else:
            failed.append(f"{label}, seed {seed}: {type(error).__name__}: {error}")
        bar.set_postfix_str(f"{label}, seed {seed}")
        bar.update()
        config.status(f"sensitivity {i}/{len(todo)}: {label}, seed {seed} {'done' if error is None else 'failed'}")

    try:
        workers.run(_evaluate, [((key, seed, label), arguments) for key, seed, label, arguments in todo], jobs, done)
    finally:
        bar.close()
    return frames, failed


def run(profile: str = "cpu", seeds: Sequence[int] | None = None, runs_dir: str | os.PathLike = "runs",
        results_dir: str | os.PathLike = "results", jobs: int | None = None, progress: bool = True) -> pd.DataFrame:
    """Run (or resume) the study and save its rows as the ``sensitivity`` result.

    Each distinct (methods, overrides) of :func:`plan` is evaluated once per seed by
    :func:`rcl.evaluate.study` with :func:`study_arguments`; ``jobs`` of them at once (default
    :func:`default_jobs`), each in a worker process with ``cores // jobs`` threads (one job: in this
    process). Pre-training runs and proxy evaluations already in ``runs_dir`` are reused. Raises after
    the others have finished if any setting failed.
    """
    config.check_profile(profile)
    seeds = seeds_of(profile, seeds)
    if not seeds:
        raise ValueError("parameter seeds is empty; give at least one seed")
    jobs = max(1, int(jobs if jobs is not None else default_jobs()))
    pl = plan(profile)
    distinct = _evaluations(pl)
    todo = [(r.key, seed, r.label, study_arguments(profile, r.method.split(","), r.overrides, seed, runs_dir, seeds[0]))
            for seed in seeds for r in distinct.itertuples()]  # fmt: skip
    frames, failed = _compute(todo, min(jobs, len(todo)), progress)
    if failed:
        raise StudyIncomplete(f"{len(failed)} setting(s) of the sensitivity study failed (the others are cached; "
                           "run it again to retry): " + "; ".join(failed))  # fmt: skip
    table = _label(pl, frames, seeds)
    results.save(table, "sensitivity", settings(profile, seeds=seeds), results_dir)
    return table


def describe(saved: results.Saved) -> str:
    """Where the study shown came from (:func:`rcl.results.describe`), with the command that computes it again."""
    return results.describe(saved, f"python -m rcl sensitivity --profile {saved.settings.get('profile')}")


def load(profile: str, results_dir: str | os.PathLike = "results", dataset: str = DATASET,
         studies_dir: str | os.PathLike | None = None):
    """The ``sensitivity`` result to show, from ``results_dir`` or its copy in ``studies_dir`` (results.find)."""
    return results.find("sensitivity", [results_dir, studies_dir], **dict(zip(PUBLISHED_PER, (profile, dataset))))


# --- what the study shows (notebook 06) -------------------------------------------------------------------


def _per_seed(table: pd.DataFrame, task: str, condition: str | None = None) -> pd.DataFrame:
    """Per setting and seed, the mean PSNR over trials and test images: in the paper's test setting (the mixed
    noise range, SR's clean cases: :func:`rcl.evaluate.paper_cases`), or at one ``condition`` (``"σ=20"``)."""
    t = table[table.task == task]
    t = evaluate.paper_cases(t) if condition is None else t[t.condition == condition]
    return t.groupby(["factor", "setting", "default", "seed"]).psnr.mean().reset_index()


def _equal_budget(settings_: pd.DataFrame) -> pd.Series:
    """Which rows train for the profile's steps: not the steps factor's others, which change the training budget
    (and can diverge): they take no part in the seed noise, the best setting or the ranking."""
    return (settings_.factor != "steps") | settings_.default


def _own_test_set(settings_: pd.DataFrame) -> pd.Series:
    """Which RCL settings were scored on the default test set: not the noise factor's others, which change the test
    cases' noise range too (a narrower range has cleaner inputs and scores higher whatever it learnt)."""
    return (settings_.factor != "reference") & ((settings_.factor != "noise") | settings_.default)


def _against_at_same_range(per_seed: pd.DataFrame, reference: str) -> pd.DataFrame:
    """The noise factor's per-seed PSNR minus the ``reference``'s (:data:`INPUT`, or N2N trained there) at the same
    noise range."""
    refs = per_seed[per_seed.factor == "reference"].pivot_table(index="seed", columns="setting", values="psnr")
    s = per_seed[per_seed.factor == "noise"].copy()
    ref = [reference if default else f"{reference}, {name}" for name, default in zip(s.setting, s.default)]
    s["psnr"] = [v - (refs.at[seed, r] if r in refs and seed in refs.index else math.nan)
                 for v, seed, r in zip(s.psnr, s.seed, ref)]  # fmt: skip
    return s


def analyse(table: pd.DataFrame, task: str = "denoise") -> dict[str, pd.DataFrame]:
    """Per setting the mean PSNR over seeds (each seed: mean over trials and test images) with its std; per
    factor the spread of its settings against the seed noise; the best setting against N2N, paired by seed.

    The noise factor changes the test cases' noise range too, so its settings are compared by their PSNR
    *minus the input's at the same range* (column ``measure``; N2N's at that range for a study saved without
    the input's rows — a reference that can itself fail to beat its input), and they take no part in the best
    setting overall.
    """
    per_seed = _per_seed(table, task)
    settings_ = per_seed.groupby(["factor", "setting", "default"]).psnr.agg(["mean", "std", "count"]).reset_index()
    rcl = settings_[settings_.factor != "reference"]
    comparable = settings_[_own_test_set(settings_)]
    default_mean = rcl[rcl.default].groupby("factor")["mean"].first()
    budget = per_seed[(per_seed.factor != "reference") & _equal_budget(per_seed)]  # the seed noise at equal budget
    noise = budget.groupby(["factor", "setting"]).psnr.std().mean()
    rows = []
    for factor in [f for f in FACTORS if f in set(rcl.factor)]:
        s, measure = rcl[rcl.factor == factor], "PSNR"
        if factor == "noise":
            ref = INPUT if INPUT in set(per_seed.setting) else "N2N"
            rel = _against_at_same_range(per_seed, ref)
            s = rel.groupby(["setting", "default"]).psnr.mean().rename("mean").reset_index().dropna(subset=["mean"])
            measure = f"PSNR − {'input' if ref == INPUT else ref} at the same noise range"
            if not len(s):
                continue
        best, spread = s.loc[s["mean"].idxmax()], s["mean"].max() - s["mean"].min()
        default = s[s.default]["mean"].iloc[0] if s.default.any() else default_mean.get(factor, math.nan)
        rows.append({"factor": factor, "measure": measure, "settings": len(s), "range (dB)": spread,
                     "best setting": best.setting, "best − default (dB)": best["mean"] - default,
                     "matters": spread > 2 * noise})  # fmt: skip
    factors = pd.DataFrame(rows)
    # the best RCL setting overall (on the default test set) against N2N, seed by seed (same data and test set)
    candidates = comparable[_equal_budget(comparable)]  # a longer training is not a setting of the same budget
    best = candidates.loc[candidates["mean"].idxmax()]
    wide = per_seed.pivot_table(index="seed", columns="setting", values="psnr")
    out = {"settings": settings_, "factors": factors, "seed_std": pd.Series({"mean seed std (dB)": noise})}
    if "N2N" in wide:
        d = (wide[best.setting] - wide["N2N"]).dropna()
        lo, hi = stats.t_interval(d.to_numpy())
        out["best_vs_n2n"] = pd.Series({"best setting": best.setting, "best − N2N (dB)": d.mean(),
                                        "std over seeds": d.std(), "seeds": len(d), "95% CI low": lo,
                                        "95% CI high": hi})  # fmt: skip
    out["distances"] = _distance_differences(per_seed)
    out["steps"], out["steps_change"], out["steps_points"] = _training_length(table, task)
    out["vs_input"] = _against_input(per_seed, comparable)
    out["per_sigma"] = per_noise_level(table, task)
    return out


def _against_input(per_seed: pd.DataFrame, comparable: pd.DataFrame) -> pd.DataFrame:
    """PSNR minus the input's (:data:`INPUT`) paired by seed, with a 95% t interval over seeds: the Oracle (the
    control), N2N, the RCL settings scored on the default test set (those at the profile's steps best first, then
    the other lengths of pre-training), then the other noise ranges', each against the input at its own range.
    Empty without input rows."""
    wide = per_seed.pivot_table(index="seed", columns="setting", values="psnr")
    columns = ["setting", "− input (dB)", "95% CI low", "95% CI high", "seeds"]
    if INPUT not in wide:
        return pd.DataFrame(columns=columns)
    rcl = pd.concat([comparable[~comparable.default], comparable[comparable.default].head(1)])  # the default once
    ranges = per_seed[(per_seed.factor == "noise") & ~per_seed.default].setting.unique()
    same = rcl[_equal_budget(rcl)].sort_values("mean", ascending=False).setting  # best first, at the profile's steps
    longer = sorted(rcl[~_equal_budget(rcl)].setting, key=_steps_of)  # then the other lengths, shortest first
    pairs = [(k, INPUT) for k in [*REFERENCES, *same, *longer]]
    rows = []
    for setting, base in pairs + [(k, f"{INPUT}, {k}") for k in ranges]:
        if setting in wide and base in wide:
            d = (wide[setting] - wide[base]).dropna().to_numpy()
            lo, hi = stats.t_interval(d)
            name = "default" if setting in set(rcl.setting[rcl.default]) else setting
            rows.append(dict(zip(columns, [name, float(d.mean()), lo, hi, len(d)])))
    return pd.DataFrame(rows, columns=columns)


def per_noise_level(table: pd.DataFrame, task: str = "denoise") -> pd.DataFrame:
    """:func:`analyse`'s ``vs_input`` at each noise level of the grid (column ``σ``, ``"σ=20"``): every setting's
    PSNR minus the input's there, paired by seed; empty for a study without a grid. The mixed range's mean runs
    from nearly clean cases, where changing the input least scores highest, to σ = 20: here a setting shows
    whether it denoises where there is noise to remove."""
    grid = _grid(table)
    s = _per_seed(table, task).groupby(["factor", "setting", "default"]).psnr.agg(["mean"]).reset_index()
    parts = [_against_input(_per_seed(table, task, c), s[_own_test_set(s)]).assign(σ=c) for c in grid]
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=["setting", "σ"])


def _noise_level_line(per: pd.DataFrame | None) -> list[str]:
    """How many RCL settings beat the input at each σ > 0 of :func:`per_noise_level`, at most by how much (a line)."""
    if per is None or not len(per) or per["95% CI low"].isna().all():
        return []
    parts = []
    for c, g in per[per.σ != "σ=0"].groupby("σ", sort=False):
        rcl, ref = g[~g.setting.isin(REFERENCES)], g.set_index("setting")["− input (dB)"]
        top = rcl.loc[rcl["− input (dB)"].idxmax()]
        parts.append(f"{c}: {int((rcl['95% CI low'] > 0).sum())} of {len(rcl)} (at most "
                     f"{signed(top['− input (dB)'])} dB, "
                     f"{top.setting}; random init {signed(ref.get('Random init', math.nan))}, the Oracle "
                     f"{signed(ref.get('Oracle', math.nan))})")
    return ["- **Per noise level** (RCL settings, the other lengths of pre-training included, above the input, each "
            "by its own 95% interval over seeds, not "
            "corrected for the many settings and levels compared: a setting no better than the input passes one "
            "time in forty; an untrained network's features, random init, are the bar for having learnt "
            "anything): " + "; ".join(parts) + "."]


def _distance_differences(per_seed: pd.DataFrame) -> pd.DataFrame:
    """The distance factor's settings against EMD, paired by pre-training seed: the mean difference, its
    95% Student's t interval over seeds and their number (Table 1's EMD − BD and EMD − MMD, with the seed's
    variation; notebook 04 gives the same comparisons at the defaults with an interval over seeds × test
    images, :func:`rcl.stats.paired_difference`)."""
    wide = per_seed[per_seed.factor == "distance"].pivot_table(index="seed", columns="setting", values="psnr")
    rows = []
    for other in [c for c in wide.columns if c != "d = EMD"] if "d = EMD" in wide else []:
        d = (wide["d = EMD"] - wide[other]).dropna().to_numpy()
        lo, hi = stats.t_interval(d)
        rows.append({"comparison": f"EMD − {other.removeprefix('d = ')}", "mean (dB)": d.mean() if len(d) else math.nan,
                     "95% CI low": lo, "95% CI high": hi, "seeds": len(d)})  # fmt: skip
    return pd.DataFrame(rows, columns=["comparison", "mean (dB)", "95% CI low", "95% CI high", "seeds"])


def _steps_of(setting: str) -> int:
    """The pre-training steps of a steps-factor setting (``"400 steps"``: 400)."""
    return int(setting.split()[0])


def _grid(table: pd.DataFrame) -> list[str]:
    """The study's σ grid (``["σ=0", …, "σ=20"]``), lowest first; empty for a study without one (an old study's
    rows may have no condition)."""
    return sorted({c for c in table.get("condition", pd.Series(dtype=str)).unique() if c.startswith("σ=")},
                  key=lambda c: float(c[2:]))


def _training_length(table: pd.DataFrame, task: str) -> tuple[pd.DataFrame, pd.Series, pd.DataFrame]:
    """Does RCL-EMD's network learn to denoise better the longer it is pre-trained? The steps factor's settings (a
    quarter to eight times the profile's steps, :data:`STEPS_MULTIPLES`), shortest first, at the grid's highest σ
    (the mixed range rewards a network that stays close to its input, notebook 04 §6b): each setting's PSNR minus
    the input's (has it learnt to denoise at all?) and minus random init's (more than an untrained network's
    features give?), paired by pre-training seed, with 95% Student's t intervals over seeds; the change from the
    shortest to the longest, paired the same way; and the per-seed points (``setting``, ``steps``, ``seed``,
    ``− input (dB)``; random init's with no steps) that :func:`rcl.plots.training_length` draws. Empty without the
    factor, the grid, or the references' rows."""
    columns = ["setting", "steps", "σ", "− input (dB)", "− input low", "− input high", "− random init (dB)",
               "− random init low", "− random init high", "seeds"]  # fmt: skip
    point_columns = ["setting", "steps", "seed", "− input (dB)"]
    empty = pd.DataFrame(columns=columns), pd.Series(dtype=object), pd.DataFrame(columns=point_columns)
    grid = _grid(table)
    if not grid or "steps" not in set(table.factor):
        return empty
    top = grid[-1]  # the highest σ, where there is most noise to remove
    per_seed = _per_seed(table, task, top)
    wide = per_seed.pivot_table(index="seed", columns="setting", values="psnr")
    if not {INPUT, "Random init"} <= set(wide):
        return empty
    names = sorted(per_seed[per_seed.factor == "steps"].setting.unique(), key=_steps_of)

    def paired(a: pd.Series) -> list[float]:
        d = a.dropna().to_numpy()
        return [float(d.mean()) if len(d) else math.nan, *stats.t_interval(d)]

    rows = [dict(zip(columns, [name, _steps_of(name), top, *paired(wide[name] - wide[INPUT]),
                               *paired(wide[name] - wide["Random init"]), int(wide[name].notna().sum())]))
            for name in names]  # fmt: skip
    change = pd.Series(dtype=object)
    if len(names) > 1:
        per_seed_change = (wide[names[-1]] - wide[names[0]]).dropna()
        change = pd.Series(dict(zip(["from", "to", "σ", "change (dB)", "95% CI low", "95% CI high", "median (dB)",
                                     "seeds down", "seeds up", "seeds"],
                                    [names[0], names[-1], top, *paired(per_seed_change), per_seed_change.median(),
                                     int((per_seed_change < 0).sum()), int((per_seed_change > 0).sum()),
                                     len(per_seed_change)])))  # fmt: skip
    points = pd.DataFrame([[name, _steps_of(name) if name in names else math.nan, seed, v]
                           for name in [*names, "Random init"]
                           for seed, v in (wide[name] - wide[INPUT]).dropna().items()], columns=point_columns)
    return pd.DataFrame(rows, columns=columns), change, points


def _training_length_line(steps: pd.DataFrame | None, change: pd.Series | None) -> list[str]:
    """:func:`_training_length` as a Markdown bullet line: each length against the input and random init at the
    grid's highest σ, the change from the shortest to the longest, and which way it goes. The change is
    *resolved* where its 95% interval over seeds excludes zero. Where it is not, the line also says whether every
    seed moved the same way, with the median change and how often that happens by chance (one run that diverges
    widens the interval without changing the direction) — a description, not a verdict: this clause was added
    after the interval alone had been read on the book's study. Nothing is judged on fewer than two seeds."""
    if steps is None or change is None or not len(steps) or not len(change):
        return []
    one = not change["seeds"] >= 2

    def cell(r: dict, k: str) -> str:
        return signed(r[f"− {k} (dB)"]) + ("" if one else " " + bounds(r[f"− {k} low"], r[f"− {k} high"]))

    each = "; ".join(f"{r['setting']} {cell(r, 'input')} / {cell(r, 'random init')}" for r in steps.to_dict("records"))
    lo, hi, n = change["95% CI low"], change["95% CI high"], change["seeds"]
    moved = f"changes by {signed(change['change (dB)'])} dB" + ("" if one else f" {bounds(lo, hi)}")
    if one:
        verdict = "one seed: no interval, so no reading"
    else:
        side = stats.direction(lo, hi)
        if side:
            way = "**longer pre-training lowers it**" if side < 0 else "longer pre-training raises it"
        elif n in (change["seeds down"], change["seeds up"]):
            ends = "lower" if change["seeds down"] == n else "higher"
            way = (f"no change is resolved, though every seed ends {ends} (median {signed(change['median (dB)'])} "
                   f"dB; with {n} seeds, all moving one way happens by chance one time in {2 ** (n - 1)})")
        else:
            way = (f"no change is resolved ({change['seeds down']} of {n} seeds end lower, {change['seeds up']} "
                   "higher)")
        sides = [stats.direction(a, b) for a, b in zip(steps["− random init low"], steps["− random init high"])]
        verdict = (f"{way}; by their intervals {sides.count(-1)} of the {len(steps)} lengths lie below random init "
                   f"and {sides.count(1)} above")
    sigma = change["σ"].replace("σ=", "σ = ")
    return [f"- **Training length** (RCL-EMD at {sigma}, where there is most noise to remove; each length minus the "
            f"input / minus random init, paired by seed, 95% interval): {each}. From {change['from']} to "
            f"{change['to']} its PSNR there {moved}: {verdict}. At the paper's scale (the `gpu` profile's 20,000 "
            "steps of a larger network and batch) this is not measured here."]


def training_logs(profile: str, seeds: Sequence[int], runs_dir: str | os.PathLike = "runs",
                  recorded: Sequence[dict[str, Any]] | None = None, prefer_recorded: bool = False) -> pd.DataFrame:
    """The loss log of each run of the steps factor (:func:`rcl.stability.summary`), by setting and seed, found in
    ``runs_dir`` where :func:`run` put it (column ``here``), else in ``recorded`` (column ``recorded``: the logs
    a published copy carries, :func:`published_extra`, read by this build's rule); with ``prefer_recorded`` (the
    study shown is a published copy) a recorded log wins over a run of this build, which did not make the copy's
    rows. A network read after a loss spike is not the one the steps before it made, so the length of
    pre-training is read with its runs' spikes. A run found in neither has both False and the rest empty."""
    kept = {(r["setting"], int(r["seed"])): [{"step": s, "loss": v} for s, v in r["log"]] for r in recorded or ()}
    rows = []
    for setting, seed, path in _steps_runs(profile, seeds, runs_dir):
        old = kept.get((setting, seed))
        here = (path / "result.json").exists() and not (prefer_recorded and old is not None)
        old = None if here else old
        source = path if here else old
        log = stability.summary(source) if source is not None else dict.fromkeys(stability.FIELDS, math.nan)
        rows.append({"setting": setting, "steps": _steps_of(setting), "seed": seed, "here": here,
                     "recorded": old is not None, **log})  # fmt: skip
    return pd.DataFrame(rows).sort_values(["steps", "seed"], ignore_index=True)


def _steps_runs(profile: str, seeds: Sequence[int], runs_dir: str | os.PathLike):
    """``(setting, seed, run folder)`` of each run of the steps factor, where :func:`run` puts it in ``runs_dir``."""
    pl = plan(profile)
    for r in pl[pl.factor == "steps"].itertuples():
        for seed in map(int, seeds):  # a numpy integer would hash as its string, another run's key
            pretrain = study_arguments(profile, [r.method], r.overrides, seed, runs_dir)["pretrain"]
            yield r.setting, seed, train.run_dir(train.make_config(r.method, profile, **pretrain))


def published_extra(profile: str, seeds: Sequence[int], runs_dir: str | os.PathLike = "runs") -> dict[str, Any]:
    """What a published copy of the study carries besides its rows (:func:`rcl.results.publish`): each run of the
    steps factor found in ``runs_dir``, by setting and seed, with its logged ``[step, loss]`` pairs — the log
    itself, not its reading, so that a build without the runs reads its spikes by its own :mod:`rcl.stability`."""
    found = [(setting, seed, path) for setting, seed, path in _steps_runs(profile, seeds, runs_dir)
             if (path / "result.json").exists()]
    return {"training_logs": [{"setting": setting, "seed": seed,
                               "log": [[e["step"], e["loss"]] for e in _runs.history(path)]}
                              for setting, seed, path in found]}


def spikes_line(logs: pd.DataFrame) -> str:
    """:func:`training_logs` in a sentence: how many of the runs spiked, at which lengths, from which step on; how
    many logs were read from the published copy, how many logged too few losses to show a spike; and how many were
    not found."""
    read = logs[logs.here.astype(bool) | logs.recorded.astype(bool)] if len(logs) else logs
    if not len(read):
        return ("The runs of the steps factor are not in this build's runs folder (`runs_dir`), and the study shown "
                "records no loss logs of them, so their spikes cannot be read here.")
    judged = read[read.logged >= stability.FIRST]
    spiked = judged[judged.spikes > 0]
    copied = int(read.recorded.sum())
    where = ("are here and" if not copied else "were recorded with the published copy and are" if copied == len(read)
             else f"are here or were recorded with the published copy ({copied}) and are")
    text = (f"Of the {count_of(len(judged), 'run')} of the steps factor whose logs {where} long enough, "
            f"{len(spiked)} {'shows' if len(spiked) == 1 else 'show'} a loss spike (a logged loss over "
            f"{stability.FACTOR:g} × the median of those before it, `rcl.stability`)")
    if len(spiked):
        counts = [(name, int((g > 0).sum()), len(g)) for name, g in judged.groupby("setting", sort=False).spikes]
        lengths = ", ".join(f"{name} (seed {', '.join(str(x) for x in spiked.seed[spiked.setting == name])}: {n} of "
                            f"{m})" for name, n, m in counts if n)  # fmt: skip
        text += (f": {lengths}; the earliest at step {int(spiked['first spike'].min())}. A network read after a "
                 "spike is not the one the steps before it made, so where a run spiked the longer settings measure "
                 "training through its instability as much as training longer")
    short, missing = len(read) - len(judged), len(logs) - len(read)
    text += (f"; {count_of(short, 'run')} logged fewer than {stability.FIRST} losses, too few to show one"
             if short else "")
    return text + (f"; {count_of(missing, 'run')} not found in `runs_dir`" if missing else "") + "."


def factor_points(table: pd.DataFrame, pl: pd.DataFrame, task: str) -> tuple[pd.DataFrame, pd.Series]:
    """What the factor figure draws for ``task``: per factor (in :data:`FACTORS` order) and setting (in plan
    order) the mean and std over seeds of the per-seed mean PSNR, whether it is the default, and for the
    noise factor ``n2n`` and ``input``, N2N and the input at the same noise range; and the references' means
    (N2N, Oracle, :data:`INPUT`, …)."""
    per_seed = _per_seed(table, task)
    refs = per_seed[per_seed.factor == "reference"].groupby("setting").psnr.mean()
    parts = []
    for factor in [f for f in FACTORS if f in set(per_seed.factor)]:
        order = list(pl[pl.factor == factor].setting)
        s = per_seed[per_seed.factor == factor].groupby(["setting", "default"]).psnr.agg(["mean", "std"])
        s = s.reset_index().set_index("setting").reindex(order).dropna(subset=["mean"])
        at_range = {ref: [refs.get(f"{ref}, {name}", refs.get(ref, math.nan) if d else math.nan)
                          for name, d in zip(s.index, s.default)] for ref in ("N2N", INPUT)}  # fmt: skip
        noise = factor == "noise"
        parts.append(s.assign(factor=factor, n2n=at_range["N2N"] if noise else math.nan,
                              input=at_range[INPUT] if noise else math.nan).reset_index())  # fmt: skip
    columns = ["factor", "setting", "default", "mean", "std", "n2n", "input"]
    points = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=columns)
    return points[columns], refs


def by_task(table: pd.DataFrame, pl: pd.DataFrame) -> pd.DataFrame:
    """Mean ± std over seeds of the per-seed mean PSNR in the paper's test setting, per (factor, setting) in plan
    order and per task."""
    per_seed = evaluate.paper_cases(table).groupby(["task", "factor", "setting", "seed"]).psnr.mean().reset_index()
    agg = per_seed.groupby(["factor", "setting", "task"]).psnr.agg(["mean", "std"])
    cell = (agg["mean"].map("{:.2f}".format) + " ± " + agg["std"].fillna(0).map("{:.2f}".format)).unstack("task")
    order = [(r.factor, r.setting) for r in pl.itertuples() if (r.factor, r.setting) in cell.index]
    return cell.loc[order + [i for i in cell.index if i not in order]]  # then the inputs, which are not in the plan


def _distinct_settings(a: dict[str, Any]) -> pd.DataFrame:
    """The RCL settings of :func:`analyse` scored on the default test set at the profile's steps, each once (the
    default is under every factor)."""
    s = a["settings"]
    return s[_own_test_set(s) & _equal_budget(s)].drop_duplicates("setting")


def _wild(rows: pd.DataFrame) -> str:
    """The settings of a factor whose seeds disagree far beyond the study's seed noise, in words ("" if none): its
    range is then a mean over runs that went different ways (a diverged run), not a shift of every run."""
    if not len(rows):
        return ""
    return (f" (its {' and '.join(rows.setting)} vary over seeds by {' and '.join(f'{v:.2f}' for v in rows['std'])} "
            "dB: means over runs that went different ways)")


def findings(a: dict[str, Any], profile: str) -> list[str]:
    """The study's conclusions from :func:`analyse`'s output, as Markdown bullet lines: the controls and RCL
    against the input (:func:`_input_lines`), the factors that matter, the default and best settings, the best
    against N2N and the paper's gap, the paper's setting."""
    s = a["settings"]
    rcl = _distinct_settings(a)
    default = rcl[rcl.default].iloc[0]
    best = rcl.loc[rcl["mean"].idxmax()]
    refs = s[s.factor == "reference"].set_index("setting")["mean"]
    paper_name = "τ = 0.1" if profile != "gpu" else "default"  # at gpu the profile's default is the paper's
    paper_setting = rcl[rcl.default] if paper_name == "default" else rcl[rcl.setting == paper_name]
    matters = a["factors"][a["factors"].matters].factor.tolist()
    paper_gap = paper.TABLE1["rcl-emd"]["VOC"][0] - paper.TABLE1["n2n"]["VOC"][0]
    lines = _input_lines(a.get("vs_input"), refs, paper_name) + _noise_level_line(a.get("per_sigma"))
    lows = a["vs_input"][~a["vs_input"].setting.isin(REFERENCES)]["95% CI low"] if "vs_input" in a else pd.Series()
    if len(lows) and lows.notna().all() and not (lows > 0).any():
        lines.append("- **Read what follows as closeness to the input:** no RCL setting beats the input, so the "
                     "factors, the best setting and the distances below order networks by how close they stay to "
                     "their input, not by how well they denoise.")
    noise = a["seed_std"].iloc[0]
    wild = s[(s.factor != "reference") & (s["std"] > 4 * noise)]  # a setting whose seeds disagree, a diverged run
    lines += [
        f"- **Factors that matter** (spread > 2 × seed std of {noise:.2f} dB): "
        + (", ".join(f + _wild(wild[wild.factor == f]) for f in matters) if matters else "none") + ".",
        f"- **Default setting** ({profile}): {default['mean']:.2f} ± {default['std']:.2f} dB on denoising.",
        f"- **Best setting found:** {best.setting} ({best.factor}), {best['mean']:.2f} ± {best['std']:.2f} dB, "
        f"{signed(best['mean'] - default['mean'])} dB from the default"
        + (" (among the settings trained as long as the default: a longer training is not a setting of the same "
           "budget, and the training length reads it below)." if "steps" in set(s.factor) else "."),
    ]
    if "best_vs_n2n" in a:
        b = a["best_vs_n2n"]
        lo, hi = b.get("95% CI low", math.nan), b.get("95% CI high", math.nan)
        lines.append(
            f"- **Best against N2N:** {signed(b['best − N2N (dB)'])} ± {b['std over seeds']:.2f} dB over {b['seeds']} "
            f"seed(s), 95% CI {bounds(lo, hi)} (N2N: {refs.get('N2N', math.nan):.2f} dB; Oracle: "
            f"{refs.get('Oracle', math.nan):.2f} dB). The paper reports RCL-EMD {signed(paper_gap)} dB above N2N on "
            "VOC: "
            + {1: "our best setting agrees in sign", -1: "**even our best setting stays below N2N** at this profile",
               0: "our best setting is not distinguishable from N2N"}[stats.direction(lo, hi)]
            + " — and the best of every setting tried, chosen on these same seeds, flatters RCL."
        )  # fmt: skip
    distance_default = s[s.factor == "distance"].set_index("setting")["default"]
    vs = a.get("vs_input", pd.DataFrame())
    low = dict(zip(vs.setting, vs["95% CI low"])) if len(vs) else {}  # the vs_input names the default "default"
    low_of = lambda k: low.get("default" if distance_default.get(k, False) else k, math.nan)  # noqa: E731
    for r in a.get("distances", pd.DataFrame()).to_dict("records"):
        lo, hi = r["95% CI low"], r["95% CI high"]
        pair = [low_of("d = EMD"), low_of("d = " + r["comparison"].removeprefix("EMD − "))]
        if math.isnan(lo):
            side = "one seed: no interval"
        elif low and any(math.isnan(v) for v in pair):
            side = "no verdict: not both scored against the input"
        elif low and not any(v > 0 for v in pair):  # as notebook 04: no verdict where neither restores
            side = "no verdict: neither beats the input, so the difference ranks closeness to the input"
        else:
            side = {1: "EMD ahead", -1: "EMD behind", 0: "no measurable difference"}[stats.direction(lo, hi)]
        lines.append(f"- **Distance, {r['comparison']}:** {signed(r['mean (dB)'])} dB, 95% CI {bounds(lo, hi)} "
                     f"over {r['seeds']} seed(s), the test images fixed: {side}.")
    lines += _training_length_line(a.get("steps"), a.get("steps_change"))
    if len(paper_setting):
        p = paper_setting.iloc[0]
        lines.append(f"- **The paper's own setting** (α = 10⁻³, EMD, τ = 0.1 as in SimCLR; `g_e` as available here): "
                     f"{p['mean']:.2f} ± {p['std']:.2f} dB, {signed(p['mean'] - refs.get('N2N', math.nan))} dB "
                     "from N2N.")
    return lines


def _input_lines(vs: pd.DataFrame | None, refs: pd.Series, paper_setting: str) -> list[str]:
    """The controls (the Oracle must beat the input) and RCL against the input (:func:`_against_input`) as
    Markdown bullet lines: how many settings beat it, and the best, default and paper's (``paper_setting``, its
    name in ``vs``: ``"default"`` where the default is the paper's) settings' margins. One seed gives no interval:
    then nothing is judged, and the lines say so."""
    if vs is None or not len(vs):
        return ["- **Controls:** this saved study has no rows of the test inputs (saved by an older rcl): run it "
                "again to see whether the Oracle, and any RCL setting, beats the input."]
    by = vs.set_index("setting")
    judged = {k: not math.isnan(r["95% CI low"]) for k, r in by.iterrows()}
    up = {k: judged[k] and stats.direction(r["95% CI low"], r["95% CI high"]) == 1 for k, r in by.iterrows()}
    say = {k: f"{signed(r['− input (dB)'])} dB " + (bounds(r["95% CI low"], r["95% CI high"]) if judged[k]
           else "(one seed: no interval)") for k, r in by.iterrows()}  # fmt: skip
    if "Oracle" not in by.index:
        control = "this study has no Oracle, so whether it can see denoising at all is not checked"
    elif not judged["Oracle"]:
        control = f"the Oracle {say['Oracle']} above them (cannot be judged on one seed)"
    elif up["Oracle"]:
        control = f"the Oracle {say['Oracle']} above them (holds: the study can see denoising)"
    else:
        control = f"the Oracle {say['Oracle']} above them (**fails: nothing below says anything about the method**)"
    rcl = [k for k in by.index if k not in REFERENCES]
    labels: dict[str, list[str]] = {}
    for label, k in [("best", rcl[0] if rcl else None), ("default", "default"), ("paper's", paper_setting)]:
        if k in by.index:
            labels.setdefault(k, []).append(label)
    named = "; ".join(" and ".join(ls) + f" ({k})" * (k != "default") + f" {say[k]}" for k, ls in labels.items())
    count = (f"{sum(up[k] for k in rcl)} of {len(rcl)} settings score above it (each against the input at its own "
             "noise range; 95% interval over seeds above zero)"
             if all(judged[k] for k in rcl) else f"{len(rcl)} settings on one seed: no interval says whether any "
             "beats it")  # fmt: skip
    return [
        f"- **Controls:** the test inputs as they are score {refs.get(INPUT, math.nan):.2f} dB; {control}; N2N "
        f"{say.get('N2N', 'not run')}; an untrained network (random init) {say.get('Random init', 'not run')}.",
        f"- **RCL against the input:** {count}; {named}. A setting that does not beat the input has not learnt, by "
        "this measure, to denoise at all.",
    ]


def rank_named(a: dict[str, Any], pl: pd.DataFrame, named: Named) -> dict[str, Any] | None:
    """Where a named configuration stands in the study: its setting, its mean denoising PSNR, and its rank
    among the study's distinct settings (``rank`` of ``of``); None when its setting is not in the plan."""
    rcl = _distinct_settings(a)
    match = pl[(pl.method == named.method) & pl.overrides.map(lambda o: o == named.overrides)]
    row = rcl[rcl.setting.isin(match.setting)]
    if not len(row):
        return None
    runs = pd.concat([rcl[~rcl.default], rcl[rcl.default].head(1)])  # the default is one run, listed per factor
    mean = row["mean"].iloc[0]
    return {"setting": row.setting.iloc[0], "mean": mean, "rank": int((runs["mean"] > mean).sum()) + 1,
            "of": len(runs)}  # fmt: skip
