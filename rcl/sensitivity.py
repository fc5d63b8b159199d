"""What makes RCL work: one factor at a time, the others at their defaults, as a papermill sweep.

The study varies the temperature τ (absolute, and relative to the batch's median distance), the weight α of
the contrastive term, the consistency encoder ``g_e`` (none: the contrastive loss alone), the residual
distance, the crop size and the noise range of the data, and measures RCL's representation with the proxy
protocol of notebook 04 on denoising and super-resolution, over several seeds. Noise2Noise and the
supervised Oracle, at the default setting, are its references; because the noise range changes the test
data as well, Noise2Noise is also run at each noise range.

:func:`plan` lists the settings; :func:`run` executes them as one sweep of
``notebooks/04_proxy_evaluation.ipynb`` (:mod:`rcl.sweep`: one parameterised execution per setting and
seed, resumable) and saves the collected rows, labelled by factor and setting, as the ``sensitivity``
result (:mod:`rcl.results`); :func:`load` finds it again for notebook 06. The profile decides the scale
(``smoke`` one seed and one alternative per factor; ``cpu`` and ``gpu`` every setting, three seeds)::

    python -m rcl sensitivity --profile cpu        # or: make sensitivity
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from rcl import config, results, train

__all__ = ["FACTORS", "NOTEBOOK", "analyse", "load", "plan", "run", "sweep_dir"]

NOTEBOOK = Path(__file__).resolve().parent.parent / "notebooks" / "04_proxy_evaluation.ipynb"
#: Factors in the order the notebook shows them.
FACTORS = ("tau", "alpha", "g_e", "distance", "crop", "noise")
#: Seeds per profile, and the tasks every setting is evaluated on.
SEEDS = {"smoke": (0,), "cpu": (0, 1, 2), "gpu": (0, 1, 2)}
TASKS = ("denoise", "sr")


def _round8(v: float) -> int:
    return max(16, int(round(v / 8)) * 8)


def plan(profile: str = "cpu") -> pd.DataFrame:
    """The settings of the study: one row per (factor, setting), with the method and the pre-training
    overrides it runs, whether it is the profile's default, and the reference runs (``factor="reference"``).

    The default setting (the profile's own values) is run once and belongs to every factor.
    """
    config.check_profile(profile)
    p = {**{f: getattr(train.PretrainConfig(), f) for f in ("tau", "alpha", "crop", "sigma_max", "g_e")},
         **train.PROFILE_VALUES[profile]}  # fmt: skip
    tile = p.get("tile", train.PretrainConfig().tile)
    from rcl.losses import imagenet_weights_path

    encoders = ["random", "self-supervised", "none"]
    if p["g_e"] == "imagenet" or imagenet_weights_path(p.get("g_e_arch", "resnet50")).exists():
        encoders.insert(0, "imagenet")
    values: dict[str, list[tuple[str, str, dict[str, Any]]]] = {
        "tau": [(f"τ = {t:g}", "rcl-emd", {"tau": t}) for t in (0.001, 0.01, 0.1, 1.0)]
        + [(f"τ = {t:g} × median d", "rcl-emd", {"tau": t, "tau_scale": "median"}) for t in (0.1, 1.0)],
        "alpha": [(f"α = {a:g}", "rcl-emd", {"alpha": a}) for a in (1e-3, 1e-2, 1e-1, 1.0, 10.0)],
        "g_e": [(f"g_e = {g}", "rcl-emd", {"g_e": g}) for g in encoders],
        "distance": [(f"d = {d.upper()}", f"rcl-{d}", {}) for d in ("emd", "bd", "mmd")],
        "crop": [(f"crop {c}", "rcl-emd", {"crop": c})
                 for c in sorted({_round8(p["crop"] * 2 / 3), p["crop"], min(tile, _round8(p["crop"] * 4 / 3))})],
        "noise": [(f"σ ∈ [0, {s:g}]", "rcl-emd", {"sigma_max": s}) for s in (10.0, 20.0, 40.0)],
    }  # fmt: skip
    rows = []
    for factor, settings in values.items():
        kept = []
        for label, method, over in settings:
            default = method == "rcl-emd" and all(p.get(k) == v for k, v in over.items() if k != "tau_scale")
            default = default and "tau_scale" not in over
            kept.append((label, method, {} if default else over, default))
        if profile == "smoke":  # the default and one alternative
            kept = [k for k in kept if k[3]] + [k for k in kept if not k[3]][:1]
        for label, method, over, default in kept:
            rows.append({"factor": factor, "setting": label, "method": method, "overrides": over, "default": default})
    refs = [("N2N", ["n2n"], {}), ("Oracle", ["supervised"], {})]
    refs += [(f"N2N, σ ∈ [0, {r['overrides']['sigma_max']:g}]", ["n2n"], {"sigma_max": r["overrides"]["sigma_max"]})
             for r in rows if r["factor"] == "noise" and not r["default"]]  # fmt: skip
    for label, methods, over in refs:
        rows.append({"factor": "reference", "setting": label, "method": ",".join(methods), "overrides": over,
                     "default": False})  # fmt: skip
    return pd.DataFrame(rows)


def _combos(profile: str, seeds: Sequence[int]) -> tuple[list[dict[str, Any]], pd.DataFrame]:
    """One sweep combination per distinct (methods, overrides) and seed; the plan with its combination key."""
    pl = plan(profile)
    pl["methods"] = [m.split(",") for m in pl.method]
    pl["key"] = [f"{m}|{sorted(o.items())}" for m, o in zip(pl.method, pl.overrides)]
    distinct = pl.drop_duplicates("key")
    combos = [{"methods": r.methods, "overrides": r.overrides, "seed": s, "seeds": [s]}
              for s in seeds for r in distinct.itertuples()]
    return combos, pl


def sweep_dir(profile: str, root: str | os.PathLike = "build/sweeps") -> Path:
    """Where the study's executions go: one folder per profile and library version (a changed library
    starts a fresh sweep rather than mixing old and new executions)."""
    return Path(root) / f"sensitivity-{profile}-{results.code_version()}"


def settings(profile: str, dataset: str = "builtin", seeds: Sequence[int] | None = None) -> dict[str, Any]:
    seeds = list(SEEDS[profile] if seeds is None else seeds)
    return {"profile": profile, "dataset": dataset, "seeds": seeds, "tasks": list(TASKS),
            "plan": plan(profile).to_dict("records")}  # fmt: skip


def run(
    profile: str = "cpu",
    seeds: Sequence[int] | None = None,
    runs_dir: str | os.PathLike = "runs",
    results_dir: str | os.PathLike = "results",
    out_root: str | os.PathLike = "build/sweeps",
    jobs: int | None = None,
    progress: bool = True,
) -> pd.DataFrame:
    """Run (or resume) the study's sweep and save its collected rows as the ``sensitivity`` result."""
    from rcl import sweep

    config.check_profile(profile)
    seeds = list(SEEDS[profile] if seeds is None else seeds)
    combos, pl = _combos(profile, seeds)
    out = sweep_dir(profile, out_root)
    # the study compares settings on the paper's mixed noise range (σ ~ U[0, sigma_max], which the "noise"
    # factor varies): no fixed σ grid, so each execution evaluates what it reports
    fixed = {"tasks": list(TASKS), "proxy": {"sigma_grid": []}, "runs_dir": str(Path(runs_dir).resolve()),
             "results_dir": str(Path(results_dir).resolve())}  # fmt: skip
    manifest = sweep.run(NOTEBOOK, combos, out, profile=profile, jobs=jobs, fixed=fixed, progress=progress)
    failed = [e["name"] for e in manifest.get("executions", []) if e.get("status") == "failed"]
    if failed:
        raise RuntimeError(f"{len(failed)} execution(s) of the sensitivity sweep failed: {failed}; see {out}/logs")
    rows = sweep.collect(out, quiet=not progress)
    rows = rows[rows.kind == "proxy"] if "kind" in rows else rows
    labelled = []
    for r in pl.itertuples():
        mask = (rows.methods == sweep._cell(r.methods)) & (rows.overrides == sweep._cell(r.overrides))
        part = rows[mask]
        if r.factor != "reference":
            part = part[part.method == r.method]
        else:
            part = part[part.method.isin({"n2n": ["n2n"], "supervised": ["oracle"]}[r.methods[0]])]
        labelled.append(part.assign(factor=r.factor, setting=r.setting, default=r.default))
    table = pd.concat(labelled, ignore_index=True)
    keep = ["factor", "setting", "default", "method", "task", "seed", "trial", "image", "condition", "psnr", "mse",
            "ssim"]
    table = table[[c for c in keep if c in table]]
    results.save(table, "sensitivity", settings(profile, seeds=seeds), results_dir)
    return table


def load(profile: str, results_dir: str | os.PathLike = "results", dataset: str = "builtin"):
    """The newest saved ``sensitivity`` result at ``profile`` (a :class:`rcl.results.Saved`), or None."""
    found = results.saved(results_dir, "sensitivity", profile=profile, dataset=dataset)
    return found[0] if found else None


def analyse(table: pd.DataFrame, task: str = "denoise") -> dict[str, pd.DataFrame]:
    """Per setting the mean PSNR over seeds (each seed: mean over trials and test images) with its std; per
    factor the spread of its settings against the seed noise; the best setting against N2N, paired by seed.
    """
    t = table[table.task == task]
    per_seed = t.groupby(["factor", "setting", "default", "seed"]).psnr.mean().reset_index()
    settings_ = per_seed.groupby(["factor", "setting", "default"]).psnr.agg(["mean", "std", "count"]).reset_index()
    rcl = settings_[settings_.factor != "reference"]
    default_mean = rcl[rcl.default].groupby("factor")["mean"].first()
    noise = per_seed[per_seed.factor != "reference"].groupby(["factor", "setting"]).psnr.std().mean()
    rows = []
    for factor in [f for f in FACTORS if f in set(rcl.factor)]:
        s = rcl[rcl.factor == factor]
        best, spread = s.loc[s["mean"].idxmax()], s["mean"].max() - s["mean"].min()
        rows.append({"factor": factor, "settings": len(s), "range (dB)": spread, "best setting": best.setting,
                     "best − default (dB)": best["mean"] - default_mean.get(factor, float("nan")),
                     "matters": spread > 2 * noise})  # fmt: skip
    factors = pd.DataFrame(rows)
    # the best RCL setting overall against N2N, seed by seed (same seed: same data and test set)
    best = rcl.loc[rcl["mean"].idxmax()]
    wide = per_seed.pivot_table(index="seed", columns="setting", values="psnr")
    out = {"settings": settings_, "factors": factors, "seed_std": pd.Series({"mean seed std (dB)": noise})}
    if "N2N" in wide:
        d = (wide[best.setting] - wide["N2N"]).dropna()
        out["best_vs_n2n"] = pd.Series({"best setting": best.setting, "best − N2N (dB)": d.mean(),
                                        "std over seeds": d.std(), "seeds": len(d)})  # fmt: skip
    return out
