"""RCL's losses: the residual contrastive loss (Eq. 3), the consistency loss (Eq. 5), their sum (Eq. 6).

* :func:`residual_contrastive_loss` — InfoNCE whose similarity is ``−d(n̂_q, n̂_i)/τ`` for a distance
  ``d`` from :mod:`rcl.distances`, with the batch built as Algorithm 1: ``N+1`` images, two overlapping
  crops each; for pair ``j`` the positive is its own second crop and the negatives are the second crops
  of the other ``N`` pairs. Algorithm 1 *sums* the ``N+1`` per-anchor losses (line 8); ``reduction``
  also offers the mean, whose value does not grow with the batch.
* :class:`ConsistencyLoss` — ``‖φ(g_e(x)) − φ(g_e(f(x)))‖²`` with a frozen encoder ``g_e`` built by
  :func:`rcl.encoders.load_encoder` (``"imagenet"``, ``"random"`` or ``"self-supervised"``; everything about
  the encoders and their weights lives in :mod:`rcl.encoders`), or none (``"none"``, an ablation). ``φ``
  reads the outputs of the named ResNet stages; each stage's squared error is averaged over its elements
  and the stages are summed, so the value does not depend on the crop size.
* :func:`rcl_loss` — ``α·L_contrast + L_consistency`` (Eq. 6).

Layer: core (imports torch and :mod:`rcl.encoders`; never the engine, evaluation, CLI, plots
or notebooks).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rcl.encoders import IMAGENET_MEAN, IMAGENET_STD, RESNET_STAGES, check_weights_kind, fold_batchnorm, load_encoder

__all__ = [
    "ConsistencyLoss",
    "TAU_SCALES",
    "effective_tau",
    "rcl_loss",
    "residual_contrastive_loss",
]


def residual_contrastive_loss(
    r1: Tensor,
    r2: Tensor,
    distance: Callable[[Tensor, Tensor], Tensor],
    tau: float,
    reduction: str = "sum",
    tau_scale: str = "absolute",
) -> Tensor:
    """Eq. 3 over a batch built as Algorithm 1.

    ``r1[j]`` and ``r2[j]`` are the residuals ``x − f(x)`` of the two crops of image ``j``
    (``(N+1)×C×H×W`` each). With ``D = distance(r1, r2)`` (an ``(N+1)×(N+1)`` matrix), the loss of
    anchor ``j`` is ``−log softmax_i(−D[j, i]/τ)[j]``: row ``j`` holds its positive on the diagonal and
    the ``N`` negatives off it. ``reduction`` is ``"sum"`` (Algorithm 1) or ``"mean"``.
    When all residuals are identical every anchor's loss is ``log(N+1)``.

    ``tau_scale="median"`` divides by ``τ·m`` instead of ``τ``, with ``m`` the median off-diagonal distance
    of the batch (no gradient through it): the temperature then follows the distance's own scale, which
    for residual EMDs is small (notebook 02 computes it) and shrinks as training goes (an option of ours; the
    paper fixes τ).
    """
    if r1.shape[0] != r2.shape[0] or r1.shape[0] < 2:
        raise ValueError(f"need two batches of N+1 >= 2 residuals of equal length, got {r1.shape[0]} and {r2.shape[0]}")
    if not tau > 0:
        raise ValueError(f"temperature tau must be positive, got {tau}")
    if reduction not in ("sum", "mean"):
        raise ValueError(f"reduction must be 'sum' or 'mean', got {reduction!r}")
    d = distance(r1, r2).float()
    logits = -d / effective_tau(d, tau, tau_scale)
    target = torch.arange(d.shape[0], device=d.device)
    return F.cross_entropy(logits, target, reduction=reduction)


TAU_SCALES = ("absolute", "median")


def effective_tau(d: Tensor, tau: float, tau_scale: str = "absolute") -> Tensor | float:
    """``τ`` itself, or ``τ`` times the median off-diagonal entry of the distance matrix ``d`` (detached)."""
    if tau_scale == "absolute":
        return tau
    if tau_scale != "median":
        raise ValueError(f"tau_scale must be one of {TAU_SCALES}, got {tau_scale!r}")
    if min(d.shape) < 2:
        return tau * d.detach().median().clamp_min(1e-12)
    # the diagonal masked as NaN, not removed: the same (lower) median, with no read-back of the mask's size
    off = d.detach().masked_fill(torch.eye(d.shape[0], d.shape[1], dtype=torch.bool, device=d.device), float("nan"))
    return tau * off.nanmedian().clamp_min(1e-12)


def rcl_loss(l_contrast: Tensor, l_consistency: Tensor, alpha: float = 1e-3) -> Tensor:
    """Eq. 6: ``α·L_contrast + L_consistency`` (the paper uses α = 1e-3)."""
    return alpha * l_contrast + l_consistency


class ConsistencyLoss(nn.Module):
    """Eq. 5: ``‖φ(g_e(x)) − φ(g_e(f(x)))‖²`` with a frozen ResNet ``g_e``.

    ``layers`` names the ResNet stages φ reads (``layer1`` … ``layer4``); each stage's squared error is
    averaged over its elements, then the stages are summed. Inputs are images in [0, 1], normalised with
    ImageNet statistics as torchvision's ResNets expect. The encoder runs in float32 even under autocast
    only if the caller disables it; gradients flow to ``f(x)`` but never into ``g_e``.

    ``weights`` (a local file path, the config's ``g_e_weights``) makes ``g_e="imagenet"`` load a
    torchvision ResNet state dict the user already has (e.g. ``resnet50-11ad3fa6.pth``, the V2 weights the
    download gives) instead of going through torchvision's cache and downloader; the file must fit ``arch``
    up to the last stage in ``layers`` (see :func:`rcl.encoders.load_resnet_weights`). It is an error with
    any other ``g_e``.
    """

    def __init__(
        self,
        g_e: str = "imagenet",
        arch: str = "resnet50",
        layers: Sequence[str] = ("layer1", "layer2", "layer3"),
        state_dict=None,
        seed: int = 0,
        weights: str | os.PathLike | None = None,
    ) -> None:
        super().__init__()
        bad = [name for name in layers if name not in RESNET_STAGES]
        if bad or not layers:
            raise ValueError(f"unknown ResNet stage(s) {bad or list(layers)}; valid: {RESNET_STAGES}")
        check_weights_kind(g_e, weights)
        self.kind, self.arch, self.layers = g_e, arch, tuple(layers)
        self.weights = None if weights is None else os.fspath(weights)
        self.last = max(RESNET_STAGES.index(name) for name in self.layers)
        # g_e="none": no consistency term at all (the contrastive loss alone, an ablation)
        self.encoder = (
            None
            if g_e == "none"
            else load_encoder(g_e, arch, state_dict, seed, weights=weights, stages=RESNET_STAGES[: self.last + 1])
        )
        # What features() runs: g_e with its BatchNorms folded into its convolutions (the same function, one
        # memory-bound pass per layer fewer); `encoder` stays g_e as loaded.
        self.folded = None if self.encoder is None else fold_batchnorm(self.encoder, RESNET_STAGES[: self.last + 1])
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def train(self, mode: bool = True) -> ConsistencyLoss:
        super().train(mode)
        if self.encoder is not None:
            self.encoder.eval()  # frozen BatchNorm statistics, always
            self.folded.eval()
        return self

    def features(self, img: Tensor, encoder: nn.Module | None = None) -> list[Tensor]:
        """φ(g_e(img)): the outputs of the selected stages, computed by ``g_e`` with its BatchNorms folded
        (``encoder``: another ResNet instead, e.g. ``self.encoder``, g_e as loaded, to compare)."""
        e = self.folded if encoder is None else encoder
        h = (img - self.mean.to(img.dtype)) / self.std.to(img.dtype)
        h = e.maxpool(e.relu(e.bn1(e.conv1(h))))  # folded, bn1 is an identity
        out = []
        for name in RESNET_STAGES[: self.last + 1]:
            h = getattr(e, name)(h)
            if name in self.layers:
                out.append(h)
        return out

    def forward(self, x: Tensor, fx: Tensor) -> Tensor:
        if self.encoder is None:
            return fx.new_zeros((), dtype=torch.float32)
        with torch.no_grad():
            target = self.features(x)
        pred = self.features(fx)
        return sum(F.mse_loss(p.float(), t.float()) for p, t in zip(pred, target))

    def extra_repr(self) -> str:
        weights = f", weights={self.weights!r}" if self.weights is not None else ""
        return f"g_e={self.kind!r}, arch={self.arch!r}, layers={self.layers}{weights}"
