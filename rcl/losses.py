"""RCL's losses: the residual contrastive loss (Eq. 3), the consistency loss (Eq. 5), their sum (Eq. 6).

* :func:`residual_contrastive_loss` — InfoNCE whose similarity is ``−d(n̂_q, n̂_i)/τ`` for a distance
  ``d`` from :mod:`rcl.distances`, with the batch built as Algorithm 1: ``N+1`` images, two overlapping
  crops each; for pair ``j`` the positive is its own second crop and the negatives are the second crops
  of the other ``N`` pairs. Algorithm 1 *sums* the ``N+1`` per-anchor losses (line 8); ``reduction``
  also offers the mean, whose value does not grow with the batch.
* :class:`ConsistencyLoss` — ``‖φ(g_e(x)) − φ(g_e(f(x)))‖²`` with a frozen encoder ``g_e``:
  ``"imagenet"`` (torchvision ResNet with ImageNet weights, the paper's choice), ``"random"`` (a frozen
  randomly initialised ResNet, an ablation), or ``"self-supervised"`` (a ResNet pre-trained on the
  unlabeled noisy images, which §3.5 allows; see :mod:`rcl.encoders`). ``φ`` reads the outputs of
  the named ResNet stages; each stage's squared error is averaged over its elements and the stages are
  summed, so the value does not depend on the crop size.
* :func:`rcl_loss` — ``α·L_contrast + L_consistency`` (Eq. 6).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "ENCODER_KINDS",
    "ConsistencyLoss",
    "ImageNetWeightsUnavailable",
    "TAU_SCALES",
    "effective_tau",
    "rcl_loss",
    "residual_contrastive_loss",
]

ENCODER_KINDS = ("imagenet", "random", "self-supervised")
RESNET_STAGES = ("layer1", "layer2", "layer3", "layer4")
_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)


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
    for residual EMDs is ~10⁻² and shrinks as training goes (an option of ours; the paper fixes τ).
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
    n = min(d.shape)
    off = d.detach()[~torch.eye(d.shape[0], d.shape[1], dtype=torch.bool, device=d.device)] if n > 1 else d.detach()
    return tau * off.median().clamp_min(1e-12)


def rcl_loss(l_contrast: Tensor, l_consistency: Tensor, alpha: float = 1e-3) -> Tensor:
    """Eq. 6: ``α·L_contrast + L_consistency`` (the paper uses α = 1e-3)."""
    return alpha * l_contrast + l_consistency


class ImageNetWeightsUnavailable(RuntimeError):
    """ImageNet weights are neither cached nor downloadable (e.g. offline)."""


def _resnet(arch: str) -> tuple[Callable[..., nn.Module], object]:
    from torchvision import models

    archs = {
        "resnet18": (models.resnet18, models.ResNet18_Weights.IMAGENET1K_V1),
        "resnet34": (models.resnet34, models.ResNet34_Weights.IMAGENET1K_V1),
        "resnet50": (models.resnet50, models.ResNet50_Weights.IMAGENET1K_V2),
    }
    if arch not in archs:
        raise ValueError(f"unknown encoder architecture {arch!r}; valid: {sorted(archs)}")
    return archs[arch]


def imagenet_weights_path(arch: str = "resnet50") -> Path:
    """Where torchvision caches the ImageNet weights of ``arch`` (``$TORCH_HOME/hub/checkpoints/…``)."""
    _, weights = _resnet(arch)
    return Path(torch.hub.get_dir()) / "checkpoints" / Path(weights.url).name


def load_encoder(kind: str = "imagenet", arch: str = "resnet50", state_dict=None, seed: int = 0) -> nn.Module:
    """A frozen ResNet ``g_e`` in eval mode.

    ``kind="imagenet"`` loads torchvision's ImageNet weights through its weights API (cached under
    :func:`imagenet_weights_path`; downloaded once if the network allows). Offline and uncached it raises
    :class:`ImageNetWeightsUnavailable` naming the expected file and the alternatives.
    ``kind="random"`` is seeded; ``kind="self-supervised"`` needs ``state_dict`` (a path or a dict from
    :func:`rcl.encoders.train_simclr_encoder`), whose keys must match the architecture.
    """
    if kind not in ENCODER_KINDS:
        raise ValueError(f"unknown encoder kind {kind!r}; valid: {ENCODER_KINDS}")
    builder, weights = _resnet(arch)
    if kind == "imagenet":
        path = imagenet_weights_path(arch)
        try:
            model = builder(weights=weights)
        except Exception as err:  # URLError, socket errors, HTTP errors: all mean "not available here"
            raise ImageNetWeightsUnavailable(
                f"ImageNet weights for {arch} are not cached at {path} and could not be downloaded "
                f"({type(err).__name__}: {err}). Either copy {path.name} there (from a machine with "
                f"network: `python -c \"import torchvision; torchvision.models.{arch}(weights='DEFAULT')\"`), "
                "or use a consistency encoder that needs no download: g_e='random' (a frozen random "
                "ResNet) or g_e='self-supervised' (a ResNet pre-trained by rcl on your noisy images)."
            ) from err
    else:
        with torch.random.fork_rng(devices=[]):  # seeded init without touching the global RNG
            torch.manual_seed(seed)
            model = builder(weights=None)
        if kind == "self-supervised":
            if state_dict is None:
                raise ValueError(
                    "g_e='self-supervised' needs the encoder's weights: pass state_dict (a path or the dict "
                    "returned by rcl.encoders.train_simclr_encoder)"
                )
            if isinstance(state_dict, (str, Path)):
                state_dict = torch.load(state_dict, map_location="cpu", weights_only=True)
            missing, unexpected = model.load_state_dict(state_dict, strict=False)
            if unexpected or [k for k in missing if not k.startswith("fc.")]:
                raise ValueError(
                    f"the self-supervised encoder weights do not fit {arch}: missing {missing[:3]}…, "
                    f"unexpected {unexpected[:3]}…"
                )
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


class ConsistencyLoss(nn.Module):
    """Eq. 5: ``‖φ(g_e(x)) − φ(g_e(f(x)))‖²`` with a frozen ResNet ``g_e``.

    ``layers`` names the ResNet stages φ reads (``layer1`` … ``layer4``); each stage's squared error is
    averaged over its elements, then the stages are summed. Inputs are images in [0, 1], normalised with
    ImageNet statistics as torchvision's ResNets expect. The encoder runs in float32 even under autocast
    only if the caller disables it; gradients flow to ``f(x)`` but never into ``g_e``.
    """

    def __init__(
        self,
        g_e: str = "imagenet",
        arch: str = "resnet50",
        layers: Sequence[str] = ("layer1", "layer2", "layer3"),
        state_dict=None,
        seed: int = 0,
    ) -> None:
        super().__init__()
        bad = [name for name in layers if name not in RESNET_STAGES]
        if bad or not layers:
            raise ValueError(f"unknown ResNet stage(s) {bad or list(layers)}; valid: {RESNET_STAGES}")
        self.kind, self.arch, self.layers = g_e, arch, tuple(layers)
        # g_e="none": no consistency term at all (the contrastive loss alone, an ablation)
        self.encoder = None if g_e == "none" else load_encoder(g_e, arch, state_dict, seed)
        self.last = max(RESNET_STAGES.index(name) for name in self.layers)
        self.register_buffer("mean", torch.tensor(_IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(_IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def train(self, mode: bool = True) -> ConsistencyLoss:
        super().train(mode)
        if self.encoder is not None:
            self.encoder.eval()  # frozen BatchNorm statistics, always
        return self

    def features(self, img: Tensor) -> list[Tensor]:
        """φ(g_e(img)): the outputs of the selected stages."""
        e = self.encoder
        h = (img - self.mean.to(img.dtype)) / self.std.to(img.dtype)
        h = e.maxpool(e.relu(e.bn1(e.conv1(h))))
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
        return f"g_e={self.kind!r}, arch={self.arch!r}, layers={self.layers}"

