"""Image-quality metrics from a maintained library (torchmetrics), on outputs clamped to [0, 1].

PSNR and SSIM use ``data_range=1``; SSIM uses a Gaussian window of 11 px, σ = 1.5, k1 = 0.01,
k2 = 0.03 (torchmetrics' defaults, the usual choice). Both are returned per image.

Layer: evaluation (imports torch and torchmetrics; nothing of rcl).
"""

from __future__ import annotations

import torch
from torch import Tensor
from torchmetrics.functional.image import peak_signal_noise_ratio, structural_similarity_index_measure

__all__ = ["psnr", "ssim"]


def _prep(x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
    if x.shape != y.shape or x.dim() != 4:
        raise ValueError(f"expected two B×C×H×W tensors of equal shape, got {tuple(x.shape)} and {tuple(y.shape)}")
    return x.detach().float().clamp(0, 1), y.detach().float().clamp(0, 1)


def psnr(x: Tensor, y: Tensor) -> Tensor:
    """Per-image PSNR in dB between ``x`` and reference ``y`` (``B×C×H×W`` in [0, 1])."""
    x, y = _prep(x, y)
    return peak_signal_noise_ratio(x, y, data_range=1.0, reduction="none", dim=(1, 2, 3))


def ssim(x: Tensor, y: Tensor) -> Tensor:
    """Per-image SSIM between ``x`` and reference ``y`` (``B×C×H×W`` in [0, 1])."""
    x, y = _prep(x, y)
    out = structural_similarity_index_measure(x, y, data_range=1.0, reduction="none")
    return torch.as_tensor(out).reshape(x.shape[0])
