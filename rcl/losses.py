"""RCL's losses: the residual contrastive loss (Eq. 3), the consistency loss (Eq. 5), their sum (Eq. 6).

* :func:`residual_contrastive_loss` — InfoNCE whose similarity is ``−d(n̂_q, n̂_i)/τ`` for a distance
  ``d`` from :mod:`rcl.distances`, with the batch built as Algorithm 1: ``N+1`` images, two overlapping
  crops each; for pair ``j`` the positive is its own second crop and the negatives are the second crops
  of the other ``N`` pairs. Algorithm 1 *sums* the ``N+1`` per-anchor losses (line 8); ``reduction``
  also offers the mean, whose value does not grow with the batch.
* :class:`ConsistencyLoss` — ``‖φ(g_e(x)) − φ(g_e(f(x)))‖²`` with a frozen encoder ``g_e``:
  ``"imagenet"`` (torchvision ResNet with ImageNet weights, the paper's choice; from torchvision's
  cache/downloader, or offline from a local state-dict file given as ``weights``), ``"random"`` (a frozen
  randomly initialised ResNet, an ablation), or ``"self-supervised"`` (a ResNet pre-trained on the
  unlabeled noisy images, which §3.5 allows; see :mod:`rcl.encoders`). ``φ`` reads the outputs of
  the named ResNet stages; each stage's squared error is averaged over its elements and the stages are
  summed, so the value does not depend on the crop size.
* :func:`rcl_loss` — ``α·L_contrast + L_consistency`` (Eq. 6).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Sequence
from functools import cache
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
    "load_encoder",
    "load_resnet_weights",
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


# torchvision ResNets a weights file may hold, to name the right one when it is not the requested arch
_KNOWN_RESNETS = ("resnet18", "resnet34", "resnet50", "resnet101", "resnet152", "wide_resnet50_2", "wide_resnet101_2")


@cache
def _resnet_shapes(arch: str) -> dict[str, tuple[int, ...]]:
    """``{key: shape}`` of torchvision's ``arch`` state dict, built on the meta device (no memory, no init cost)."""
    from torchvision import models

    with torch.device("meta"):
        model = getattr(models, arch)(weights=None)
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def _optional(key: str) -> bool:
    """Keys a weights file may lack: the classifier (unused by g_e) and BatchNorm's step counters."""
    return key.startswith("fc.") or key.endswith("num_batches_tracked")


def _guess_resnet(state: dict[str, Tensor]) -> str | None:
    """The torchvision ResNet whose keys and shapes ``state`` matches exactly, else one it fits a part of."""
    ours = {k: tuple(v.shape) for k, v in state.items() if not _optional(k)}
    if not ours:
        return None
    partial = None
    for name in _KNOWN_RESNETS:
        theirs = {k: s for k, s in _resnet_shapes(name).items() if not _optional(k)}
        if ours == theirs:
            return name
        if partial is None and all(theirs.get(k) == s for k, s in ours.items()):
            partial = name
    return partial


def _fmt_shape(shape: tuple[int, ...]) -> str:
    return "(" + ", ".join(map(str, shape)) + (",)" if len(shape) == 1 else ")")


def _one_line(err: BaseException, limit: int = 160) -> str:
    """``Type: first sentence of the message`` on one line (no ANSI codes), for wrapping errors."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(err)).strip()
    text = text.splitlines()[0] if text else ""
    text = re.split(r"(?<=\.)\s", text, maxsplit=1)[0]
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


def load_resnet_weights(
    path: str | os.PathLike, arch: str = "resnet50", stages: Sequence[str] = RESNET_STAGES
) -> dict[str, Tensor]:
    """Read and check a local torchvision-ResNet state dict, e.g. ``resnet50-0676ba61.pth``.

    The file is read with ``torch.load(path, map_location="cpu", weights_only=True)`` (no code runs while
    loading). It may hold a plain state dict, or a dict whose ``"state_dict"`` or ``"model"`` entry is one
    (a training checkpoint). The state dict must be ``arch``'s: the stem (``conv1``, ``bn1``) and the
    ``stages`` named must all be present, every tensor it holds must have the shape torchvision's ``arch``
    gives it, and it may hold no key ``arch`` lacks. ``fc.*`` (the classifier, unused by ``g_e``) and
    BatchNorm's ``num_batches_tracked`` may be absent; ``fc.*`` tensors of another shape (a fine-tuned
    head) are dropped from the result, never an error.

    Raises :class:`FileNotFoundError` if ``path`` is not a file, and :class:`ValueError` with a one-line
    message naming the file, ``arch`` and the problem otherwise, e.g. ``…/w.pth: not a resnet50 state dict:
    layer1.0.conv1.weight has shape (64, 64, 3, 3), expected (64, 64, 1, 1) (and 22 more mismatches);
    it looks like a resnet18 state dict``.
    """
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"g_e weights must be a path to a local file (str or PathLike), got {type(path).__name__}")
    path = Path(os.fspath(path)).expanduser()
    _resnet(arch)  # a supported arch, or a ValueError listing them
    expected = _resnet_shapes(arch)
    if not path.exists():
        raise FileNotFoundError(f"g_e weights file {path} does not exist (g_e_weights=PATH must name a local file)")
    if not path.is_file():
        raise FileNotFoundError(f"g_e weights file {path} is not a file (g_e_weights=PATH must name a local file)")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # truncated zip, garbage, a pickled model object, …
        raise ValueError(
            f"{path}: cannot read it as a {arch} state dict with torch.load(weights_only=True) ({_one_line(err)}); "
            "the file may be truncated or corrupt, or hold a pickled model instead of a state dict"
        ) from err

    def bad(problem: str, state: dict | None = None) -> ValueError:
        guess = _guess_resnet(state) if state else None
        hint = f"; it looks like a {guess} state dict" if guess and guess != arch else ""
        return ValueError(f"{path}: not a {arch} state dict: {problem}{hint}")

    if isinstance(obj, dict):
        for entry in ("state_dict", "model"):
            if isinstance(obj.get(entry), dict):
                obj = obj[entry]
                break
    if not isinstance(obj, dict):
        raise bad(f"it holds a {type(obj).__name__}, not a dict of tensors")
    odd = [k for k, v in obj.items() if not (isinstance(k, str) and isinstance(v, Tensor))]
    if odd:
        raise bad(f"entry {odd[0]!r} is a {type(obj[odd[0]]).__name__}, not a tensor")
    # the classifier is unused by g_e: kept when it is torchvision's, dropped when absent or another head
    state = {k: v for k, v in obj.items() if not k.startswith("fc.") or expected.get(k) == tuple(v.shape)}

    prefixes = ("conv1.", "bn1.", *(f"{name}." for name in stages))
    mismatched = [k for k, v in state.items() if k in expected and tuple(v.shape) != expected[k]]
    missing = [k for k in expected if k.startswith(prefixes) and not _optional(k) and k not in state]
    unexpected = [k for k in state if k not in expected]

    def more(items: list, what: str) -> str:
        return f" (and {len(items) - 1} more {what})" if len(items) > 1 else ""

    if mismatched:
        k = mismatched[0]
        raise bad(
            f"{k} has shape {_fmt_shape(tuple(state[k].shape))}, expected {_fmt_shape(expected[k])}"
            + more(mismatched, "mismatches"),
            state,
        )
    if missing:
        raise bad(f"key {missing[0]} is missing" + more(missing, "missing keys"), state)
    if unexpected:
        raise bad(f"unexpected key {unexpected[0]}" + more(unexpected, "unexpected keys"), state)
    return state


def load_encoder(
    kind: str = "imagenet",
    arch: str = "resnet50",
    state_dict=None,
    seed: int = 0,
    weights: str | os.PathLike | None = None,
    stages: Sequence[str] = RESNET_STAGES,
) -> nn.Module:
    """A frozen ResNet ``g_e`` in eval mode.

    ``kind="imagenet"`` without ``weights`` loads torchvision's ImageNet weights through its weights API
    (cached under :func:`imagenet_weights_path`; downloaded once if the network allows). Offline and
    uncached it raises :class:`ImageNetWeightsUnavailable` naming the expected file and the alternatives,
    among them a local weights file.
    ``kind="imagenet"`` with ``weights=PATH`` (the config's ``g_e_weights``) never touches the network: it
    loads a torchvision ``arch`` state dict the user already has, e.g. ``resnet50-0676ba61.pth``, checked by
    :func:`load_resnet_weights` (only the stem and ``stages`` must be present; what the file lacks, such as
    ``fc``, keeps its seeded random init and is unused). ``weights`` with any other ``kind`` is a
    :class:`ValueError`.
    ``kind="random"`` is seeded; ``kind="self-supervised"`` needs ``state_dict`` (a path or a dict from
    :func:`rcl.encoders.train_simclr_encoder`), whose keys must match the architecture.
    """
    if kind not in ENCODER_KINDS:
        raise ValueError(f"unknown encoder kind {kind!r}; valid: {ENCODER_KINDS}")
    _check_weights_kind(kind, weights)
    builder, imagenet = _resnet(arch)
    if kind == "imagenet" and weights is not None:
        state = load_resnet_weights(weights, arch, stages)  # checked before paying for the model's init
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = builder(weights=None)
        model.load_state_dict(state, strict=False)  # load_resnet_weights checked keys and shapes
    elif kind == "imagenet":
        path = imagenet_weights_path(arch)
        try:
            model = builder(weights=imagenet)
        except Exception as err:  # URLError, socket errors, HTTP errors, a corrupt cache: "not available here"
            raise ImageNetWeightsUnavailable(
                f"ImageNet weights for {arch} are not cached at {path} and could not be downloaded "
                f"({_one_line(err)}). Either pass a local weights file you already have "
                f"(g_e_weights=PATH: any torchvision {arch} state dict, e.g. {path.name}), "
                f"or copy {path.name} there (from a machine with network: "
                f"`python -c \"import torchvision; torchvision.models.{arch}(weights='DEFAULT')\"`), "
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


def _check_weights_kind(kind: str, weights) -> None:
    if weights is not None and kind != "imagenet":
        hint = " (its weights come from state_dict)" if kind == "self-supervised" else ""
        raise ValueError(
            f"a local weights file (g_e_weights / weights={os.fspath(weights)!r}) is only used with "
            f"g_e='imagenet', but g_e={kind!r}{hint}: drop g_e_weights or set g_e='imagenet'"
        )


class ConsistencyLoss(nn.Module):
    """Eq. 5: ``‖φ(g_e(x)) − φ(g_e(f(x)))‖²`` with a frozen ResNet ``g_e``.

    ``layers`` names the ResNet stages φ reads (``layer1`` … ``layer4``); each stage's squared error is
    averaged over its elements, then the stages are summed. Inputs are images in [0, 1], normalised with
    ImageNet statistics as torchvision's ResNets expect. The encoder runs in float32 even under autocast
    only if the caller disables it; gradients flow to ``f(x)`` but never into ``g_e``.

    ``weights`` (a local file path, the config's ``g_e_weights``) makes ``g_e="imagenet"`` load a
    torchvision ResNet state dict the user already has (e.g. ``resnet50-0676ba61.pth``) instead of going
    through torchvision's cache and downloader; the file must fit ``arch`` up to the last stage in
    ``layers`` (see :func:`load_resnet_weights`). It is an error with any other ``g_e``.
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
        _check_weights_kind(g_e, weights)
        self.kind, self.arch, self.layers = g_e, arch, tuple(layers)
        self.weights = None if weights is None else os.fspath(weights)
        self.last = max(RESNET_STAGES.index(name) for name in self.layers)
        # g_e="none": no consistency term at all (the contrastive loss alone, an ablation)
        self.encoder = (
            None
            if g_e == "none"
            else load_encoder(g_e, arch, state_dict, seed, weights=weights, stages=RESNET_STAGES[: self.last + 1])
        )
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
        weights = f", weights={self.weights!r}" if self.weights is not None else ""
        return f"g_e={self.kind!r}, arch={self.arch!r}, layers={self.layers}{weights}"

