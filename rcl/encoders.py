"""Every ``g_e`` of the consistency loss (Eq. 5): the frozen ResNet encoders and where their weights come from.

* Building a torchvision ResNet: :func:`resnet_builder` (an architecture's constructor and ImageNet weights),
  :func:`build_resnet` (its random initialisation, seeded, the global RNG untouched).
* ImageNet weights: :func:`imagenet_weights_path` (torchvision's file, downloaded once into torch's cache and
  checked against the sha256 prefix in its name; the paper's choice) or :func:`load_resnet_weights` (a local
  state-dict file the user already has, checked key by key, no network); both read with ``weights_only=True``.
* :func:`load_encoder` — a frozen ``g_e`` in eval mode: ``"imagenet"``, ``"random"`` (a frozen randomly
  initialised ResNet, an ablation) or ``"self-supervised"``. :func:`fold_batchnorm` — a frozen ResNet with
  each BatchNorm folded into the convolution before it: the same function, one pass over each activation
  fewer forward and backward (what the consistency loss runs).
* The self-supervised ``g_e``: paper §3.5 allows ``g_e`` to be "pre-trained in a self-supervised fashion using
  the unlabeled noisy inputs" instead of on ImageNet. :func:`train_simclr_encoder` does that with SimCLR
  (Chen et al. 2020): two augmented views of random crops (random resized crop, flip, colour jitter,
  grayscale), a two-layer projection head and the NT-Xent loss (:func:`nt_xent`). It is deliberately small
  (ResNet-18 by default, a few hundred steps), and :func:`cached_simclr_encoder` stores the weights through
  :mod:`rcl.cache` under a key made of the configuration, the images' contents and the training code, so a
  finished encoder is reused, not retrained, and concurrent processes train it once.

Layer: core (imports torch, torchvision, tqdm, :mod:`rcl.cache` and the device and
progress-bar helpers of :mod:`rcl.config`; never the engine, evaluation, CLI, plots or notebooks).
torchvision is imported where a ResNet or an augmentation is built: importing it costs about as much as
importing torch, and the modules that import this one (the loss, the methods, the engine) need it only
when they build a ``g_e``.

Why one module: the three kinds of ``g_e`` are one choice of :func:`load_encoder`, and each kind's weights come
from here — torchvision's file, a user's file, or the self-supervised training whose result only
:func:`load_encoder` reads; split, the loader and the weights it checks would live apart.
"""

from __future__ import annotations

import copy
import hashlib
import inspect
import os
import re
from collections.abc import Callable, Sequence
from functools import cache
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm.auto import tqdm

from rcl import cache as _cache
from rcl.config import default_device, progress_disabled

__all__ = [
    "ENCODER_KINDS",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "ImageNetWeightsUnavailable",
    "RESNET_STAGES",
    "build_resnet",
    "cached_simclr_encoder",
    "check_weights_kind",
    "fold_batchnorm",
    "imagenet_weights_path",
    "load_encoder",
    "load_resnet_weights",
    "nt_xent",
    "resnet_builder",
    "train_simclr_encoder",
]

ENCODER_KINDS = ("imagenet", "random", "self-supervised")
RESNET_STAGES = ("layer1", "layer2", "layer3", "layer4")
#: The input normalisation torchvision's ResNets expect: every g_e sees ``(img - mean) / std`` of an image in
#: [0, 1], in the consistency loss and, so that it is trained on what it is later shown, in SimCLR training.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# torchvision ResNets a weights file may hold, to name the right one when it is not the requested arch
_KNOWN_RESNETS = ("resnet18", "resnet34", "resnet50", "resnet101", "resnet152", "wide_resnet50_2", "wide_resnet101_2")


class ImageNetWeightsUnavailable(RuntimeError):
    """ImageNet weights are neither cached nor downloadable (e.g. offline)."""


# ---------------------------------------------------------------------------------------------- building


def resnet_builder(arch: str) -> tuple[Callable[..., nn.Module], object]:
    """``(constructor, ImageNet weights enum)`` of a supported torchvision ResNet; a :class:`ValueError`
    listing the supported ones otherwise."""
    from torchvision import models

    archs = {
        "resnet18": (models.resnet18, models.ResNet18_Weights.IMAGENET1K_V1),
        "resnet34": (models.resnet34, models.ResNet34_Weights.IMAGENET1K_V1),
        "resnet50": (models.resnet50, models.ResNet50_Weights.IMAGENET1K_V2),
    }
    if arch not in archs:
        raise ValueError(f"unknown encoder architecture {arch!r}; valid: {sorted(archs)}")
    return archs[arch]


def build_resnet(arch: str, seed: int = 0) -> nn.Module:
    """A randomly initialised ``arch``, its initialisation drawn after ``torch.manual_seed(seed)`` inside
    a forked CPU RNG (the global RNG is left as it was)."""
    builder, _ = resnet_builder(arch)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return builder(weights=None)


def _frozen(model: nn.Module) -> nn.Module:
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def fold_batchnorm(model: nn.Module, stages: Sequence[str] = RESNET_STAGES) -> nn.Module:
    """A copy of the frozen torchvision ResNet ``model``, its stem and first ``stages`` only (the later stages
    become identities), with every BatchNorm in eval mode folded into the convolution before it (``conv`` →
    ``conv`` with bias ``β − γμ/σ`` and weights scaled by ``γ/σ``; the BatchNorm becomes an identity). It
    computes the same function up to float rounding — BatchNorm in eval mode is an affine map per channel —
    with one memory-bound pass over each activation fewer, forward and backward. ``model`` is left as it is.
    ``stages`` must be the first stages in order (``("layer1", "layer2")``, not ``("layer2",)``). Raises if a
    BatchNorm does not follow a convolution as in torchvision's ResNets (stem, ``BasicBlock``, ``Bottleneck``,
    ``downsample``), naming it."""
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    stages = tuple(stages)
    if not stages or stages != RESNET_STAGES[: len(stages)]:
        raise ValueError(f"fold_batchnorm: stages={stages} must be the first stages in order, e.g. "
                         f"{RESNET_STAGES[:2]}; valid stages: {RESNET_STAGES}")
    folded = copy.deepcopy(model).eval()
    for stage in RESNET_STAGES:
        if stage not in stages:
            setattr(folded, stage, nn.Identity())
    folded.fc = nn.Identity()
    pairs = [(folded, "", "conv1", "bn1")]
    for stage in stages:
        for i, block in enumerate(getattr(folded, stage)):
            pairs += [(block, f"{stage}.{i}.", f"conv{k}", f"bn{k}") for k in (1, 2, 3) if hasattr(block, f"bn{k}")]
            if block.downsample is not None:
                pairs.append((block.downsample, f"{stage}.{i}.downsample.", "0", "1"))
    for parent, where, conv_name, bn_name in pairs:
        conv, bn = getattr(parent, conv_name), getattr(parent, bn_name)
        if not (isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d)):
            raise ValueError(f"fold_batchnorm: {where}{bn_name} is not a BatchNorm2d after the Conv2d "
                             f"{where}{conv_name}")
        setattr(parent, conv_name, fuse_conv_bn_eval(conv, bn))
        setattr(parent, bn_name, nn.Identity())
    left = [name for name, m in folded.named_modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if left:
        raise ValueError(f"fold_batchnorm: BatchNorm {left[0]!r} was not folded")
    return _frozen(folded)


# ----------------------------------------------------------------------------------------------- weights


def imagenet_weights_path(arch: str = "resnet50") -> Path:
    """Where torchvision caches the ImageNet weights of ``arch`` (``$TORCH_HOME/hub/checkpoints/…``)."""
    _, weights = resnet_builder(arch)
    return Path(torch.hub.get_dir()) / "checkpoints" / Path(weights.url).name


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


def _not_arch(path: Path, arch: str, problem: str, state: dict | None = None) -> ValueError:
    """The one-line error of a weights file that is not an ``arch`` state dict, naming the arch it looks like."""
    guess = _guess_resnet(state) if state else None
    hint = f"; it looks like a {guess} state dict" if guess and guess != arch else ""
    return ValueError(f"{path}: not a {arch} state dict: {problem}{hint}")


def _read_state_dict(path: Path, arch: str) -> dict[str, Tensor]:
    """The dict of tensors a weights file holds (unwrapping a checkpoint's ``state_dict``/``model`` entry)."""
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # truncated zip, garbage, a pickled model object, …
        raise ValueError(
            f"{path}: cannot read it as a {arch} state dict with torch.load(weights_only=True) ({_one_line(err)}); "
            "the file may be truncated or corrupt, or hold a pickled model instead of a state dict"
        ) from err
    if isinstance(obj, dict):
        for entry in ("state_dict", "model"):
            if isinstance(obj.get(entry), dict):
                obj = obj[entry]
                break
    if not isinstance(obj, dict):
        raise _not_arch(path, arch, f"it holds a {type(obj).__name__}, not a dict of tensors")
    odd = [k for k, v in obj.items() if not (isinstance(k, str) and isinstance(v, Tensor))]
    if odd:
        raise _not_arch(path, arch, f"entry {odd[0]!r} is a {type(obj[odd[0]]).__name__}, not a tensor")
    return obj


def load_resnet_weights(
    path: str | os.PathLike, arch: str = "resnet50", stages: Sequence[str] = RESNET_STAGES
) -> dict[str, Tensor]:
    """Read and check a local torchvision-ResNet state dict, e.g. ``resnet50-11ad3fa6.pth``
    (torchvision's ``IMAGENET1K_V2``, what :func:`resnet_builder` downloads; the older V1 file
    ``resnet50-0676ba61.pth`` is another encoder, and another run key).

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
    resnet_builder(arch)  # a supported arch, or a ValueError listing them
    expected = _resnet_shapes(arch)
    if not path.exists():
        raise FileNotFoundError(f"g_e weights file {path} does not exist (g_e_weights=PATH must name a local file)")
    if not path.is_file():
        raise FileNotFoundError(f"g_e weights file {path} is not a file (g_e_weights=PATH must name a local file)")
    obj = _read_state_dict(path, arch)
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
        problem = f"{k} has shape {_fmt_shape(tuple(state[k].shape))}, expected {_fmt_shape(expected[k])}"
        raise _not_arch(path, arch, problem + more(mismatched, "mismatches"), state)
    if missing:
        raise _not_arch(path, arch, f"key {missing[0]} is missing" + more(missing, "missing keys"), state)
    if unexpected:
        raise _not_arch(path, arch, f"unexpected key {unexpected[0]}" + more(unexpected, "unexpected keys"), state)
    return state


def check_weights_kind(kind: str, weights: str | os.PathLike | None) -> None:
    """A local weights file goes with ``g_e="imagenet"`` only: a one-line :class:`ValueError` otherwise."""
    if weights is not None and kind != "imagenet":
        hint = " (its weights come from state_dict)" if kind == "self-supervised" else ""
        raise ValueError(
            f"a local weights file (g_e_weights / weights={os.fspath(weights)!r}) is only used with "
            f"g_e='imagenet', but g_e={kind!r}{hint}: drop g_e_weights or set g_e='imagenet'"
        )


# ------------------------------------------------------------------------------------------------- g_e


def _name_digest(path: Path) -> str | None:
    """The sha256 prefix a torchvision/torch.hub file name carries (``resnet50-11ad3fa6.pth`` → ``11ad3fa6``)."""
    match = re.search(r"-([a-f0-9]{8,})\.", path.name)
    return match.group(1) if match else None


def _check_name_digest(path: Path) -> None:
    """A :class:`ValueError` unless ``path``'s sha256 begins with the prefix its name carries (when it has one)."""
    prefix = _name_digest(path)
    if prefix is None:
        return
    digest = _cache.file_digest(path, length=64)
    if not digest.startswith(prefix):
        raise ValueError(
            f"{path}: its sha256 begins {digest[:len(prefix)]}, not {prefix} as its name says: the file is "
            "corrupt or another file under that name; delete it to download it again, or pass a file you trust "
            "as g_e_weights=PATH"
        )


def _torchvision_imagenet(arch: str, seed: int, stages: Sequence[str]) -> nn.Module:
    """torchvision's ``arch`` with its ImageNet weights, or a clear error offline.

    The weights file is downloaded once into torch's hub cache (:func:`imagenet_weights_path`, by
    ``torch.hub.download_url_to_file``: written whole or not at all) and checked against the sha256 prefix in
    its name before it is read, by :func:`load_resnet_weights` (``weights_only=True``: no code runs while
    loading; torchvision's own loader would unpickle it without that restriction).
    """
    _, imagenet = resnet_builder(arch)
    path = imagenet_weights_path(arch)
    if not path.is_file():
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            torch.hub.download_url_to_file(
                imagenet.url, os.fspath(path), hash_prefix=_name_digest(path), progress=not progress_disabled()
            )
        except Exception as err:  # URLError, socket errors, HTTP errors, a hash mismatch: "not available here"
            raise ImageNetWeightsUnavailable(
                f"ImageNet weights for {arch} are not cached at {path} and could not be downloaded "
                f"({_one_line(err)}). Either pass a local weights file you already have "
                f"(g_e_weights=PATH: any torchvision {arch} state dict, e.g. {path.name}), "
                f"or copy {path.name} there (from a machine with network: "
                f"`python -c \"import torchvision; torchvision.models.{arch}(weights='DEFAULT')\"`), "
                "or use a consistency encoder that needs no download: g_e='random' (a frozen random "
                "ResNet) or g_e='self-supervised' (a ResNet pre-trained by rcl on your noisy images)."
            ) from err
    _check_name_digest(path)
    model = build_resnet(arch, seed)
    model.load_state_dict(load_resnet_weights(path, arch, stages), strict=True)  # torchvision's file is whole
    return model


def _load_self_supervised(model: nn.Module, arch: str, state_dict) -> None:
    """Load the self-supervised weights (a path or a dict) into ``model``; every key but ``fc.*`` must fit."""
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


def load_encoder(
    kind: str = "imagenet",
    arch: str = "resnet50",
    state_dict=None,
    seed: int = 0,
    weights: str | os.PathLike | None = None,
    stages: Sequence[str] = RESNET_STAGES,
) -> nn.Module:
    """A frozen ResNet ``g_e`` in eval mode.

    ``kind="imagenet"`` without ``weights`` loads torchvision's ImageNet weights (cached under
    :func:`imagenet_weights_path`; downloaded once if the network allows, checked against the sha256 prefix
    in the file's name, read with ``weights_only=True``). Offline and
    uncached it raises :class:`ImageNetWeightsUnavailable` naming the expected file and the alternatives,
    among them a local weights file.
    ``kind="imagenet"`` with ``weights=PATH`` (the config's ``g_e_weights``) never touches the network: it
    loads a torchvision ``arch`` state dict the user already has, e.g. ``resnet50-11ad3fa6.pth`` (the V2
    weights the download gives; a V1 file is another encoder), checked by :func:`load_resnet_weights` (only
    the stem and ``stages`` must be present; what the file lacks, such as ``fc``, keeps its seeded random
    init and is unused). ``weights`` with any other ``kind`` is a :class:`ValueError`.
    ``kind="random"`` is seeded (:func:`build_resnet`); ``kind="self-supervised"`` needs ``state_dict`` (a
    path or a dict from :func:`train_simclr_encoder`), whose keys must match the architecture.
    """
    if kind not in ENCODER_KINDS:
        raise ValueError(f"unknown encoder kind {kind!r}; valid: {ENCODER_KINDS}")
    check_weights_kind(kind, weights)
    resnet_builder(arch)  # a supported arch, or a ValueError listing them
    if kind == "imagenet" and weights is not None:
        state = load_resnet_weights(weights, arch, stages)  # checked before paying for the model's init
        model = build_resnet(arch, seed)
        model.load_state_dict(state, strict=False)  # load_resnet_weights checked keys and shapes
    elif kind == "imagenet":
        model = _torchvision_imagenet(arch, seed, stages)
    else:
        model = build_resnet(arch, seed)
        if kind == "self-supervised":
            _load_self_supervised(model, arch, state_dict)
    return _frozen(model)


# ---------------------------------------------------------------------------------------- self-supervised


def nt_xent(z1: Tensor, z2: Tensor, tau: float = 0.5) -> Tensor:
    """SimCLR's normalised-temperature cross entropy over ``2B`` views (mean over anchors)."""
    z = F.normalize(torch.cat([z1, z2]).float(), dim=1)
    sim = z @ z.T / tau
    n = z1.shape[0]
    sim.fill_diagonal_(float("-inf"))
    target = torch.cat([torch.arange(n, 2 * n), torch.arange(n)]).to(z.device)
    return F.cross_entropy(sim, target)


def _augment(crop: int):
    from torchvision.transforms import v2

    return v2.Compose(
        [
            v2.RandomResizedCrop(crop, scale=(0.2, 1.0), antialias=True),
            v2.RandomHorizontalFlip(),
            v2.RandomApply([v2.ColorJitter(0.4, 0.4, 0.4, 0.1)], p=0.8),
            v2.RandomGrayscale(p=0.2),
        ]
    )


def train_simclr_encoder(
    images: Sequence[Tensor],
    arch: str = "resnet18",
    steps: int = 300,
    batch_size: int = 32,
    crop: int = 64,
    tau: float = 0.5,
    lr: float = 1e-3,
    seed: int = 0,
    device: torch.device | str | None = None,
    progress: bool = True,
) -> dict[str, Tensor]:
    """Train a ResNet with SimCLR on noisy ``3×H×W`` images; returns its state dict (on the CPU).

    The views are normalised with :data:`IMAGENET_MEAN` and :data:`IMAGENET_STD` before the ResNet, as the
    consistency loss normalises what it shows ``g_e``: the encoder's BatchNorm statistics and filters are
    learned for the inputs it will compute on.

    Everything random (the ResNet's and the head's initialisation, the images drawn, the augmentations) is
    drawn in this order after ``torch.manual_seed(seed)`` inside a forked CPU RNG; the global RNG is left as
    it was.
    """
    if not images:
        raise ValueError("train_simclr_encoder needs at least one image")
    small = [i for i, im in enumerate(images) if min(im.shape[-2:]) < crop]
    if small:
        raise ValueError(f"image {small[0]} is smaller than the SimCLR crop of {crop} px")
    device = torch.device(device) if device is not None else default_device()
    builder, _ = resnet_builder(arch)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = builder(weights=None)  # the same draws as build_resnet(arch, seed), then the head's
        width = model.fc.in_features
        model.fc = nn.Identity()
        head = nn.Sequential(nn.Linear(width, 512), nn.ReLU(inplace=True), nn.Linear(512, 128))
        model, head = model.to(device), head.to(device)
        mean = torch.tensor(IMAGENET_MEAN, device=device).view(1, 3, 1, 1)
        std = torch.tensor(IMAGENET_STD, device=device).view(1, 3, 1, 1)
        opt = torch.optim.Adam([*model.parameters(), *head.parameters()], lr=lr)
        aug = _augment(crop)
        bar = tqdm(range(steps), desc=f"SimCLR {arch}", disable=progress_disabled(progress))
        for _ in bar:
            idx = torch.randint(len(images), (batch_size,))
            v1 = (torch.stack([aug(images[i]) for i in idx.tolist()]).to(device) - mean) / std
            v2 = (torch.stack([aug(images[i]) for i in idx.tolist()]).to(device) - mean) / std
            loss = nt_xent(head(model(v1)), head(model(v2)), tau)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            bar.set_postfix(loss=f"{loss.item():.3f}")
    return {k: v.detach().cpu() for k, v in model.state_dict().items()}


def _images_digest(images: Sequence[Tensor]) -> str:
    """The sha256 (16 hex digits) of the images' shapes and float32 values, in order."""
    h = hashlib.sha256()
    for im in images:
        h.update(str(tuple(im.shape)).encode())
        h.update(im.detach().cpu().float().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


# the settings that decide a SimCLR encoder's weights, with their defaults (device and progress do not)
_SIMCLR_DEFAULTS = {
    name: p.default
    for name, p in inspect.signature(train_simclr_encoder).parameters.items()
    if name not in ("images", "device", "progress")
}


def _simclr_settings(config: dict) -> dict:
    """The complete SimCLR configuration: ``config`` over :func:`train_simclr_encoder`'s defaults (so a
    default given explicitly or left out is the same encoder); an unknown name is a :class:`TypeError`."""
    unknown = sorted(set(config) - set(_SIMCLR_DEFAULTS))
    if unknown:
        raise TypeError(f"unknown SimCLR setting(s) {unknown}; valid: {sorted(_SIMCLR_DEFAULTS)}")
    return {**_SIMCLR_DEFAULTS, **config}


def cached_simclr_encoder(
    images: Sequence[Tensor], cache_dir: str | os.PathLike, **config
) -> tuple[dict[str, Tensor], Path]:
    """:func:`train_simclr_encoder`, reusing weights stored in ``cache_dir`` for the same images and config.

    Returns ``(state_dict, path)``. The file ``simclr-<arch>-<key>.pt`` is keyed by :func:`rcl.cache.key`
    of the configuration (``device`` and ``progress`` aside) with the images' digest, and the training
    code's version; it is written atomically under a lock (concurrent processes train it once) and read
    back with ``torch.load(..., weights_only=True)``.
    """
    progress = config.pop("progress", True)
    device = config.pop("device", None)
    settings = _simclr_settings(config)
    key = _cache.key({**settings, "images": _images_digest(images)}, code="training")
    path = Path(cache_dir) / f"simclr-{settings['arch']}-{key}.pt"
    state, _ = _cache.load_or_compute(
        path,
        lambda: train_simclr_encoder(images, device=device, progress=progress, **settings),
        _cache.save_tensors,
        lambda p: torch.load(p, map_location="cpu", weights_only=True),
    )
    return state, path
