"""Result tables: ours computed from the rows, the paper's only in its own columns, verdicts by the CI."""

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


def test_table1_quotes_the_paper_only_in_paper_columns():
    t = summary.table1(proxy_rows())
    assert t.loc["RCL-EMD", "PSNR (paper, VOC)"] == f"{paper.TABLE1['rcl-emd']['VOC'][0]:.2f}"
    assert t.loc["noisy input", "PSNR (paper, VOC)"] == ""
    assert not any(f"{paper.TABLE1['rcl-emd']['VOC'][0]:.2f}" in v for v in t["PSNR (ours)"])


@pytest.mark.parametrize("gap, verdict", [(1.0, "agrees"), (-1.0, "disagrees"), (0.0, "inconclusive")])
def test_agreement_verdict_follows_sign_and_interval(gap, verdict):
    a = summary.agreement(proxy_rows(gap=gap, noise=0.05 if gap else 0.5))
    row = a[a.comparison == "RCL-EMD − N2N"].iloc[0]
    assert row.verdict == verdict
    assert row["paper (dB)"] == pytest.approx(paper.TABLE1["rcl-emd"]["VOC"][0] - paper.TABLE1["n2n"]["VOC"][0])


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
    proxy = {k: d[k] for k in config.PROXY_KEYS}
    pretrain = {"dataset": "builtin", "data_dir": None, "seed": 0, "runs_dir": "r"}
    base = {"profile": "smoke", "dataset": "builtin", "seed": 0, "seeds": d["seeds"], "methods": d["methods"],
            "tasks": d["tasks"], "proxy": proxy, "pretrain": pretrain}  # fmt: skip
    book = results.save(proxy_rows(), "proxy", base, tmp_path)
    results.save(proxy_rows(), "proxy", {**base, "pretrain": {**base["pretrain"], "tau": 1.0}}, tmp_path)
    results.save(proxy_rows(), "proxy", {**base, "methods": ["n2n"]}, tmp_path)
    assert summary.book_result(tmp_path, "proxy", "smoke").path == book
    assert summary.book_result(tmp_path, "proxy", "cpu") is None
