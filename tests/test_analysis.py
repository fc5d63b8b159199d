"""The premise study's measures: per-anchor AUC, top-1, residual kinds, shift curve."""

import pytest
import torch

from rcl import analysis, data


def test_anchor_auc_and_top1_on_known_matrices():
    perfect = torch.tensor([[0.0, 1.0, 2.0], [3.0, 0.5, 1.0], [2.0, 2.0, 0.1]])
    assert torch.equal(analysis.anchor_auc(perfect), torch.ones(3))
    assert torch.equal(analysis.top1_accuracy(perfect), torch.ones(3))
    worst = perfect.max() + 1 - perfect  # reverse every ranking
    assert torch.equal(analysis.anchor_auc(worst), torch.zeros(3))
    ties = torch.ones(4, 4)
    assert torch.equal(analysis.anchor_auc(ties), torch.full((4,), 0.5))
    assert torch.equal(analysis.top1_accuracy(ties), torch.zeros(4))
    sim = torch.eye(3)  # similarities: larger is closer
    assert torch.equal(analysis.anchor_auc(sim, similarity=True), torch.ones(3))


def test_anchor_auc_matches_mann_whitney(rng):
    from scipy.stats import mannwhitneyu

    D = torch.rand(6, 6, generator=rng, dtype=torch.float64)
    auc = analysis.anchor_auc(D)
    for j in range(6):
        neg = torch.cat([D[j, :j], D[j, j + 1 :]])
        u = mannwhitneyu(neg.numpy(), [D[j, j].item()]).statistic
        assert auc[j].item() == pytest.approx(u / 5)


@pytest.fixture(scope="module")
def small_dataset():
    g = torch.Generator().manual_seed(0)
    images = {f"i{k}": torch.rand(3, 48, 48, generator=g) * 0.5 + 0.25 for k in range(6)}
    return data.NoisyImages.build(images, seed=1, sigma_range=(5.0, 20.0))


def test_residual_kinds(small_dataset):
    g = torch.Generator().manual_seed(0)
    noise1, _ = analysis.residual_pairs(small_dataset, 16, "noise", generator=g)
    assert noise1.shape == (6, 3, 16, 16) and noise1.abs().mean() > 0.005
    zeros, _ = analysis.residual_pairs(small_dataset, 16, "identity", generator=g)
    assert torch.equal(zeros, torch.zeros_like(zeros))
    image, _ = analysis.residual_pairs(small_dataset, 16, "zero", generator=g)
    assert image.mean() > 0.2
    with pytest.raises(ValueError, match="valid"):
        analysis.residual_pairs(small_dataset, 16, "oracle")


def test_premise_study_shape_and_true_noise_separates(small_dataset):
    df = analysis.premise_study(small_dataset, [16], distance_names=("emd",), repeats=2, seed=0)
    assert set(df.measure) == {"emd", "cosine"} and len(df) == 2 * 2 * 6
    assert df[df.measure == "emd"].auc.mean() > 0.8


def test_loss_table_identity_is_log_n(small_dataset):
    lt = analysis.loss_table(small_dataset, 16, [0.01, 1.0], kinds=("identity", "noise"))
    ident = lt[lt.residual == "identity"].loss
    assert ident.to_numpy() == pytest.approx([torch.log(torch.tensor(6.0)).item()] * 2, rel=1e-5)


def test_shift_curve_cosine_collapses_distances_do_not(rng):
    res = 0.05 * torch.randn(3, 40, 60, generator=rng)
    curve = analysis.shift_curve(res, 32, [0, 1, 4])
    assert curve.cosine[0] == pytest.approx(1.0) and abs(curve.cosine[1]) < 0.2
    assert curve.emd[0] == pytest.approx(0.0, abs=1e-7) and curve.emd[1] < 0.2 * 0.05


def test_the_spectrum_reading_tells_noise_nothing_regions_and_a_drawn_pattern_apart():
    """White noise reads white, a zero residual flat, a smooth ramp as following regions, and stripes of period 8
    as a periodic pattern of that period — each against the true noise's spectrum."""
    import math

    g = torch.Generator().manual_seed(0)
    n = 0.05 * torch.randn(3, 64, 64, generator=g)
    ramp = torch.linspace(-0.1, 0.1, 64)[None, None].expand(3, 64, 64)
    stripes = 0.05 * torch.cos(2 * math.pi * torch.arange(64) / 8)[None, None].expand(3, 64, 64)
    other = 0.05 * torch.randn(3, 64, 64, generator=g)
    spec = analysis.spectrum_reading({"true noise": n, "zero": torch.zeros(3, 64, 64) + 0.02, "ramp": ramp,
                                      "stripes": stripes, "other noise": other})
    looks = spec["looks like"]
    assert looks["true noise"].startswith("white: the reference") and looks["other noise"].startswith("white, like")
    assert looks["zero"].startswith("flat") and looks["ramp"].startswith("smooth")
    assert looks["stripes"] == "a periodic pattern (period about 8.0 px)"
    assert spec.loc["zero", "RMS"] == pytest.approx(0.02)
    with pytest.raises(ValueError, match="reference='true noise'"):
        analysis.spectrum_reading({"zero": torch.zeros(3, 8, 8)})
