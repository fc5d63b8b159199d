"""The statistics of the book's comparisons: paired differences, their intervals and tests.

Layer: evaluation (imports numpy, scipy, pandas, torch and :mod:`rcl.rng`; never the training engine, the CLI or
the notebooks). It computes on result tables — the tidy rows of :mod:`rcl.evaluate` and :mod:`rcl.labels`
— and never on networks.

* :func:`paired_difference` — method ``a`` minus method ``b`` on one task, paired by pre-training seed and
  test image: its interval treats both as samples (:func:`crossed_interval`), so a verdict is about the mean
  over other seeds *and* other photographs like these; with one seed, by trial (a bootstrap over trials).
* :func:`crossed_interval` — the t interval of the grand mean of a seeds × images table of differences, with
  both factors random (two-way ANOVA without replication, Satterthwaite's degrees of freedom);
  :func:`seeds_by_images` — that interval for a table with missing cells (or Student's t with one image).
* :func:`t_interval` and :func:`paired_test` — the t interval and the paired t-test of a set of paired
  differences (``scipy.stats.ttest_1samp``); :func:`direction` — what an interval says about the sign.
* :func:`bootstrap_mean` — the percentile bootstrap interval of a mean, drawn with :func:`rcl.rng.generator`.
* :func:`bootstrap_units` — a percentile bootstrap of any statistic over resampled units (the seeds of
  the label-efficiency study) that tolerates resamples whose statistic is undefined, and reports their share.

Why two bootstraps of our own and not ``scipy.stats.bootstrap``: scipy's resampling draws from numpy's
generator, so its intervals would differ from the ones the book has shown (and saved) by resampling
noise, although both are valid; its default BCa method is undefined with two or three units, the sizes
our smaller profiles use; and it has no notion of a failed resample (a statistic that is ``nan`` because
a resample falls outside a measured curve), which :func:`bootstrap_units` counts instead of discarding
silently. The t interval and the t-test, where scipy gives the same numbers, are scipy's.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd
import torch
from scipy import stats as _scipy

from rcl import rng as _rng

__all__ = ["bootstrap_mean", "bootstrap_units", "crossed_interval", "direction", "paired_difference", "paired_test",
           "seeds_by_images", "t_interval"]


def t_interval(d: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """Student's t interval of the mean of ``d``: ``mean ± t · s/√n`` (the mean itself when every value is
    equal; ``(nan, nan)`` with fewer than two values)."""
    d = np.asarray(d, dtype=float)
    if len(d) < 2:
        return float("nan"), float("nan")
    if not _varies(d):
        return float(d.mean()), float(d.mean())
    ci = _scipy.ttest_1samp(d, 0.0).confidence_interval(level)
    return float(ci.low), float(ci.high)


def direction(low: float, high: float) -> int:
    """What an interval says about the sign of a difference: ``1`` when it lies above zero, ``-1`` below,
    ``0`` when it includes zero or is undefined (``nan``, e.g. from one unit)."""
    return 1 if low > 0 else -1 if high < 0 else 0


def paired_test(d: np.ndarray) -> float:
    """The two-sided p-value of the paired t-test of differences ``d`` against zero; ``nan`` with fewer
    than two differences or none of them different from the others."""
    d = np.asarray(d, dtype=float)
    return float(_scipy.ttest_1samp(d, 0.0).pvalue) if len(d) > 1 and _varies(d) else float("nan")


def _varies(d: np.ndarray) -> bool:
    """Whether the values differ by more than float rounding (equal differences computed from different
    values, e.g. 32.1 − 30.1 and 32.2 − 30.2, are not all bit-identical)."""
    return bool(d.std() > 1e-9 * max(1.0, float(np.abs(d).max())))


def _tail(level: float) -> float:
    """The quantile of a two-sided interval's lower end, rounded so that 0.95 gives exactly 0.025."""
    return round((1 - level) / 2, 10)


def bootstrap_mean(d: np.ndarray, n_boot: int = 10000, seed: int = 0, level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of ``d``: ``n_boot`` resamples with replacement, their
    indices drawn by ``rcl.rng.generator(seed)`` (torch's generator, the draws the book's intervals were
    computed with; see the module docstring for why not ``scipy.stats.bootstrap``)."""
    d = np.asarray(d, dtype=float)
    n = len(d)
    idx = torch.randint(n, (n_boot, n), generator=_rng.generator(seed)).numpy()
    tail = _tail(level)
    lo, hi = np.quantile(d[idx].mean(1), [tail, 1 - tail])
    return float(lo), float(hi)


def bootstrap_units(units: Sequence, statistic: Callable[[np.ndarray], float], n_boot: int = 2000,
                    seed: int = 0, level: float = 0.95) -> tuple[tuple[float, float], float]:
    """Percentile bootstrap of ``statistic(resampled units)`` over ``n_boot`` resamples of ``units`` with
    replacement (numpy's ``default_rng(seed)``). A resample whose statistic is not finite *fails*: it is
    left out of the interval, and the share of failed resamples is returned beside it — a large share says
    the interval describes only the resamples where the statistic exists.

    Returns ``((low, high), failed_share)``; the interval is ``(nan, nan)`` when every resample fails.
    ``scipy.stats.bootstrap`` does not fit here: it has no failed resamples (see the module docstring).
    """
    units = np.asarray(units)
    gen = np.random.default_rng(seed)
    boots = np.array([statistic(gen.choice(units, size=len(units), replace=True)) for _ in range(n_boot)])
    ok = boots[np.isfinite(boots)]
    tail = _tail(level)
    ci = (float(np.quantile(ok, tail)), float(np.quantile(ok, 1 - tail))) if len(ok) else (float("nan"),) * 2
    return ci, float(1 - len(ok) / len(boots))


def crossed_interval(d: np.ndarray, level: float = 0.95) -> dict:
    """The interval of the grand mean of ``d`` (``S×I``: a difference per pre-training seed and test image),
    with seeds and images both random samples: it covers the mean over other seeds and other photographs.

    The crossed random-effects model ``d[s, i] = μ + a_s + b_i + e_si`` (two-way ANOVA without replication):
    with mean squares ``MS_s = I·Σ(d̄_s − μ̂)²/(S−1)``, ``MS_i = S·Σ(d̄_i − μ̂)²/(I−1)`` and ``MS_e`` (the
    interaction, ``(S−1)(I−1)`` degrees of freedom), the variance of the grand mean is
    ``σ_a²/S + σ_b²/I + σ_e²/(SI) = (MS_s + MS_i − MS_e)/(SI)``. A component whose estimate is negative
    (``MS_s < MS_e`` or ``MS_i < MS_e``) is set to zero, which drops the matching terms: e.g. with no seed
    effect the variance is ``MS_i/(SI)``. Degrees of freedom: Satterthwaite's for that linear combination;
    the interval is ``μ̂ ± t·√V`` and the p-value the two-sided test of ``μ = 0``.

    The interval is for the *mean* difference over seeds and photographs like these, not for the difference
    on any one new photograph (that would be a prediction interval). It is usually wider than Student's t over
    the seeds' means, which treats the test images as fixed; where the images' spread is large it can be
    narrower, because that spread then also brings degrees of freedom.

    Returns ``{"mean", "ci95", "p_value", "df", "se"}``; needs ``S, I ≥ 2`` and finite cells (raises
    otherwise). Equal values everywhere give the mean as both ends and ``p = nan``.
    """
    d = np.asarray(d, dtype=float)
    if d.ndim != 2 or min(d.shape) < 2:
        raise ValueError(f"crossed_interval needs a seeds × images table with at least 2 of each, got shape {d.shape}")
    if not np.isfinite(d).all():
        bad = int((~np.isfinite(d)).sum())
        raise ValueError(f"crossed_interval needs a complete table of finite differences; {bad} cells are missing or "
                         "not finite (drop incomplete seeds or images first)")
    s, i = d.shape
    mu = float(d.mean())
    rows, cols = d.mean(1), d.mean(0)
    df_s, df_i, df_e = s - 1, i - 1, (s - 1) * (i - 1)
    ms_s = i * float(((rows - mu) ** 2).sum()) / df_s
    ms_i = s * float(((cols - mu) ** 2).sum()) / df_i
    ms_e = float(((d - rows[:, None] - cols[None] + mu) ** 2).sum()) / df_e
    # V = σ_a²/S + σ_b²/I + σ_e²/(SI) with σ_a² = (MS_s − MS_e)/I and σ_b² = (MS_i − MS_e)/S (each at least 0) and
    # σ_e² = MS_e, written as Σ c_k·MS_k/(SI): a zeroed component drops its MS and one −MS_e.
    seed_on, image_on = float(ms_s > ms_e), float(ms_i > ms_e)
    parts = [(seed_on * ms_s, df_s), (image_on * ms_i, df_i), ((1.0 - seed_on - image_on) * ms_e, df_e)]
    var = sum(part for part, _ in parts) / (s * i)
    if not _varies(d.ravel()) or var <= 0:
        return {"mean": mu, "ci95": (mu, mu), "p_value": float("nan"), "df": float("nan"), "se": 0.0}
    dof = sum(part for part, _ in parts) ** 2 / sum(part**2 / df for part, df in parts if part)
    se = float(np.sqrt(var))
    half = float(_scipy.t.ppf(1 - _tail(level), dof)) * se
    p = float(2 * _scipy.t.sf(abs(mu) / se, dof))
    return {"mean": mu, "ci95": (mu - half, mu + half), "p_value": p, "df": float(dof), "se": se}


def seeds_by_images(table: pd.DataFrame) -> dict:
    """The mean of a table of differences (a row per pre-training seed, a column per test image; NaN where a
    cell is missing) and its 95% interval. Seeds with no cell are dropped, then images missing for any seed.
    With at least two of each the interval is :func:`crossed_interval` (``unit`` ``"seed×image"``); with one
    image, Student's t over the seeds' means (``"seed"``). Returns ``mean``, ``ci95``, ``p_value``, ``n``
    (seeds), ``n_images`` and ``seed_std`` (the standard deviation of the seeds' means)."""
    table = table.dropna(how="all").dropna(axis=1)
    n, n_images = table.shape
    per_seed = table.mean(axis=1).to_numpy()
    out = {"n": n, "n_images": n_images, "seed_std": float(np.std(per_seed, ddof=1)) if n > 1 else float("nan")}
    if n > 1 and n_images > 1:
        c = crossed_interval(table.to_numpy())
        return {**out, "mean": c["mean"], "ci95": c["ci95"], "p_value": c["p_value"], "unit": "seed×image"}
    mean = float(per_seed.mean()) if n else float("nan")
    return {**out, "mean": mean, "ci95": t_interval(per_seed), "p_value": paired_test(per_seed), "unit": "seed"}


def paired_difference(
    df: pd.DataFrame, a: str, b: str, task: str, n_boot: int = 10000, seed: int = 0, condition: str | None = None
) -> dict:
    """PSNR of method ``a`` minus ``b`` on ``task`` (optionally one test ``condition``), paired.

    With several pre-training seeds (a ``seed`` column with more than one value shared by both methods) the
    difference is taken per seed and test image (each averaged over trials and the image's test cases), and
    the 95% interval treats seeds *and* images as samples (:func:`crossed_interval`; ``unit`` ``"seed×image"``):
    it includes the pre-training seed's variation, which trials (same network, other labelled subsets) do
    not see, and the test photograph's, which a fixed test set would hide — it covers the mean over
    photographs like these, not only these four. An image that either method lacks for some seed is left
    out of that table. With fewer than two complete images the unit is the seed (Student's t over the seeds'
    means, :func:`t_interval`); with one seed it is the trial (a bootstrap over trials,
    :func:`bootstrap_mean`). The p-value is the matching two-sided test. ``n`` counts the units of the first
    factor (seeds, or trials) and ``n_images`` the test images the interval is over (1 for the seed unit).
    """
    sel = df[df.task == task]
    if condition is not None:
        sel = sel[sel.condition == condition]
    seeds_of = lambda m: set(sel[sel.method == m].seed) if "seed" in sel else {0}  # noqa: E731
    shared = sorted(seeds_of(a) & seeds_of(b))
    if "seed" in sel:  # pair by seed always: a seed shares initialisation and batches across methods
        sel = sel[sel.seed.isin(shared)]
    out = {"a": a, "b": b, "task": task}
    if len(shared) > 1:
        by = ["method", "seed"] + (["image"] if "image" in sel else [])
        per = sel.groupby(by)["psnr"].mean().unstack(0)
        diff = per[a] - per[b]
        r = seeds_by_images(diff.unstack("image") if "image" in sel else diff.to_frame())
        return {**out, "mean_diff_db": r["mean"], "ci95": r["ci95"], "p_value": r["p_value"], "n": r["n"],
                "n_images": r["n_images"], "unit": r["unit"]}
    per = sel.groupby(["method", "trial"])["psnr"].mean().unstack(0)
    d = (per[a] - per[b]).dropna().to_numpy()
    return {**out, "mean_diff_db": float(d.mean()), "ci95": bootstrap_mean(d, n_boot, seed), "p_value": paired_test(d),
            "n": len(d), "n_images": 1, "unit": "trial"}
