"""Properties of the residual distances (paper §3.4, Eq. 4; RCL-BD and RCL-MMD of Tables 1–2)."""

import itertools
import math

import numpy as np
import pytest
import scipy.stats
import torch

from rcl import distances
from rcl.distances import EMD, MMD, Bhattacharyya, get_distance

# One instance per distance family and option that changes the computation. MMD uses a fixed bandwidth
# where a test compares calls on different batches (the median heuristic depends on the batch).
ALL = {
    "emd": EMD(),
    "emd_per_channel": EMD(reduction="per_channel"),
    "bd": Bhattacharyya(),
    "bd_per_channel": Bhattacharyya(reduction="per_channel"),
    "bd_histogram": Bhattacharyya(method="histogram", value_range=(-3.0, 3.0), bins=16),
    "bd_histogram_default": Bhattacharyya(method="histogram"),  # far bins underflow to 0
    "mmd": MMD(bandwidth=0.8, n_features=64),
    "mmd_squared_per_channel": MMD(reduction="per_channel", bandwidth=0.8, n_features=64, squared=True),
    "mmd_median": MMD(n_features=64),
}
METRICS = ["emd", "emd_per_channel", "mmd"]  # satisfy the triangle inequality


def residuals(rng, b=4, c=2, h=3, w=5, dtype=torch.float64, loc=0.0, scale=1.0):
    return (loc + scale * torch.randn(b, c, h, w, generator=rng)).to(dtype)


def scipy_emd(a, b, per_channel):
    a, b = a.detach().double().numpy(), b.detach().double().numpy()
    out = np.zeros((a.shape[0], b.shape[0]))
    for i, j in itertools.product(range(a.shape[0]), range(b.shape[0])):
        if per_channel:
            out[i, j] = np.mean(
                [scipy.stats.wasserstein_distance(a[i, k].ravel(), b[j, k].ravel()) for k in range(a.shape[1])]
            )
        else:
            out[i, j] = scipy.stats.wasserstein_distance(a[i].ravel(), b[j].ravel())
    return out


@pytest.fixture
def small_chunks(monkeypatch):
    """Force every chunked loop to run many small slices, and EMD to use its chunked (CUDA) backward."""
    monkeypatch.setattr(distances, "CHUNK_ELEMENTS", 7)
    monkeypatch.setattr(distances, "_pairwise_l1", distances._PairwiseL1.apply)


# ----------------------------------------------------------------------------------------------- EMD
@pytest.mark.parametrize("reduction", ["pooled", "per_channel"])
@pytest.mark.parametrize("sizes", [((3, 5), (3, 5)), ((3, 5), (4, 4)), ((2, 7), (3, 3))], ids=str)
def test_emd_matches_scipy(rng, reduction, sizes):
    """Equal sizes and unequal sizes (merged quantile grid) are both exact W₁."""
    a = residuals(rng, b=3, h=sizes[0][0], w=sizes[0][1])
    b = residuals(rng, b=4, h=sizes[1][0], w=sizes[1][1], loc=0.3, scale=1.7)
    d = EMD(reduction=reduction)(a, b)
    np.testing.assert_allclose(d.numpy(), scipy_emd(a, b, reduction == "per_channel"), rtol=1e-6, atol=1e-12)


def test_emd_float32_large_matches_scipy(rng):
    """Residual-sized inputs in float32 (cdist's accumulation) still agree with scipy to ~1e-5."""
    a = residuals(rng, b=3, c=3, h=64, w=64, dtype=torch.float32, scale=0.05)
    b = residuals(rng, b=2, c=3, h=48, w=64, dtype=torch.float32, scale=0.03)
    np.testing.assert_allclose(EMD()(a, b).numpy(), scipy_emd(a, b, False), rtol=1e-4, atol=1e-7)


def test_quantile_grid_partitions_unit_interval():
    ia, ib, w = distances.quantile_grid(4, 6)
    assert w.sum().item() == pytest.approx(1.0, abs=1e-15)
    assert (w > 0).all() and len(w) <= 4 + 6 - 1
    assert ia.max().item() == 3 and ib.max().item() == 5
    assert (ia.diff() >= 0).all() and (ib.diff() >= 0).all()


def test_emd_gradient_is_sign_over_n():
    """d W₁ / d u₍ₖ₎ = sign(u₍ₖ₎ − v₍ₖ₎)/n, routed through the sort permutation."""
    u = torch.tensor([[[[3.0, 0.0, 2.0, 1.0]]]], dtype=torch.float64, requires_grad=True)
    v = torch.tensor([[[[0.5, 2.5, 2.5, 5.0]]]], dtype=torch.float64)
    EMD()(u, v).sum().backward()
    # sorted u = 0,1,2,3 vs sorted v = .5,2.5,2.5,5 → all below → −1/4, scattered to original positions
    assert u.grad.flatten().tolist() == [-0.25] * 4
    assert EMD()(u, v).item() == pytest.approx((0.5 + 1.5 + 0.5 + 2.0) / 4)


def test_chunked_l1_backward_equals_cdist_backward(rng, small_chunks):
    x = torch.randn(2, 3, 11, generator=rng, dtype=torch.float64, requires_grad=True)
    y = torch.randn(2, 5, 11, generator=rng, dtype=torch.float64, requires_grad=True)
    weights = torch.randn(2, 3, 5, generator=rng, dtype=torch.float64)
    torch.testing.assert_close(distances._PairwiseL1.apply(x, y), torch.cdist(x, y, p=1))
    ours = torch.autograd.grad((distances._PairwiseL1.apply(x, y) * weights).sum(), (x, y))
    reference = torch.autograd.grad((torch.cdist(x, y, p=1) * weights).sum(), (x, y))
    for g, r in zip(ours, reference, strict=True):
        torch.testing.assert_close(g, r)
    # one input without gradient
    (gx,) = torch.autograd.grad(distances._PairwiseL1.apply(x, y.detach()).sum(), x)
    torch.testing.assert_close(gx, torch.autograd.grad(torch.cdist(x, y.detach(), p=1).sum(), x)[0])


# ---------------------------------------------------------------------------------- shared properties
@pytest.mark.parametrize("name", ALL)
def test_symmetric_nonnegative_zero_on_identical(rng, name):
    d = ALL[name]
    a, b = residuals(rng, b=4), residuals(rng, b=3, loc=0.2, scale=0.7)
    ab, ba, aa = d(a, b), d(b, a), d(a, a)
    assert ab.shape == (4, 3)
    torch.testing.assert_close(ab, ba.T, rtol=1e-12, atol=1e-12)
    assert (ab >= 0).all() and (aa >= 0).all()
    assert torch.all(aa.diagonal() == 0), aa.diagonal()
    assert (ab > 1e-3).all()  # distinct distributions are told apart


@pytest.mark.parametrize("name", METRICS)
def test_triangle_inequality(rng, name):
    x = torch.cat([residuals(rng, b=3, scale=s, loc=m) for s, m in [(0.5, 0.0), (1.0, 0.3), (2.0, -0.5)]])
    dist = ALL[name](x, x)
    for i, j, k in itertools.product(range(len(x)), repeat=3):
        assert dist[i, k] <= dist[i, j] + dist[j, k] + 1e-12


# the median bandwidth depends on the batch, so a pair alone would get another kernel: fixed σ here
@pytest.mark.parametrize("name", [name for name in ALL if name != "mmd_median"])
def test_pairwise_equals_loop_over_pairs(rng, name):
    d = ALL[name]
    a, b = residuals(rng, b=3), residuals(rng, b=4, scale=1.3)
    loop = torch.stack([torch.stack([d(a[i : i + 1], b[j : j + 1])[0, 0] for j in range(4)]) for i in range(3)])
    torch.testing.assert_close(d(a, b), loop, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize(
    "name",
    ["emd", "emd_per_channel", "bd", "bd_per_channel", "bd_histogram", "mmd", "mmd_squared_per_channel"],
)
@pytest.mark.parametrize("chunks", ["one_chunk", "small_chunks"])
def test_gradcheck(rng, name, chunks, request):
    if chunks == "small_chunks":
        request.getfixturevalue("small_chunks")
    d = ALL[name]
    a = residuals(rng, b=2, h=2, w=3).requires_grad_()
    b = residuals(rng, b=3, h=2, w=3, loc=0.2, scale=0.6).requires_grad_()
    assert torch.autograd.gradcheck(d, (a, b), eps=1e-6, atol=1e-6)


@pytest.mark.parametrize("chunks", ["one_chunk", "small_chunks"])
def test_gradcheck_emd_unequal_sizes(rng, chunks, request):
    if chunks == "small_chunks":
        request.getfixturevalue("small_chunks")
    a = residuals(rng, b=2, h=2, w=3).requires_grad_()
    b = residuals(rng, b=2, h=2, w=2, loc=0.2).requires_grad_()
    assert torch.autograd.gradcheck(EMD(), (a, b), eps=1e-6, atol=1e-6)


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_constant_inputs_finite(name, dtype):
    """Zero-variance residuals (σ = 0) give finite values and gradients, equal ones give distance 0."""
    d = ALL[name]
    a = torch.tensor([0.0, 0.1, 0.1], dtype=dtype).reshape(3, 1, 1, 1).expand(3, 2, 4, 4).clone()
    a.requires_grad_()
    out = d(a, a)
    out.sum().backward()
    assert torch.isfinite(out).all() and torch.isfinite(a.grad).all()
    assert out[1, 2] == 0 and out[2, 2] == 0
    assert out[0, 1] > 0


def test_emd_between_constants_is_their_gap():
    a = torch.full((1, 3, 4, 4), 0.25, dtype=torch.float64)
    b = torch.full((1, 3, 5, 2), -0.5, dtype=torch.float64)
    assert EMD()(a, b).item() == pytest.approx(0.75, rel=1e-12)


# ------------------------------------------------------------------------------------------ Bhattacharyya
def test_bd_gaussian_hand_computed():
    """a = {0, 2}: μ=1, σ²=1; b = {1, 5}: μ=3, σ²=4 → BD = 4/(4·5) + ½ ln(5/(2·2))."""
    a = torch.tensor([0.0, 2.0], dtype=torch.float64).reshape(1, 1, 1, 2)
    b = torch.tensor([1.0, 5.0], dtype=torch.float64).reshape(1, 1, 2, 1)
    expected = 4 / 20 + 0.5 * math.log(5 / 4)
    assert Bhattacharyya(eps=1e-15)(a, b).item() == pytest.approx(expected, rel=1e-12)
    assert Bhattacharyya(eps=1e-15)(a, a).item() == 0


def test_bd_gaussian_depends_on_moments_only(rng):
    a = residuals(rng, b=1, h=8, w=8)
    permuted = a.flatten()[torch.randperm(a.numel(), generator=rng)].reshape(1, 4, 4, 8)
    assert Bhattacharyya()(a, permuted).abs().item() < 1e-12


def test_bd_histogram_decreases_as_distributions_approach(rng):
    base = residuals(rng, b=1, c=3, h=16, w=16, scale=0.05)
    d = Bhattacharyya(method="histogram")
    values = [d(base, base + shift).item() for shift in (0.2, 0.1, 0.05, 0.02, 0.01, 0.0)]
    assert all(x > y for x, y in itertools.pairwise(values)), values
    assert values[-1] == 0


# --------------------------------------------------------------------------------------------------- MMD
def exact_mmd2(u, v, sigma):
    """Biased (V-statistic) MMD² with k(x, y) = exp(−(x − y)²/(2σ²)), O(n²)."""

    def k(x, y):
        return torch.exp(-((x[:, None] - y[None, :]) ** 2) / (2 * sigma**2)).mean()

    return (k(u, u) + k(v, v) - 2 * k(u, v)).item()


def test_mmd_matches_exact_quadratic_estimator(rng):
    """RFF MMD̃² is within 4 std of the V-statistic, std ≤ √(8·MMD²_b/D) (MMD docstring), for D = 8192."""
    n_features, sigma = 8192, 0.7
    a = residuals(rng, b=3, c=1, h=6, w=6)
    b = torch.cat([residuals(rng, b=1, c=1, h=5, w=5, scale=s, loc=m) for s, m in [(1, 0), (2, 0), (1, 1)]])
    approx = MMD(bandwidth=sigma, n_features=n_features, squared=True)(a, b)
    for i, j in itertools.product(range(3), range(3)):
        exact = exact_mmd2(a[i].flatten(), b[j].flatten(), sigma)
        tol = 4 * math.sqrt(8 * exact / n_features) + 1e-9
        assert abs(approx[i, j].item() - exact) <= tol, (i, j, approx[i, j].item(), exact, tol)
    # and the unsquared value is its square root
    unsquared = MMD(bandwidth=sigma, n_features=n_features)(a, b)
    torch.testing.assert_close(unsquared, approx.sqrt())


def test_mmd_error_shrinks_with_features(rng):
    a, b = residuals(rng, b=1, c=1, h=8, w=8), residuals(rng, b=1, c=1, h=8, w=8, scale=1.5)
    exact = exact_mmd2(a.flatten(), b.flatten(), 1.0)
    errors = [
        np.mean([abs(MMD(bandwidth=1.0, n_features=f, squared=True, seed=s)(a, b).item() - exact) for s in range(8)])
        for f in (16, 4096)
    ]
    assert errors[1] < errors[0] / 4  # O(1/√D): 256× features → ~16× smaller error


def test_mmd_is_deterministic_and_seeded(rng):
    a, b = residuals(rng), residuals(rng, scale=2.0)
    torch.testing.assert_close(MMD()(a, b), MMD()(a, b), rtol=0, atol=0)
    assert not torch.equal(MMD(seed=0)(a, b), MMD(seed=1)(a, b))


def test_median_bandwidth(rng):
    z = torch.randn(1, 1, 1, 4000, generator=rng, dtype=torch.float64)
    # median |X − X'| for X, X' ~ N(0, 1) is √2·Φ⁻¹(3/4) ≈ 0.9539
    assert distances.median_bandwidth(z, z, n_samples=2000) == pytest.approx(0.9539, rel=0.05)
    assert distances.median_bandwidth(torch.zeros(2, 3), torch.zeros(2, 3)) == 1.0
    assert distances.median_bandwidth(torch.zeros(2, 3), torch.ones(2, 3)) == 1.0


# ------------------------------------------------------------------------------------ dtypes and devices
@pytest.mark.parametrize("name", ALL)
def test_float32_under_autocast_returns_float32(rng, name):
    d = ALL[name]
    a = residuals(rng, dtype=torch.float32, scale=0.1).requires_grad_()
    b = residuals(rng, dtype=torch.float32, scale=0.2)
    reference = d(a, b)
    (reference_grad,) = torch.autograd.grad(reference.sum(), a)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = d(a, b)
        out.sum().backward()
    assert out.dtype == torch.float32 and torch.isfinite(out).all() and torch.isfinite(a.grad).all()
    torch.testing.assert_close(out, reference)
    torch.testing.assert_close(a.grad, reference_grad)  # the backward is not demoted either
    assert d(a.double(), b).dtype == torch.float64
    # residuals produced under autocast arrive in bfloat16: computed and returned in float32
    a16 = a.detach().bfloat16().requires_grad_()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out16 = d(a16, b.bfloat16())
        out16.sum().backward()
    assert out16.dtype == torch.float32 and torch.isfinite(out16).all() and torch.isfinite(a16.grad).all()
    torch.testing.assert_close(out16, d(a16.float(), b.bfloat16().float()))


@pytest.mark.parametrize("name", ["emd", "bd", "mmd_median"])
def test_runs_on_device(rng, device, name):
    a = residuals(rng, dtype=torch.float32).to(device).requires_grad_()
    b = residuals(rng, dtype=torch.float32, scale=2.0).to(device)
    out = ALL[name](a, b)
    out.sum().backward()
    assert out.device.type == device.type and torch.isfinite(a.grad).all()
    a_cpu = a.detach().cpu().requires_grad_()
    reference = ALL[name](a_cpu, b.cpu())
    reference.sum().backward()
    torch.testing.assert_close(out.cpu(), reference, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(a.grad.cpu(), a_cpu.grad, rtol=1e-4, atol=1e-6)  # CUDA: the chunked backward
    if device.type == "cuda":
        with torch.autocast("cuda", dtype=torch.float16):
            assert ALL[name](a.half(), b.half()).dtype == torch.float32


# ------------------------------------------------------------------------------------ factory and errors
def test_get_distance():
    assert isinstance(get_distance("emd"), EMD)
    assert get_distance("BD", method="histogram") == Bhattacharyya(method="histogram")
    assert get_distance("mmd", n_features=32).n_features == 32
    with pytest.raises(ValueError, match=r"\['bd', 'emd', 'mmd'\]"):
        get_distance("kl")


@pytest.mark.parametrize(
    "make",
    [
        lambda: EMD(reduction="mean"),
        lambda: Bhattacharyya(method="kde"),
        lambda: Bhattacharyya(value_range=(1.0, -1.0)),
        lambda: MMD(n_features=0),
        lambda: MMD(bandwidth=0.0),
    ],
)
def test_invalid_options_raise(make):
    with pytest.raises(ValueError):
        make()


def test_per_channel_needs_equal_channels():
    with pytest.raises(ValueError, match="C=2 and b with C=3"):
        EMD(reduction="per_channel")(torch.zeros(1, 2, 3, 3), torch.zeros(1, 3, 3, 3))
    assert EMD()(torch.zeros(1, 2, 3, 3), torch.zeros(1, 3, 3, 3)).shape == (1, 1)  # pooled: any C
