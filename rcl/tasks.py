"""Downstream tasks: degradations that turn clean images into ``(input, target)`` pairs in [0, 1].

All inputs have the target's size, so one same-size U-Net serves every task (paper §5):

* ``denoise`` — NLF noise (:mod:`rcl.noise`), clipped to [0, 1].
* ``sr`` — ×2 super-resolution: bicubic (antialiased) downsampling by 2, then bicubic upsampling back
  to the target size. The paper uses Taskonomy's 512/1024 px pairs; a bicubic degradation is the
  standard stand-in when only one resolution is at hand.
* ``jdensr`` — joint denoising + SR: NLF noise is added to the low-resolution image before upsampling.
* ``demosaic`` — Bayer mosaic (pattern ``RGGB`` by default: R at even rows/even columns, B at odd/odd,
  G elsewhere), then bilinear demosaicing (normalised convolution), which keeps every sampled value
  exactly. The bilinear image is the network's input.
* ``jdd`` — joint demosaicing + denoising: NLF noise on the clean image, then mosaic and bilinear.

Images whose height or width is odd are cropped by one pixel (``even_crop``) so ×2 tasks are exact.

Layer: core (imports :mod:`rcl.noise`; the supervised pre-training method degrades its crops with these
tasks, and the evaluation builds its labelled and test cases with them).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from rcl import noise as _noise

__all__ = [
    "NOISY_TASKS",
    "TASKS",
    "bayer_mask",
    "bicubic_down",
    "bicubic_up",
    "bilinear_demosaic",
    "even_crop",
    "make_task",
    "mosaic",
]

TASKS = ("denoise", "sr", "jdensr", "demosaic", "jdd")
#: the tasks whose inputs :func:`make_task` draws noise for (the others are deterministic degradations)
NOISY_TASKS = ("denoise", "jdensr", "jdd")
BAYER_PATTERNS = ("RGGB", "BGGR", "GRBG", "GBRG")


def even_crop(y: Tensor) -> Tensor:
    """Drop the last row/column if the height/width is odd."""
    h, w = y.shape[-2:]
    return y[..., : h - h % 2, : w - w % 2]


def bicubic_down(y: Tensor, scale: int = 2) -> Tensor:
    """Antialiased bicubic downsampling by an integer ``scale`` (``B×C×H×W``, H and W divisible)."""
    h, w = y.shape[-2:]
    if h % scale or w % scale:
        raise ValueError(f"image size {h}×{w} is not divisible by the scale {scale}")
    return F.interpolate(y, size=(h // scale, w // scale), mode="bicubic", antialias=True, align_corners=False)


def bicubic_up(x: Tensor, size: tuple[int, int]) -> Tensor:
    """Bicubic upsampling to ``size`` (no clamping)."""
    return F.interpolate(x, size=size, mode="bicubic", align_corners=False)


def bayer_mask(h: int, w: int, pattern: str = "RGGB", device=None, dtype=torch.float32) -> Tensor:
    """The ``3×H×W`` 0/1 mask of which colour each photosite samples."""
    pattern = pattern.upper()
    if pattern not in BAYER_PATTERNS:
        raise ValueError(f"unknown Bayer pattern {pattern!r}; valid: {BAYER_PATTERNS}")
    m = torch.zeros(3, h, w, device=device, dtype=dtype)
    for k, colour in enumerate(pattern):
        dy, dx = divmod(k, 2)
        m["RGB".index(colour), dy::2, dx::2] = 1.0
    return m


def mosaic(y: Tensor, pattern: str = "RGGB") -> Tensor:
    """The Bayer mosaic kept in three channels: each pixel keeps only its sampled colour."""
    return y * bayer_mask(*y.shape[-2:], pattern=pattern, device=y.device, dtype=y.dtype)


_K_RB = torch.tensor([[1.0, 2.0, 1.0], [2.0, 4.0, 2.0], [1.0, 2.0, 1.0]]) / 4.0
_K_G = torch.tensor([[0.0, 1.0, 0.0], [1.0, 4.0, 1.0], [0.0, 1.0, 0.0]]) / 4.0


def bilinear_demosaic(m: Tensor, pattern: str = "RGGB") -> Tensor:
    """Bilinear demosaicing of a three-channel mosaic by normalised convolution.

    Sampled values are returned unchanged; missing ones are the mean of their sampled neighbours
    (borders handled by normalising with the convolved mask, not by padding with zeros).
    """
    h, w = m.shape[-2:]
    mask = bayer_mask(h, w, pattern, device=m.device, dtype=m.dtype).expand(m.shape[0], -1, -1, -1)
    k = torch.stack([_K_RB, _K_G, _K_RB]).to(m)[:, None]
    num = F.conv2d(m * mask, k, padding=1, groups=3)
    den = F.conv2d(mask, k, padding=1, groups=3)
    return num / den


def make_task(
    task: str,
    y: Tensor,
    generator: torch.Generator | None = None,
    sigma_range: tuple[float, float] = _noise.SIGMA_RANGE,
    params: _noise.NLFParams | None = None,
    pattern: str = "RGGB",
) -> tuple[Tensor, Tensor]:
    """Build ``(input, target)`` for ``task`` from clean ``y`` (``B×C×H×W`` in [0, 1]).

    Noisy tasks draw per-image NLF parameters with ``generator`` (σ in ``sigma_range``) unless
    ``params`` is given. Both outputs are in [0, 1] and have the same (even-cropped) size.
    """
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; valid tasks: {TASKS}")
    if y.dim() != 4 or y.shape[1] != 3:
        raise ValueError(f"y must be a B×3×H×W tensor, got shape {tuple(y.shape)}")
    target = even_crop(y)
    size = tuple(target.shape[-2:])

    def noisy(z: Tensor) -> Tensor:
        p = params if params is not None else _noise.sample_nlf(z, generator, sigma_range)[0]
        return _noise.add_noise(z, p, generator, clip=True)

    if task == "denoise":
        x = noisy(target)
    elif task == "sr":
        x = bicubic_up(bicubic_down(target), size)
    elif task == "jdensr":
        x = bicubic_up(noisy(bicubic_down(target).clamp(0.0, 1.0)), size)
    elif task == "demosaic":
        x = bilinear_demosaic(mosaic(target, pattern), pattern)
    else:  # jdd
        x = bilinear_demosaic(mosaic(noisy(target), pattern), pattern)
    return x.clamp(0.0, 1.0), target
