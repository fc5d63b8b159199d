"""Result tables beside the paper's: Tables 1–3 from saved results, and where we agree with the paper.

Everything here is computed from a results table (a :mod:`rcl.results` CSV) — notebook 04 and 05 show
these tables as they compute them, and the book's results page rebuilds them from the saved files. The
paper's numbers come only from :mod:`rcl.paper` and only ever sit in their own columns.

Layer: studies (imports the evaluation's table helpers, the label study's arm names (:mod:`rcl.labels`),
:mod:`rcl.stats`, :mod:`rcl.results`, the method registry and the configuration; computes on result
tables, never on networks).

Why one module: Tables 1–3, their controls and the verdicts are one reading of the saved results — they share
the method names and their order, the test conditions' order, the reference rows and the per-σ layout, and
:func:`book_result` picks the book's proxy and label results by the same rule; split, those private helpers
would become an API that only these tables use.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats as scipy_stats

from rcl import cache, config, paper
from rcl import methods as _methods
from rcl.evaluate import MIXED, aggregate, paper_cases
from rcl.labels import ARMS, REFERENCE
from rcl.results import saved
from rcl.stats import direction, paired_difference, seeds_by_images

__all__ = [
    "BEATS_INPUT",
    "BY_MSE",
    "CLAIMS",
    "COPY_MIN_DB",
    "DENOISING_ORACLE",
    "EVERY",
    "FLOOR",
    "HOLM",
    "IDENTICAL_DB",
    "MAIN_CLAIM",
    "MSE_DIFFERS",
    "NAMES",
    "NO_VERDICT",
    "ORDER",
    "PAPER_DATASETS",
    "ROUNDING_DB",
    "SIDES",
    "VERDICTS",
    "agreement",
    "book_result",
    "bounds",
    "claims_per_sigma",
    "clear_conditions",
    "conditions",
    "controls",
    "controls_line",
    "copy_under_the_head",
    "holds",
    "holm",
    "improves_on_input",
    "level_sides",
    "input_margins",
    "count_of",
    "interval_over",
    "interval_table",
    "lead_claims",
    "lead_phrase",
    "main_claim",
    "label_controls",
    "label_gains",
    "label_gain_intervals_per_sigma",
    "label_gains_per_sigma",
    "label_pairs",
    "label_table",
    "method_table",
    "over_init",
    "per_sigma",
    "noisiest_level",
    "per_condition_reading",
    "per_trial",
    "rank_correlation",
    "reproduced",
    "residual_contrast_reading",
    "signed",
    "table1",
    "table2",
    "verdict_counts",
    "verdict_phrase",
]


def count_of(n: int, noun: str) -> str:
    """``"1 comparison"``, ``"3 comparisons"``: a count with its noun in the number the count needs."""
    return f"{n} {noun}{'' if n == 1 else 's'}"


def signed(x: float, digits: int = 2) -> str:
    """``x`` with its sign to ``digits`` decimals, as the book prints a difference: a value that rounds to zero
    reads ``+0.00``, never ``-0.00``."""
    return f"{round(float(x), digits) + 0.0:+.{digits}f}"


def bounds(lo: float, hi: float, digits: int = 2) -> str:
    """An interval as the book prints it, ``"[-0.16, 0.43]"``. A bound that rounds to zero at ``digits`` decimals
    gets up to three more, so that its side shows: ``[-0.004, 0.01]`` crosses zero where ``[-0.00, 0.01]`` only
    hints it and ``[0.00, 0.01]`` would hide it. A bound that is exactly zero reads ``0.00``; one smaller than that
    precision keeps its sign, ``-0.00``."""
    def one(x: float) -> str:
        x = float(x)
        d = digits
        while x != 0 and round(x, d) == 0 and d < digits + 3:
            d += 1
        return f"{x + 0.0:.{d if round(x, d) else digits}f}"

    return f"[{one(lo)}, {one(hi)}]"


#: Display order of the methods (Table 1's), and their names as the paper writes them (the method registry's).
ORDER = _methods.ORDER
NAMES = _methods.DISPLAY

#: The comparisons the paper's tables make: (task, a, b) — a − b, whose sign (and size) the paper reports.
CLAIMS = [("denoise", "rcl-emd", "n2n"), ("denoise", "rcl-emd", "n2s"), ("denoise", "rcl-emd", "rcl-bd"),
          ("denoise", "rcl-emd", "rcl-mmd"), ("denoise", "n2n", "vader+"), ("denoise", "rcl-emd", "oracle"),
          ("sr", "rcl-emd", "n2n"), ("sr", "rcl-emd", "sl-den"), ("sr", "rcl-emd", "oracle"),
          ("jdensr", "rcl-emd", "n2n"), ("jdensr", "rcl-emd", "sl-den")]  # fmt: skip
#: The paper's main claim among them: RCL-EMD ahead of N2N in denoising, as :func:`agreement` names its row.
MAIN_CLAIM = ("denoise", "RCL-EMD − N2N")


def _name(method: str) -> str:
    return NAMES.get(method, method)


def _key(name: str) -> str:
    return next((k for k, v in NAMES.items() if v == name), name)


def per_trial(df: pd.DataFrame) -> pd.DataFrame:
    """Mean PSNR and SSIM over the paper's test cases (mixed noise range; :func:`rcl.evaluate.paper_cases`),
    per task, method, pre-training seed (if any) and trial."""
    keys = ["task", "method", "seed", "trial"] if "seed" in df else ["task", "method", "trial"]
    return paper_cases(df).groupby(keys)[["psnr", "ssim"]].mean().reset_index()


def conditions(df: pd.DataFrame) -> list[str]:
    """The test conditions present, fixed noise levels by σ first, then the mixed range and 'clean'."""
    present = set(df.condition) if "condition" in df else set()
    fixed = sorted((c for c in present if c.startswith("σ=")), key=lambda c: float(c[2:]))
    return fixed + sorted(present - set(fixed))


def per_sigma(df: pd.DataFrame, task: str = "denoise", value: str = "psnr") -> pd.DataFrame:
    """PSNR per test condition (columns: σ=0 … σ=20, σ~U[0,20]) for each method and the task's input.

    ``value="psnr"`` is the mean of per-case PSNR (the field's convention); ``"psnr_of_mse"`` the PSNR of the
    mean MSE over the same cases. Averaged over pre-training seeds and trials; the input's row is first.
    """
    sel = df[df.task == task]
    if sel.empty or "condition" not in sel:
        return pd.DataFrame()
    keys = [k for k in ("seed", "trial") if k in sel]
    wide = aggregate(sel, ["method", "condition", *keys]).groupby(["method", "condition"])[value].mean().unstack()
    refs = [m for m in wide.index if m not in ORDER]
    order = refs + [m for m in ORDER if m in wide.index]
    return wide.reindex(index=order, columns=conditions(sel)).rename(index=_name).round(2)


#: The copy-the-input control's bar: a network trained to reproduce its noisy input must, end to end, score at
#: least this PSNR against it (mean over the test cases), or the backbone cannot represent the identity at
#: this budget and every method is capped (notebook 03, section 7; :func:`controls`).
COPY_MIN_DB = 38.0


#: What a control gates (:func:`controls`' column ``gates``): every comparison of the experiment, or only those of
#: the denoising Oracle's run — the Oracle on denoising and the same run transferred, SL (Den), on the other tasks.
EVERY = "every comparison"
DENOISING_ORACLE = "those with the denoising Oracle (Oracle on denoising, SL (Den) on SR and JDenSR)"
_GATED = {DENOISING_ORACLE: {("denoise", "oracle"), ("sr", "sl-den"), ("jdensr", "sl-den")}}


def holds(checks: pd.DataFrame, task: str | None = None, methods: Sequence[str] = ()) -> bool:
    """Whether the controls a comparison depends on all hold: those of ``checks`` (a :func:`controls` or
    :func:`label_controls` table) that gate :data:`EVERY` comparison, and those that gate a comparison of
    ``methods`` on ``task`` (:data:`DENOISING_ORACLE`); a check that names no known scope gates every comparison.
    Without ``methods``: whether the experiment's own controls hold, the ones every comparison needs. An empty
    table holds nothing."""
    if not len(checks):
        return False
    gates = checks["gates"] if "gates" in checks else pd.Series(EVERY, index=checks.index)
    needed = [g not in _GATED or any((task, m) in _GATED[g] for m in methods) for g in gates]  # unknown: every one
    return bool(checks.holds[needed].all())


def controls_line(checks: pd.DataFrame, profile: str | None = None) -> str:
    """One paragraph on a :func:`controls` table: whether every check holds; else which fail, with their values,
    and what that withholds — every verdict where one of the experiment's own controls fails, only the verdicts
    that read the denoising Oracle where its check alone fails (:func:`holds`)."""
    at = f" at the `{profile}` profile" if profile else " at this profile"
    if not len(checks):
        return f"**No control could be computed**{at}: no comparison below carries a verdict."
    failed = checks[~checks.holds]
    if failed.empty:
        return f"**All {len(checks)} control checks hold**{at}: the comparisons below can be read as evidence."

    def said(r: dict) -> str:
        v = r["value (dB)"]  # the copy check's is a PSNR (unsigned); the others' a difference
        return r["check"] + ("" if pd.isna(v) else f": {v:.2f} dB" if "copy" in r["check"] else f": {signed(v)} dB")

    head = f"**{len(failed)} of {len(checks)} control checks fail**{at} (" + "; ".join(
        said(r) for r in failed.to_dict("records")) + ")"
    if not holds(checks):
        return head + ": no comparison below carries a verdict; the comparisons are not a valid test of the paper."
    head += ". The experiment's own controls hold, so the comparisons that do not read the supervised reference keep "
    scopes = sorted(set(failed.gates) - {EVERY}) if "gates" in failed else []
    head += "their verdicts; " + "; ".join(scopes) + " carry none"
    if DENOISING_ORACLE not in scopes:
        return head + "."
    if failed[failed.gates == DENOISING_ORACLE]["value (dB)"].isna().all():
        return head + (": fewer than two pre-training seeds, so whether N2N beats the Oracle beyond the spread over "
                       "seeds is not measured.")
    return head + (": with clean targets, the same data and budget, supervision should be at least as good as N2N "
                   "(in Neighbor2Neighbor's tables N2N sits about 0.02 dB below it), so an Oracle that N2N beats "
                   "beyond the spread is no ceiling to compare with — the field reads it as an under-trained Oracle, "
                   "not as N2N doing better than supervision.")


def controls(df: pd.DataFrame, margin_db: float = 3.0, n2n_gap_db: float = 1.0,
             copy_min_db: float = COPY_MIN_DB) -> pd.DataFrame:
    """The checks an experiment must pass before it can carry a verdict on the paper, computed from ``df``.

    Whatever the tasks: the copy-the-input control (method ``"copy"``) scores, end to end, at least
    ``copy_min_db`` dB PSNR against its own input (``psnr_vs_input``, mean over its test cases): the network
    can reproduce its input. Denoising: the Oracle beats the noisy input by ``margin_db`` at σ = 10, 15 and
    20, and is not below it on the mixed range under either aggregation; N2N is within ``n2n_gap_db`` of the
    Oracle (mixed range). SR: the Oracle beats bicubic. Joint denoising + SR: the Oracle beats noisy bicubic
    at σ = 10, 15 and 20 and on the mixed range (by any margin: ×2 upsampling caps what a network can add, and
    the bar is that supervision learnt the task at all). Each row: the check, the measured value (dB) and
    whether it holds. Where the table lacks the copy control, or a task's Oracle or input rows, a row says so
    and does not hold (value ``nan``): a control that was not run is not a control that passed.

    Column ``gates`` says which comparisons a failed check withholds a verdict from (:func:`holds`): all of them
    (:data:`EVERY`), except one check that is about the supervised reference alone. N2N must not beat the
    denoising Oracle beyond the spread over seeds (the mixed range; the 95% interval of N2N − Oracle,
    :func:`rcl.stats.paired_difference`, reaches zero): with clean targets, the same data and budget,
    supervision should be at least as good, and where it is not the Oracle is under-trained as a reference
    (Neighbor2Neighbor's tables put N2N about 0.02 dB below its supervised network). Where it fails the
    comparisons with the denoising Oracle's run (:data:`DENOISING_ORACLE`) carry no verdict; the others do not
    read the Oracle and keep theirs.
    """
    rows = []
    nan = float("nan")

    def add(check: str, value: float, ok: bool, gates: str = EVERY) -> None:
        rows.append({"check": check, "value (dB)": round(float(value), 2), "holds": bool(ok), "gates": gates})

    copy = df[df.method == "copy"] if "method" in df else df.iloc[:0]
    check = f"copy-the-input: f(x) vs x end to end (every task's test cases) ≥ {copy_min_db:g}"
    if (v := _copy_vs_input(df)) is not None:
        add(check, v, v >= copy_min_db)
    elif len(copy):
        add(f"{check} (its rows have no psnr_vs_input: computed by an older rcl; evaluate again)", nan, False)
    else:
        add(f"{check} (not run: add 'copy' to the methods)", nan, False)
    if "denoise" in set(df.task):
        for row in _denoise_controls(df, margin_db, n2n_gap_db):
            add(*row)
    if "sr" in set(df.task):
        pt = per_trial(df[df.task == "sr"]).groupby("method").psnr.mean()
        ref = _input_of(df, "sr")
        if ref is not None and "oracle" in pt.index:
            d = pt["oracle"] - pt[ref]
            add("sr: Oracle − bicubic > 0", d, d > 0)
        else:
            add("sr: Oracle − bicubic > 0 (not run: needs 'supervised' among the methods and the bicubic rows)", nan,
                False)
    if "jdensr" in set(df.task):
        t = per_sigma(df, "jdensr", "psnr").rename(index=_key)
        ref = _input_of(df, "jdensr")
        if ref is None or "oracle" not in t.index:
            add("jdensr: Oracle − noisy bicubic > 0 (not run: needs 'supervised' among the methods and the noisy "
                "bicubic rows)", nan, False)
        else:
            conds = [c for c in t.columns if c in ("σ=10", "σ=15", "σ=20") or c.startswith("σ~U")]
            for c in conds:
                d = t.loc["oracle", c] - t.loc[ref, c]
                add(f"jdensr, {c}: Oracle − noisy bicubic > 0", d, d > 0)
            if not conds:
                add("jdensr: Oracle − noisy bicubic > 0 (not run: no test condition at σ = 10, 15, 20 or the mixed "
                    "range)", nan, False)
    return pd.DataFrame(rows, columns=["check", "value (dB)", "holds", "gates"])


def _denoise_controls(df: pd.DataFrame, margin_db: float, n2n_gap_db: float) -> list[tuple]:
    """:func:`controls`' denoising checks: ``(check, value, holds[, gates])`` each."""
    rows, nan = [], float("nan")
    den, ref = df[df.task == "denoise"], _input_of(df, "denoise")
    if ref is None or "oracle" not in set(den.method):
        rows.append((f"denoise: Oracle − noisy input ≥ {margin_db:g} (not run: needs 'supervised' among the methods "
                     "and the noisy input's rows)", nan, False))
    before = len(rows)
    for agg in ("psnr", "psnr_of_mse"):
        t = per_sigma(df, "denoise", agg).rename(index=_key)
        if ref not in t.index or "oracle" not in t.index:
            continue
        name = "mean of per-case PSNR" if agg == "psnr" else "PSNR of the mean MSE"
        for c in t.columns:
            d = t.loc["oracle", c] - t.loc[ref, c]
            if c in ("σ=10", "σ=15", "σ=20") and agg == "psnr":
                rows.append((f"denoise, {c}: Oracle − noisy input ≥ {margin_db:g}", d, d >= margin_db))
            if not c.startswith("σ~U"):
                continue
            rows.append((f"denoise, {c} ({name}): Oracle − noisy input ≥ 0", d, d >= 0))
            if agg == "psnr" and "n2n" in t.index:
                g = t.loc["n2n", c] - t.loc["oracle", c]
                rows.append((f"denoise, {c}: |N2N − Oracle| ≤ {n2n_gap_db:g}", g, abs(g) <= n2n_gap_db))
                rows.append(_n2n_over_oracle(df, c))
    if len(rows) == before and ref is not None and "oracle" in set(den.method):
        rows.append((f"denoise: Oracle − noisy input ≥ {margin_db:g} (not run: no test condition at σ = 10, 15, 20 "
                     "or the mixed range)", nan, False))
    return rows


def _n2n_over_oracle(df: pd.DataFrame, condition: str) -> tuple:
    """:func:`controls`' check that N2N does not beat the denoising Oracle beyond the spread over pre-training seeds
    at ``condition``: measurable with two seeds or more that both share (an interval over the trials of one
    network leaves the seed out); else a row that says so and does not hold (a control not measured is not one
    that passed), valued ``nan``."""
    name = f"denoise, {condition}: N2N − Oracle not above zero beyond the spread over seeds"
    den = df[(df.task == "denoise") & (df.condition == condition)]
    seeds = [set(den[den.method == m].seed) if "seed" in den else set() for m in ("n2n", "oracle")]
    if len(seeds[0] & seeds[1]) < 2:
        return (f"{name} (not measurable: fewer than two pre-training seeds shared)", float("nan"), False,
                DENOISING_ORACLE)
    p = paired_difference(df, "n2n", "oracle", "denoise", condition=condition)
    lo, hi = p["ci95"]
    return (f"{name} (95% CI {bounds(lo, hi)} over {interval_over(p)} reaches 0)", p["mean_diff_db"], lo <= 0,
            DENOISING_ORACLE)


def _copy_vs_input(df: pd.DataFrame) -> float | None:
    """The copy-the-input control's mean PSNR against its own input, end to end, over every test case that scored
    it (rows that are means over ``n`` images count ``n`` times); None where no row has it."""
    if "method" not in df or "psnr_vs_input" not in df:
        return None
    scored = df[df.method == "copy"].dropna(subset=["psnr_vs_input"])
    return float(np.average(scored.psnr_vs_input, weights=scored.n if "n" in scored else None)) if len(scored) else None


def copy_under_the_head(df: pd.DataFrame, task: str = "denoise") -> str:
    """Why the copy-the-input control can score below the task's input under the proxy protocol, in numbers from
    ``df``: end to end it reproduces its input, but the protocol refits its last layer on clean labels, so what
    is scored is its features under the best head, not the identity; per noise level (:func:`per_sigma`) against
    the input, and on the mixed range under both aggregations. ``""`` where ``df`` lacks the copy control's or
    the input's rows for ``task``."""
    ref = _input_of(df, task)
    t = per_sigma(df, task, "psnr").rename(index=_key)
    if ref is None or "copy" not in t.index or ref not in t.index:
        return ""
    mse = per_sigma(df, task, "psnr_of_mse").rename(index=_key)
    d, d_mse = t.loc["copy"] - t.loc[ref], mse.loc["copy"] - mse.loc[ref]
    noisy = [c for c in t.columns if c.startswith("σ=") and float(c[2:]) > 0 and pd.notna(d[c])]
    mixed = [c for c in t.columns if c.startswith("σ~U") and pd.notna(d[c]) and pd.notna(d_mse[c])]
    if not noisy and not mixed:
        return ""
    text = "**Why the copy control can sit below the input.** "
    if (own := _copy_vs_input(df)) is not None:
        text += (f"End to end the copy network reproduces its input ({own:.1f} dB against it, the first check). "
                 if own >= COPY_MIN_DB else f"End to end the copy network falls short of its input ({own:.1f} dB "
                 f"against it, below the {COPY_MIN_DB:g} dB bar). ")
    text += ("Under the proxy protocol its last layer is refitted on clean labels, so what is scored is its features "
             "under the best head, not the identity")
    if noisy:
        text += ": against the clean target it is " + ", ".join(f"{signed(d[c])} dB at {c}" for c in noisy)
        text += " from the input"
    if "σ=0" in t.columns and pd.notna(t.loc["copy", "σ=0"]):
        text += f", and at σ=0, where the input is the target itself, it scores {t.loc['copy', 'σ=0']:.2f} dB"
    for c in mixed:
        text += (f". On the mixed range {c} that is {signed(d[c])} dB by the mean of per-case PSNR, which weighs the "
                 f"near-clean cases most, and {signed(d_mse[c])} dB by the PSNR of the mean MSE")
    return text + (". A method below the input on the mixed range by the first may be paying this cost of a refitted "
                   "head on near-clean cases rather than failing to denoise; the per-σ rows tell the two apart.")


def _fmt(mean: float, std: float, digits: int) -> str:
    return f"{mean:.{digits}f} ± {0.0 if np.isnan(std) else std:.{digits}f}"


def method_table(df: pd.DataFrame, task: str) -> pd.DataFrame:
    """Our PSNR and SSIM on ``task`` (the paper's mixed noise range): mean ± std over the (pre-training seed,
    trial) cells — seeds and trials for the methods pre-trained with every seed (:data:`rcl.methods.SEEDED`),
    trials for the others — in Table 1's order.
    "± over" says which, per row: a std over the trials of one network is not a spread over pre-training. A
    reference that is the same in every cell (the task's input) shows its value alone."""
    pt = per_trial(df)
    pt = pt[pt.task == task]
    agg = pt.groupby("method")[["psnr", "ssim"]].agg(["mean", "std"])
    seeds = pt.groupby("method").seed.nunique() if "seed" in pt else pd.Series(1, index=agg.index)
    trials = pt.groupby("method").trial.nunique()
    rows = {
        m: {
            "PSNR (ours)": _fmt(agg.loc[m, ("psnr", "mean")], agg.loc[m, ("psnr", "std")], 2),
            "SSIM (ours)": _fmt(agg.loc[m, ("ssim", "mean")], agg.loc[m, ("ssim", "std")], 3),
            "± over": f"{seeds[m]} seed{'s' if seeds[m] > 1 else ''} × {trials[m]} trials",
        }
        for m in agg.index
    }
    for m in set(rows) - set(ORDER):  # a reference (the task's input) scores the same test cases in every cell
        if not (agg.loc[m, ("psnr", "std")] > 1e-9):  # so it has no spread to show (NaN with one cell)
            rows[m] = {"PSNR (ours)": f"{agg.loc[m, ('psnr', 'mean')]:.2f}",
                       "SSIM (ours)": f"{agg.loc[m, ('ssim', 'mean')]:.3f}",
                       "± over": "— (no network: the same in every cell)"}
    order = [m for m in ORDER if m in rows] + sorted(set(rows) - set(ORDER))
    return pd.DataFrame.from_dict(rows, orient="index").reindex(order).rename(index=_name)


def table1(df: pd.DataFrame) -> pd.DataFrame:
    """Table 1 (denoising): ours beside the paper's PSNR on MIT, Stanford and VOC."""
    t = method_table(df, "denoise")
    for ds in ("MIT", "Stanford", "VOC"):
        t[f"PSNR (paper, {ds})"] = [
            f"{paper.TABLE1[_key(n)][ds][0]:.2f}" if _key(n) in paper.TABLE1 else "" for n in t.index
        ]
    return t


def table2(df: pd.DataFrame) -> pd.DataFrame:
    """Table 2 (×2 SR, joint denoising + SR): ours beside the paper's PSNR (Stanford); "–" where a row is not
    the task's (one task's input is not the other's)."""
    keep_methods = ["n2n", "n2s", "rcl-bd", "rcl-mmd", "rcl-emd", "sl-den", "oracle"]
    parts = []
    for task in [t for t in ("sr", "jdensr") if t in set(df.task)]:
        o = method_table(df, task)
        keep = [_name(m) for m in keep_methods if _name(m) in o.index]
        keep += [i for i in o.index if i not in NAMES.values()]
        o = o.loc[keep]
        o["PSNR (paper)"] = [
            f"{paper.TABLE2[_key(n)][task][0]:.2f}" if _key(n) in paper.TABLE2 else "" for n in o.index
        ]
        o.columns = pd.MultiIndex.from_product([[task.upper()], o.columns])
        parts.append(o)
    # each task's input row (bicubic, noisy bicubic) is no row of the other's: a dash there, not NaN
    return pd.concat(parts, axis=1).fillna("–") if parts else pd.DataFrame()


#: The datasets of the paper's table a comparison on ``task`` reads: the first is shown as "paper (dB)" (VOC,
#: the natural photographs closest to ours, as in :func:`rank_correlation`; Table 2 has Stanford only).
PAPER_DATASETS = {"denoise": ("VOC", "MIT", "Stanford"), "sr": ("Stanford",), "jdensr": ("Stanford",)}

#: The verdicts ``agreement`` gives a comparison it can judge (the family Holm's adjustment is over).
VERDICTS = ("agrees", "disagrees", "inconclusive")

#: Why a comparison carries no verdict: its label in ``agreement``'s verdict column, and the reason in words
#: (:func:`verdict_counts`).
_NO_VERDICT = {
    "controls": ("no verdict: controls fail", "the controls fail"),
    "oracle": ("no verdict: N2N beats the Oracle", "N2N beats the denoising Oracle beyond the spread over seeds, so "
               "it is no ceiling to compare with"),
    "seed": ("no verdict: one pre-training seed", "a method pre-trained with one seed"),
    "no input": ("no verdict: the task's input was not scored", "the task's input was not scored"),
    "input": ("no verdict: neither improves on the input", "neither method improves on the task's input"),
    "paper": ("no verdict: the paper's datasets disagree", "the paper's datasets disagree on the sign"),
}
NO_VERDICT = {k: label for k, (label, _) in _NO_VERDICT.items()}

#: :func:`agreement`'s column saying which of a comparison's two methods improve on the task's input.
BEATS_INPUT = "beats the input"


def _input_of(df: pd.DataFrame, task: str) -> str | None:
    """The reference row of ``task`` in ``df``: the task's input scored as the output (noisy input, bicubic,
    noisy bicubic) — the one scored label of the task that is not a method of :data:`ORDER`; None where there is
    none, or more than one (which is the input is then not known)."""
    scored = df[(df.task == task) & df.psnr.notna()]
    refs = [m for m in scored.method.unique() if m not in ORDER]
    return refs[0] if len(refs) == 1 else None


def _vs_input(df: pd.DataFrame, task: str, method: str) -> dict | None:
    """``method``'s PSNR minus ``task``'s input's (:func:`rcl.stats.paired_difference`), paired by pre-training
    seed on the test cases both have a finite score on, the test images held fixed (each seed's mean over them);
    None where the input was not scored."""
    ref = _input_of(df, task)
    if ref is None:
        return None
    sel = df[(df.task == task) & df.method.isin([method, ref])]
    keys = [k for k in ("seed", "trial", "image", "condition") if k in sel]
    # a key a row lacks (an at-scale file's per-image rows have no trial, its per-trial rows no image) is a
    # value of its own, so that such rows pair with their own kind and are not dropped
    sel = sel.assign(**{k: sel[k].astype(object).where(sel[k].notna(), "-") for k in keys if k != "seed"})
    cells = sel.pivot_table(index=keys, columns="method", values="psnr", aggfunc="mean").dropna()
    if method not in cells or ref not in cells:
        return None
    both = cells[[method, ref]].stack().rename("psnr").reset_index().assign(task=task)
    return paired_difference(both.drop(columns="image", errors="ignore"), method, ref, task)


def improves_on_input(df: pd.DataFrame, task: str, method: str) -> bool | None:
    """Whether ``method`` improves on ``task``'s input in ``df``'s rows: the 95% interval of its PSNR minus the
    input's, paired by pre-training seed (Student's t over the seeds' means on these test images, as the
    sensitivity study's; over trials with one seed: :func:`rcl.stats.paired_difference`), lies wholly above
    zero; None where the input was not scored. The test images are held fixed: the question is whether the
    pre-training improves these inputs, not how far a difference carries to other photographs (the verdicts'
    intervals, over seeds × images, ask that)."""
    d = _vs_input(df, task, method)
    return None if d is None else bool(d["ci95"][0] > 0)


def _beats(df: pd.DataFrame, task: str, a: str, b: str) -> tuple[bool | None, str]:
    """Whether either of ``a`` and ``b`` improves on ``task``'s input (None: the input was not scored), and which
    do, in words."""
    ok = {m: improves_on_input(df, task, m) for m in (a, b)}
    if None in ok.values():
        return None, "input not scored"
    which = [_name(m) for m, v in ok.items() if v]
    return bool(which), "both" if len(which) == 2 else which[0] if which else "neither"


def _paper_diffs(task: str, a: str, b: str) -> dict[str, float]:
    """The paper's PSNR of ``a`` minus ``b`` on each dataset it reports ``task`` on (empty if it has no such
    pair)."""
    if task == "denoise":
        table, pick = paper.TABLE1, lambda m, ds: paper.TABLE1[m][ds][0]
    else:
        table, pick = paper.TABLE2, lambda m, ds: paper.TABLE2[m][task][0]
    if a not in table or b not in table or (task != "denoise" and task not in table[a]):
        return {}
    return {ds: pick(a, ds) - pick(b, ds) for ds in PAPER_DATASETS.get(task, ())}


def agreement(df: pd.DataFrame, checks: pd.DataFrame | None = None) -> pd.DataFrame:
    """Each of the paper's comparisons: our difference (95% CI over seeds × test images and its paired test,
    :func:`rcl.stats.paired_difference`) beside the paper's, and a verdict on the direction.

    "agrees" / "disagrees": the interval excludes zero, on the paper's side or the other; "inconclusive": it
    includes zero. "paper in CI" says whether the paper's size, not only its sign, lies in our interval.
    A comparison carries **no verdict** (:data:`NO_VERDICT`) when the controls it depends on (``checks``,
    default :func:`controls` of ``df``; :func:`holds`) fail or cannot be computed, when either method has one
    pre-training seed (its interval covers trials of one network and leaves out the seed's variation), when
    neither method improves on the task's input (:func:`improves_on_input`; column :data:`BEATS_INPUT` says which
    do: two networks that both fall short of their input are ordered by how close they stay to it, which is not the
    restoration the paper compares), or when the paper's own datasets disagree on the sign. Columns: the
    verdict, our difference, its interval, paired p and Holm p (:data:`HOLM`), the paper's difference on the
    dataset named, which methods beat the input, the unit and count the interval is over, and the paper's
    difference on its other datasets; where the MSE was kept, the same difference by the PSNR of the mean MSE
    with its interval (:data:`BY_MSE`, the other aggregation the controls check) and whether a verdict would read
    otherwise by it (:data:`MSE_DIFFERS`). The verdicts read the mean of per-case PSNR, chosen before any result.
    """
    checks = controls(df) if checks is None else checks
    rows, family, cases = [], [], paper_cases(df)
    by_mse = _psnr_of_mean_mse(cases)
    for task, a, b in CLAIMS:
        present = set(df[df.task == task].method)
        if a not in present or b not in present:
            continue
        d = paired_difference(cases, a, b, task)
        learnt, beats = _beats(cases, task, a, b)
        diffs = _paper_diffs(task, a, b)
        first = next(iter(diffs), None)
        p_d = diffs[first] if first else float("nan")
        lo, hi = d["ci95"]
        signs = {np.sign(v) for v in diffs.values()}
        if not holds(checks):
            verdict = NO_VERDICT["controls"]
        elif not d["unit"].startswith("seed"):
            verdict = NO_VERDICT["seed"]
        elif not holds(checks, task, (a, b)):  # a control of the Oracle's run alone (DENOISING_ORACLE)
            verdict = NO_VERDICT["oracle"]
        elif learnt is None:
            verdict = NO_VERDICT["no input"]
        elif not learnt:
            verdict = NO_VERDICT["input"]
        elif len(signs) != 1:
            verdict = NO_VERDICT["paper"]
        elif not direction(lo, hi):
            verdict = "inconclusive"
        else:
            verdict = "agrees" if direction(lo, hi) == signs.pop() else "disagrees"
        family.append(_holm_p(d))
        rows.append(
            {
                "task": task,
                "comparison": f"{_name(a)} − {_name(b)}",
                "verdict": verdict,  # the verdict and its statistics first: the table is wide, a page shows its start
                "ours (dB)": round(d["mean_diff_db"], 2),
                "95% CI": bounds(lo, hi),
                "paired p": d["p_value"],  # rounded below, after Holm's adjustment (beside it) has read it whole
                "paper (dB)": round(p_d, 2),
                "paper's data": first or "",
                "paper in CI": bool(lo <= p_d <= hi),
                BEATS_INPUT: beats,
                "over": interval_over(d),
                "paper, other data (dB)": ", ".join(f"{ds} {signed(v)}" for ds, v in list(diffs.items())[1:]),
            }
        )
        if by_mse is not None:  # the same difference under the other aggregation, as the controls check both
            m = paired_difference(by_mse, a, b, task)
            rows[-1][BY_MSE] = f"{signed(m['mean_diff_db'])} {bounds(*m['ci95'])}"
            rows[-1]["_mse_differs"] = direction(*m["ci95"]) != direction(lo, hi)
    table = pd.DataFrame(rows)
    if "_mse_differs" in table:  # only a comparison that carries a verdict can have it read otherwise
        table[MSE_DIFFERS] = table.pop("_mse_differs") & table.verdict.isin(VERDICTS)
    if len(table):  # the family: the comparisons that carry a verdict; they share runs, which Holm allows
        judged = table.verdict.isin(VERDICTS)
        p = pd.Series(family, index=table.index).where(judged)
        table.insert(table.columns.get_loc("paired p") + 1, HOLM, holm(p).round(4))
        table["paired p"] = table["paired p"].round(4)
    return table


#: :func:`agreement`'s column of Holm-adjusted p-values over the comparisons that carry a verdict.
HOLM = "Holm p"

#: :func:`agreement`'s columns for the other aggregation: the difference of the PSNR of the mean MSE (which weighs
#: the noisy cases more than the mean of per-case PSNR that the verdicts read) with its interval, and whether
#: that interval lies on another side of zero than the verdict's.
BY_MSE, MSE_DIFFERS = "by mean MSE (dB)", "other side by mean MSE"


def _psnr_of_mean_mse(cases: pd.DataFrame) -> pd.DataFrame | None:
    """``cases`` with one row per method, task, seed, trial and test image whose ``psnr`` is the PSNR of the mean
    MSE over that cell's test cases (:func:`rcl.evaluate.aggregate`); None where the MSE was not kept."""
    if "mse" not in cases or cases.mse.isna().any() or not len(cases):
        return None
    keys = [k for k in ("method", "task", "seed", "trial", "image") if k in cases]
    return aggregate(cases, keys).drop(columns="psnr").rename(columns={"psnr_of_mse": "psnr"})


def _holm_p(d: dict) -> float:
    """A paired difference's (:func:`rcl.stats.paired_difference`) p-value as one of Holm's family: its own, or
    where every difference was equal (no p-value) 0 if its interval excludes zero, else 1."""
    return d["p_value"] if not np.isnan(d["p_value"]) else (0.0 if direction(*d["ci95"]) else 1.0)


def holm(p: pd.Series) -> pd.Series:
    """Holm's step-down adjusted p-values of the non-NaN entries of ``p`` (NaN stays NaN): the i-th smallest
    of m is multiplied by m − i + 1, then made monotone. Rejecting where the adjusted value is below α holds
    the chance of any false rejection among the m at most α, whatever the dependence between the tests."""
    q = p.dropna().sort_values()
    adj = (q * np.arange(len(q), 0, -1)).cummax().clip(upper=1.0)
    return adj.reindex(p.index)


def interval_over(d: dict) -> str:
    """What a paired difference's interval is over, in words: ``"3 seeds × 4 test images"``."""
    if d["unit"] == "seed×image":
        return f"{d['n']} seeds × {d['n_images']} test images"
    return f"{d['n']} seeds" if d["unit"] == "seed" else f"{d['n']} trials of one seed"


def claims_per_sigma(df: pd.DataFrame, task: str = "denoise",
                     claims: list[tuple[str, str, str]] | None = None) -> pd.DataFrame:
    """The paper's comparisons on ``task`` (:data:`CLAIMS`, or the ``(task, a, b)`` of ``claims``) at each test
    condition (σ=0 … σ=20, then the mixed range the paper and :func:`agreement` report): our paired difference
    and its 95% interval (:func:`rcl.stats.paired_difference`, over pre-training seeds × test images where both
    methods have several seeds). One row per (comparison, condition): ``diff (dB)``, ``lo``, ``hi``, ``p`` (its
    paired p-value, uncorrected — :func:`level_sides` corrects a level's; as :func:`_holm_p` where it has none),
    ``n`` and ``unit``. It shows where a mixed-range difference comes from — near-clean cases, where a network that
    changes little scores high, or noisy ones. Descriptive: the verdicts stay :func:`agreement`'s, on the mixed
    range; :func:`interval_table` lays it out."""
    sel = df[df.task == task]
    present = set(sel.method)
    rows = []
    for t, a, b in CLAIMS if claims is None else claims:
        if t != task or a not in present or b not in present:
            continue
        for c in conditions(sel):
            d = paired_difference(df, a, b, task, condition=c)
            rows.append({"comparison": f"{_name(a)} − {_name(b)}", "condition": c, "diff (dB)": d["mean_diff_db"],
                         "lo": d["ci95"][0], "hi": d["ci95"][1], "p": _holm_p(d), "n": d["n"], "unit": d["unit"]})
    return pd.DataFrame(rows, columns=["comparison", "condition", "diff (dB)", "lo", "hi", "p", "n", "unit"])


#: :func:`level_sides`' words for a difference's side of what it is set against, by :func:`rcl.stats.direction`.
SIDES = {1: "above them", -1: "below them", 0: "not distinguishable from them"}


def noisiest_level(long: pd.DataFrame, comparison: str) -> pd.Series | None:
    """The row of :func:`claims_per_sigma` (or :func:`over_init`) for ``comparison`` at the largest σ of the grid —
    where a network has the most noise to remove — or None where the table has no such row."""
    rows = long[(long.comparison == comparison) & long.condition.str.startswith("σ=")] if len(long) else long
    return rows.loc[rows.condition.map(lambda c: float(c[2:])).idxmax()] if len(rows) else None


def level_sides(long: pd.DataFrame, condition: str) -> pd.DataFrame:
    """The comparisons of :func:`claims_per_sigma` (or :func:`over_init`) at one ``condition``, each with its
    Holm-adjusted p-value over the comparisons made at that condition (``Holm p``) and its side of zero in words
    (``side``, :data:`SIDES`): "above them" or "below them" where its own 95% interval excludes zero, followed by
    ", but not after Holm's correction for N" where the adjusted p-value is not below 0.05 — one interval of many
    that excludes zero by a little is weak evidence."""
    rows = long[long.condition == condition].copy()
    rows[HOLM] = holm(rows["p"]) if len(rows) else pd.Series(dtype=float)
    n = len(rows)
    late = f", but not after Holm's correction for {n}"
    rows["side"] = [SIDES[s := direction(lo, hi)] + (late if s and q >= 0.05 else "")
                    for lo, hi, q in zip(rows.lo, rows.hi, rows[HOLM])]
    return rows


def clear_conditions(long: pd.DataFrame) -> list[tuple[str, float, int]]:
    """The fixed noise levels (``σ=…``) at which a comparison's 95% interval (its rows of :func:`claims_per_sigma`)
    excludes zero: ``(condition, difference, sign)`` each."""
    rows = [r for r in long.to_dict("records") if r["condition"].startswith("σ=")]
    return [(r["condition"], r["diff (dB)"], s) for r in rows if (s := direction(r["lo"], r["hi"]))]


def per_condition_reading(long: pd.DataFrame) -> str:
    """Where one comparison's 95% intervals at the fixed noise levels (its rows of :func:`claims_per_sigma`)
    exclude zero, in words (:func:`clear_conditions`): a mixed-range mean whose interval includes zero can balance
    opposite differences at low and high σ, and one that excludes zero can come from the near-clean cases alone."""
    n = sum(c.startswith("σ=") for c in long.condition) if len(long) else 0
    clear = clear_conditions(long) if n else []
    if not n:
        return "no noise level was tested on its own."
    if not clear:
        return f"at none of the {n} noise levels tested on their own does its interval exclude zero."
    text = ("per noise level its interval excludes zero at " + ", ".join(f"{c} ({signed(d)} dB)" for c, d, _ in clear)
            + f" (each level's own interval, not corrected for testing {n})")
    if len({s for *_, s in clear}) > 1:
        text += " — in opposite directions, which the mixed-range mean balances"
    return text + "."


def residual_contrast_reading(df: pd.DataFrame, checks: pd.DataFrame | None = None, task: str = "denoise") -> str:
    """What RCL-EMD minus its consistency-only ablation says about the residual contrast, in words: its mixed-range
    difference (as :func:`agreement`'s) and where it lies per noise level (:func:`per_condition_reading`) — no
    conclusion where the controls (``checks``, default :func:`controls`) fail or one pre-training seed is all
    there is, and said to rank closeness to the input where neither network improves on it."""
    a, b = "rcl-emd", "consistency"
    if not {a, b} <= set(df[df.task == task].method):
        return f"{_name(a)} and {_name(b)} are not both among the methods: no comparison."
    checks, cases = controls(df) if checks is None else checks, paper_cases(df)
    d = paired_difference(cases, a, b, task)
    lo, hi = d["ci95"]
    head = (f"{_name(a)} − {_name(b)} on {task}, mixed range: **{signed(d['mean_diff_db'], 3)} dB** "
            f"(95% CI {bounds(lo, hi, 3)} over {interval_over(d)}) — ")
    if not holds(checks, task, (a, b)):
        return head + ("no conclusion: **the controls do not all hold**, so it is not evidence about the residual "
                       "contrast.")
    if not d["unit"].startswith("seed"):
        return head + "one pre-training seed: no conclusion."
    long = claims_per_sigma(df, task, [(task, a, b)])
    per_level, side = per_condition_reading(long), direction(lo, hi)
    if side == 0 and not clear_conditions(long):
        text = (f"the interval includes zero, and {per_level} **At this profile the residual contrast does not "
                "measurably change the result**; RCL-EMD behaves as its consistency term.")
    elif side == 0:
        levels = [c for c in conditions(df[df.task == task]) if c.startswith("σ=")]  # as claims_per_sigma's
        p = holm(pd.Series([_holm_p(paired_difference(df, a, b, task, condition=c)) for c in levels]))
        if (p < 0.05).any():
            text = (f"the interval includes zero on the mixed range, but {per_level} **The residual contrast does "
                    f"change the network** (at least one level keeps p < 0.05 after Holm's correction for "
                    f"{len(levels)}); the paper's mixed-range mean does not show it.")
        else:
            text = (f"the interval includes zero on the mixed range, and {per_level} No level's difference keeps "
                    f"p < 0.05 after Holm's correction for {len(levels)}: **weak evidence at most** that the residual "
                    "contrast changes the network at this profile.")
    else:
        text = ("the residual contrast **improves** on consistency only" if side > 0 else
                "the residual contrast **hurts** compared with consistency only") + f" on the mixed range; {per_level}"
    if not any(improves_on_input(cases, task, m) for m in (a, b)):
        text += (" Neither network improves on the task's input, so these differences say which stays closer to its "
                 "input, not which restores better.")
    return head + text


#: The random-init control (:class:`rcl.methods.core.RandomInit`): the U-Net as its seed initialises it, the
#: baseline :func:`over_init` reads every method against.
FLOOR = "init"


def over_init(df: pd.DataFrame, task: str = "denoise") -> pd.DataFrame:
    """What a pre-training gives the proxy protocol's head beyond an untrained network's features: every
    self-supervised method present, and the Oracle, minus the random-init control (:data:`FLOOR`) on ``task``, at
    each test condition (:func:`claims_per_sigma`'s rows and paired intervals: over pre-training seeds × test
    images where both have several seeds, else over trials of one network; ``unit`` says which). The head is
    fitted on frozen features either way, so an interval that includes zero means the pre-training's features
    are not distinguishable from random ones at this budget; a method can also end below them. Not a claim of
    the paper (it reports no such row): a baseline for reading its comparisons. Empty when the control was not
    run."""
    learnt = [*_methods.self_supervised(), "oracle"]  # claims_per_sigma skips the methods not present
    return claims_per_sigma(df, task, [(task, m, FLOOR) for m in learnt])


def interval_table(long: pd.DataFrame) -> pd.DataFrame:
    """:func:`claims_per_sigma`'s rows as a table: a row per comparison, a column per condition (in the
    order given), each cell ``"+0.12 [-0.10, 0.34]"``."""
    if long.empty:
        return pd.DataFrame()
    cell = long.apply(lambda r: f"{signed(r['diff (dB)'])} {bounds(r.lo, r.hi)}", axis=1)
    wide = long.assign(cell=cell).pivot(index="comparison", columns="condition", values="cell")
    return wide.reindex(index=list(dict.fromkeys(long.comparison)), columns=list(dict.fromkeys(long.condition)))


def verdict_counts(table: pd.DataFrame) -> str:
    """A few sentences from :func:`agreement`'s table: how many of the paper's comparisons it holds (naming those
    whose methods were not run), and of those how many agree, disagree, are inconclusive, and carry no verdict,
    and why; how many of the sided verdicts survive Holm's correction, and which way those go; and in how many of
    them the method under test does not itself improve on its input (column :data:`BEATS_INPUT`); and which would
    read otherwise by the PSNR of the mean MSE (column :data:`MSE_DIFFERS`)."""
    c = table.verdict.value_counts() if len(table) else pd.Series(dtype=int)
    held = set(zip(table.task, table.comparison)) if len(table) else set()
    missing = [f"{_name(a)} − {_name(b)} on {t}" for t, a, b in CLAIMS if (t, f"{_name(a)} − {_name(b)}") not in held]
    text = f"Of the paper's {len(CLAIMS)} comparisons, "
    if missing:
        run = len(CLAIMS) - len(missing)
        text += (f"{run} {'was' if run == 1 else 'were'} run here (not {', '.join(missing)}: a method or task not "
                 f"run); of {'it' if run == 1 else 'them'}, ")
    text += (f"ours **agree** on {c.get('agrees', 0)}, **disagree** on {c.get('disagrees', 0)} and are "
             f"**inconclusive** on {c.get('inconclusive', 0)}")
    why = {k: int(c.get(v, 0)) for k, v in NO_VERDICT.items() if c.get(v, 0)}
    if why:
        n = sum(why.values())
        counted = len(why) > 1  # a lone reason is every one's: no count before it
        reasons = [f"{m}: {_NO_VERDICT[k][1]}" if counted else _NO_VERDICT[k][1] for k, m in why.items()]
        text += f"; **{n} {'carries' if n == 1 else 'carry'} no verdict** (" + "; ".join(reasons) + ")"
    sided = table[table.verdict.isin(VERDICTS[:2])] if len(table) else table
    if len(sided) and HOLM in table:
        m, kept = int(table[HOLM].notna().sum()), sided[sided[HOLM] < 0.05]
        text += (f". Each verdict reads its own 95% interval; corrected for making {count_of(m, 'comparison')} at once "
                 f"(Holm's method, valid although they share runs), {len(kept)} of the "
                 f"{count_of(len(sided), 'sided verdict')} (those that agree or disagree) "
                 f"{'keeps' if len(kept) == 1 else 'keep'} p < 0.05: after the correction ours agree on "
                 f"{int((kept.verdict == 'agrees').sum())} and disagree on {int((kept.verdict == 'disagrees').sum())}")
    if len(sided) and BEATS_INPUT in table:
        idle = [r for r in sided.to_dict("records")
                if r[BEATS_INPUT] not in ("both", r["comparison"].split(" − ")[0])]
        if idle:
            tested = sorted({r["comparison"].split(" − ")[0] for r in idle})
            share = f"all {len(idle)}" if len(idle) == len(sided) else f"{len(idle)} of the {len(sided)}"
            text += (f". In {share}, {' and '.join(tested)} itself does not improve on the "
                     f"task's input (column '{BEATS_INPUT}'): "
                     f"{'that verdict compares' if len(idle) == 1 else 'those compare'} a network that does not yet "
                     "restore at this budget")
    lead = lead_claims(table)
    if lead["n"]:  # the paper's claims proper: the method under test ahead of another
        behind = table[table.verdict.isin(VERDICTS[:2]) & (table["paper (dB)"] < 0)]
        phrase = lead_phrase(lead)
        text += ". " + phrase[0].upper() + phrase[1:]
        if len(behind):
            text += ("; the other sided verdict is on a row" if len(behind) == 1 else "; the other sided verdicts are "
                     "on rows") + " where the paper has it behind (" + ", ".join(
                f"{r['comparison']} on {r['task']}: {r['verdict']}" for r in behind.to_dict("records")) + ")"
    if MSE_DIFFERS in table and table[MSE_DIFFERS].any():
        other = table[table[MSE_DIFFERS]]
        judged = int(table.verdict.isin(VERDICTS).sum())
        text += (f". By the PSNR of the mean MSE (column '{BY_MSE}', which weighs the noisy cases more), {len(other)} "
                 f"of the {judged} that carry a verdict would read otherwise: "
                 + ", ".join(f"{r['comparison']} on {r['task']} ({r[BY_MSE]})" for r in other.to_dict("records")))
    return text + "."


def lead_claims(table: pd.DataFrame) -> dict[str, int]:
    """The paper's claims proper among :func:`agreement`'s comparisons — those that carry a verdict and in which the
    paper has the first method ahead — counted: ``n``, and how many ours ``agrees`` with (support),
    ``disagrees`` with (contradict) and leave ``inconclusive``."""
    ahead = table[table.verdict.isin(VERDICTS) & (table["paper (dB)"] > 0)] if "paper (dB)" in table else table[:0]
    v = ahead.verdict.value_counts() if len(ahead) else pd.Series(dtype=int)
    return {"n": len(ahead), **{k: int(v.get(k, 0)) for k in VERDICTS}}


def lead_phrase(lead: dict[str, int]) -> str:
    """:func:`lead_claims`' counts as a sentence says them (lower case, no full stop): every one of the ``n``
    accounted for — supported, contradicted and inconclusive."""
    return (f"of the {count_of(lead['n'], 'comparison')} with a verdict in which the paper has the first method ahead "
            f"(its claims proper), ours **support {lead['agrees']}**, **contradict {lead['disagrees']}** and leave "
            f"{lead['inconclusive']} inconclusive")


def main_claim(table: pd.DataFrame) -> pd.Series | None:
    """The row of :func:`agreement`'s ``table`` that holds the paper's main claim (:data:`MAIN_CLAIM`), or None."""
    task, comparison = MAIN_CLAIM
    row = table[(table.task == task) & (table.comparison == comparison)] if len(table) else table
    return row.iloc[0] if len(row) else None


def verdict_phrase(row: pd.Series | dict) -> str:
    """A verdict of :func:`agreement` on the paper's claim as a sentence says it, with our difference and its
    interval: ``**contradicted** (−1.26 dB, 95% CI [−1.76, −0.76])``, ``**inconclusive** (…)``; a row that carries no
    verdict says why: ``**without a verdict** (a method pre-trained with one seed; …)``."""
    numbers = f"{signed(row['ours (dB)'])} dB, 95% CI {row['95% CI']}"
    reason = next((_NO_VERDICT[k][1] for k, label in NO_VERDICT.items() if label == row["verdict"]), None)
    if reason is not None:
        return f"**without a verdict** ({reason}; {numbers})"
    word = {"agrees": "supported", "disagrees": "contradicted"}.get(row["verdict"], row["verdict"])
    return f"**{word}** ({numbers})"


def rank_correlation(df: pd.DataFrame) -> tuple[float, int, float]:
    """Spearman ρ between our denoising PSNR ordering and the paper's VOC column, over the shared methods: ρ,
    the number of methods, and the two-sided p-value of no association (a handful of methods can only show a
    large ρ) — exact, over every ordering, up to eight methods; the t approximation beyond."""
    pt = per_trial(df)
    ours = pt[pt.task == "denoise"].groupby("method").psnr.mean()
    common = [m for m in paper.TABLE1 if m in ours.index]
    if len(common) < 3:
        return float("nan"), len(common), float("nan")
    x, y = [ours[m] for m in common], [paper.TABLE1[m]["VOC"][0] for m in common]
    rho = scipy_stats.spearmanr(x, y)
    if len(common) > 8:
        return float(rho.statistic), len(common), float(rho.pvalue)
    rx, ry = scipy_stats.rankdata(x), scipy_stats.rankdata(y)
    orders = np.array(list(itertools.permutations(range(len(common)))))
    rhos = np.array([np.corrcoef(rx, ry[o])[0, 1] for o in orders])
    return float(rho.statistic), len(common), float(np.mean(np.abs(rhos) >= abs(rho.statistic) - 1e-12))


#: A difference from the input whose whole interval lies within this many dB of zero: the output is the input.
IDENTICAL_DB = 0.005

#: Two means of the same PSNRs, summed in another order (a published copy's group means against the per-case
#: rows), differ by float rounding, far below this many dB (:func:`reproduced`).
ROUNDING_DB = 1e-6


def input_margins(df: pd.DataFrame, method: str = "rcl-emd") -> pd.DataFrame:
    """Per task, the best self-supervised method's mean PSNR minus the task input's (the reference row): the
    methods that learn from noisy images alone, not the supervised Oracle nor the copy-the-input control — and
    whether its 95% interval lies above the input (:func:`improves_on_input`: a best mean above the input's can
    be the noise of picking the largest of several); and
    ``method``'s (the paper's, by default) with its 95% interval (:func:`improves_on_input`'s, over pre-training
    seeds, or trials of one network: column ``over``), where it was run, and whether that whole interval lies
    within :data:`IDENTICAL_DB` of zero (``is the input``: the head reproduces the input, using nothing of the
    network's features)."""
    pt, cases = per_trial(df), paper_cases(df)
    inputs = {t: _input_of(pt, t) for t in pt.task.unique()}
    refs = pd.Series({t: pt[(pt.task == t) & (pt.method == m)].psnr.mean() for t, m in inputs.items() if m})
    learnt = _methods.self_supervised()
    best = pt[pt.method.isin(learnt)].groupby(["task", "method"]).psnr.mean()
    rows = []
    for task in [t for t in config.ALL_TASKS if t in refs.index and t in best.index]:
        top, top_psnr = best.loc[task].idxmax(), best.loc[task].max()
        rows.append(
            {
                "task": task,
                "best method": _name(top),
                "best PSNR": round(top_psnr, 2),
                "input PSNR": round(refs[task], 2),
                "margin (dB)": round(top_psnr - refs[task], 2),
                "best beats the input": improves_on_input(cases, task, top),
            }
        )
        d = _vs_input(cases, task, method) if method in set(cases[cases.task == task].method) else None
        if d is not None:
            same = bool(max(abs(d["ci95"][0]), abs(d["ci95"][1])) < IDENTICAL_DB)
            rows[-1] |= {f"{_name(method)} is the input": same,
                         f"{_name(method)} margin (dB)": round(d["mean_diff_db"], 2),
                         f"{_name(method)} 95% CI low": round(d["ci95"][0], 2),
                         f"{_name(method)} 95% CI high": round(d["ci95"][1], 2),
                         f"{_name(method)} over": interval_over(d)}
    return pd.DataFrame(rows)


def _arms(df: pd.DataFrame) -> pd.DataFrame:
    """The label study's rows of its two arms (not its reference rows)."""
    return df[df.arm.isin(ARMS)] if "arm" in df else df


def label_controls(df: pd.DataFrame, margin_db: float = 3.0) -> pd.DataFrame:
    """The checks the label-efficiency study must pass before its gains say anything about Table 3, from
    ``df`` (:func:`rcl.labels.label_study`'s rows; arm ``"noisy input"`` scores the test inputs themselves).

    SL from scratch with the most labels is the study's supervised control, as the Oracle is the proxy
    evaluation's (:func:`controls`): it beats the noisy input by ``margin_db`` at σ = 10, 15 and 20 (those of
    them tested) and is not below it on the mixed range; and more labels help it: SL with the most labels
    beats SL with the fewest on the mixed range. Values are means over seeds. Each row: the check, the
    measured value (dB) and whether it holds. A check that cannot be computed — no reference rows, none of
    σ = 10, 15, 20 tested, fewer than two label counts — is a row that does not hold (value ``nan``): a
    control that was not run is not a control that passed.
    """
    rows = []

    def add(check: str, value: float, ok: bool) -> None:
        rows.append({"check": check, "value (dB)": round(float(value), 2), "holds": bool(ok)})

    nan = float("nan")
    if "condition" not in df or not (df.arm == "SL").any():
        add("labels: SL from scratch was evaluated per test condition", nan, False)
        return pd.DataFrame(rows, columns=["check", "value (dB)", "holds"])
    per = df.groupby(["arm", "labels", "seed", "condition"]).psnr.mean().groupby(["arm", "labels", "condition"]).mean()
    sl = per.loc["SL"]
    counts = sorted(set(sl.index.get_level_values("labels")))
    lo, hi = counts[0], counts[-1]
    conds = conditions(df)
    if REFERENCE in per.index.get_level_values("arm"):
        ref = per.loc[REFERENCE].groupby("condition").mean()
        fixed = [c for c in ("σ=10", "σ=15", "σ=20") if c in ref.index and (hi, c) in sl.index]
        for c in fixed:
            d = sl.loc[(hi, c)] - ref[c]
            add(f"labels, {c}: SL with {hi} labels − noisy input ≥ {margin_db:g}", d, d >= margin_db)
        if not fixed:
            add(f"labels, σ = 10, 15 or 20: SL with {hi} labels − noisy input ≥ {margin_db:g} (none tested)", nan,
                False)
        for c in (c for c in conds if c.startswith(MIXED) and c in ref.index and (hi, c) in sl.index):
            d = sl.loc[(hi, c)] - ref[c]
            add(f"labels, {c}: SL with {hi} labels − noisy input ≥ 0", d, d >= 0)
    else:
        add("labels: SL with the most labels − noisy input (the table has no noisy-input rows)", nan, False)
    mixed = next((c for c in conds if c.startswith(MIXED)), None)
    if hi > lo and mixed is not None and (hi, mixed) in sl.index and (lo, mixed) in sl.index:
        d = sl.loc[(hi, mixed)] - sl.loc[(lo, mixed)]
        add(f"labels, {mixed}: SL with {hi} labels − SL with {lo} > 0", d, d > 0)
    else:
        add("labels: SL with the most labels − SL with the fewest > 0 (needs two counts and the mixed range)", nan,
            False)
    return pd.DataFrame(rows, columns=["check", "value (dB)", "holds"])


def label_table(df: pd.DataFrame) -> pd.DataFrame:
    """Table 3 on our data: SL and RCL+SL PSNR/SSIM per label count, mean ± std over seeds (the study's
    units: pre-training seeds, each fine-tuned with its own seed, :func:`rcl.labels.label_study`)."""
    per_seed = paper_cases(_arms(df)).groupby(["arm", "labels", "seed"])[["psnr", "ssim"]].mean().reset_index()
    agg = per_seed.groupby(["labels", "arm"])[["psnr", "ssim"]].agg(["mean", "std"])
    counts = sorted(per_seed.labels.unique())

    def cell(k, arm, metric, digits):
        if (k, arm) not in agg.index:
            return "–"
        return _fmt(agg.loc[(k, arm), (metric, "mean")], agg.loc[(k, arm), (metric, "std")], digits)

    return pd.DataFrame(
        {
            "SL PSNR": [cell(k, "SL", "psnr", 2) for k in counts],
            "SL SSIM": [cell(k, "SL", "ssim", 3) for k in counts],
            "RCL+SL PSNR": [cell(k, "RCL+SL", "psnr", 2) for k in counts],
            "RCL+SL SSIM": [cell(k, "RCL+SL", "ssim", 3) for k in counts],
        },
        index=pd.Index(counts, name="# labels (crops)"),
    )


def label_pairs(df: pd.DataFrame) -> pd.DataFrame:
    """The two arms side by side on the paper's mixed noise range: one row per (label count, seed) with
    both, columns ``SL`` and ``RCL+SL`` (mean PSNR over the test cases)."""
    per_seed = paper_cases(_arms(df)).groupby(["arm", "labels", "seed"]).psnr.mean().reset_index()
    return per_seed.pivot_table(index=["labels", "seed"], columns="arm", values="psnr").dropna()


def _gain_intervals(rows: pd.DataFrame, levels: list[str]) -> dict:
    """RCL+SL minus SL of the label study's ``rows``, per group of ``levels``: :func:`rcl.stats.seeds_by_images` of
    each group's table of differences (a row per seed, a column per test image where rows have images), keyed by
    the group; empty where an arm is missing."""
    by = ["arm", *levels, "seed"] + (["image"] if "image" in rows else [])
    cells = rows.groupby(by).psnr.mean().unstack("arm")
    if not {"RCL+SL", "SL"} <= set(cells):
        return {}
    out = {}
    for key, d in (cells["RCL+SL"] - cells["SL"]).groupby(level=levels if len(levels) > 1 else levels[0]):
        d = d.droplevel(levels)
        out[key] = seeds_by_images(d.unstack("image") if "image" in rows else d.to_frame())
    return out


def label_gains(df: pd.DataFrame) -> pd.DataFrame:
    """RCL+SL minus SL PSNR per label count (the paper's mixed noise range): the mean, the std over seeds (of
    each seed's mean over the test images), the numbers of seeds and test images, and the 95% interval. A seed
    is the study's unit (:func:`rcl.labels.label_study`: the pre-training seed, which also draws the
    fine-tuning), so the interval includes the pre-training seed; with several test images it treats them
    as a sample too (:func:`rcl.stats.crossed_interval`, as :func:`rcl.stats.paired_difference` does for the
    proxy comparisons), else it is Student's t over the seeds (:func:`rcl.stats.t_interval`). Each count's
    numbers come from one table: its seeds with both arms, and the test images every such seed has."""
    rows = {}
    for k, r in _gain_intervals(paper_cases(_arms(df)), ["labels"]).items():
        if r["n"]:
            rows[k] = {"gain (dB)": r["mean"], "std over seeds": r["seed_std"], "seeds": r["n"],
                       "test images": r["n_images"], "95% CI low": r["ci95"][0], "95% CI high": r["ci95"][1]}
    columns = ["gain (dB)", "std over seeds", "seeds", "test images", "95% CI low", "95% CI high"]
    return pd.DataFrame.from_dict(rows, orient="index", columns=columns).rename_axis("labels")


def label_gains_per_sigma(df: pd.DataFrame) -> pd.DataFrame:
    """RCL+SL minus SL PSNR per label count (rows) and test condition (columns: σ=0 … σ=20, the mixed
    range), mean over seeds: where along the noise levels pre-training helps."""
    if "condition" not in df:
        return pd.DataFrame()
    per = _arms(df).groupby(["arm", "labels", "seed", "condition"]).psnr.mean().unstack("arm").dropna()
    gain = (per["RCL+SL"] - per["SL"]).groupby(["labels", "condition"]).mean().unstack()
    return gain.reindex(columns=conditions(df)).rename_axis(index="# labels (crops)", columns=None).round(2)


def label_gain_intervals_per_sigma(df: pd.DataFrame) -> pd.DataFrame:
    """:func:`label_gains_per_sigma` with each cell's 95% interval, computed as :func:`label_gains` computes the
    mixed range's (over pre-training seeds × test images where there are several of each, else Student's t over
    the seeds): cells ``"+0.12 [-0.10, 0.34]"``; with one seed, the mean alone."""
    if "condition" not in df:
        return pd.DataFrame()
    out: dict[tuple, str] = {}
    for (k, cond), r in _gain_intervals(_arms(df), ["labels", "condition"]).items():
        if r["n"]:
            lo, hi = r["ci95"]
            out[(k, cond)] = signed(r["mean"]) + (f" {bounds(lo, hi)}" if r["n"] > 1 else "")
    wide = pd.Series(out).unstack() if out else pd.DataFrame()
    return wide.reindex(columns=conditions(df)).rename_axis(index="# labels (crops)", columns=None)


def reproduced(study: pd.DataFrame, proxy: pd.DataFrame) -> pd.DataFrame:
    """How closely a study's rows of the book's own runs equal those runs' rows in notebook 04's evaluation.

    ``study`` is a sensitivity study's table (whole or published: per-image rows, or means over ``n`` images); its
    default setting (RCL-EMD at the profile's values) and its references at the default noise range (N2N, the
    Oracle, the random init) are the runs notebook 04 evaluates, evaluated the same way, so on one machine and
    code version the two agree within :data:`ROUNDING_DB`. ``proxy`` is notebook 04's saved table. Per method: how many
    (task, seed, test condition) means both hold, and the largest absolute difference of their mean PSNR, over all
    of them and over the paper's test setting (:func:`rcl.evaluate.paper_cases`; NaN where they share none of it).
    Empty where they share none."""
    default = study[study.default.astype(bool) & (study.method == "rcl-emd")]
    default = default[default.factor == default.factor.iloc[0]] if len(default) else default  # shared by every factor
    refs = study[(study.factor == "reference") & study.setting.isin(["N2N", "Oracle", "Random init"])]
    keys = ["method", "task", "seed", "condition"]
    rows = pd.concat([default, refs])
    weights = rows["n"] if "n" in rows else pd.Series(1.0, index=rows.index)
    groups = [rows[k] for k in keys]
    theirs = (rows.psnr * weights).groupby(groups).sum() / weights.groupby(groups).sum()
    ours = proxy[proxy.method.isin(set(rows.method))].groupby(keys).psnr.mean()
    both = pd.concat([theirs.rename("study"), ours.rename("book")], axis=1, join="inner")
    if both.empty:
        return pd.DataFrame()
    both["diff"] = (both.study - both.book).abs()
    test = paper_cases(both.reset_index())
    out = pd.DataFrame({"compared": both.groupby("method").size(),
                        "largest |difference| (dB)": both.groupby("method")["diff"].max(),
                        "in the test setting (dB)": test.groupby("method")["diff"].max()})
    return out.reindex([m for m in ORDER if m in out.index]).rename(index=_name)


def book_result(results_dir, kind: str, profile: str, dataset: str = "builtin", seed: int = 0):
    """The newest saved result of ``kind`` that the book's own notebooks produced at ``profile`` — their
    default settings, computed by the library as it is now — or None. Sweeps and reruns with other
    parameters save other results beside it; they are not the book's."""
    for s in saved(results_dir, kind, profile=profile, dataset=dataset, seed=seed):
        if not s.current or s.settings.get("overrides", {}):
            continue
        if kind == "proxy":
            defaults = config.settings("proxy", profile)
            extra = set(s.settings.get("pretrain", {})) - {"dataset", "data_dir", "seed", "runs_dir"}
            proxy_defaults = {k: defaults[k] for k in config.PROXY_KEYS}
            proxy_used = dict(s.settings.get("proxy") or {})
            if (
                proxy_used.pop("seed", seed) != seed  # the test cases' seed (notebook 04 records it)
                or extra
                or sorted(s.settings.get("seeds") or []) != sorted(defaults["seeds"])
                or sorted(s.settings.get("methods", [])) != sorted(defaults["methods"])
                or list(s.settings.get("tasks", [])) != list(defaults["tasks"])
                or proxy_used != cache.canonical(proxy_defaults)
            ):
                continue
        if kind == "labels":
            defaults = config.settings("labels", profile)
            used = s.settings.get("label_config", {})
            if (
                s.settings.get("method") != "rcl-emd"
                or sorted(used.get("seeds") or []) != sorted(defaults["seeds"])
                or any(used.get(k) != cache.canonical({k: defaults[k]})[k] for k in set(defaults) - {"seeds"})
                or used.get("test_seed", 0) != seed  # the test cases of notebook 04's seed
                or used.get("test_dataset") is not None
                or used.get("test_dir") is not None
            ):
                continue
        return s
    return None
