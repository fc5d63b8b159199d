"""Result tables: ours computed from the rows, the paper's only in its own columns, verdicts by the CI."""

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from rcl import paper, results, summary


def proxy_rows(gap=1.0, noise=0.05, trials=5, seed=0):
    """RCL-EMD beats N2N by ``gap`` dB on denoising, per trial, on two test images."""
    rng = np.random.default_rng(seed)
    rows = []
    for t in range(trials):
        for m, base in {"n2n": 30.0, "rcl-emd": 30.0 + gap, "noisy input": 25.0}.items():
            for img in ("a", "b"):
                rows.append({"method": m, "task": "denoise", "trial": t, "image": img,
                             "psnr": base + rng.normal(0, noise), "ssim": 0.8})  # fmt: skip
    return pd.DataFrame(rows)


def test_method_table_is_mean_and_std_over_trials():
    df = proxy_rows()
    t = summary.method_table(df, "denoise")
    per_trial = df[df.method == "n2n"].groupby("trial").psnr.mean()
    assert t.loc["N2N", "PSNR (ours)"] == f"{per_trial.mean():.2f} ± {per_trial.std():.2f}"
    assert list(t.index) == ["N2N", "RCL-EMD", "noisy input"]  # Table 1's order, references last
    same = df.assign(psnr=df.psnr.where(df.method != "noisy input", 25.0))  # the input: one value in every cell
    row = summary.method_table(same, "denoise").loc["noisy input"]
    assert row["PSNR (ours)"] == "25.00" and row["± over"].startswith("— (no network")  # no spread it cannot have


def test_table1_quotes_the_paper_only_in_paper_columns():
    t = summary.table1(proxy_rows())
    assert t.loc["RCL-EMD", "PSNR (paper, VOC)"] == f"{paper.TABLE1['rcl-emd']['VOC'][0]:.2f}"
    assert t.loc["noisy input", "PSNR (paper, VOC)"] == ""
    assert not any(f"{paper.TABLE1['rcl-emd']['VOC'][0]:.2f}" in v for v in t["PSNR (ours)"])


def test_table2_puts_a_dash_where_a_row_is_not_the_tasks():
    """SR's input (bicubic) and joint denoising + SR's (noisy bicubic) are rows of one task each: the other task's
    cells say "–", not NaN; the paper's values stay in their own column."""
    sr = proxy_rows().replace({"task": {"denoise": "sr"}, "method": {"noisy input": "bicubic"}})
    jd = proxy_rows(seed=1).replace({"task": {"denoise": "jdensr"}, "method": {"noisy input": "noisy bicubic"}})
    t = summary.table2(pd.concat([sr, jd]))
    assert not t.isna().any().any()
    assert t.loc["bicubic", ("JDENSR", "PSNR (ours)")] == "–" and t.loc["noisy bicubic", ("SR", "PSNR (ours)")] == "–"
    assert t.loc["RCL-EMD", ("SR", "PSNR (paper)")] == f"{paper.TABLE2['rcl-emd']['sr'][0]:.2f}"


def study_rows(gap=1.0, noise=0.05, seeds=(0, 1, 2), trials=2, oracle_margin=5.5, one_seed=("rcl-mmd", "copy"), seed=0,
               copy_vs_input=45.0):
    """A proxy table as notebook 04 saves it: RCL-EMD beats N2N by ``gap`` dB at every test condition, the
    Oracle beats the noisy input by ``oracle_margin``, the copy-the-input network reproduces its input to
    ``copy_vs_input`` dB (None: no copy run); ``one_seed`` methods are pre-trained with seed 0 only. ``noise``
    is the spread of the RCL rows (the others' is 0.05 dB)."""
    rng = np.random.default_rng(seed)
    base = {"noisy input": 25.0, "n2n": 30.0, "rcl-emd": 30.0 + gap, "rcl-mmd": 30.0, "oracle": 25.0 + oracle_margin,
            "copy": 25.0}  # fmt: skip
    if copy_vs_input is None:
        del base["copy"]
    rows = []
    for m, psnr in base.items():
        for s in seeds[:1] if m in one_seed else seeds:
            sd = noise if m.startswith("rcl") else 0.05
            shift = rng.normal(0, sd)  # the pre-training seed's effect
            for t in range(trials):
                for c in ("σ=10", "σ=15", "σ=20", "σ~U[0,20]"):
                    for img in ("a", "b"):
                        v = psnr + shift + rng.normal(0, sd / 4)
                        own = {} if m == "noisy input" else {"psnr_vs_input": copy_vs_input if m == "copy" else 30.0}
                        rows.append({"method": m, "task": "denoise", "seed": s, "trial": t, "image": img,
                                     "condition": c, "psnr": v, "mse": 10 ** (-v / 10), "ssim": 0.8, **own})
    return pd.DataFrame(rows)


def _row(table, comparison):
    return table[table.comparison == comparison].iloc[0]


@pytest.mark.parametrize("gap, verdict", [(1.0, "agrees"), (-1.0, "disagrees"), (0.0, "inconclusive")])
def test_agreement_verdict_follows_sign_and_interval_over_seeds(gap, verdict):
    a = summary.agreement(study_rows(gap=gap, noise=0.05 if gap else 0.5))
    # the verdict and its statistics first: a narrow page shows a wide table's first columns
    assert list(a.columns[:7]) == ["task", "comparison", "verdict", "ours (dB)", "95% CI", "paired p", summary.HOLM]
    row = _row(a, "RCL-EMD − N2N")
    assert row.verdict == verdict and row.over == "3 seeds × 2 test images"
    assert row["paper (dB)"] == pytest.approx(paper.TABLE1["rcl-emd"]["VOC"][0] - paper.TABLE1["n2n"]["VOC"][0])
    assert row["paper's data"] == "VOC" and "MIT +0.88" in row["paper, other data (dB)"]
    assert row["paper in CI"] == (gap == 0.0 or abs(gap - row["paper (dB)"]) < 0.2)


def test_no_verdict_without_controls_that_hold():
    """The Oracle below the noisy input: every comparison is reported, none carries a verdict."""
    rows = study_rows(oracle_margin=-1.0)
    a = summary.agreement(rows)
    assert len(a) and set(a.verdict) == {summary.NO_VERDICT["controls"]}
    no_oracle = rows[rows.method != "oracle"]  # no control can be computed
    assert set(summary.agreement(no_oracle).verdict) == {summary.NO_VERDICT["controls"]}
    assert set(summary.agreement(study_rows()).verdict) != {summary.NO_VERDICT["controls"]}


@pytest.mark.parametrize("oracle_margin, under_trained", [(5.5, False), (4.5, True)])
def test_an_oracle_that_n2n_beats_beyond_the_spread_withholds_only_the_verdicts_that_read_it(oracle_margin,
                                                                                             under_trained):
    """N2N 0.5 dB above its Oracle, over three seeds that agree, signals an under-trained Oracle: the
    check fails, the comparisons with the Oracle carry no verdict, and RCL-EMD − N2N, which does not read the
    Oracle, keeps its verdict; the experiment's own controls (the Oracle beats the input) still hold."""
    rows = study_rows(oracle_margin=oracle_margin)
    checks = summary.controls(rows)
    row = checks[checks.check.str.contains("N2N − Oracle not above zero")].iloc[0]
    assert row.gates == summary.DENOISING_ORACLE and bool(row.holds) != under_trained
    assert row["value (dB)"] == pytest.approx(30.0 - (25.0 + oracle_margin), abs=0.1) and "3 seeds × 2" in row.check
    assert summary.holds(checks) and summary.holds(checks, "denoise", ("rcl-emd", "n2n"))
    assert summary.holds(checks, "denoise", ("rcl-emd", "oracle")) != under_trained
    assert summary.holds(checks, "sr", ("rcl-emd", "sl-den")) != under_trained
    assert summary.holds(checks, "sr", ("rcl-emd", "oracle"))  # the SR Oracle is another run
    a = summary.agreement(rows, checks)
    assert _row(a, "RCL-EMD − N2N").verdict == "agrees"
    oracle = _row(a, "RCL-EMD − Oracle").verdict
    assert (oracle == summary.NO_VERDICT["oracle"]) == under_trained
    assert not summary.holds(checks.iloc[:0]) and summary.holds(checks.drop(columns="gates")) != under_trained
    assert summary.holds(checks, "jdensr", ("rcl-emd", "sl-den")) != under_trained
    line = summary.controls_line(checks, "cpu")
    if under_trained:
        assert line.startswith("**1 of ") and "keep their verdicts" in line and "no ceiling" in line
        unknown = checks.assign(gates=checks.gates.where(checks.holds, "a scope no one defined"))
        assert not summary.holds(unknown)  # a check of no known scope gates every comparison
    else:
        assert line.startswith(f"**All {len(checks)} control checks hold** at the `cpu` profile")


def test_the_oracles_check_needs_two_shared_seeds_and_the_experiments_controls_come_first():
    """With one seed the check is not measurable (an interval over one network's trials leaves the seed out): it
    does not hold and says so, and the comparisons say "one pre-training seed"; with seeds that N2N and the Oracle
    do not share, likewise, without an error. A failed experiment-wide control outranks the Oracle's check."""
    one = study_rows(seeds=(0,), oracle_margin=4.95)
    checks = summary.controls(one)
    row = checks[checks.gates == summary.DENOISING_ORACLE].iloc[0]
    assert "not measurable" in row.check and not row.holds and np.isnan(row["value (dB)"])
    assert "is not measured" in summary.controls_line(checks)
    assert set(summary.agreement(one, checks).verdict) == {summary.NO_VERDICT["seed"]}
    apart = study_rows()
    apart.loc[apart.method == "oracle", "seed"] += 10
    assert "not measurable" in summary.controls(apart).query("gates == @summary.DENOISING_ORACLE").check.iloc[0]
    both = study_rows(oracle_margin=-1.0)  # the Oracle below the input, and N2N far above it
    both_checks = summary.controls(both)
    assert not both_checks[both_checks.gates == summary.DENOISING_ORACLE].holds.any()
    assert set(summary.agreement(both, both_checks).verdict) == {summary.NO_VERDICT["controls"]}
    assert "no comparison below carries a verdict" in summary.controls_line(both_checks)


@pytest.mark.parametrize("copy_vs_input, holds", [(45.0, True), (30.0, False), (None, False)])
def test_the_copy_the_input_control_must_reproduce_the_input_or_no_verdict(copy_vs_input, holds):
    """The copy-the-input network's own output against its input, end to end: at or above
    ``summary.COPY_MIN_DB`` the check holds; below it — or with no copy run beside the Oracle — it does not
    hold, and no comparison carries a verdict."""
    rows = study_rows(copy_vs_input=copy_vs_input)
    checks = summary.controls(rows)
    copy = checks[checks.check.str.contains("copy-the-input")]
    assert len(copy) == 1 and bool(copy.holds.iloc[0]) == holds
    if copy_vs_input is None:
        assert np.isnan(copy["value (dB)"].iloc[0]) and "not run" in copy.check.iloc[0]
    else:
        assert copy["value (dB)"].iloc[0] == pytest.approx(copy_vs_input)
    verdicts = set(summary.agreement(rows).verdict)
    assert (verdicts == {summary.NO_VERDICT["controls"]}) != holds
    neither = summary.controls(rows[~rows.method.isin(["oracle", "copy"])])  # controls not run do not hold
    assert len(neither) == 2 and not neither.holds.any() and neither["value (dB)"].isna().all()
    older = summary.controls(study_rows().drop(columns="psnr_vs_input"))  # copy rows of an older rcl
    assert "older rcl" in older.check.iloc[0] and not older.holds.iloc[0]
    sr_only = study_rows().assign(task="sr")[lambda d: d.method != "oracle"]  # SR without its Oracle
    assert not summary.controls(sr_only).holds.all()


@pytest.mark.parametrize("oracle_margin, holds", [(2.0, True), (-0.5, False)])
def test_joint_denoising_and_sr_needs_an_oracle_that_beats_noisy_bicubic(oracle_margin, holds):
    """JDenSR's Oracle must beat its input, noisy bicubic, at σ = 10, 15, 20 and on the mixed range, or no
    comparison carries a verdict; without its Oracle or input rows the check is there and does not hold."""
    jd = study_rows(oracle_margin=oracle_margin, seed=1).assign(task="jdensr").replace(
        {"method": {"noisy input": "noisy bicubic"}})
    rows = pd.concat([study_rows(), jd], ignore_index=True)
    checks = summary.controls(rows)
    jd_checks = checks[checks.check.str.startswith("jdensr")]
    assert list(jd_checks.check.str.extract(r"jdensr, (σ\S+):")[0]) == ["σ=10", "σ=15", "σ=20", "σ~U[0,20]"]
    assert bool(jd_checks.holds.all()) == holds
    assert jd_checks["value (dB)"].iloc[-1] == pytest.approx(oracle_margin, abs=0.1)
    verdicts = set(summary.agreement(rows).verdict)
    assert (verdicts == {summary.NO_VERDICT["controls"]}) != holds
    missing = summary.controls(pd.concat([study_rows(), jd[jd.method != "oracle"]], ignore_index=True))
    assert not missing[missing.check.str.startswith("jdensr")].holds.any()
    elsewhere = summary.controls(pd.concat([study_rows(), jd.assign(condition="σ=5")], ignore_index=True))
    gone = elsewhere[elsewhere.check.str.startswith("jdensr")]  # evaluated, but at none of the checked levels
    assert len(gone) == 1 and "not run" in gone.check.iloc[0] and not gone.holds.iloc[0]


def test_holm_adjusts_the_comparisons_that_carry_a_verdict_and_the_count_says_how_many_survive():
    """Holm's step-down: sorted p-values times m, m − 1, …, made monotone, capped at 1; NaN (a comparison with
    no verdict) is outside the family. The verdict count says how many one-sided verdicts survive it."""
    adj = summary.holm(pd.Series([0.01, 0.04, np.nan, 0.03, 0.5]))
    assert np.allclose(adj.iloc[[0, 1, 3, 4]], [0.04, 0.09, 0.09, 0.5]) and np.isnan(adj.iloc[2])
    a = summary.agreement(study_rows(gap=1.0, noise=0.05))
    judged = a.verdict.isin(summary.VERDICTS)
    assert set(a.verdict) <= set(summary.VERDICTS) | set(summary.NO_VERDICT.values())
    assert a.loc[~judged, summary.HOLM].isna().all()
    assert (a.loc[judged, summary.HOLM] >= a.loc[judged, "paired p"]).all()
    # three verdicts: a disagreement at p = 0.03 is one at its own 95% level but not once adjusted for three
    t = pd.DataFrame({"task": "denoise", "comparison": ["RCL-EMD − N2N", "RCL-EMD − N2S", "RCL-EMD − Oracle"],
                      "verdict": ["agrees", "disagrees", "inconclusive"], "paired p": [0.001, 0.03, 0.4]})
    t[summary.HOLM] = summary.holm(t["paired p"])
    assert np.allclose(t[summary.HOLM], [0.003, 0.06, 0.4])
    assert "making 3 comparisons at once" in summary.verdict_counts(t)
    assert "1 of the 2 sided verdicts (those that agree or disagree) keeps p < 0.05: after the correction ours agree " \
        "on 1 and disagree on 0" in summary.verdict_counts(t)


def test_verdict_counts_say_where_the_method_under_test_does_not_itself_beat_the_input():
    """A sided verdict whose first method does not improve on its input compares a network that does not restore:
    the count says in how many; none is said where the method under test beats the input."""
    t = pd.DataFrame({"task": "sr", "comparison": ["RCL-EMD − N2N", "RCL-EMD − Oracle", "N2N − VADeR+"],
                      "verdict": ["disagrees", "disagrees", "agrees"], "paired p": [0.001, 0.002, 0.003],
                      summary.BEATS_INPUT: ["N2N", "both", "N2N"]})
    t[summary.HOLM] = summary.holm(t["paired p"])
    line = summary.verdict_counts(t)
    assert "In 1 of the 3, RCL-EMD itself does not improve on the task's input" in line
    assert "that verdict compares a network that does not yet restore" in line
    t.loc[0, summary.BEATS_INPUT] = "both"
    assert "does not improve" not in summary.verdict_counts(t)


def test_verdict_counts_say_how_many_of_the_papers_claims_of_a_lead_are_supported():
    """The paper's claims proper are the rows where it has the first method ahead: the count says how many of
    those ours support and contradict, and names the sided verdicts on rows where the paper has it behind."""
    t = pd.DataFrame({"task": "sr", "comparison": ["RCL-EMD − N2N", "RCL-EMD − Oracle", "RCL-EMD − SL (Den)"],
                      "verdict": ["disagrees", "inconclusive", "agrees"], "paper (dB)": [0.5, 0.1, -0.3]})
    assert summary.lead_claims(t) == {"n": 2, "agrees": 0, "disagrees": 1, "inconclusive": 1}
    line = summary.verdict_counts(t)
    assert "Of the 2 comparisons with a verdict in which the paper has the first method ahead (its claims proper), " \
        "ours **support 0**, **contradict 1** and leave 1 inconclusive" in line
    assert "the other sided verdict is on a row where the paper has it behind (RCL-EMD − SL (Den) on sr: agrees)" \
        in line
    one = summary.lead_phrase({"n": 1, "agrees": 1, "disagrees": 0, "inconclusive": 0})
    assert one.startswith("of the 1 comparison with a verdict")  # counts agree with their nouns
    t = pd.DataFrame({"task": "sr", "comparison": ["RCL-EMD − N2N"], "verdict": ["disagrees"], "paired p": [0.01]})
    t[summary.HOLM] = summary.holm(t["paired p"])
    assert "making 1 comparison at once" in summary.verdict_counts(t)
    assert "1 of the 1 sided verdict (those that agree or disagree) keeps p < 0.05" in summary.verdict_counts(t)


def test_the_copy_control_below_the_input_is_read_per_level_and_by_both_aggregations():
    """The copy control's shortfall under the refitted head is set out per noise level and on the mixed range by
    both aggregations, with its end-to-end reproduction; nothing is said without its rows or the input's."""
    rows = study_rows()
    copy = rows.method == "copy"
    rows.loc[copy & (rows.condition == "σ=10"), "psnr"] -= 1.0  # 1 dB below the input at σ = 10
    line = summary.copy_under_the_head(rows)
    assert "End to end the copy network reproduces its input (45.0 dB against it" in line
    at = {c: float(re.search(rf"([+-]\d+\.\d+) dB at {c}\b", line).group(1)) for c in ("σ=10", "σ=20")}
    assert at["σ=10"] == pytest.approx(-1.0, abs=0.2) and at["σ=20"] == pytest.approx(0.0, abs=0.2)
    assert "by the mean of per-case PSNR" in line and "by the PSNR of the mean MSE" in line and "\n" not in line
    assert summary.copy_under_the_head(rows[~copy]) == ""
    short = summary.copy_under_the_head(rows.assign(psnr_vs_input=rows.psnr_vs_input.where(~copy, 30.0)))
    assert "falls short of its input (30.0 dB against it, below the 38 dB bar)" in short
    assert summary.copy_under_the_head(rows[rows.method != "noisy input"]) == ""


def test_a_studys_rows_of_the_book_runs_are_checked_against_the_books_evaluation():
    """A sensitivity study's default setting and references are notebook 04's runs: equal rows give zero
    differences; a shifted reference is found, by its largest difference and in the test setting."""
    proxy = study_rows(one_seed=())
    rcl = proxy[proxy.method == "rcl-emd"]
    study = pd.concat([
        rcl.assign(factor=f, setting="default", default=True) for f in ("tau", "alpha")  # shared, under every factor
    ] + [proxy[proxy.method == m].assign(factor="reference", setting=label, default=False)
         for m, label in (("n2n", "N2N"), ("oracle", "Oracle"))])
    same = summary.reproduced(study, proxy)  # per-image rows; the default run's under two factors, counted once
    assert list(same.index) == ["N2N", "RCL-EMD", "Oracle"] and (same.compared == 12).all()
    assert (same.iloc[:, 1:] == 0).all().all()
    # a published copy: means per group over n images; N2N shifted by 0.3 dB on the mixed range only
    means = study.groupby(["factor", "setting", "default", "method", "task", "seed", "condition"]).agg(
        psnr=("psnr", "mean"), n=("psnr", "size")).reset_index()
    means.loc[(means.method == "n2n") & (means.condition == "σ~U[0,20]"), "psnr"] += 0.3
    shifted = summary.reproduced(means, proxy)
    assert shifted.loc["N2N", "largest |difference| (dB)"] == pytest.approx(0.3)
    assert shifted.loc["N2N", "in the test setting (dB)"] == pytest.approx(0.3)
    assert shifted.loc["RCL-EMD"].iloc[1:].max() < 1e-9
    assert summary.reproduced(study, proxy[proxy.method == "noisy input"]).empty


def test_the_main_claim_is_read_from_the_agreement_table_in_words():
    """The paper's main claim (RCL-EMD ahead of N2N in denoising) is found under the name agreement() gives it,
    and a verdict reads as a sentence says it, with our difference and its interval."""
    a = summary.agreement(study_rows(gap=1.0))
    row = summary.main_claim(a)
    assert row is not None and (row.task, row.comparison) == summary.MAIN_CLAIM and row.verdict == "agrees"
    assert summary.verdict_phrase(row).startswith(f"**supported** ({row['ours (dB)']:+.2f} dB, 95% CI [")
    assert summary.verdict_phrase({**row, "verdict": "disagrees"}).startswith("**contradicted**")
    no = summary.verdict_phrase({**row, "verdict": summary.NO_VERDICT["seed"]})
    assert no.startswith("**without a verdict** (a method pre-trained with one seed; ")
    assert summary.main_claim(a[a.task != "denoise"]) is None


def test_the_agreement_table_gives_each_difference_by_the_psnr_of_the_mean_mse_too():
    """The verdicts read the mean of per-case PSNR; beside it the same paired difference by the PSNR of the mean
    MSE, which weighs the noisy cases more — and a verdict that would read otherwise by it is flagged and named."""
    rows = study_rows(gap=1.0)
    a = summary.agreement(rows)
    emd = _row(a, "RCL-EMD − N2N")
    assert emd.verdict == "agrees" and emd[summary.BY_MSE].startswith("+1.0") and not a[summary.MSE_DIFFERS].any()
    assert "would read otherwise" not in summary.verdict_counts(a)
    mixed = rows[(rows.method == "rcl-emd") & (rows.condition == "σ~U[0,20]")]  # two draws a cell: one near-clean,
    rows = pd.concat([rows.drop(mixed.index), mixed.assign(psnr=mixed.psnr + 8), mixed.assign(psnr=mixed.psnr - 8)],
                     ignore_index=True)  # one noisy: the same mean PSNR, a mean MSE the noisy draw dominates
    rows["mse"] = 10 ** (-rows.psnr / 10)
    b = summary.agreement(rows)
    emd = _row(b, "RCL-EMD − N2N")
    assert emd.verdict == "agrees" and emd[summary.BY_MSE].startswith("-") and emd[summary.MSE_DIFFERS]
    line = summary.verdict_counts(b)
    assert "2 of the 2 that carry a verdict would read otherwise: RCL-EMD − N2N on denoise (-" in line
    assert summary._psnr_of_mean_mse(rows.drop(columns="mse")) is None  # no MSE kept (at-scale rows): no column


def test_no_verdict_from_one_pre_training_seed():
    """An interval over the trials of one network leaves out the seed: a method pre-trained once, or a
    whole table of one seed, gives differences and intervals but no verdict."""
    a = summary.agreement(study_rows(gap=2.0, noise=0.01))
    assert _row(a, "RCL-EMD − RCL-MMD").over == "2 trials of one seed"
    assert _row(a, "RCL-EMD − RCL-MMD").verdict == summary.NO_VERDICT["seed"]
    single = summary.agreement(study_rows(gap=2.0, noise=0.01, seeds=(0,)))
    assert set(single.verdict) == {summary.NO_VERDICT["seed"]}


def test_no_verdict_where_the_papers_datasets_disagree_on_the_sign():
    """RCL-EMD − RCL-MMD is +0.86 (MIT), +0.56 (Stanford) and −0.14 dB (VOC) in the paper: no direction to
    agree with, whatever ours is."""
    a = summary.agreement(study_rows(gap=2.0, noise=0.01, one_seed=()))
    row = _row(a, "RCL-EMD − RCL-MMD")
    assert row.over == "3 seeds × 2 test images" and row.verdict == summary.NO_VERDICT["paper"]
    assert row["paper (dB)"] == pytest.approx(-0.14) and "MIT +0.86" in row["paper, other data (dB)"]
    assert _row(a, "RCL-EMD − N2N").verdict == "agrees"


def test_input_margins_and_label_gains():
    m = summary.input_margins(proxy_rows()).set_index("task")
    assert m.loc["denoise", "best method"] == "RCL-EMD" and m.loc["denoise", "margin (dB)"] > 0
    labels = pd.DataFrame([{"arm": arm, "labels": k, "seed": s, "image": "a", "psnr": 20 + k + (arm == "RCL+SL"),
                            "ssim": 0.5} for arm in ("SL", "RCL+SL") for k in (4, 16) for s in (0, 1)])  # fmt: skip
    g = summary.label_gains(labels)
    assert g["gain (dB)"].tolist() == [1.0, 1.0] and g["seeds"].tolist() == [2, 2]
    assert summary.label_table(labels).loc[16, "RCL+SL PSNR"] == "37.00 ± 0.00"


def test_book_result_picks_the_default_settings_not_a_sweep(tmp_path):
    from rcl import config

    d = config.settings("proxy", "smoke")
    proxy = {k: d[k] for k in config.PROXY_KEYS} | {"seed": 0}  # as notebook 04 records it
    pretrain = {"dataset": "builtin", "data_dir": None, "seed": 0, "runs_dir": "r"}
    base = {"profile": "smoke", "dataset": "builtin", "seed": 0, "seeds": d["seeds"], "methods": d["methods"],
            "tasks": d["tasks"], "proxy": proxy, "pretrain": pretrain}  # fmt: skip
    book = results.save(proxy_rows(), "proxy", base, tmp_path)
    results.save(proxy_rows(), "proxy", {**base, "proxy": {**proxy, "seed": 1}}, tmp_path)  # other test cases
    results.save(proxy_rows(), "proxy", {**base, "pretrain": {**base["pretrain"], "tau": 1.0}}, tmp_path)
    results.save(proxy_rows(), "proxy", {**base, "methods": ["n2n"]}, tmp_path)
    assert summary.book_result(tmp_path, "proxy", "smoke").path == book
    assert summary.book_result(tmp_path, "proxy", "cpu") is None


def test_tables_say_what_each_rows_spread_is_over():
    t = summary.method_table(study_rows(), "denoise")
    assert t.loc["N2N", "± over"] == "3 seeds × 2 trials" and t.loc["RCL-MMD", "± over"] == "1 seed × 2 trials"
    assert summary.method_table(proxy_rows(), "denoise").loc["N2N", "± over"] == "1 seed × 5 trials"


def test_verdict_counts_names_why_a_comparison_has_no_verdict():
    line = summary.verdict_counts(summary.agreement(study_rows(gap=2.0, noise=0.01)))
    assert "agree** on 1" in line and "1 carries no verdict** (a method pre-trained with one seed)" in line
    failed = summary.verdict_counts(summary.agreement(study_rows(oracle_margin=-1.0)))
    assert "3 carry no verdict** (the controls fail)" in failed


def test_label_gains_interval_is_students_t_over_seeds_and_per_noise_level():
    """Two seeds whose gains are 0.3 and 0.2 dB: mean ± 2 s.e. would exclude zero, the t interval (one
    degree of freedom, t = 12.71) does not. The per-σ table shows where the gain is."""
    from scipy import stats as sps

    rows = []
    for s, g in ((0, 0.3), (1, 0.2)):
        for cond, extra in (("σ=5", 0.0), ("σ=20", 1.0), ("σ~U[0,20]", 0.0)):
            for arm in ("SL", "RCL+SL"):
                rows.append({"arm": arm, "labels": 8, "seed": s, "image": "a", "condition": cond, "ssim": 0.5,
                             "psnr": 25.0 + (g + extra if arm == "RCL+SL" else 0.0)})  # fmt: skip
    df = pd.DataFrame(rows)
    g = summary.label_gains(df).loc[8]
    half = sps.t.ppf(0.975, 1) * np.std([0.3, 0.2], ddof=1) / np.sqrt(2)
    assert g["95% CI low"] == pytest.approx(0.25 - half) and g["95% CI low"] < 0 < g["95% CI high"]
    per = summary.label_gains_per_sigma(df)
    assert list(per.columns) == ["σ=5", "σ=20", "σ~U[0,20]"]
    assert per.loc[8, "σ=20"] == pytest.approx(1.25) and per.loc[8, "σ=5"] == pytest.approx(0.25)
    cells = summary.label_gain_intervals_per_sigma(df)  # each level's interval, as the mixed range's is computed
    assert list(cells.columns) == list(per.columns)
    assert cells.loc[8, "σ=20"] == f"+1.25 [{1.25 - half:.2f}, {1.25 + half:.2f}]"
    assert cells.loc[8, "σ~U[0,20]"] == f"+0.25 [{g['95% CI low']:.2f}, {g['95% CI high']:.2f}]"
    assert summary.label_gain_intervals_per_sigma(df[df.seed == 0]).loc[8, "σ=20"] == "+1.30"  # one seed: no interval


def test_label_gains_interval_treats_the_test_images_as_a_sample():
    """Three seeds with nearly equal gains, but the gain changes sign from one test photograph to another: a t
    interval over the seeds' means excludes zero; the gain's interval, over seeds × images, does not."""
    from rcl import stats

    image_gain = {"a": -1.0, "b": 0.2, "c": 1.4, "d": 0.4}
    rows = [{"arm": arm, "labels": 8, "seed": s, "image": img, "condition": "σ~U[0,20]", "ssim": 0.5,
             "psnr": 25.0 + (g + sg if arm == "RCL+SL" else 0.0)}
            for s, sg in enumerate([0.24, 0.28, 0.26]) for img, g in image_gain.items() for arm in ("SL", "RCL+SL")]
    g = summary.label_gains(pd.DataFrame(rows)).loc[8]
    assert g["seeds"] == 3 and g["test images"] == 4 and g["gain (dB)"] == pytest.approx(0.51)
    assert stats.t_interval(np.array([0.24, 0.28, 0.26]) + 0.25)[0] > 0
    assert g["95% CI low"] < 0 < g["95% CI high"]
    table = np.array([[v + sg for v in image_gain.values()] for sg in (0.24, 0.28, 0.26)])
    assert (g["95% CI low"], g["95% CI high"]) == pytest.approx(stats.crossed_interval(table)["ci95"])


def test_label_gains_of_a_count_come_from_one_table():
    """A missing SL cell (count 16, seed 1, image c) leaves that image out of count 16's table only: its gain,
    seeds and images are that table's, and count 4 keeps all four images."""
    rows = [{"arm": arm, "labels": k, "seed": s, "image": img, "condition": "σ~U[0,20]", "ssim": 0.5,
             "psnr": 25.0 + (1.0 + 0.1 * s + (3.0 if img == "c" else 0.0) if arm == "RCL+SL" else 0.0)}
            for k in (4, 16) for s in range(3) for img in "abcd" for arm in ("SL", "RCL+SL")]
    df = pd.DataFrame(rows)
    df = df[~((df.arm == "SL") & (df.labels == 16) & (df.seed == 1) & (df.image == "c"))]
    g = summary.label_gains(df)
    assert g.loc[4, "test images"] == 4 and g.loc[4, "gain (dB)"] == pytest.approx(1.1 + 0.75)
    assert g.loc[16, "test images"] == 3 and g.loc[16, "gain (dB)"] == pytest.approx(1.1)
    assert g.loc[16, "95% CI low"] <= 1.1 <= g.loc[16, "95% CI high"]


def test_direction_of_an_interval():
    from rcl import stats

    assert [stats.direction(*ci) for ci in [(0.1, 2.0), (-2.0, -0.1), (-1.0, 1.0), (0.0, 1.0)]] == [1, -1, 0, 0]
    assert stats.direction(float("nan"), float("nan")) == 0  # one unit: no interval, no direction


def _label_rows(sl_gain_db: float, sl_rise_db: float) -> pd.DataFrame:
    """A label study on two seeds: the noisy input, and SL at 4 and 16 labels; SL with 16 labels beats the
    input by ``sl_gain_db`` at every noise level and SL with 4 by ``sl_rise_db`` less."""
    rows = []
    inputs = {"σ=10": 28.0, "σ=15": 25.0, "σ=20": 22.5, "σ~U[0,20]": 31.5}
    for s in (0, 1):
        for cond, x in inputs.items():
            rows.append({"arm": "noisy input", "labels": 0, "seed": s, "condition": cond, "psnr": x, "ssim": 0.5})
            for k, extra in ((4, -sl_rise_db), (16, 0.0)):
                for arm, plus in (("SL", 0.0), ("RCL+SL", 0.5)):
                    rows.append({"arm": arm, "labels": k, "seed": s, "condition": cond, "ssim": 0.5,
                                 "psnr": x + sl_gain_db + extra + plus})  # fmt: skip
    return pd.DataFrame(rows)


def test_label_controls_check_that_sl_denoises_and_more_labels_help_it():
    ok = summary.label_controls(_label_rows(sl_gain_db=4.0, sl_rise_db=1.0)).set_index("check")
    assert len(ok) == 5 and ok.holds.all()
    assert ok.loc["labels, σ=10: SL with 16 labels − noisy input ≥ 3", "value (dB)"] == pytest.approx(4.0)
    assert ok.loc["labels, σ~U[0,20]: SL with 16 labels − SL with 4 > 0", "value (dB)"] == pytest.approx(1.0)
    weak = summary.label_controls(_label_rows(sl_gain_db=0.2, sl_rise_db=1.0)).set_index("check")
    assert not weak.loc["labels, σ=20: SL with 16 labels − noisy input ≥ 3", "holds"]
    flat = summary.label_controls(_label_rows(sl_gain_db=4.0, sl_rise_db=-0.5)).set_index("check")
    assert not flat.loc["labels, σ~U[0,20]: SL with 16 labels − SL with 4 > 0", "holds"]
    # the reference rows are the controls' alone: the gains and Table 3 compare the two arms
    df = _label_rows(sl_gain_db=4.0, sl_rise_db=1.0)
    assert summary.label_gains(df)["gain (dB)"].tolist() == pytest.approx([0.5, 0.5])
    assert list(summary.label_gains_per_sigma(df).index) == [4, 16]
    assert list(summary.label_table(df).index) == [4, 16]


def test_the_label_study_fine_tunes_notebook_04s_pretraining_seeds():
    from rcl import config

    for profile in config.PROFILES:
        assert config.settings("labels", profile)["seeds"] == config.settings("proxy", profile)["seeds"]
    first = config.settings("labels", "cpu")
    first["seeds"].append(99)  # a caller's copy: the one table is not changed through it
    assert 99 not in config.settings("proxy", "cpu")["seeds"]


def test_a_label_control_that_cannot_be_computed_does_not_hold():
    df = _label_rows(sl_gain_db=4.0, sl_rise_db=1.0)
    no_reference = summary.label_controls(df[df.arm != "noisy input"])
    assert not no_reference.holds.all() and no_reference["value (dB)"].isna().any()
    no_fixed_sigma = summary.label_controls(df[~df.condition.isin(["σ=10", "σ=15", "σ=20"])]).set_index("check")
    assert not no_fixed_sigma.holds.all() and any("none tested" in c for c in no_fixed_sigma.index)
    one_count = summary.label_controls(df[df.labels != 4])
    assert not one_count.holds.all()
    assert not summary.label_controls(df.drop(columns="condition")).holds.any()


def test_a_sweep_summary_of_a_label_study_keeps_arms_and_counts_apart():
    from rcl import sweep

    df = _label_rows(sl_gain_db=4.0, sl_rise_db=1.0).assign(task="denoise", steps=100)
    text = sweep.summary(df, ["steps"])
    assert "noisy input" in text and "RCL+SL" in text
    assert len(text.splitlines()) == 1 + 5  # header; the noisy input, SL and RCL+SL at 4 and 16 labels


def test_book_result_of_the_label_study_is_the_default_settings_in_any_seed_order(tmp_path):
    from rcl import config, labels

    d = config.settings("labels", "smoke")
    lcfg = labels.LabelConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})
    base = {"profile": "smoke", "dataset": "builtin", "seed": 0, "method": "rcl-emd", "overrides": {},
            "label_config": vars(lcfg)}
    rows = _label_rows(sl_gain_db=4.0, sl_rise_db=1.0)
    results.save(rows, "labels", {**base, "label_config": {**vars(lcfg), "test_dir": "elsewhere"}}, tmp_path)
    results.save(rows, "labels", {**base, "label_config": {**vars(lcfg), "steps": 1}}, tmp_path)
    assert summary.book_result(tmp_path, "labels", "smoke") is None
    reordered = {**vars(lcfg), "seeds": tuple(reversed(lcfg.seeds))}
    book = results.save(rows, "labels", {**base, "label_config": reordered}, tmp_path)
    assert summary.book_result(tmp_path, "labels", "smoke").path == book


def test_every_claim_the_cpu_profile_computes_is_between_methods_pre_trained_with_every_seed():
    """A comparison between a method pre-trained once and one pre-trained per seed carries no verdict: every
    method of the paper's comparisons that the ``cpu`` profile runs is in ``rcl.methods.SEEDED``, which the
    study pre-trains with every seed by default."""
    import inspect

    from rcl import config, evaluate
    from rcl.methods import SEEDED

    cpu_methods = set(config.settings("proxy", "cpu")["methods"])
    for _, *pair in summary.CLAIMS:
        for m in pair:
            method = "supervised" if m in ("oracle", "sl-den") else m
            assert method not in cpu_methods or method in SEEDED, m
    assert inspect.signature(evaluate.study).parameters["seeded"].default == SEEDED


def test_the_study_pre_trains_the_distances_with_every_seed_and_the_rest_once(monkeypatch):
    """``evaluate.study`` queues every seed for the methods of ``rcl.methods.SEEDED`` (RCL-BD and RCL-MMD among
    them) and the first seed alone for the others (the copy-the-input control)."""
    from types import SimpleNamespace

    from rcl import evaluate

    trained = []

    def pretrain(cfg):
        trained.append((cfg.method, cfg.seed))
        return SimpleNamespace(path=Path(f"{cfg.method}-{cfg.seed}"))

    monkeypatch.setattr(evaluate._train, "pretrain", pretrain)
    one_row = pd.DataFrame([{"psnr": 1.0}])
    monkeypatch.setattr(evaluate, "proxy_evaluate", lambda run, cfg, method, device: (one_row, {}))
    monkeypatch.setattr(evaluate, "reference_evaluate", lambda cfg, cache_dir: one_row)
    df = evaluate.study(["rcl-emd", "rcl-bd", "rcl-mmd", "copy"], ["denoise"], "smoke", progress=False, seeds=[4, 5, 6])
    assert sorted(trained) == sorted([(m, s) for m in ("rcl-emd", "rcl-bd", "rcl-mmd") for s in (4, 5, 6)]
                                     + [("copy", 4)])
    assert set(df[df.method == "rcl-bd"].seed) == {4, 5, 6} and set(df[df.method == "copy"].seed) == {4}


def test_claims_per_sigma_are_the_paired_differences_at_each_condition():
    """One row per (comparison, condition), fixed σ first and the mixed range last, each the paired difference
    of :func:`rcl.stats.paired_difference` at that condition; the table lays them out a row per comparison."""
    from rcl import stats

    rows = study_rows(gap=1.0)
    long = summary.claims_per_sigma(rows)
    assert set(long.comparison) == {"RCL-EMD − N2N", "RCL-EMD − RCL-MMD", "RCL-EMD − Oracle"}  # those present
    assert list(long.condition.unique()) == ["σ=10", "σ=15", "σ=20", "σ~U[0,20]"]
    for r in long.to_dict("records"):
        a, b = (summary._key(n) for n in r["comparison"].split(" − "))
        d = stats.paired_difference(rows, a, b, "denoise", condition=r["condition"])
        assert r["diff (dB)"] == pytest.approx(d["mean_diff_db"]) and (r["lo"], r["hi"]) == pytest.approx(d["ci95"])
    wide = summary.interval_table(long)
    assert list(wide.columns) == ["σ=10", "σ=15", "σ=20", "σ~U[0,20]"] and wide.index[0] == "RCL-EMD − N2N"
    assert wide.loc["RCL-EMD − N2N", "σ=10"].startswith("+1.0")
    none = summary.claims_per_sigma(rows, "sr")  # no SR rows: nothing to compare
    assert none.empty and summary.interval_table(none).empty


def test_over_init_is_every_learnt_methods_paired_difference_with_the_random_init():
    """Each self-supervised method present, then the Oracle, minus the random-init control at every condition —
    the paired intervals of :func:`claims_per_sigma`; not the copy control; nothing without the control."""
    rows = study_rows(gap=1.0)
    init = rows[rows.method == "n2n"].assign(method="init")
    init["psnr"] -= 2.0  # the untrained network's features: 2 dB below N2N's
    with_init = pd.concat([rows, init], ignore_index=True)
    floor = summary.over_init(with_init)
    assert list(dict.fromkeys(floor.comparison)) == [
        "N2N − Random init (control)", "RCL-MMD − Random init (control)", "RCL-EMD − Random init (control)",
        "Oracle − Random init (control)"]  # table order, the Oracle last; the copy control is no pre-training
    n2n = floor[floor.comparison == "N2N − Random init (control)"]
    assert list(n2n.condition) == ["σ=10", "σ=15", "σ=20", "σ~U[0,20]"]
    assert n2n["diff (dB)"].to_numpy() == pytest.approx(2.0) and (n2n.lo > 0).all()
    rcl = floor[(floor.comparison == "RCL-EMD − Random init (control)")]
    assert rcl["diff (dB)"].to_numpy() == pytest.approx(3.0, abs=0.2) and set(rcl.unit) == {"seed×image"}
    assert summary.over_init(rows).empty  # no random-init rows: no floor


def test_a_levels_sides_are_read_after_holms_correction_over_its_comparisons():
    """At one condition: Holm over that level's comparisons; a difference whose own interval excludes zero but
    whose adjusted p-value does not stay below 0.05 is said to be so."""
    long = pd.DataFrame({"comparison": ["A − X", "B − X", "C − X", "A − X"], "condition": ["σ=20"] * 3 + ["σ=10"],
                         "diff (dB)": [1.0, -0.3, 0.1, 2.0], "lo": [0.5, -0.55, -0.2, 1.0],
                         "hi": [1.5, -0.01, 0.4, 3.0], "p": [0.001, 0.04, 0.5, 0.001]})
    level = summary.level_sides(long, "σ=20").set_index("comparison")
    assert len(level) == 3 and level[summary.HOLM].to_numpy() == pytest.approx([0.003, 0.08, 0.5])
    assert level.side.to_dict() == {"A − X": "above them", "B − X": "below them, but not after Holm's correction for 3",
                                    "C − X": "not distinguishable from them"}
    assert summary.level_sides(long, "σ=5").empty
    floor = summary.over_init(pd.concat([study_rows(gap=1.0), study_rows(gap=1.0).query("method == 'n2n'")
                                         .assign(method="init")], ignore_index=True))
    assert floor.p.between(0, 1).all()  # claims_per_sigma carries each cell's uncorrected p-value


@pytest.mark.parametrize("args, message", [
    ({"tasks": ["denosie"]}, "denosie"),
    ({"proxy": {"trials": 0}}, "trials"),
    ({"seeds": []}, r"seeds=\[\]"),
    ({"methods": ["rcl-emd", "nope"]}, "unknown method 'nope'"),
])  # fmt: skip
def test_a_study_checks_its_settings_before_the_first_pre_training(monkeypatch, args, message):
    """A bad task, evaluation value, seed list or method fails at once, not after hours of pre-training."""
    from rcl import evaluate

    monkeypatch.setattr(evaluate._train, "pretrain", lambda cfg: pytest.fail("pre-trained before checking"))
    kwargs = {"methods": ["rcl-emd"], "tasks": ["denoise"], "profile": "smoke", "progress": False, **args}
    with pytest.raises(ValueError, match=message):
        evaluate.study(**kwargs)


def test_the_input_margin_is_the_best_self_supervised_methods():
    """The Oracle and the copy control beat the input by design; the margin asks whether a method that learns
    from noisy images alone does."""
    rows = proxy_rows()
    extra = rows[rows.method == "rcl-emd"]
    rows = pd.concat([rows, extra.assign(method="oracle", psnr=extra.psnr + 9),
                      extra.assign(method="copy", psnr=extra.psnr + 20)], ignore_index=True)  # fmt: skip
    m = summary.input_margins(rows).set_index("task")
    assert m.loc["denoise", "best method"] == "RCL-EMD"
    assert m.loc["denoise", "best beats the input"]  # its interval, not only its mean, lies above the input


def test_the_input_margins_give_rcl_emds_own_margin_with_its_interval_over_seeds():
    rows = study_rows(gap=1.0, one_seed=("copy",))  # RCL-EMD at 31, the input at 25 dB
    m = summary.input_margins(rows).set_index("task")
    assert m.loc["denoise", "RCL-EMD margin (dB)"] == pytest.approx(6.0, abs=0.2)
    assert 0 < m.loc["denoise", "RCL-EMD 95% CI low"] < 6.0 < m.loc["denoise", "RCL-EMD 95% CI high"]
    assert m.loc["denoise", "RCL-EMD over"] == "3 seeds"
    assert not m.loc["denoise", "RCL-EMD is the input"]  # 6 dB above it
    same = rows.copy()
    same.loc[same.method == "rcl-emd", "psnr"] = same[same.method == "noisy input"].psnr.mean()
    same.loc[same.method == "noisy input", "psnr"] = same[same.method == "noisy input"].psnr.mean()
    assert summary.input_margins(same).set_index("task").loc["denoise", "RCL-EMD is the input"]
    assert "N2N margin (dB)" in summary.input_margins(rows, "n2n")


def test_no_verdict_where_neither_method_improves_on_the_input():
    """Two networks that both score below the noisy input are ordered by how close they stay to it: the
    comparison is reported, says that neither beats the input, and carries no verdict; one that sets such a
    network against a method that denoises keeps its verdict."""
    rows = study_rows(gap=1.0, noise=0.05, one_seed=("copy",))
    below = rows.method.isin(["rcl-emd", "rcl-mmd"])
    rows.loc[below, "psnr"] -= 7.0  # RCL-EMD 24, RCL-MMD 23 dB: both below the input's 25, N2N at 30
    a = summary.agreement(rows)
    pair = _row(a, "RCL-EMD − RCL-MMD")
    assert pair.verdict == summary.NO_VERDICT["input"] and pair[summary.BEATS_INPUT] == "neither"
    assert pair["ours (dB)"] == pytest.approx(1.0, abs=0.1)  # the difference is still shown
    vs_n2n = _row(a, "RCL-EMD − N2N")
    assert vs_n2n.verdict == "disagrees" and vs_n2n[summary.BEATS_INPUT] == "N2N"
    assert _row(summary.agreement(study_rows(one_seed=("copy",))), "RCL-EMD − N2N")[summary.BEATS_INPUT] == "both"
    cases = rows[rows.condition == "σ~U[0,20]"]
    assert summary.improves_on_input(cases, "denoise", "n2n") and not summary.improves_on_input(cases, "denoise",
                                                                                               "rcl-emd")
    assert summary.improves_on_input(cases.assign(task="sr"), "denoise", "n2n") is None  # no input scored
    assert "no verdict** (neither method improves on the task's input)" in summary.verdict_counts(a)


def test_verdict_counts_names_the_papers_comparisons_whose_methods_were_not_run():
    line = summary.verdict_counts(summary.agreement(study_rows(one_seed=("copy",))))
    assert line.startswith(f"Of the paper's {len(summary.CLAIMS)} comparisons, 3 were run here (not ")
    assert "N2N − VADeR+ on denoise" in line and "RCL-EMD − N2S on denoise" in line


def test_per_condition_reading_names_the_noise_levels_whose_interval_excludes_zero():
    """A mixed-range difference that includes zero can balance opposite differences at low and high σ: the
    reading names each noise level whose interval excludes zero, and says when they point both ways."""
    def long(cells):
        return pd.DataFrame([{"comparison": "A − B", "condition": c, "diff (dB)": d, "lo": d - w, "hi": d + w}
                             for c, d, w in cells])  # fmt: skip
    both = summary.per_condition_reading(long([("σ=0", 8.0, 3.0), ("σ=10", 0.0, 0.1), ("σ=20", -0.1, 0.05),
                                                ("σ~U[0,20]", 0.2, 0.5)]))  # fmt: skip
    assert "σ=0 (+8.00 dB), σ=20 (-0.10 dB)" in both and "σ=10" not in both and "opposite directions" in both
    one = summary.per_condition_reading(long([("σ=10", 1.0, 0.1), ("σ=20", 0.0, 0.1)]))
    assert "σ=10 (+1.00 dB)" in one and "opposite" not in one
    assert summary.per_condition_reading(long([("σ=10", 0.0, 0.1), ("σ~U[0,20]", 1.0, 0.1)])).startswith("at no")
    assert summary.per_condition_reading(long([("σ~U[0,20]", 1.0, 0.1)])) == "no noise level was tested on its own."


def test_rank_correlation_gives_its_p_value_over_the_shared_methods():
    rho, n, p = summary.rank_correlation(study_rows(gap=1.0, one_seed=("copy",)))
    assert n == 4 and -1 <= rho <= 1 and 0 <= p <= 1  # N2N, RCL-EMD, RCL-MMD and the Oracle are in Table 1
    # exact over the 24 orderings of four: a perfect ordering is matched or reversed by 2 of them
    rows = study_rows(gap=0.5, noise=0.01, one_seed=("copy",))
    for m, v in {"rcl-mmd": 31.0, "n2n": 29.0, "rcl-emd": 30.0, "oracle": 32.0}.items():
        rows.loc[rows.method == m, "psnr"] = v  # N2N < RCL-EMD < RCL-MMD < Oracle, as the paper's VOC column
    assert summary.rank_correlation(rows) == pytest.approx((1.0, 4, 2 / 24))
    assert np.isnan(summary.rank_correlation(proxy_rows())[2])  # two shared methods: no correlation


def test_the_input_check_pairs_by_seed_on_complete_cases_with_the_images_held_fixed():
    """The input check asks whether a network improves on these inputs: Student's t over the seeds' means, the
    test images fixed — an image where it gains 5 dB and one where it loses 1 is +2 dB on every seed, which the
    interval over seeds × images (two images) does not separate from zero. A case one method lacks (NaN) is left
    out of both sides, not averaged on one side only."""
    rows = study_rows(gap=0.0, noise=0.05, one_seed=("copy",))  # RCL-EMD at 30 dB, the input at 25
    rows.loc[(rows.method == "rcl-emd") & (rows.image == "b"), "psnr"] -= 8.0  # 22 dB on image b
    rows.loc[(rows.method == "noisy input") & (rows.image == "b"), "psnr"] -= 2.0  # the input 23 dB there
    cases = rows[rows.condition == "σ~U[0,20]"]
    crossed = summary.paired_difference(cases, "rcl-emd", "noisy input", "denoise")
    assert crossed["unit"] == "seed×image" and crossed["ci95"][0] < 0  # over seeds × images: unclear
    assert summary.improves_on_input(cases, "denoise", "rcl-emd")  # over seeds, these images: it does
    m = summary.input_margins(rows).set_index("task")
    assert m.loc["denoise", "RCL-EMD margin (dB)"] == pytest.approx(2.0, abs=0.1)
    holed = cases.copy()
    holed.loc[(holed.method == "rcl-emd") & (holed.seed == 1) & (holed.image == "b"), "psnr"] = np.nan
    with_hole = summary.input_margins(holed).set_index("task").loc["denoise", "RCL-EMD margin (dB)"]
    assert with_hole == pytest.approx((2.0 + 5.0 + 2.0) / 3, abs=0.1)  # seed 1: image a's +5 on both sides


def test_the_verdict_rules_apply_in_order_and_a_missing_input_is_named():
    """Controls, then one seed, then the input, then the paper's datasets: a one-seed comparison of two networks
    below the input says "one seed"; a task whose input was not scored says so, not "neither improves"."""
    rows = study_rows(gap=1.0, noise=0.05, one_seed=("copy", "rcl-mmd"))
    rows.loc[rows.method.isin(["rcl-emd", "rcl-mmd"]), "psnr"] -= 7.0  # both below the input
    assert _row(summary.agreement(rows), "RCL-EMD − RCL-MMD").verdict == summary.NO_VERDICT["seed"]
    good = study_rows(gap=1.0, noise=0.05, one_seed=("copy",))
    jdensr = good[~good.method.isin(["noisy input", "copy"])].assign(task="jdensr")  # no input row for JDenSR
    both = pd.concat([good, jdensr], ignore_index=True)
    assert set(summary.agreement(both).verdict) == {summary.NO_VERDICT["controls"]}  # JDenSR's Oracle: no input
    a = summary.agreement(both, checks=summary.controls(good))  # the rule after the controls, as if they held
    row = a[(a.task == "jdensr") & (a.comparison == "RCL-EMD − N2N")].iloc[0]
    assert row.verdict == summary.NO_VERDICT["no input"] and row[summary.BEATS_INPUT] == "input not scored"
    assert "the task's input was not scored" in summary.verdict_counts(a)


def _with_consistency(rows, shift):
    cons = rows[rows.method == "rcl-emd"].assign(method="consistency", psnr=lambda d: d.psnr - shift)
    return pd.concat([rows, cons], ignore_index=True)


def test_the_residual_contrast_is_read_under_the_controls_the_seeds_and_the_input():
    same = summary.residual_contrast_reading(_with_consistency(study_rows(gap=1.0, one_seed=("copy",)), 0.0))
    assert "does not measurably change" in same and "Neither network" not in same
    helps = summary.residual_contrast_reading(_with_consistency(study_rows(gap=1.0, one_seed=("copy",)), 1.0))
    assert "**improves** on consistency only" in helps and "σ=10 (+1.00 dB)" in helps
    below = study_rows(gap=-7.0, one_seed=("copy",))  # RCL-EMD at 23, the input at 25 dB
    assert "Neither network improves" in summary.residual_contrast_reading(_with_consistency(below, 1.0))
    failed = summary.residual_contrast_reading(_with_consistency(study_rows(oracle_margin=-1.0), 1.0))
    assert "no conclusion" in failed and "controls do not all hold" in failed
    one = summary.residual_contrast_reading(_with_consistency(study_rows(seeds=(0,)), 1.0))
    assert "one pre-training seed: no conclusion" in one
    assert "not both among" in summary.residual_contrast_reading(study_rows())


def test_a_residual_contrast_seen_at_one_noise_level_is_read_after_correcting_for_the_levels(monkeypatch):
    """The mixed-range difference includes zero, one level's excludes it: "does change the network" only where
    that level survives Holm's correction over the levels tested; otherwise "weak evidence at most"."""
    rows = study_rows(gap=1.0, one_seed=("copy",))
    rng = np.random.default_rng(1)
    cons = rows[rows.method == "rcl-emd"].copy()
    cons["method"] = "consistency"
    cons["psnr"] = cons.psnr - np.where(cons.condition == "σ=10", 1.0, 0.0) + rng.normal(0, 0.05, len(cons))
    table = pd.concat([rows, cons], ignore_index=True)
    strong = summary.residual_contrast_reading(table)
    assert "**The residual contrast does change the network** (at least one level keeps p < 0.05 after Holm's " \
           "correction for 3)" in strong and "σ=10 (+1.0" in strong
    exact = table.copy()  # every difference at σ=10 exactly +1 dB: no p-value there, but a clear member of the family
    exact.loc[(exact.method == "consistency") & (exact.condition == "σ=10"), "psnr"] = (
        table.loc[(table.method == "rcl-emd") & (table.condition == "σ=10"), "psnr"].to_numpy() - 1.0)
    assert "**The residual contrast does change the network**" in summary.residual_contrast_reading(exact)
    monkeypatch.setattr(summary, "holm", lambda p: p * 0 + 1.0)  # no level survives the correction
    weak = summary.residual_contrast_reading(table)
    assert "**weak evidence at most**" in weak and "does change" not in weak


def test_signed_differences_never_read_minus_zero():
    """A difference that rounds to zero prints as +0.00 (a reader takes "-0.00" for a sign); others keep theirs."""
    from rcl.summary import signed

    assert [signed(v) for v in (-0.004, -0.0, 0.004, 0.005001, -1.236)] == ["+0.00", "+0.00", "+0.00", "+0.01", "-1.24"]
    assert signed(-0.0004, 3) == "+0.000" and signed(2.5, 1) == "+2.5" and signed(float("nan")) == "+nan"


def test_noisiest_level_is_the_largest_sigma_whatever_the_order():
    from rcl.summary import noisiest_level

    long = pd.DataFrame({"comparison": ["A − B"] * 4 + ["C − D"],
                         "condition": ["σ=5", "σ=20", "σ~U[0,20]", "σ=10", "σ=40"],
                         "diff (dB)": [1.0, 2.0, 3.0, 4.0, 5.0]})  # fmt: skip
    assert noisiest_level(long, "A − B")["condition"] == "σ=20" and noisiest_level(long, "A − B")["diff (dB)"] == 2.0
    assert noisiest_level(long, "E − F") is None and noisiest_level(long.iloc[:0], "A − B") is None


def test_an_interval_bound_near_zero_shows_its_side():
    """A bound that rounds to zero gets the decimals that show which side of zero it lies on; an exact zero reads
    0.00, and a bound too small even for those keeps its sign rather than claim the other side."""
    from rcl.summary import bounds

    assert bounds(-0.16, 0.434) == "[-0.16, 0.43]"
    assert bounds(-0.004, 0.0123) == "[-0.004, 0.01]" and bounds(0.0004, 0.02) == "[0.0004, 0.02]"
    assert bounds(-0.0, 0.0) == "[0.00, 0.00]" and bounds(-1e-7, 1) == "[-0.00, 1.00]"
    assert bounds(-0.16, 0.43, 3) == "[-0.160, 0.430]" and bounds(float("nan"), 1) == "[nan, 1.00]"
