"""The paper's noise model: heteroscedastic Gaussian noise from a noise level function (NLF).

Paper §4 "Simulation" writes ``n ~ N(0, λ_shot·x + λ_read)``; as the NLF model defines it, the variance here
follows the clean image ``y`` in [0, 1] (book/differences.md): ``n ~ N(0, λ_shot·y + λ_read)``, with
``(λ_shot, λ_read)`` drawn per image so that the image's overall noise level σ lies in [0, 20] on the
0–255 scale, giving every image approximately unique noise parameters.

Choices the paper leaves open, and how this module makes them:

* **σ of an image** is the root-mean-square noise standard deviation over its pixels and channels,
  ``σ = 255·sqrt(mean(λ_shot·y + λ_read))`` (:func:`image_sigma`): the square root of the image's
  average noise variance, so two images with the same σ carry the same noise energy.
* **The shot/read split**: σ is drawn uniformly in ``sigma_range`` and a shot fraction ``s`` uniformly
  in ``shot_fraction_range``; then ``λ_shot = s·v/mean(y)`` and ``λ_read = (1 − s)·v`` with
  ``v = (σ/255)²``. This hits the drawn σ exactly, whatever the image's brightness, and spans pure read
  noise (s = 0) to pure shot noise (s = 1). Continuous draws make the pairs unique almost surely.
* **Clipping**: :func:`add_noise` does not clip by default, so the noise keeps exactly the NLF's
  moments (clipping at 0 and 1 biases dark and bright pixels). Datasets that store images in [0, 1]
  clip explicitly (``clip=True``), as a camera saturates.

Every random draw takes a :class:`torch.Generator` (or ``None`` for a fresh unseeded one), never the
global RNG, so results are reproducible from a seed.

Layer: core (imports torch and the ground floor's :mod:`rcl.rng`; nothing that reaches the network).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from rcl import rng as _rng

__all__ = [
    "NLFParams",
    "add_noise",
    "empirical_nlf",
    "image_sigma",
    "make_generator",
    "nlf_variance",
    "noisy_pair",
    "sample_nlf",
]

#: The paper's range of per-image noise std σ on the 0–255 scale (after Gharbi et al. 2016).
SIGMA_RANGE = (0.0, 20.0)


@dataclass(frozen=True)
class NLFParams:
    """Per-image NLF parameters, each a tensor of shape ``(B,)`` (variance units, images in [0, 1])."""

    lambda_shot: Tensor
    lambda_read: Tensor

    def __post_init__(self) -> None:
        if self.lambda_shot.shape != self.lambda_read.shape or self.lambda_shot.dim() != 1:
            raise ValueError(
                "lambda_shot and lambda_read must be 1-D tensors of equal length (one value per "
                f"image), got shapes {tuple(self.lambda_shot.shape)} and {tuple(self.lambda_read.shape)}"
            )

    def __len__(self) -> int:
        return self.lambda_shot.shape[0]

    def to(self, device: torch.device | str) -> NLFParams:
        return NLFParams(self.lambda_shot.to(device), self.lambda_read.to(device))

    def __getitem__(self, index) -> NLFParams:
        idx = index if isinstance(index, (slice, Tensor)) else slice(index, index + 1)
        return NLFParams(self.lambda_shot[idx], self.lambda_read[idx])


def make_generator(seed: int | None, device: torch.device | str = "cpu") -> torch.Generator:
    """A :class:`torch.Generator` on ``device`` seeded with ``seed`` (random seed if ``None``): the project's
    one generator convention, :func:`rcl.rng.generator`."""
    return _rng.generator(seed, device=device)


def _check_images(y: Tensor, name: str = "y") -> None:
    if not isinstance(y, Tensor) or y.dim() != 4:
        shape = tuple(y.shape) if isinstance(y, Tensor) else type(y).__name__
        raise ValueError(f"{name} must be a B×C×H×W tensor, got {shape}")
    if not y.is_floating_point():
        raise ValueError(f"{name} must be a float tensor in [0, 1], got dtype {y.dtype}")


def _broadcast(p: Tensor, y: Tensor) -> Tensor:
    return p.to(device=y.device, dtype=y.dtype).view(-1, *([1] * (y.dim() - 1)))


def nlf_variance(y: Tensor, params: NLFParams) -> Tensor:
    """Per-pixel noise variance ``λ_shot·y + λ_read`` (same shape as ``y``; clamped at 0)."""
    _check_images(y)
    if len(params) != y.shape[0]:
        raise ValueError(f"got {len(params)} NLF parameter pairs for a batch of {y.shape[0]} images")
    var = _broadcast(params.lambda_shot, y) * y + _broadcast(params.lambda_read, y)
    return var.clamp_min(0.0)


def image_sigma(y: Tensor, params: NLFParams) -> Tensor:
    """Each image's overall noise std σ on the 0–255 scale: ``255·sqrt(mean(λ_shot·y + λ_read))``."""
    return 255.0 * nlf_variance(y, params).flatten(1).mean(1).sqrt()


def _uniform(n: int, low: float, high: float, generator: torch.Generator | None) -> Tensor:
    device = generator.device if generator is not None else "cpu"
    u = torch.rand(n, generator=generator, device=device, dtype=torch.float64)
    return low + (high - low) * u


def sample_nlf(
    y: Tensor,
    generator: torch.Generator | None = None,
    sigma_range: tuple[float, float] = SIGMA_RANGE,
    shot_fraction_range: tuple[float, float] = (0.0, 1.0),
) -> tuple[NLFParams, Tensor]:
    """Draw per-image ``(λ_shot, λ_read)`` so each image's σ (0–255 scale) is uniform in ``sigma_range``.

    Returns the parameters (on ``y``'s device, float64 for exact book-keeping) and the drawn σ, shape
    ``(B,)``. See the module docstring for how the shot/read split is drawn.
    """
    _check_images(y)
    lo, hi = (float(v) for v in sigma_range)
    if not 0.0 <= lo <= hi:
        raise ValueError(f"sigma_range must satisfy 0 <= low <= high, got {sigma_range}")
    slo, shi = (float(v) for v in shot_fraction_range)
    if not 0.0 <= slo <= shi <= 1.0:
        raise ValueError(f"shot_fraction_range must lie in [0, 1] with low <= high, got {shot_fraction_range}")
    b = y.shape[0]
    sigma = _uniform(b, lo, hi, generator)
    shot_fraction = _uniform(b, slo, shi, generator)
    var = (sigma / 255.0) ** 2
    # A black image has no signal for shot noise to scale with: all its variance is read noise.
    mean_y = y.detach().flatten(1).mean(1).to(torch.float64).cpu()
    shot_fraction = torch.where(mean_y > 1e-6, shot_fraction.cpu(), torch.zeros_like(mean_y))
    lambda_shot = shot_fraction * var.cpu() / mean_y.clamp_min(1e-6)
    lambda_read = (1.0 - shot_fraction) * var.cpu()
    params = NLFParams(lambda_shot.to(y.device), lambda_read.to(y.device))
    return params, sigma.to(y.device)


def add_noise(
    y: Tensor,
    params: NLFParams,
    generator: torch.Generator | None = None,
    clip: bool = False,
) -> Tensor:
    """One noisy draw ``x = y + n``, ``n ~ N(0, λ_shot·y + λ_read)`` independently per pixel and channel.

    ``clip=True`` clamps ``x`` to [0, 1] (a saturating sensor); the default keeps the NLF's moments exact.
    """
    std = nlf_variance(y, params).sqrt()
    device = generator.device if generator is not None else y.device
    z = torch.randn(y.shape, generator=generator, device=device, dtype=y.dtype).to(y.device)
    x = y + std * z
    return x.clamp(0.0, 1.0) if clip else x


def noisy_pair(
    y: Tensor,
    params: NLFParams,
    generator: torch.Generator | None = None,
    clip: bool = False,
) -> tuple[Tensor, Tensor]:
    """Two independent noisy draws of the same clean ``y`` with the same parameters (Noise2Noise)."""
    return add_noise(y, params, generator, clip), add_noise(y, params, generator, clip)


def empirical_nlf(
    y: Tensor,
    params: NLFParams,
    n_draws: int = 64,
    bins: int = 16,
    generator: torch.Generator | None = None,
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Measure the noise variance of ``n_draws`` draws, binned by clean intensity, against the model.

    ``y`` is one ``1×C×H×W`` image with ``params`` of length 1. Returns, per non-empty intensity bin:
    the mean intensity, the measured variance (pooled over the bin's pixels and all draws), the model
    variance ``λ_shot·y + λ_read`` averaged over the same pixels, and the number of samples.
    """
    if y.shape[0] != 1 or len(params) != 1:
        raise ValueError("empirical_nlf takes one image (batch of 1) and one parameter pair")
    yy = y.expand(n_draws, *y.shape[1:])
    p = NLFParams(params.lambda_shot.expand(n_draws), params.lambda_read.expand(n_draws))
    n = (add_noise(yy, p, generator) - yy).to(torch.float64)
    idx = torch.clamp((y[0] * bins).long(), max=bins - 1).flatten()
    sq = (n**2).flatten(1).sum(0)
    count = torch.bincount(idx, minlength=bins).to(torch.float64) * n_draws
    measured = torch.zeros(bins, dtype=torch.float64).index_add_(0, idx, sq)
    model = torch.zeros(bins, dtype=torch.float64).index_add_(
        0, idx, nlf_variance(y.to(torch.float64), params).flatten()
    )
    level = torch.zeros(bins, dtype=torch.float64).index_add_(0, idx, y[0].to(torch.float64).flatten())
    keep = count > 0
    pixels = count[keep] / n_draws
    return level[keep] / pixels, measured[keep] / count[keep], model[keep] / pixels, count[keep]
