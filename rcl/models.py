"""The U-Net ``f = h ∘ φ`` shared by every method (paper §4 "Implementation", after Zamir et al. 2018).

``φ`` (:meth:`UNet.features`) is everything up to the penultimate feature map — the representation the
proxy protocol evaluates; ``h`` (:attr:`UNet.head`) is the last 1×1 convolution to 3 channels, the only
layer the proxy protocol re-initialises and fine-tunes. Any input size works: inputs are padded
(reflect) to a multiple of ``2**depth`` and the output is cropped back.

Three backbones, the restoration field's standard options (``UNetConfig.skip``; the book's
"Differences" page gives the measurements behind the default):

* ``"none"``: the plain U-Net, ``f(x) = h(φ(x))``.
* ``"residual"``: residual learning as DnCNN/VDSR, ``f(x) = x + h(φ(x))``. The trunk models the
  residual itself, and a zero head is the identity. For RCL this makes Eq. 2's residual
  ``n̂ = x − f(x) = −h(φ(x))`` the output of the last layer. Under the proxy protocol the global skip is part
  of the frozen architecture: only ``h`` is refitted, i.e. a linear map from φ(x) to ``y − x``.
* ``"concat"``: the Noise2Noise U-Net's design (Lehtinen et al. 2018, appendix): the input is
  concatenated into the top decoder level before its convolutions, so φ sees the input pixels directly.

Layer: core (imports only torch).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["NORMS", "SKIPS", "UNet", "UNetConfig", "memory_format"]

NORMS = ("batch", "group", "instance", "none")
SKIPS = ("none", "residual", "concat")


def memory_format(device: torch.device | str) -> torch.memory_format:
    """The layout every network of the project convolves in on ``device``: channels-last on CPUs and CUDA
    GPUs, whose convolution libraries (oneDNN, cuDNN) are fastest on it — on a 2-core AVX-512 CPU a
    cpu-profile step 1.2× faster and an evaluation forward pass 1.6× (``benchmarks/README.md``) — and
    contiguous elsewhere. Layout is not numerics: a network gives the same outputs in either, to rounding."""
    return torch.channels_last if torch.device(device).type in ("cpu", "cuda") else torch.contiguous_format


@dataclass(frozen=True)
class UNetConfig:
    """U-Net hyper-parameters: ``width`` channels at full resolution, doubled at each of ``depth`` levels.

    ``norm`` defaults to ``"none"``: normalisation layers that remove each feature map's mean and scale
    (Batch/Group/InstanceNorm) also remove the absolute intensities a restoration network must
    reproduce, and slowed the supervised baseline's learning markedly in our trials.
    """

    width: int = 32
    depth: int = 4
    norm: str = "none"
    in_channels: int = 3
    out_channels: int = 3
    skip: str = "none"

    def __post_init__(self) -> None:
        if self.norm not in NORMS:
            raise ValueError(f"unknown norm {self.norm!r}; valid: {NORMS}")
        if self.skip not in SKIPS:
            raise ValueError(f"unknown skip {self.skip!r}; valid: {SKIPS}")
        if self.skip == "residual" and self.in_channels != self.out_channels:
            raise ValueError("skip='residual' needs in_channels == out_channels (the output is x + h(φ(x)))")
        if self.width < 1 or self.depth < 1:
            raise ValueError(f"width and depth must be >= 1, got width={self.width}, depth={self.depth}")


def _norm(kind: str, channels: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "group":
        return nn.GroupNorm(min(8, channels), channels)
    if kind == "instance":
        return nn.InstanceNorm2d(channels, affine=True)
    return nn.Identity()


class _Block(nn.Sequential):
    def __init__(self, cin: int, cout: int, norm: str) -> None:
        super().__init__(
            nn.Conv2d(cin, cout, 3, padding=1, bias=norm == "none"),
            _norm(norm, cout),
            nn.LeakyReLU(0.1, inplace=True),
            nn.Conv2d(cout, cout, 3, padding=1, bias=norm == "none"),
            _norm(norm, cout),
            nn.LeakyReLU(0.1, inplace=True),
        )


class UNet(nn.Module):
    """Encoder–decoder with skip connections; ``forward(x) = head(features(x))``."""

    def __init__(self, config: UNetConfig | None = None, **overrides) -> None:
        super().__init__()
        cfg = config or UNetConfig(**overrides)
        if config is not None and overrides:
            cfg = UNetConfig(**{**asdict(config), **overrides})
        self.config = cfg
        widths = [cfg.width * 2**k for k in range(cfg.depth + 1)]
        self.enc = nn.ModuleList([_Block(cfg.in_channels, widths[0], cfg.norm)])
        self.enc.extend(_Block(widths[k], widths[k + 1], cfg.norm) for k in range(cfg.depth))
        self.up = nn.ModuleList(
            nn.ConvTranspose2d(widths[k + 1], widths[k], 2, stride=2) for k in reversed(range(cfg.depth))
        )
        extra = [cfg.in_channels if (cfg.skip == "concat" and k == 0) else 0 for k in range(cfg.depth)]
        self.dec = nn.ModuleList(
            _Block(2 * widths[k] + extra[k], widths[k], cfg.norm) for k in reversed(range(cfg.depth))
        )
        self.head = nn.Conv2d(widths[0], cfg.out_channels, 1)

    @property
    def feature_channels(self) -> int:
        """Channels of φ(x), the input of ``head``."""
        return self.head.in_channels

    def _pad(self, x: Tensor) -> tuple[Tensor, int, int]:
        m = 2**self.config.depth
        h, w = x.shape[-2:]
        ph, pw = (-h) % m, (-w) % m
        if ph or pw:
            mode = "reflect" if min(h, w) > max(ph, pw) else "replicate"
            x = F.pad(x, (0, pw, 0, ph), mode=mode)
        return x, h, w

    def features(self, x: Tensor) -> Tensor:
        """φ(x): the penultimate feature map, ``B×width×H×W`` (same size as ``x``)."""
        x, h, w = self._pad(x)
        inp = x
        skips = []
        for k, block in enumerate(self.enc):
            x = block(x if k == 0 else F.max_pool2d(x, 2))
            skips.append(x)
        x = skips.pop()
        for up, block in zip(self.up, self.dec):
            parts = [up(x), skips.pop()]
            if self.config.skip == "concat" and not skips:  # the top decoder level also sees the input
                parts.append(inp)
            x = block(torch.cat(parts, dim=1))
        return x[..., :h, :w]

    def output(self, features: Tensor, x: Tensor, head: nn.Module | None = None) -> Tensor:
        """``f(x)`` from φ(x) and a head (default: the network's own): ``x + h(φ)`` with the residual skip,
        else ``h(φ)``. The proxy protocol calls it with a refitted head."""
        out = (head or self.head)(features)
        return x + out if self.config.skip == "residual" else out

    def head_target(self, x: Tensor, y: Tensor) -> Tensor:
        """What ``h(φ(x))`` must equal for ``f(x) = y``: ``y − x`` with the residual skip, else ``y``."""
        return y - x if self.config.skip == "residual" else y

    def forward(self, x: Tensor) -> Tensor:
        return self.output(self.features(x), x)

    def reset_head(self, out_channels: int | None = None, generator_seed: int | None = None) -> nn.Conv2d:
        """Replace ``head`` with a freshly initialised 1×1 conv (the proxy protocol's new last layer)."""
        out = out_channels or self.head.out_channels
        device = self.head.weight.device
        if generator_seed is None:
            self.head = nn.Conv2d(self.feature_channels, out, 1).to(device)
        else:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(generator_seed)
                self.head = nn.Conv2d(self.feature_channels, out, 1).to(device)
        return self.head
