"""Properties of the NLF noise model (paper §4 "Simulation")."""

import math

import pytest
import torch

from rcl import noise


def gradient_image(h: int = 64, w: int = 64) -> torch.Tensor:
    return torch.linspace(0, 1, h * w).reshape(1, 1, h, w).expand(1, 3, h, w).contiguous()


def test_empirical_variance_matches_nlf(rng):
    """Var[x | y] = λ_shot·y + λ_read per intensity bin, within 5 standard errors."""
    y = gradient_image()
    p = noise.NLFParams(torch.tensor([4e-3]), torch.tensor([1e-4]))
    level, measured, model, count = noise.empirical_nlf(y, p, n_draws=200, bins=16, generator=rng)
    stderr = model * torch.sqrt(2.0 / count)  # std of a Gaussian variance estimate
    assert torch.all((measured - model).abs() < 5 * stderr)
    # The test has the power to see a missing shot term: read-only variance is far outside tolerance.
    read_only = p.lambda_read.double()
    assert torch.any((measured - read_only).abs() > 50 * stderr)
    # And model variance grows with intensity as the shot term says.
    slope = (model[-1] - model[0]) / (level[-1] - level[0])
    assert slope.item() == pytest.approx(4e-3, rel=1e-6)


def test_variance_is_per_image(rng):
    """Each image of a batch gets its own parameters."""
    y = torch.full((2, 3, 64, 64), 0.5)
    p = noise.NLFParams(torch.tensor([0.0, 0.0]), torch.tensor([1e-4, 4e-4]))
    x = noise.add_noise(y, p, rng)
    var = (x - y).flatten(1).var(1)
    assert var[0].item() == pytest.approx(1e-4, rel=0.05)
    assert var[1].item() == pytest.approx(4e-4, rel=0.05)


def test_sigma_in_range_and_exact(rng):
    y = torch.rand(500, 3, 8, 8, generator=rng)
    p, sigma = noise.sample_nlf(y, rng, sigma_range=(0.0, 20.0))
    s = noise.image_sigma(y, p)
    assert torch.all((s >= 0) & (s <= 20.0 + 1e-9))
    torch.testing.assert_close(s.double(), sigma.double(), rtol=1e-5, atol=1e-6)
    assert (p.lambda_shot >= 0).all() and (p.lambda_read >= 0).all()
    # σ spreads over the whole range, not a corner of it
    assert sigma.min() < 2 and sigma.max() > 18


def test_measured_sigma_matches_drawn(rng):
    y = torch.rand(8, 3, 128, 128, generator=rng)
    p, sigma = noise.sample_nlf(y, rng, sigma_range=(5.0, 20.0))
    x = noise.add_noise(y, p, rng)
    measured = 255 * (x - y).flatten(1).pow(2).mean(1).sqrt()
    torch.testing.assert_close(measured.double(), sigma.double(), rtol=0.03, atol=0)


def test_parameters_unique_per_image(rng):
    y = torch.rand(1000, 3, 4, 4, generator=rng)
    p, _ = noise.sample_nlf(y, rng)
    pairs = torch.stack([p.lambda_shot, p.lambda_read], 1)
    assert torch.unique(pairs, dim=0).shape[0] == 1000


def test_second_draw_independent_same_parameters(rng):
    y = torch.rand(4, 3, 64, 64, generator=rng)
    p, _ = noise.sample_nlf(y, rng, sigma_range=(10, 20))
    x1, x2 = noise.noisy_pair(y, p, rng)
    n1, n2 = (x1 - y).flatten(), (x2 - y).flatten()
    corr = torch.corrcoef(torch.stack([n1, n2]))[0, 1]
    assert abs(corr.item()) < 5 / math.sqrt(n1.numel())
    assert not torch.equal(x1, x2)
    v1, v2 = (x1 - y).flatten(1).var(1), (x2 - y).flatten(1).var(1)
    torch.testing.assert_close(v1, v2, rtol=0.1, atol=0)


def test_seeded_and_reproducible():
    y = torch.rand(3, 3, 16, 16, generator=noise.make_generator(0))
    a = noise.add_noise(y, noise.sample_nlf(y, noise.make_generator(5))[0], noise.make_generator(7))
    b = noise.add_noise(y, noise.sample_nlf(y, noise.make_generator(5))[0], noise.make_generator(7))
    c = noise.add_noise(y, noise.sample_nlf(y, noise.make_generator(5))[0], noise.make_generator(8))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_clip_keeps_unit_range(rng):
    y = torch.rand(2, 3, 32, 32, generator=rng)
    p = noise.NLFParams(torch.tensor([0.01, 0.01]), torch.tensor([0.01, 0.01]))
    assert noise.add_noise(y, p, rng, clip=True).min() >= 0
    assert noise.add_noise(y, p, rng, clip=True).max() <= 1
    assert noise.add_noise(y, p, rng).min() < 0  # unclipped keeps the model's moments


def test_runs_on_device(device):
    g = noise.make_generator(0, device)
    y = torch.rand(2, 3, 8, 8, device=device)
    p, _ = noise.sample_nlf(y, g)
    x = noise.add_noise(y, p, g)
    assert x.device.type == device.type and x.shape == y.shape


def test_bad_input_errors():
    with pytest.raises(ValueError, match="B×C×H×W"):
        noise.sample_nlf(torch.rand(3, 8, 8))
    with pytest.raises(ValueError, match="sigma_range"):
        noise.sample_nlf(torch.rand(1, 3, 8, 8), sigma_range=(5, 1))
    with pytest.raises(ValueError, match="2 NLF parameter pairs for a batch of 3"):
        noise.add_noise(torch.rand(3, 3, 8, 8), noise.NLFParams(torch.ones(2), torch.ones(2)))
