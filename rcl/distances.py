"""Distances between residuals treated as empirical distributions of their values (paper §3.4).

The residual contrastive loss (Eq. 3) compares two residual tensors ``n̂(x) = x − f(x)`` (Eq. 2) with a
non-negative distance ``d`` that must not assume a pixel correspondence, because the noise distribution
does not depend on the pixel location. Each residual is therefore a bag of values: its empirical
distribution. The paper's choice is the earth mover's distance (Eq. 4); it also reports the Bhattacharyya
distance (BD) and the maximum mean discrepancy (MMD) as alternatives (Tables 1–2).

One interface for the family: a distance is a small frozen dataclass (hashable, printable config) that is
called as ``d(a, b)`` on two batches ``a: B1×C×H×W`` and ``b: B2×C×H'×W'`` and returns the pairwise matrix
``D`` of shape ``(B1, B2)`` with ``D[i, j] = d(a[i], b[j])``. ``get_distance("emd" | "bd" | "mmd")``
builds one by name. Every distance takes ``reduction``:

* ``"pooled"`` (default): all ``C·H·W`` values of a residual form one distribution, as in Eq. 4, which
  compares whole residual tensors.
* ``"per_channel"``: the distance between same channels, averaged over the ``C`` channels (``a`` and
  ``b`` must then have the same ``C``).

Numerics shared by all three: computed in float32 (float64 if either input is float64) with autocast
disabled, so a call inside ``torch.autocast`` (CUDA float16 or CPU bfloat16) returns a float32 matrix;
values and gradients are finite for constant and identical inputs; any device. Pairs are never
looped over in Python, and no ``n×n`` or ``B1×B2×n`` tensor is allocated (the one large temporary of
torch's CUDA ``cdist`` backward is avoided by a backward chunked along the values; see
:data:`CHUNK_ELEMENTS`).

Units: EMD is in the residuals' units (images in [0, 1], so a residual EMD is ~1e-2); BD is
dimensionless in [0, ∞); MMD is dimensionless, in [0, √2] for the exact Gaussian-kernel MMD (the
random-feature estimate can exceed √2 by O(1/√D)).

Why one module: it is one idea — the paper's family of residual distances behind one interface — and
its parts lean on each other: every distance shares the numerics helpers and :class:`PairwiseDistance`
(compute dtype, autocast off, reductions, chunk sizes), and BD and MMD share the feature maps and the
chunked feature-mean backward. Split, those private helpers would become a public API between modules
that nothing else uses; each section (shared numerics, EMD, features, BD, MMD) is under 120 lines.

Layer: core (imports only torch: nothing of rcl, and nothing that reaches the network).
"""

from __future__ import annotations

import contextlib
import functools
import math
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

__all__ = [
    "CHUNK_ELEMENTS",
    "DISTANCES",
    "EMD",
    "MMD",
    "Bhattacharyya",
    "PairwiseDistance",
    "get_distance",
    "median_bandwidth",
    "quantile_grid",
]

Reduction = Literal["pooled", "per_channel"]
_REDUCTIONS = ("pooled", "per_channel")

#: Largest temporary, in elements, that a chunked loop may allocate (2**22 floats = 16 MiB in float32;
#: on a 2-core CPU larger slices were slower, 2**24 took 2.4× longer for MMD, from page faults).
#: Bounds the EMD backward (``G·B1·B2·chunk``) and the MMD / histogram-BD feature maps
#: (``G·B·chunk·D``). Tests lower it to exercise the multi-chunk paths.
CHUNK_ELEMENTS = 2**22


# --------------------------------------------------------------------------------------------------
# Shared plumbing
# --------------------------------------------------------------------------------------------------
def _autocast_off(device: torch.device) -> contextlib.AbstractContextManager:
    """A context that disables autocast on ``device`` (a no-op where autocast does not exist)."""
    try:
        return torch.autocast(device_type=device.type, enabled=False)
    except (RuntimeError, ValueError):
        return contextlib.nullcontext()


def _compute_dtype(a: Tensor, b: Tensor) -> torch.dtype:
    return torch.float64 if torch.float64 in (a.dtype, b.dtype) else torch.float32


def _check_reduction(reduction: str) -> None:
    if reduction not in _REDUCTIONS:
        raise ValueError(f"reduction must be one of {_REDUCTIONS}, got {reduction!r}")


def _groups(r: Tensor, reduction: str, name: str) -> Tensor:
    """Flatten a batch of residuals ``B×C×…`` to ``G×B×n``: ``G = 1`` pooled, ``G = C`` per channel."""
    if reduction == "pooled":
        if r.dim() < 2:
            raise ValueError(f"{name} must be a batch B×… (e.g. B×C×H×W), got shape {tuple(r.shape)}")
        return r.reshape(1, r.shape[0], -1)
    if r.dim() < 3:
        raise ValueError(f"reduction='per_channel' needs {name} of shape B×C×…, got shape {tuple(r.shape)}")
    return r.reshape(r.shape[0], r.shape[1], -1).transpose(0, 1)


def _chunk_size(per_item: int, total: int) -> int:
    """How many items of ``per_item`` elements fit in :data:`CHUNK_ELEMENTS` (at least 1)."""
    return max(1, min(total, CHUNK_ELEMENTS // max(1, per_item)))


class PairwiseDistance:
    """Base of the family: ``d(a, b) -> (B1, B2)`` with validation, dtype and reduction handled here.

    Subclasses implement :meth:`_grouped`, mapping ``xa: G×B1×n1`` and ``xb: G×B2×n2`` (compute dtype,
    autocast off) to ``G×B1×B2``; the result is averaged over the ``G`` groups (channels).
    """

    name: str = ""
    reduction: Reduction = "pooled"

    def __call__(self, a: Tensor, b: Tensor) -> Tensor:
        """Pairwise distances ``D[i, j] = d(a[i], b[j])``, shape ``(B1, B2)``, float32 or float64."""
        for t, label in ((a, "a"), (b, "b")):
            if not isinstance(t, Tensor) or not t.is_floating_point():
                raise TypeError(
                    f"{label} must be a floating-point tensor, got {type(t).__name__} {getattr(t, 'dtype', '')}"
                )
            if t.numel() == 0:
                raise ValueError(f"{label} must hold at least one non-empty residual, got shape {tuple(t.shape)}")
        if a.device != b.device:
            raise ValueError(f"a and b must be on one device, got {a.device} and {b.device}")
        dtype = _compute_dtype(a, b)
        with _autocast_off(a.device):
            xa = _groups(a.to(dtype), self.reduction, "a")
            xb = _groups(b.to(dtype), self.reduction, "b")
            if xa.shape[0] != xb.shape[0]:
                raise ValueError(
                    "reduction='per_channel' needs the same number of channels, got "
                    f"a with C={xa.shape[0]} and b with C={xb.shape[0]}"
                )
            return self._grouped(xa, xb).mean(dim=0)

    def pairwise(self, a: Tensor, b: Tensor) -> Tensor:
        """Same as calling the distance: the ``(B1, B2)`` matrix."""
        return self(a, b)

    def _grouped(self, xa: Tensor, xb: Tensor) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError


# --------------------------------------------------------------------------------------------------
# EMD (Wasserstein-1), Eq. 4
# --------------------------------------------------------------------------------------------------
class _PairwiseL1(torch.autograd.Function):
    """``D[g, i, j] = Σ_k |x[g, i, k] − y[g, j, k]|`` with a memory-bounded backward.

    Forward is ``torch.cdist(p=1)``, which allocates nothing beyond its output. Its own CUDA backward
    allocates a ``G×B2×B1×n`` buffer (805 MB for 64 residuals of 3×128×128), so the backward here runs
    ``cdist``'s autograd on slices of ``k`` holding at most :data:`CHUNK_ELEMENTS` buffer elements.
    The gradient of ``|x − y|`` is ``sign(x − y)``, which depends on ``k``'s slice only, so chunking
    is exact.
    """

    @staticmethod
    def forward(ctx, x: Tensor, y: Tensor) -> Tensor:
        ctx.save_for_backward(x, y)
        return torch.cdist(x, y, p=1.0)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad: Tensor) -> tuple[Tensor | None, Tensor | None]:
        x, y = ctx.saved_tensors
        need_x, need_y = ctx.needs_input_grad[:2]
        g, b1, n = x.shape
        b2 = y.shape[1]
        gx = torch.empty_like(x) if need_x else None
        gy = torch.empty_like(y) if need_y else None
        step = _chunk_size(g * b1 * b2, n)
        with torch.enable_grad(), _autocast_off(x.device):
            for k0 in range(0, n, step):
                xc = x[..., k0 : k0 + step].detach().requires_grad_(need_x)
                yc = y[..., k0 : k0 + step].detach().requires_grad_(need_y)
                inputs = [t for t, need in ((xc, need_x), (yc, need_y)) if need]
                grads = iter(torch.autograd.grad(torch.cdist(xc, yc, p=1.0), inputs, grad))
                if need_x:
                    gx[..., k0 : k0 + step] = next(grads)
                if need_y:
                    gy[..., k0 : k0 + step] = next(grads)
        return gx, gy


def _pairwise_l1(x: Tensor, y: Tensor) -> Tensor:
    """``Σ_k |x[g, i, k] − y[g, j, k]|`` for ``x: G×B1×n``, ``y: G×B2×n`` → ``G×B1×B2``.

    On the CPU ``cdist``'s own backward writes straight into the gradient (no buffer), so it is used
    as is; elsewhere (CUDA) the chunked :class:`_PairwiseL1` bounds the backward's memory.
    """
    if x.device.type == "cpu":
        return torch.cdist(x, y, p=1.0)
    return _PairwiseL1.apply(x, y)


@functools.lru_cache(maxsize=32)
def _quantile_grid_cpu(n1: int, n2: int) -> tuple[Tensor, Tensor, Tensor]:
    # Breakpoints k/n1 and l/n2 on the common integer scale 1/(n1·n2), so the merge is exact.
    t = torch.unique(torch.cat([torch.arange(n1 + 1) * n2, torch.arange(n2 + 1) * n1]))
    left = t[:-1]
    weights = torch.diff(t).to(torch.float64) / (n1 * n2)
    return left // n2, left // n1, weights


def quantile_grid(n1: int, n2: int) -> tuple[Tensor, Tensor, Tensor]:
    """The merged quantile grid of two empirical distributions of ``n1`` and ``n2`` atoms.

    The empirical quantile functions ``F⁻¹`` are step functions with breakpoints ``k/n1`` and ``l/n2``;
    between two consecutive merged breakpoints both are constant. Returns ``(ia, ib, w)`` (length
    ``M ≤ n1 + n2 − 1``): on the m-th interval ``F_a⁻¹ = sort(a)[ia[m]]``, ``F_b⁻¹ = sort(b)[ib[m]]``,
    and the interval has length ``w[m]`` (``Σ w = 1``), so ``W₁ = Σ_m w[m]·|sort(a)[ia[m]] −
    sort(b)[ib[m]]|`` exactly. Depends on the sizes only, so it is computed once per size pair.
    """
    if n1 < 1 or n2 < 1:
        raise ValueError(f"sizes must be positive, got n1={n1}, n2={n2}")
    return _quantile_grid_cpu(int(n1), int(n2))


@dataclass(frozen=True)
class EMD(PairwiseDistance):
    """Earth mover's distance (Wasserstein-1) between residual value distributions, Eq. 4.

    In one dimension ``W₁(P, Q) = ∫₀¹ |F_P⁻¹(t) − F_Q⁻¹(t)| dt``; for two samples of equal size ``n``
    this is ``(1/n)·Σ_k |u₍ₖ₎ − v₍ₖ₎|`` over sorted values. Pairwise: each flattened residual is
    sorted once (stable sort), then ``cdist(S_a, S_b, p=1)/n`` — O(B·n log n + B1·B2·n) time, no loop
    over pairs, no ``B1×B2×n`` tensor, also in the backward (see :func:`_pairwise_l1`).

    Unequal sizes (e.g. crops of different shape) are **exact**, not approximated: both sorted
    vectors are gathered on the merged quantile grid of :func:`quantile_grid` (``M ≤ n1 + n2 − 1``
    points) and weighted by the interval lengths, so ``W₁ = cdist(w·S_a[ia], w·S_b[ib], p=1)``.
    Agrees with ``scipy.stats.wasserstein_distance`` to rounding (tests: rtol 1e-6 in float64).

    Gradient: ``sign(u₍ₖ₎ − v₍ₖ₎)/n`` routed back through the sort permutation (ties are broken by
    the stable sort, one subgradient). A metric on distributions: symmetric, zero for equal value
    multisets, triangle inequality. Units: those of the residuals; range ``[0, max − min]``.

    Args:
        reduction: ``"pooled"`` (one distribution per residual) or ``"per_channel"`` (per-channel
            W₁ averaged over channels).
    """

    reduction: Reduction = "pooled"
    name = "emd"

    def __post_init__(self) -> None:
        _check_reduction(self.reduction)

    def _grouped(self, xa: Tensor, xb: Tensor) -> Tensor:
        sa = torch.sort(xa, dim=-1, stable=True).values
        sb = torch.sort(xb, dim=-1, stable=True).values
        n1, n2 = sa.shape[-1], sb.shape[-1]
        if n1 == n2:
            return _pairwise_l1(sa, sb) / n1
        ia, ib, w = (t.to(sa.device) for t in quantile_grid(n1, n2))
        w = w.to(sa.dtype)
        return _pairwise_l1(sa.index_select(-1, ia) * w, sb.index_select(-1, ib) * w)


# --------------------------------------------------------------------------------------------------
# Chunked feature means (shared by MMD and the histogram BD)
# --------------------------------------------------------------------------------------------------
class _Features:
    """A bank of ``D`` scalar feature functions ``φ_d`` applied to slices ``z: R×c`` of values."""

    size: int

    def forward_sum(self, z: Tensor) -> Tensor:  # pragma: no cover - abstract
        """``Σ_k φ_d(z[r, k])``, shape ``R×D``."""
        raise NotImplementedError

    def backward(self, z: Tensor, g: Tensor) -> Tensor:  # pragma: no cover - abstract
        """``Σ_d g[r, d]·φ'_d(z[r, k])``, shape ``R×c``, for ``g: R×D``."""
        raise NotImplementedError


class _RandomFourier(_Features):
    """``φ_d(z) = √(2/D)·cos(ω_d z + b_d)``; per-feature factors are applied on ``R×D``, not ``R×c×D``."""

    def __init__(self, omega: Tensor, phase: Tensor) -> None:
        self.omega, self.phase = omega, phase
        self.size = omega.numel()
        self.scale = math.sqrt(2.0 / self.size)

    def _arg(self, z: Tensor) -> Tensor:
        return torch.addcmul(self.phase, z.unsqueeze(-1), self.omega)

    def forward_sum(self, z: Tensor) -> Tensor:
        return self._arg(z).cos_().sum(dim=1).mul_(self.scale)

    def backward(self, z: Tensor, g: Tensor) -> Tensor:
        weights = (g * (-self.scale) * self.omega).unsqueeze(-1)  # R×D×1
        return torch.bmm(self._arg(z).sin_(), weights).squeeze(-1)


class _GaussianBins(_Features):
    """``φ_k(z) = exp(−(z − c_k)²/(2h²))``: a soft histogram with Gaussian kernels at centres ``c_k``.

    ``φ'_k(z) = (c_k − z)/h²·φ_k(z)``, so ``Σ_k g_k φ'_k = Σ_k (g_k c_k/h²) φ_k − z·Σ_k (g_k/h²) φ_k``:
    one kernel evaluation and one batched matmul serve the backward.
    """

    def __init__(self, centres: Tensor, width: float) -> None:
        self.centres, self.width = centres, width
        self.size = centres.numel()

    def _kernel(self, z: Tensor) -> Tensor:
        u = torch.sub(z.unsqueeze(-1) / self.width, self.centres / self.width)
        return u.square_().mul_(-0.5).exp_()

    def forward_sum(self, z: Tensor) -> Tensor:
        return self._kernel(z).sum(dim=1)

    def backward(self, z: Tensor, g: Tensor) -> Tensor:
        inv_h2 = 1.0 / self.width**2
        weights = torch.stack([g * self.centres * inv_h2, g * inv_h2], dim=-1)  # R×K×2
        s = torch.bmm(self._kernel(z), weights)  # R×c×2
        return s[..., 0] - z * s[..., 1]


class _FeatureMean(torch.autograd.Function):
    """``m[r, d] = (1/n)·Σ_k φ_d(z[r, k])`` for ``z: R×n``, chunked along ``k`` both ways.

    Plain autograd would keep the whole ``R×n×D`` argument tensor for the backward (3.2 GB for 64
    residuals of 3×128×128 with D = 256); here forward and backward recompute ``φ`` / ``φ'`` on
    slices of at most :data:`CHUNK_ELEMENTS` elements, so memory is O(R·D + CHUNK_ELEMENTS).
    """

    @staticmethod
    def forward(ctx, z: Tensor, features: _Features) -> Tensor:
        ctx.save_for_backward(z)
        ctx.features = features
        r, n = z.shape
        out = z.new_zeros(r, features.size)
        step = _chunk_size(r * features.size, n)
        for k0 in range(0, n, step):
            out += features.forward_sum(z[:, k0 : k0 + step])
        return out / n

    @staticmethod
    @once_differentiable
    def backward(ctx, grad: Tensor) -> tuple[Tensor | None, None]:
        if not ctx.needs_input_grad[0]:
            return None, None
        (z,) = ctx.saved_tensors
        features: _Features = ctx.features
        r, n = z.shape
        gz = torch.empty_like(z)
        g = grad.to(z.dtype) / n
        step = _chunk_size(r * features.size, n)
        with _autocast_off(z.device):
            for k0 in range(0, n, step):
                gz[:, k0 : k0 + step] = features.backward(z[:, k0 : k0 + step], g)
        return gz, None


def _feature_mean(x: Tensor, features: _Features) -> Tensor:
    """Feature means of ``x: G×B×n`` → ``G×B×D``."""
    g, b, n = x.shape
    return _FeatureMean.apply(x.reshape(g * b, n), features).reshape(g, b, -1)


# --------------------------------------------------------------------------------------------------
# Bhattacharyya distance
# --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Bhattacharyya(PairwiseDistance):
    """Bhattacharyya distance ``−ln BC(P, Q)`` between residual value distributions (paper's RCL-BD).

    ``method="gaussian"`` (**default**): each residual's values are summarised by a Gaussian
    ``N(μ, σ²)`` (population variance) and the closed form is used,

        ``BD = (μ₁ − μ₂)²/(4(s₁ + s₂)) + ½·ln((s₁ + s₂)/(2√(s₁s₂)))``,  ``s = σ² + eps``,

    with the log term evaluated as ``¼·log1p((s₁ − s₂)²/(4s₁s₂))``, which is exactly 0 for equal
    variances and never negative. Default because it is exact for its model, O(B·n + B1·B2), smooth
    everywhere, and has no range/bin hyper-parameters to tune to the noise level; the simulated noise
    (heteroscedastic Gaussian, §4) makes a residual's values a Gaussian scale mixture, whose first two
    moments carry most of what distinguishes two images' noise. Its blind spot: two distributions with
    equal mean and variance are at distance 0.

    ``method="histogram"``: a differentiable soft histogram (``torch.histc`` has no gradient). Values
    are clamped to ``value_range`` (so outliers fall in the edge bins and get no gradient), each value
    adds a Gaussian kernel ``exp(−(z − c_k)²/(2h²))`` at ``bins`` fixed centres ``c_k`` spanning
    ``value_range`` (``h = bandwidth``, default one bin width), and the rows are normalised to
    histograms ``P``. The coefficient ``BC = √P·√Qᵀ`` is computed as ``1 − ½‖√P − √Q‖²`` (equal
    for normalised histograms, but exactly 1 for identical inputs), and ``BD = ln((1 + eps)/(BC +
    eps))``, which is 0 at ``BC = 1`` and at most ``ln((1 + eps)/eps)`` (eps raised to the dtype's
    resolution, so at most ≈ 15.9 in float32). Cost O(B·n·bins + B1·B2·bins),
    chunked like MMD. The default range ±0.25 with 64 bins (width 2/255) suits residuals of images in
    [0, 1] with noise std up to ~20/255 (the paper's range); set it for other data.

    Neither variant satisfies the triangle inequality; both are symmetric and non-negative.

    Args:
        reduction: ``"pooled"`` or ``"per_channel"``.
        method: ``"gaussian"`` or ``"histogram"``.
        eps: Gaussian: variance floor added to σ² (units of residual², default 1e-8, i.e. std 1e-4 ≈
            0.03/255), keeps σ = 0 finite. Histogram: added to BC in the log.
        value_range: histogram range ``(low, high)`` in residual units.
        bins: number of histogram centres.
        bandwidth: kernel std ``h`` in residual units; ``None`` = one bin width.
    """

    reduction: Reduction = "pooled"
    method: Literal["gaussian", "histogram"] = "gaussian"
    eps: float = 1e-8
    value_range: tuple[float, float] = (-0.25, 0.25)
    bins: int = 64
    bandwidth: float | None = None
    name = "bd"

    def __post_init__(self) -> None:
        _check_reduction(self.reduction)
        if self.method not in ("gaussian", "histogram"):
            raise ValueError(f"method must be 'gaussian' or 'histogram', got {self.method!r}")
        if not self.eps > 0:
            raise ValueError(f"eps must be > 0, got {self.eps}")
        low, high = self.value_range
        if not high > low:
            raise ValueError(f"value_range must be (low, high) with high > low, got {self.value_range}")
        if self.bins < 2:
            raise ValueError(f"bins must be >= 2, got {self.bins}")
        if self.bandwidth is not None and not self.bandwidth > 0:
            raise ValueError(f"bandwidth must be > 0 or None, got {self.bandwidth}")

    def _grouped(self, xa: Tensor, xb: Tensor) -> Tensor:
        if self.method == "gaussian":
            return self._gaussian(xa, xb)
        return self._histogram(xa, xb)

    def _gaussian(self, xa: Tensor, xb: Tensor) -> Tensor:
        var_a, mu_a = torch.var_mean(xa, dim=-1, correction=0)
        var_b, mu_b = torch.var_mean(xb, dim=-1, correction=0)
        s1 = (var_a + self.eps).unsqueeze(-1)  # G×B1×1
        s2 = (var_b + self.eps).unsqueeze(-2)  # G×1×B2
        total = s1 + s2
        mean_term = (mu_a.unsqueeze(-1) - mu_b.unsqueeze(-2)).square() / (4.0 * total)
        var_term = 0.25 * torch.log1p((s1 - s2).square() / (4.0 * s1 * s2))
        return mean_term + var_term

    def _histogram(self, xa: Tensor, xb: Tensor) -> Tensor:
        low, high = self.value_range
        centres = torch.linspace(low, high, self.bins, dtype=xa.dtype, device=xa.device)
        width = self.bandwidth if self.bandwidth is not None else (high - low) / (self.bins - 1)
        features = _GaussianBins(centres, width)
        tiny = torch.finfo(xa.dtype).tiny

        def sqrt_hist(x: Tensor) -> Tensor:
            m = _feature_mean(x.clamp(low, high), features)
            p = m / (m.sum(dim=-1, keepdim=True) + tiny)
            return p.clamp_min(tiny).sqrt()  # clamp: finite gradient where a bin underflows to 0

        ra, rb = sqrt_hist(xa), sqrt_hist(xb)
        # 1 − BC = ½‖√P − √Q‖² (squared Hellinger), exactly 0 for identical rows.
        hellinger_sq = 0.5 * (ra.unsqueeze(-2) - rb.unsqueeze(-3)).square().sum(dim=-1)
        # ln((1 + eps)/(BC + eps)) = −log1p(−H²/(1 + eps)): exactly 0 at BC = 1. The clamp keeps it
        # finite for disjoint histograms when eps is below the dtype's resolution (float32: 1.2e-7).
        ratio = (hellinger_sq / (1.0 + self.eps)).clamp_max(1.0 - torch.finfo(xa.dtype).eps)
        return -torch.log1p(-ratio)


# --------------------------------------------------------------------------------------------------
# MMD with random Fourier features
# --------------------------------------------------------------------------------------------------
def median_bandwidth(a: Tensor, b: Tensor, n_samples: int = 1024, seed: int = 0) -> float:
    """Median heuristic: the median of ``|z_i − z_j|`` (i < j) over values pooled from ``a`` and ``b``.

    ``n_samples`` values are drawn, half from each tensor with replacement; each tensor's indices come
    from a CPU generator seeded with ``seed`` and depend on its own size only, so the result is
    deterministic and symmetric in ``(a, b)``. Cost O(n_samples²) whatever the residual size; detached
    (returns a float). Falls back to the largest gap when more than half the gaps are 0 (e.g. two
    constant residuals), and to 1.0 when all values are equal. Units: those of the residuals.
    """
    return float(_median_bandwidth(a, b, n_samples, seed))


def _median_bandwidth(a: Tensor, b: Tensor, n_samples: int, seed: int) -> Tensor:
    """:func:`median_bandwidth` as a 0-d float64 tensor on the residuals' device: nothing is read back."""
    half = max(1, n_samples // 2)
    picks = []
    for t in (a, b):
        flat = t.detach().reshape(-1)
        picks.append(flat[_draw_indices(flat.numel(), half, seed, flat.device)].to(torch.float64))
    z = torch.cat(picks)
    i, j = torch.triu_indices(z.numel(), z.numel(), offset=1, device=z.device)
    gaps = (z[i] - z[j]).abs()
    med, top = gaps.median(), gaps.max()
    return torch.where(med > 0, med, torch.where(top > 0, top, torch.ones_like(top)))


@functools.lru_cache(maxsize=64)
def _fixed_fourier_map(seed: int, n_features: int, sigma: float, device: torch.device,
                       dtype: torch.dtype) -> _RandomFourier:
    """The random Fourier feature map of a fixed bandwidth, computed on the CPU and kept on ``device``."""
    normal, phase = _fourier_draws(seed, n_features, torch.device("cpu"))
    return _RandomFourier((normal / sigma).to(device, dtype), phase.to(device, dtype))


@functools.lru_cache(maxsize=64)
def _draw_indices(numel: int, n: int, seed: int, device: torch.device) -> Tensor:
    """``n`` indices below ``numel`` from a CPU generator seeded with ``seed``, kept on ``device`` (copied once)."""
    return torch.randint(numel, (n,), generator=torch.Generator().manual_seed(seed)).to(device)


@functools.lru_cache(maxsize=64)
def _fourier_draws(seed: int, n_features: int, device: torch.device) -> tuple[Tensor, Tensor]:
    """Random Fourier features' frequencies (standard normal) and phases (uniform on [0, 2π)), float64, drawn
    from a CPU generator seeded with ``seed`` and kept on ``device`` (copied once)."""
    gen = torch.Generator().manual_seed(seed)
    normal = torch.randn(n_features, generator=gen, dtype=torch.float64)
    phase = torch.rand(n_features, generator=gen, dtype=torch.float64) * (2 * math.pi)
    return normal.to(device), phase.to(device)


@dataclass(frozen=True)
class MMD(PairwiseDistance):
    """Maximum mean discrepancy with a Gaussian kernel, by random Fourier features (paper's RCL-MMD).

    Kernel ``k(x, y) = exp(−(x − y)²/(2σ²))`` on residual values. The exact (biased, V-statistic)
    estimator ``MMD²_b = mean k(u, u') + mean k(v, v') − 2·mean k(u, v)`` is O(n²) per pair —
    ``n = 3·128·128`` would need a 49152² kernel matrix (9.7 GB in float32) for every pair. Instead,
    ``φ(z) = √(2/D)·cos(ωz + b)`` with ``ω ~ N(0, 1/σ²)``, ``b ~ U[0, 2π)`` (Rahimi & Recht 2007),
    each residual is mapped to its mean embedding ``μ = mean_k φ(z_k) ∈ R^D`` (chunked, O(B·n·D)),
    and ``MMD = ‖μ_a − μ_b‖`` for all pairs by ``cdist`` (O(B1·B2·D)). Never allocates ``n×n``.

    Returns **MMD** (not squared) by default: it is in the same "distance" role as EMD in Eq. 3
    (it scales linearly when the distributions move apart, like W₁), and the RFF estimate is an exact
    Euclidean distance between embeddings, so it is symmetric, zero for identical inputs and satisfies
    the triangle inequality exactly. Its gradient at 0 distance is ``cdist``'s 0 subgradient (finite).
    ``squared=True`` returns ``MMD²``, the smooth, unbiased-in-ω quantity.

    Error of the estimate: for fixed data, ``E_ω[k̃] = k`` so ``E_{ω,b}[MMD̃²] = MMD²_b`` — unbiased
    for the V-statistic (which itself exceeds the population ``MMD²`` by O(1/n)). ``MMD̃²`` is a mean
    of ``D`` i.i.d. terms ``2(ā_d − b̄_d)² ∈ [0, 8]`` with mean ``MMD²_b``, so its std is at most
    ``√(8·MMD²_b/D)`` (and ≤ 4/√D): error O(1/√D), relatively smaller for larger distances. The
    square root is biased low by Jensen (``E MMD̃ ≤ MMD_b``), by about ``Var(MMD̃²)/(8·MMD⁴_b) ≤
    1/(D·MMD²_b)`` relative (delta method). ω, b are drawn from a
    ``torch.Generator`` seeded with ``seed`` (on the CPU, in float64), so results are deterministic
    and identical across devices; change ``seed`` to redraw the kernel approximation.

    Bandwidth: ``bandwidth=None`` uses :func:`median_bandwidth` on values subsampled from both
    batches (detached, recomputed at every call, one σ for all pairs and channels); a float fixes σ
    (residual units), which makes the distance a smooth fixed function (as gradcheck needs).

    Cost: the ``B·n·D`` cosines dominate; on a 2-core CPU one forward + backward of a 64×64 matrix of
    3×128×128 residuals with D = 256 takes ≈2.5 s (``benchmarks/distances.py``), memory stays at
    O(B·D + :data:`CHUNK_ELEMENTS`).

    Args:
        reduction: ``"pooled"`` or ``"per_channel"``.
        n_features: ``D``, number of random features.
        bandwidth: kernel σ in residual units, or ``None`` for the median heuristic.
        squared: return ``MMD²`` instead of ``MMD``.
        seed: seed of the frequencies, phases and median subsample.
        median_samples: values drawn for the median heuristic.
    """

    reduction: Reduction = "pooled"
    n_features: int = 256
    bandwidth: float | None = None
    squared: bool = False
    seed: int = 0
    median_samples: int = 1024
    name = "mmd"

    def __post_init__(self) -> None:
        _check_reduction(self.reduction)
        if self.n_features < 1:
            raise ValueError(f"n_features must be >= 1, got {self.n_features}")
        if self.bandwidth is not None and not self.bandwidth > 0:
            raise ValueError(f"bandwidth must be > 0 or None, got {self.bandwidth}")
        if self.median_samples < 2:
            raise ValueError(f"median_samples must be >= 2, got {self.median_samples}")

    def _feature_map(self, sigma: float | Tensor, dtype: torch.dtype, device: torch.device) -> _RandomFourier:
        """The random Fourier feature map for bandwidth ``sigma`` (deterministic given ``seed``): a tensor ``sigma``
        (the median heuristic's) is divided on its device; a fixed one on the CPU, once, as on every device."""
        if not isinstance(sigma, Tensor):
            return _fixed_fourier_map(self.seed, self.n_features, float(sigma), torch.device(device), dtype)
        normal, phase = _fourier_draws(self.seed, self.n_features, torch.device(device))
        return _RandomFourier((normal / sigma).to(dtype), phase.to(dtype))

    def _grouped(self, xa: Tensor, xb: Tensor) -> Tensor:
        if self.bandwidth is None:
            sigma = _median_bandwidth(xa, xb, self.median_samples, self.seed)
        else:
            sigma = float(self.bandwidth)
        feats = self._feature_map(sigma, xa.dtype, xa.device)
        mu_a, mu_b = _feature_mean(xa, feats), _feature_mean(xb, feats)
        dist = torch.cdist(mu_a, mu_b, p=2.0, compute_mode="donot_use_mm_for_euclid_dist")
        return dist.square() if self.squared else dist


# --------------------------------------------------------------------------------------------------
# Factory
# --------------------------------------------------------------------------------------------------
DISTANCES: dict[str, type[PairwiseDistance]] = {"emd": EMD, "bd": Bhattacharyya, "mmd": MMD}


def get_distance(name: str, **kwargs) -> PairwiseDistance:
    """Build a distance by name: ``"emd"`` (Eq. 4), ``"bd"`` (Bhattacharyya) or ``"mmd"``.

    ``kwargs`` go to the class (:class:`EMD`, :class:`Bhattacharyya`, :class:`MMD`), e.g.
    ``get_distance("mmd", reduction="per_channel", n_features=512)``.
    """
    key = name.lower() if isinstance(name, str) else name
    if key not in DISTANCES:
        raise ValueError(f"unknown distance {name!r}; valid names: {sorted(DISTANCES)}")
    return DISTANCES[key](**kwargs)
