"""The residual contrastive loss (Eq. 3, Algorithm 1), the consistency loss (Eq. 5) and Eq. 6."""

import math

import pytest
import torch

from rcl import distances, encoders, losses


@pytest.mark.parametrize("name", ["emd", "bd", "mmd"])
@pytest.mark.parametrize("tau", [0.01, 0.5])
def test_batched_loss_equals_algorithm_1_loop(name, tau, rng):
    # a fixed MMD bandwidth: the median heuristic would pick a different one for each single pair
    d = distances.get_distance(name, **({"bandwidth": 0.05} if name == "mmd" else {}))
    r1 = 0.05 * torch.randn(5, 3, 8, 8, generator=rng, dtype=torch.float64)
    r2 = r1 + 0.02 * torch.randn(5, 3, 8, 8, generator=rng, dtype=torch.float64)
    batched = losses.residual_contrastive_loss(r1, r2, d, tau)
    total = 0.0
    for j in range(5):  # Algorithm 1, lines 4-8, one distance at a time
        pos = d(r1[j : j + 1], r2[j : j + 1]).item()
        negs = [d(r1[j : j + 1], r2[i : i + 1]).item() for i in range(5) if i != j]
        denom = math.exp(-pos / tau) + sum(math.exp(-n / tau) for n in negs)
        total += -math.log(math.exp(-pos / tau) / denom)
    assert batched.item() == pytest.approx(total, rel=1e-4)
    mean = losses.residual_contrastive_loss(r1, r2, d, tau, reduction="mean")
    assert mean.item() == pytest.approx(total / 5, rel=1e-4)


@pytest.mark.parametrize("name", ["emd", "bd", "mmd"])
def test_identical_residuals_give_log_n_plus_1(name, rng):
    r = 0.03 * torch.randn(1, 3, 8, 8, generator=rng).expand(7, -1, -1, -1).contiguous()
    d = distances.get_distance(name)
    mean = losses.residual_contrastive_loss(r, r, d, tau=0.1, reduction="mean")
    assert mean.item() == pytest.approx(math.log(7), rel=1e-5)
    total = losses.residual_contrastive_loss(r, r, d, tau=0.1)
    assert total.item() == pytest.approx(7 * math.log(7), rel=1e-5)


def test_loss_prefers_matching_pairs(rng):
    scales = torch.linspace(0.01, 0.1, 6).view(6, 1, 1, 1)
    r1 = scales * torch.randn(6, 3, 16, 16, generator=rng)
    r2 = scales * torch.randn(6, 3, 16, 16, generator=rng)
    d = distances.get_distance("emd")
    good = losses.residual_contrastive_loss(r1, r2, d, 0.005, "mean")
    bad = losses.residual_contrastive_loss(r1, r2.flip(0), d, 0.005, "mean")
    assert good < math.log(6) < bad


def test_loss_bad_arguments():
    d = distances.get_distance("emd")
    with pytest.raises(ValueError, match="tau"):
        losses.residual_contrastive_loss(torch.rand(2, 3, 4, 4), torch.rand(2, 3, 4, 4), d, 0.0)
    with pytest.raises(ValueError, match="equal length"):
        losses.residual_contrastive_loss(torch.rand(2, 3, 4, 4), torch.rand(3, 3, 4, 4), d, 0.1)


@pytest.fixture(scope="module")
def random_consistency():
    return losses.ConsistencyLoss(g_e="random", arch="resnet18", layers=("layer1", "layer2"))


def test_consistency_zero_at_identity_positive_otherwise(random_consistency, rng):
    x = torch.rand(2, 3, 32, 32, generator=rng)
    assert random_consistency(x, x).item() == pytest.approx(0.0, abs=1e-12)
    fx = (x + 0.1 * torch.randn(2, 3, 32, 32, generator=rng)).requires_grad_()
    value = random_consistency(x, fx)
    assert value.item() > 0
    value.backward()
    assert fx.grad is not None and fx.grad.abs().sum() > 0
    assert all(p.grad is None for p in random_consistency.encoder.parameters())


def test_consistency_encoder_stays_frozen_in_train_mode(random_consistency):
    random_consistency.train()
    assert not random_consistency.encoder.training
    assert not any(p.requires_grad for p in random_consistency.encoder.parameters())


@pytest.mark.parametrize("arch", ["resnet18", "resnet50"])
def test_folding_batchnorm_keeps_the_encoders_function(arch, rng):
    """fold_batchnorm: the same features and input gradient as g_e as loaded (float32 rounding), no BatchNorm
    left, frozen, and the loaded g_e untouched — with BatchNorm statistics far from their initial values."""
    model = encoders.build_resnet(arch, seed=0)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):  # trained-looking statistics and affine parameters
            for t, lo, hi in ((m.running_mean, -0.5, 0.5), (m.running_var, 0.5, 2.0), (m.weight, 0.5, 1.5),
                              (m.bias, -0.3, 0.3)):  # fmt: skip
                t.data = lo + (hi - lo) * torch.rand(t.shape, generator=rng)
    model = encoders._frozen(model)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    folded = encoders.fold_batchnorm(model, ("layer1", "layer2"))
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in folded.modules())
    assert not any(p.requires_grad for p in folded.parameters()) and not folded.training
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())
    x = torch.rand(2, 3, 64, 64, generator=rng, requires_grad=True)

    def stages(e):
        h = e.maxpool(e.relu(e.bn1(e.conv1(x))))
        return e.layer2(e.layer1(h))

    a, b = stages(model), stages(folded)
    assert float(((a - b).norm() / a.norm()).detach()) < 1e-5
    (ga,), (gb,) = torch.autograd.grad(a.square().mean(), x), torch.autograd.grad(b.square().mean(), x)
    assert float((ga - gb).norm() / ga.norm()) < 1e-4


def test_consistency_loss_computes_with_the_folded_encoder(rng):
    """features() runs the folded copy (changing it changes the features), which matches g_e as loaded."""
    c = losses.ConsistencyLoss(g_e="random", arch="resnet18", layers=("layer1", "layer2"))
    x = torch.rand(2, 3, 32, 32, generator=rng)
    folded, loaded = c.features(x), c.features(x, c.encoder)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in c.folded.modules())
    assert all(float((p - q).norm() / q.norm()) < 1e-5 for p, q in zip(folded, loaded))
    with torch.no_grad():
        c.folded.conv1.bias += 1.0
    assert not torch.allclose(c.features(x)[0], folded[0])
    assert torch.equal(c.features(x, c.encoder)[0], loaded[0])  # g_e as loaded is a separate module


def test_unknown_encoder_options():
    with pytest.raises(ValueError, match="imagenet"):
        losses.ConsistencyLoss(g_e="clip")
    with pytest.raises(ValueError, match="layer1"):
        losses.ConsistencyLoss(g_e="random", arch="resnet18", layers=("conv5",))
    with pytest.raises(ValueError, match="state_dict"):
        losses.ConsistencyLoss(g_e="self-supervised", arch="resnet18")


def test_total_is_alpha_weighted_sum():
    assert losses.rcl_loss(torch.tensor(2.0), torch.tensor(0.5), alpha=1e-3).item() == pytest.approx(0.502)


def test_median_tau_scale_makes_the_loss_invariant_to_the_distance_scale(rng):
    r1, r2 = torch.randn(6, 3, 8, 8, generator=rng), torch.randn(6, 3, 8, 8, generator=rng)
    emd = distances.get_distance("emd")
    scaled = lambda a, b: 10.0 * emd(a, b)  # noqa: E731
    loss = lambda d, scale: losses.residual_contrastive_loss(r1, r2, d, 0.5, tau_scale=scale)  # noqa: E731
    assert loss(scaled, "median").item() == pytest.approx(loss(emd, "median").item(), rel=1e-5)
    assert loss(scaled, "absolute").item() != pytest.approx(loss(emd, "absolute").item(), rel=1e-3)
    d = emd(r1, r2)
    off = d[~torch.eye(6, dtype=torch.bool)]
    assert losses.effective_tau(d, 0.5, "median").item() == pytest.approx(0.5 * off.median().item())
    for shape in [(6, 6), (7, 6), (4, 9), (2, 2), (1, 5)]:  # the median of the off-diagonal entries, exactly
        d = torch.rand(*shape, generator=rng)
        off = d[~torch.eye(*shape, dtype=torch.bool)] if min(shape) > 1 else d
        assert torch.equal(losses.effective_tau(d, 0.5, "median"), 0.5 * off.median())
    with pytest.raises(ValueError, match="tau_scale must be one of"):
        losses.effective_tau(d, 0.5, "mean")


def test_no_encoder_means_no_consistency_term(rng):
    c = losses.ConsistencyLoss("none", "resnet18", ("layer1",))
    x = torch.rand(2, 3, 32, 32, generator=rng)
    assert c.train().encoder is None and c(x, torch.zeros_like(x)).item() == 0.0


def test_folding_refuses_stages_that_are_not_the_first_ones():
    model = encoders._frozen(encoders.build_resnet("resnet18", seed=0))
    for stages in [("layer2",), ("layer1", "layer3"), ("layer9",), ()]:
        with pytest.raises(ValueError, match="stages="):
            encoders.fold_batchnorm(model, stages)
