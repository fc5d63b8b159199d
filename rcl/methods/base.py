"""The one interface every pre-training method implements.

A method is an ``nn.Module`` that owns the U-Net (``self.model``) and whatever else it trains or keeps
(projection heads, momentum encoders, queues). ``forward(batch)`` takes a :class:`Batch` and returns a
dict of scalar losses whose ``"loss"`` entry is what the optimiser minimises; the other entries are
logged. ``after_step()`` runs after each optimiser step (momentum updates, queue pushes).
Every method sees the same data pipeline: Algorithm 1's two overlapping crops of each instance.

Layer: core (imports :mod:`rcl.models`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import ClassVar

import torch
from torch import Tensor, nn

from rcl.models import UNet

__all__ = ["Batch", "Method", "MethodConfig", "own_slice", "whole_batch"]


@dataclass
class Batch:
    """One pre-training batch of ``B`` instances, all crops ``B×3×S×S`` in [0, 1].

    ``x1``, ``x2``: the two overlapping noisy crops of each instance (Algorithm 1, line 2).
    ``offset``: ``(B, 2)`` long, position of crop 2 relative to crop 1 in pixels (``top2 − top1``,
    ``left2 − left1``): pixel ``(i, j)`` of crop 1 is pixel ``(i − dy, j − dx)`` of crop 2.
    ``x1_second``: a second, independent noisy draw of crop 1's region with the same NLF parameters
    (Noise2Noise's target). ``y1``, ``y2``: the clean crops (supervised baselines only).
    ``sigma``: each instance's noise std (0–255 scale), for logging. ``prepared``: what the method built for
    the batch on the host (:meth:`Method.prepare`), so that its step needs nothing read back from the device —
    the Oracle's degraded input and target of a task other than denoising, VADeR's sampled pixels (``{}``:
    prepared, nothing added); ``None`` where ``prepare`` was not run or added nothing (a method that needs it
    then prepares the batch in its step: :meth:`Method.prepared`).
    """

    x1: Tensor
    x2: Tensor
    offset: Tensor
    x1_second: Tensor | None = None
    y1: Tensor | None = None
    y2: Tensor | None = None
    sigma: Tensor | None = None
    prepared: dict[str, Tensor] | None = None

    def map(self, fn) -> Batch:
        """The batch with ``fn`` applied to each of its tensors (absent ones stay ``None``)."""

        def apply(v):
            return None if v is None else {k: fn(t) for k, t in v.items()} if isinstance(v, dict) else fn(v)

        return Batch(**{f.name: apply(getattr(self, f.name)) for f in fields(self)})

    def to(self, device: torch.device | str, non_blocking: bool = False, memory_format=None) -> Batch:
        def move(t):
            t = t.to(device, non_blocking=non_blocking)
            if memory_format is not None and t.dim() == 4:
                t = t.contiguous(memory_format=memory_format)
            return t

        return self.map(move)

    def pin_memory(self) -> Batch:
        """The batch in page-locked memory (its copy to a GPU can then run asynchronously)."""
        return self.map(Tensor.pin_memory)

    def __len__(self) -> int:
        return self.x1.shape[0]


def whole_batch(part: Tensor, rank: int, world: int) -> tuple[Tensor, slice]:
    """Process ``rank``'s slice ``part`` of a batch split over ``world`` processes, put in place in a batch of
    zeros, and the slice it fills: a draw made for that batch and sliced is the one-process batch's draw, where
    which random numbers are drawn, and in which order, does not depend on the values (:meth:`Method.prepare`).
    One process: ``part`` itself and the whole of it."""
    if world == 1:
        return part, slice(None)
    mine = slice(rank * part.shape[0], (rank + 1) * part.shape[0])
    whole = part.new_zeros((world * part.shape[0], *part.shape[1:]))
    whole[mine] = part
    return whole, mine


def own_slice(drawn: Tensor, mine: slice) -> Tensor:
    """``drawn[mine]``, a process's slice of what was drawn for the whole batch (:func:`whole_batch`), in memory
    of its own: a view would keep the whole batch's draw alive until the step uses it. One process: ``drawn``."""
    return drawn if mine == slice(None) else drawn[mine].clone()


@dataclass(frozen=True)
class MethodConfig:
    """Hyper-parameters shared by the methods; each method reads the ones it needs.

    ``tau``: contrastive temperature (RCL's Eq. 3; the dense CL baselines use their own defaults
    unless ``tau_dense`` is set); ``tau_scale="median"`` makes it relative to the batch's median distance.
    ``alpha``: weight of the contrastive term in Eq. 6.
    ``g_e``, ``g_e_arch``, ``g_e_layers``: the consistency loss's frozen encoder (Eq. 5); ``g_e="none"``
    drops the consistency term.
    ``distance``, ``distance_reduction``: RCL's residual distance. ``n2s_grid``: Noise2Self mask grid.
    ``proj_dim``, ``queue_size`` (images whose keys a negative queue holds), ``momentum``, ``dense_samples``:
    dense CL baselines.
    ``supervised_task``: the downstream task the supervised baseline is trained on (its Oracle);
    ``sigma_max``: the top of the noise range (0–255 scale) the training data are drawn with, which the
    Oracle of a noisy task other than denoising draws its own inputs' noise from.
    """

    tau: float = 0.01
    tau_scale: str = "absolute"
    alpha: float = 1e-3
    distance: str = "emd"
    distance_reduction: str = "pooled"
    contrast_reduction: str = "sum"
    g_e: str = "imagenet"
    g_e_arch: str = "resnet50"
    g_e_layers: tuple[str, ...] = ("layer1", "layer2", "layer3")
    n2s_grid: int = 4
    n2s_replace: str = "interpolate"
    proj_dim: int = 128
    queue_size: int = 4096
    momentum: float = 0.999
    dense_samples: int = 256
    tau_dense: float | None = None
    loss_norm: str = "l1"
    supervised_task: str = "denoise"
    sigma_max: float = 20.0

    def __post_init__(self) -> None:
        """Every value checked where it is set: an invalid one raises naming the field and what is valid."""
        if self.g_e is None:  # "none" on a command line may parse to None
            object.__setattr__(self, "g_e", "none")
        for f in fields(self):  # inf or nan passes "> 0" checks, then trains to a non-finite loss
            value = getattr(self, f.name)
            if isinstance(value, float) and not math.isfinite(value):
                raise ValueError(f"{f.name}={value!r} must be a finite number")
        object.__setattr__(self, "g_e_layers", tuple(self.g_e_layers))
        choices = {"tau_scale": ("absolute", "median"), "distance": ("emd", "bd", "mmd"),
                   "distance_reduction": ("pooled", "per_channel"), "contrast_reduction": ("sum", "mean"),
                   "g_e": ("imagenet", "random", "self-supervised", "none"), "n2s_replace": ("interpolate", "zero"),
                   "loss_norm": ("l1", "l2"), "supervised_task": ("denoise", "sr", "jdensr", "demosaic", "jdd")}
        for name, valid in choices.items():
            if getattr(self, name) not in valid:
                raise ValueError(f"{name}={getattr(self, name)!r} is not valid; choose one of {valid}")
        positive = ("tau", "n2s_grid", "proj_dim", "queue_size", "dense_samples")
        for name in positive:
            if not getattr(self, name) > 0:
                raise ValueError(f"{name}={getattr(self, name)!r} must be > 0")
        if not self.sigma_max >= 0:
            raise ValueError(f"sigma_max={self.sigma_max!r} must be >= 0 (noise std on the 0–255 scale)")
        if not self.alpha >= 0:
            raise ValueError(f"alpha={self.alpha!r} must be >= 0 (the weight of the contrastive term)")
        if not 0 <= self.momentum < 1:
            raise ValueError(f"momentum={self.momentum!r} must lie in [0, 1)")
        if self.tau_dense is not None and not self.tau_dense > 0:
            raise ValueError(f"tau_dense={self.tau_dense!r} must be None or > 0")


class Method(nn.Module):
    """Base class: subclasses set ``name`` and implement :meth:`forward`."""

    name: ClassVar[str] = ""
    #: True when the method reads ``y1``/``y2`` (clean targets): a supervised baseline, not SSL.
    needs_clean: ClassVar[bool] = False
    #: True when the method reads ``x1_second`` (Noise2Noise).
    needs_second_draw: ClassVar[bool] = False
    #: True when the method uses the consistency loss (its g_e must be built).
    uses_consistency: ClassVar[bool] = False
    #: False for a control that keeps its initial weights: the engine saves the network as built, without a
    #: step (:class:`rcl.methods.core.RandomInit`).
    trains: ClassVar[bool] = True
    #: Set by the engine on the steps it logs: methods may then add diagnostics (gradient norms, EMD gaps)
    #: to their loss dictionary. Off on the other steps, so diagnostics cost nothing there.
    diagnose: bool = False

    def __init__(self, model: UNet, config: MethodConfig | None = None, consistency: nn.Module | None = None):
        super().__init__()
        self.model = model
        self.config = config or MethodConfig()
        if self.uses_consistency and consistency is None:
            raise ValueError(f"method {self.name!r} needs a consistency loss module (rcl.losses.ConsistencyLoss)")
        # Frozen and shared: kept out of state_dict and parameters() by storing it outside _modules.
        object.__setattr__(self, "consistency", consistency)

    def _apply(self, fn, recurse: bool = True):
        super()._apply(fn, recurse)
        if self.consistency is not None:  # keep the frozen g_e on the same device/dtype
            self.consistency._apply(fn, recurse)
        return self

    def forward(self, batch: Batch) -> dict[str, Tensor]:  # pragma: no cover - abstract
        raise NotImplementedError

    @classmethod
    def prepare(cls, batch: Batch, config: MethodConfig, seed: int, step: int, rank: int = 0, world: int = 1) -> Batch:
        """The batch of ``step`` of a run seeded ``seed`` with what the method checks and builds for it on the
        host (``batch.prepared``), where the engine builds batches (ahead, in threads), not in its step on the
        device. Under DDP ``batch`` is process ``rank``'s slice of ``world`` equal slices; what is drawn for it
        must be that slice of what one process would draw for the whole batch (:func:`whole_batch`). Default:
        the batch as it is."""
        return batch

    def prepared(self, batch: Batch) -> dict[str, Tensor]:
        """``batch.prepared``; for a batch built elsewhere (not prepared), :meth:`prepare` run here, on the
        host, from the method's ``seed`` and ``step`` buffers (read back from the device, and the batch copied
        to the host: the engine's batches never take this path), as for one process's whole batch."""
        if batch.prepared is not None:
            return batch.prepared
        host = self.prepare(batch.map(Tensor.cpu), self.config, int(self.seed), int(self.step))
        return {k: v.to(batch.x1.device) for k, v in (host.prepared or {}).items()}

    @classmethod
    def check_instances(cls, n: int, config: MethodConfig) -> None:
        """Raises where ``config`` cannot train this method on ``n`` training instances. Default: nothing."""

    @torch.no_grad()
    def after_step(self) -> None:
        """Called after every optimiser step (momentum encoders, queues). Default: nothing."""

    def trainable_parameters(self) -> list[nn.Parameter]:
        return [p for p in self.parameters() if p.requires_grad]

    def consistency_loss(self, x: Tensor, fx: Tensor) -> Tensor:
        return self.consistency(x, fx)
