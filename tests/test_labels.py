"""The label-efficiency study (paper Table 3): shared subsets and seeds, nesting, the 0-label row, cost."""

import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from rcl import evaluate, labels, train


def test_labels_to_match_on_a_known_curve():
    counts = [1, 10, 100, 1000]
    psnrs = [20 + 3 * math.log10(c) for c in counts]
    assert labels.labels_to_match(counts, psnrs, 24.5) == pytest.approx(10**1.5)
    assert labels.labels_to_match(counts, psnrs, 20.0) == pytest.approx(1.0)
    assert math.isnan(labels.labels_to_match(counts, psnrs, 40.0))  # no extrapolation


def test_annotation_cost_on_a_synthetic_study():
    rows = []
    for seed in range(4):
        for n in (10, 100, 1000):
            rows.append({"arm": "SL", "labels": n, "seed": seed, "psnr": 20 + 3 * math.log10(n) + 0.01 * seed})
        rows.append({"arm": "RCL+SL", "labels": 10, "seed": seed, "psnr": 26.0 + 0.01 * seed})
    out = labels.annotation_cost(pd.DataFrame(rows), 10)
    assert out["sl_labels"] == pytest.approx(100.0, rel=1e-6)  # SL needs 100 labels for 26 dB
    assert out["saving"] == pytest.approx(0.9)
    assert out["ci95"][0] <= 100.0 + 1e-6 <= out["ci95"][1] + 1e-6
    assert out["seeds"] == 4 < labels.MIN_BOOTSTRAP_SEEDS and out["sl_rises"]
    dips = pd.DataFrame([{**r, "psnr": r["psnr"] - 5} if r["arm"] == "SL" and r["labels"] == 100 else r for r in rows])
    assert not labels.annotation_cost(dips, 10)["sl_rises"]  # SL worse at 100 labels than at 10


@pytest.fixture(scope="module")
def small_study(tmp_path_factory):
    runs = tmp_path_factory.mktemp("runs")
    run = train.pretrain(train.make_config("rcl-emd", "smoke", runs_dir=str(runs), progress="false"))
    cfg = labels.LabelConfig(counts=(0, 2, 4), seeds=(0, 1), label_size=32, steps=2, batch_size=2,
                               max_side=96, test_draws=1)
    return run, cfg


def test_arms_share_subsets_and_seeds_and_subsets_are_nested(small_study, monkeypatch):
    run, cfg = small_study
    calls = []
    real = labels.finetune

    def spy(model, x, y, c, seed, device="cpu"):
        calls.append((x.clone(), y.clone(), seed))
        return real(model, x, y, c, seed, device)

    monkeypatch.setattr(labels, "finetune", spy)
    labels.label_efficiency(run.path, cfg, cache=False)
    assert len(calls) == 2 * 2 * 2  # seeds × counts > 0 × arms
    for sl, rcl in zip(calls[::2], calls[1::2]):  # SL then RCL+SL for each (seed, count)
        assert torch.equal(sl[0], rcl[0]) and torch.equal(sl[1], rcl[1]) and sl[2] == rcl[2]
    for seed_calls in (calls[:4], calls[4:]):
        small, large = seed_calls[0][0], seed_calls[2][0]
        assert len(small) == 2 and len(large) == 4 and torch.equal(large[:2], small)  # 2 ⊂ 4


def test_zero_label_row_is_the_pretrained_network(small_study):
    run, cfg = small_study
    df = labels.label_efficiency(run.path, cfg)
    zero = df[(df.labels == 0) & (df.arm != labels.REFERENCE)]
    assert set(zero.arm) == {"RCL+SL"} and "SL" in set(df.arm)
    direct = evaluate.end_to_end(run.model(), cfg.proxy())
    np.testing.assert_allclose(zero[zero.seed == 0].psnr.to_numpy(), direct.psnr.to_numpy())
    inputs = df[df.arm == labels.REFERENCE]  # the test inputs themselves, scored like every output
    reference = evaluate.reference_evaluate(evaluate.ProxyConfig(**{**cfg.proxy().__dict__, "trials": 1}))
    np.testing.assert_allclose(inputs[inputs.seed == 0].psnr.to_numpy(), reference.psnr.to_numpy(), rtol=1e-6)
    assert set(inputs.labels) == {0} and set(inputs.seed) == set(cfg.seeds)
    again = labels.label_efficiency(run.path, cfg)  # reloaded from the run directory
    assert again.equals(df) and (run.path / "labels").is_dir()


def test_the_test_cases_are_those_of_the_proxy_evaluation_with_the_same_seed(small_study):
    """``test_seed`` is the proxy evaluation's ``seed``: with notebook 04's seed, notebook 05 scores the same
    test cases (the noisy inputs' rows equal the proxy protocol's reference rows of that seed)."""
    run, cfg = small_study
    other = replace(cfg, counts=(0,), seeds=(0,), test_seed=3)
    assert other.proxy().seed == 3 and other.key() != replace(other, test_seed=0).key()
    df = labels.label_efficiency(run.path, other, cache=False)
    inputs = df[df.arm == labels.REFERENCE]
    ref3 = evaluate.reference_evaluate(evaluate.ProxyConfig(task="denoise", trials=1, seed=3, **cfg.eval_set()))
    ref0 = evaluate.reference_evaluate(evaluate.ProxyConfig(task="denoise", trials=1, seed=0, **cfg.eval_set()))
    np.testing.assert_allclose(inputs.psnr.to_numpy(), ref3.psnr.to_numpy(), rtol=1e-6)
    noisy = (ref3.condition != "σ=0").to_numpy()
    assert not np.allclose(ref3.psnr[noisy], ref0.psnr[noisy])  # other draws of the test noise


def test_each_pretraining_seeds_run_is_fine_tuned_with_its_own_seed(small_study, monkeypatch, tmp_path):
    """label_study's unit is the pre-training seed: the run of seed s is fine-tuned with seed s, so the
    seed column varies pre-training and fine-tuning together."""
    run, cfg = small_study
    other = train.pretrain(train.make_config("rcl-emd", "smoke", runs_dir=str(tmp_path), seed=1, progress="false"))
    calls = []
    real = labels.label_efficiency

    def spy(path, c, device="cpu", cache=True):
        calls.append((Path(path), c.seeds))
        return real(path, c, device, cache=False)

    monkeypatch.setattr(labels, "label_efficiency", spy)
    df = labels.label_study({0: run.path, 1: other.path}, cfg)
    assert calls == [(run.path, (0,)), (other.path, (1,))]
    assert set(df.seed) == {0, 1}
    zero = df[(df.labels == 0) & (df.arm == "RCL+SL")].groupby("seed").psnr.mean()
    assert zero[0] != zero[1]  # two pre-trained networks, not one
    with pytest.raises(ValueError, match="one run per seed"):
        labels.label_study({0: run.path}, cfg)


def test_label_config_validates():
    with pytest.raises(ValueError, match="increasing"):
        labels.LabelConfig(counts=(10, 0))
    with pytest.raises(ValueError, match="batch_size"):
        labels.LabelConfig(batch_size=0)


def test_a_run_of_another_seed_is_refused(small_study):
    run, cfg = small_study
    with pytest.raises(ValueError, match="pre-trained with seed 0, not 1"):
        labels.label_study({0: run.path, 1: run.path}, cfg)
