"""The dense contrastive baselines of paper §5 on the U-Net's φ: VADeR, DenseCL, PixContrast and their "+" variants.

All three contrast per-position embeddings of ``φ(x)`` (:meth:`rcl.models.UNet.features`, the penultimate map
``B×C×H×W``) between RCL's two overlapping noisy crops (Algorithm 1's batch, no augmentation: RCL §2
abstains from it because it alters the noise distribution). Both crops come from one noisy image, so a
scene point has the same input value (same noise draw) in both: with a translation-equivariant U-Net its
positive differs only where the receptive field crosses a crop border (or a pooled bin is misaligned), and at
initialisation VADeR's loss is already small. That near-trivial positive is what the paper's setup implies for
these baselines; we keep it rather than add augmentation. Each method adds its own projection heads on φ
and a MoCo-style momentum (key) encoder: a deep copy of φ's path (the U-Net without ``h``) and of the heads,
frozen (``requires_grad=False``, never in :meth:`~rcl.methods.base.Method.trainable_parameters`) and moved
towards the query weights by an exponential moving average with ``config.momentum`` in :meth:`after_step`.

In the plain variants the loss does not depend on ``h`` (``model.head``), so ``h`` gets no gradient (its
``.grad`` stays ``None``; the proxy protocol re-initialises it anyway). The "+" variants add the consistency
loss (Eq. 5) on the U-Net outputs of both crops, ``L = L_dense + ½(L_cons(x1, f(x1)) + L_cons(x2, f(x2)))``
(as RCL and the consistency-only baseline), which trains ``h`` and φ together.

Shared conventions:

* Heads are per-position MLPs ``Linear(C, Ch) → ReLU → Linear(Ch, proj_dim)`` with ``Ch = max(C, proj_dim)``,
  applied to channel vectors (the same function as a 1×1-conv MLP on the map) and without normalisation
  layers (MoCo v2 and DenseCL have none; PixPro's BatchNorm is dropped because batches are small).
* Similarity matrices stay small: DenseCL and PixContrast average-pool φ to a ``g×g`` grid with
  ``g = round(√config.dense_samples)`` (16 by default; capped by the crop size), VADeR samples
  ``config.dense_samples`` full-resolution pixels per image from the overlap of the two crops.
* InfoNCE logits are computed in float32 with autocast disabled; features and heads may run under autocast.
* Queues are ``(K, proj_dim)`` float32 buffers of L2-normalised keys (so they are checkpointed), with a
  long pointer buffer; they start as random unit vectors, as MoCo's do. ``config.queue_size`` counts images:
  a queue holds the keys of that many (one key each, or ``keys_per_image`` pixel keys for VADeR). Size it
  to the data: a queue of ``Q`` images drawn from ``n`` training instances holds about ``Q/n`` images' keys
  of the very image being queried (false negatives), so ``Q > n/2`` is refused (MoCo's is 5% of ImageNet).
* ``forward`` has no side effect on the queues or the momentum encoder: it only remembers the keys of the
  last training-mode forward, and :meth:`after_step` pushes them (then updates the momentum encoder and the
  ``step`` counter). Two forwards without a step overwrite the remembered keys and change nothing else; a
  forward in eval mode remembers nothing. This is MoCo's order (momentum update, keys, loss, enqueue) with
  the enqueue moved after the optimiser step, which gives the same sequence of queues.
* Random pixel sampling (VADeR) draws from a CPU generator seeded by the run's seed and the step, so a step
  is a deterministic function of the state dict and the batch (bitwise resume), the same on CPU and CUDA. It
  is drawn with the batch on the host (:meth:`~rcl.methods.base.Method.prepare`, which also checks that the
  two crops overlap), so the step reads nothing back from the device; a batch built elsewhere is prepared in
  the step from the ``seed`` and ``step`` buffers. ``seed`` defaults to ``torch.initial_seed()`` at
  construction. Under DDP each process draws its slice of what one process draws for the whole batch.
* Under ``torch.distributed`` the keys pushed to the queues are gathered from every process, as MoCo does
  (so every process keeps the same queue); the plain variants leave ``h`` unused, so DDP needs
  ``find_unused_parameters=True`` for them.

Why one module: the three baselines and their "+" variants are small subclasses (about 50 lines each)
of one base class that holds everything they share — the crop geometry, InfoNCE, heads, queues and the
momentum encoder — and the conventions above apply to all of them; split, the base and its helpers would
be read apart from the only classes that use them.

Layer: core (imports :mod:`rcl.models`, :mod:`rcl.methods.base` and :mod:`rcl.rng`).
"""

from __future__ import annotations

import copy
import dataclasses
import math
from itertools import chain
from typing import ClassVar

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor, nn

from rcl import rng as _rng
from rcl.methods.base import Batch, Method, MethodConfig, own_slice, whole_batch
from rcl.models import UNet

__all__ = [
    "DenseCL",
    "DenseCLPlus",
    "PixContrast",
    "PixContrastPlus",
    "VADeR",
    "VADeRPlus",
    "cell_centres",
    "check_offsets",
    "info_nce",
    "match_by_similarity",
    "multi_positive_nce",
    "overlap_box",
    "positive_mask",
    "sample_correspondences",
]


# --------------------------------------------------------------------------------------------------------
# Geometry of the two crops: pixel (i, j) of crop 1 is pixel (i − dy, j − dx) of crop 2 (Batch.offset).
# --------------------------------------------------------------------------------------------------------


def check_offsets(offset: Tensor, height: int, width: int) -> None:
    """Raise unless ``offset`` is ``(B, 2)`` and every pair of ``height×width`` crops overlaps."""
    if offset.dim() != 2 or offset.shape[1] != 2:
        raise ValueError(f"offset must be (B, 2) (dy, dx) per instance, got shape {tuple(offset.shape)}")
    bad = (offset[:, 0].abs() >= height) | (offset[:, 1].abs() >= width)
    if bool(bad.any()):
        i = int(bad.nonzero()[0, 0])
        dy, dx = (int(v) for v in offset[i])
        raise ValueError(
            f"instance {i}: offset (dy, dx) = ({dy}, {dx}) leaves no overlap between its two {height}×{width} "
            f"crops; dense contrastive methods need |dy| < {height} and |dx| < {width}"
        )


def overlap_box(offset: Tensor, height: int, width: int) -> Tensor:
    """``(B, 4)`` long: ``top, bottom, left, right`` (end-exclusive) of the overlap in crop-1 pixel coordinates."""
    dy, dx = offset[:, 0].long(), offset[:, 1].long()
    return torch.stack([dy.clamp(min=0), height + dy.clamp(max=0), dx.clamp(min=0), width + dx.clamp(max=0)], 1)


def sample_correspondences(
    offset: Tensor, height: int, width: int, n: int, generator: torch.Generator | None = None
) -> tuple[Tensor, Tensor]:
    """``n`` pixels per instance drawn uniformly (with replacement) from the overlap of the two crops.

    Returns flat indices ``(idx1, idx2)``, each ``(B, n)`` long on ``offset``'s device, into the
    ``height×width`` maps of crop 1 and crop 2: ``idx1[b, k]`` and ``idx2[b, k]`` are the same scene point.
    Uniforms come from ``generator`` on the CPU, so the draw does not depend on the device.
    """
    box = overlap_box(offset, height, width)
    u = torch.rand(offset.shape[0], n, 2, generator=generator, dtype=torch.float64).to(offset.device)
    span_y, span_x = box[:, 1:2] - box[:, 0:1], box[:, 3:4] - box[:, 2:3]
    i1 = box[:, 0:1] + torch.minimum((u[..., 0] * span_y).long(), span_y - 1)
    j1 = box[:, 2:3] + torch.minimum((u[..., 1] * span_x).long(), span_x - 1)
    i2 = i1 - offset[:, 0:1].long()
    j2 = j1 - offset[:, 1:2].long()
    return i1 * width + j1, i2 * width + j2


def cell_centres(size: int, cells: int) -> Tensor:
    """Centres (continuous pixel coordinates, pixel ``i`` covers ``[i, i+1)``) of ``adaptive_avg_pool``'s bins."""
    k = torch.arange(cells)
    start = (k * size) // cells
    end = -((-(k + 1) * size) // cells)  # ceil((k + 1)·size / cells), as PyTorch's adaptive pooling
    return (start + end).double() / 2


def positive_mask(offset: Tensor, height: int, width: int, grid_h: int, grid_w: int, threshold: float = 0.7) -> Tensor:
    """PixPro's positive pairs: ``(B, P, P)`` bool, ``P = grid_h·grid_w``, rows = crop-1 cells, columns = crop-2 cells.

    A pair is positive when the distance between the two cells' centres, in the same (crop-1) coordinates,
    is below ``threshold`` × the bin diagonal ``hypot(height/grid_h, width/grid_w)``. At full resolution
    (one pixel per cell) that is exactly "the same scene point"; with larger bins a cell has 1–4 positives.
    """
    cy, cx = cell_centres(height, grid_h), cell_centres(width, grid_w)
    c = torch.stack(torch.meshgrid(cy, cx, indexing="ij"), dim=-1).reshape(1, -1, 2).to(offset.device)
    c2 = c + offset[:, None, :].double()  # crop-2 cell centres mapped to crop-1 coordinates
    dist = (c[:, :, None, :] - c2[:, None, :, :]).norm(dim=-1)  # explicit, exact (cdist may use matmul)
    return dist < threshold * math.hypot(height / grid_h, width / grid_w)


def match_by_similarity(fq: Tensor, fk: Tensor) -> Tensor:
    """DenseCL's correspondence: for each query position, the key position of highest cosine similarity.

    ``fq``, ``fk``: ``(B, P, C)`` and ``(B, Pk, C)`` backbone features; returns ``(B, P)`` long indices into
    ``Pk``. Computed in float32, without gradient.
    """
    with torch.no_grad(), _float32(fq):
        sim = F.normalize(fq.float(), dim=-1) @ F.normalize(fk.float(), dim=-1).transpose(1, 2)
        return sim.argmax(dim=-1)


# --------------------------------------------------------------------------------------------------------
# Losses (float32, autocast off)
# --------------------------------------------------------------------------------------------------------


def _float32(t: Tensor):
    return torch.autocast(device_type=t.device.type, enabled=False)


def info_nce(q: Tensor, k: Tensor, negatives: Tensor, tau: float) -> Tensor:
    """MoCo's InfoNCE: mean over rows of ``−log softmax([q·k, q·negativesᵀ]/τ)[0]``.

    ``q``, ``k``: ``(N, D)`` (normalised here); ``negatives``: ``(K, D)`` unit rows (a queue).
    """
    with _float32(q):
        q = F.normalize(q.float(), dim=-1)
        k = F.normalize(k.float(), dim=-1)
        logits = torch.cat([(q * k).sum(-1, keepdim=True), q @ negatives.float().T], dim=1) / tau
        return F.cross_entropy(logits, torch.zeros(q.shape[0], dtype=torch.long, device=q.device))


def multi_positive_nce(q: Tensor, k: Tensor, pos: Tensor, tau: float) -> Tensor:
    """PixContrast's loss (Xie et al. 2021, Eq. 1): ``−log Σ_pos e^{s/τ} / Σ_all e^{s/τ}`` per query position.

    ``q``: ``(B, P, D)`` queries, ``k``: ``(B, Pk, D)`` keys of the other view, ``pos``: ``(B, P, Pk)`` bool.
    Averaged over the query positions that have at least one positive (those in the overlap).
    """
    with _float32(q):
        q = F.normalize(q.float(), dim=-1)
        k = F.normalize(k.float(), dim=-1)
        logits = q @ k.transpose(1, 2) / tau
        valid = pos.any(dim=-1)
        pos = pos | ~valid[..., None]  # rows without positives: numerator = denominator, loss 0, no NaN
        per = torch.logsumexp(logits, -1) - torch.logsumexp(logits.masked_fill(~pos, float("-inf")), -1)
        return (per * valid).sum() / valid.sum().clamp(min=1)


def _mlp(cin: int, hidden: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(cin, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, cout))


def _per_position(mlp: nn.Module, fmap: Tensor) -> Tensor:
    """Apply a channel MLP at every position of ``B×C×h×w``: ``(B, h·w, D)``."""
    return mlp(fmap.flatten(2).transpose(1, 2))


def _gather_pixels(fmap: Tensor, idx: Tensor) -> Tensor:
    """``(B, n, C)`` channel vectors of ``B×C×H×W`` at flat indices ``idx`` ``(B, n)``."""
    flat = fmap.flatten(2)
    return flat.gather(2, idx[:, None, :].expand(-1, flat.shape[1], -1)).transpose(1, 2)


def _gather_keys(keys: Tensor) -> Tensor:
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return keys
    out = [torch.empty_like(keys) for _ in range(dist.get_world_size())]
    dist.all_gather(out, keys.contiguous())
    return torch.cat(out)


# --------------------------------------------------------------------------------------------------------
# Shared machinery: heads, momentum encoder, queues, seeded sampling, the "+" consistency term
# --------------------------------------------------------------------------------------------------------


class _DenseContrast(Method):
    """Base of the dense baselines: builds heads, the momentum encoder and queues; adds Eq. 5 for "+"."""

    #: temperature used unless ``config.tau_dense`` is set
    default_tau: ClassVar[float] = 0.2
    #: names of the ``(K, proj_dim)`` key queues (each with a ``<name>_ptr`` buffer)
    queue_names: ClassVar[tuple[str, ...]] = ()
    #: keys of each image pushed to the queues per step: a queue holds ``config.queue_size`` images' worth
    keys_per_image: ClassVar[int] = 1

    @classmethod
    def queue_rows(cls, config: MethodConfig) -> int:
        """``K``, the keys a queue holds: ``config.queue_size`` images' worth."""
        return config.queue_size * cls.keys_per_image

    @classmethod
    def check_instances(cls, n: int, config: MethodConfig) -> None:
        """A queue of more images' keys than half the ``n`` instances holds keys of the query's own image
        (about ``queue_size / n`` images' worth) as negatives: refused (MoCo's queue is 5% of ImageNet)."""
        if cls.queue_names and config.queue_size > n // 2:
            fix = (f"set queue_size <= {n // 2} (--set queue_size={n // 2}) or train on more images" if n >= 2
                   else "train on more images")
            raise ValueError(
                f"queue_size={config.queue_size} exceeds half the {n} training instances: {cls.name}'s queue would "
                f"hold about {config.queue_size / n:.1f} images' keys of each query's own image as negatives; {fix}"
            )

    def __init__(
        self,
        model: UNet,
        config: MethodConfig | None = None,
        consistency: nn.Module | None = None,
        *,
        seed: int | None = None,
    ) -> None:
        super().__init__(model, config, consistency)
        cfg = self.config
        if cfg.proj_dim < 1 or cfg.queue_size < 1 or cfg.dense_samples < 1:
            raise ValueError(
                f"proj_dim, queue_size and dense_samples must be >= 1, got {cfg.proj_dim}, {cfg.queue_size}, "
                f"{cfg.dense_samples}"
            )
        if not 0.0 <= cfg.momentum <= 1.0:
            raise ValueError(f"momentum must lie in [0, 1], got {cfg.momentum}")
        self.tau = float(cfg.tau_dense if cfg.tau_dense is not None else self.default_tau)
        if not self.tau > 0:
            raise ValueError(f"temperature tau_dense must be positive, got {self.tau}")
        device = next(model.parameters()).device
        channels = model.feature_channels
        self.heads = self._build_heads(channels, max(channels, cfg.proj_dim), cfg.proj_dim).to(device)
        # Momentum encoder: φ's path (no h, it is never used for keys) and the heads.
        self.key_model = copy.deepcopy(model)
        self.key_model.head = nn.Identity()
        self.key_heads = copy.deepcopy(self.heads)
        for p in chain(self.key_model.parameters(), self.key_heads.parameters()):
            p.requires_grad_(False)
            p.grad = None
        seed = torch.initial_seed() if seed is None else int(seed)
        self.register_buffer("seed", torch.tensor(seed % 2**63, dtype=torch.long, device=device))
        self.register_buffer("step", torch.zeros((), dtype=torch.long, device=device))
        for n, name in enumerate(self.queue_names):
            g = _rng.generator(seed, "queue", n)
            queue = F.normalize(torch.randn(self.queue_rows(cfg), cfg.proj_dim, generator=g), dim=1)
            self.register_buffer(name, queue.to(device))
            self.register_buffer(f"{name}_ptr", torch.zeros((), dtype=torch.long, device=device))
        self._pending: dict[str, Tensor] = {}

    # --- to implement -----------------------------------------------------------------------------------
    def _build_heads(self, channels: int, hidden: int, dim: int) -> nn.ModuleDict:  # pragma: no cover
        raise NotImplementedError

    def _contrast(self, batch: Batch) -> tuple[dict[str, Tensor], Tensor]:  # pragma: no cover
        """The method's own loss dict (with ``"loss"``) and φ(x1) of the query encoder."""
        raise NotImplementedError

    # --- shared -----------------------------------------------------------------------------------------
    @classmethod
    def prepare(cls, batch: Batch, config: MethodConfig, seed: int, step: int, rank: int = 0, world: int = 1) -> Batch:
        """The batch, its crops' overlap checked on the host (:func:`check_offsets`), with what the method draws
        for it there (:meth:`_draw`)."""
        check_offsets(batch.offset, batch.x1.shape[-2], batch.x1.shape[-1])
        return dataclasses.replace(batch, prepared=cls._draw(batch, config, seed, step, rank, world))

    @classmethod
    def _draw(cls, batch: Batch, config: MethodConfig, seed: int, step: int, rank: int, world: int) -> dict:
        """What the method draws for a batch on the host. Default: nothing."""
        return {}

    def forward(self, batch: Batch) -> dict[str, Tensor]:
        x1, x2 = batch.x1, batch.x2
        if x1.dim() != 4 or x1.shape != x2.shape:
            raise ValueError(f"x1 and x2 must be B×C×H×W of one shape, got {tuple(x1.shape)} and {tuple(x2.shape)}")
        if batch.offset is None or batch.offset.shape[0] != x1.shape[0]:
            raise ValueError("dense contrastive methods need batch.offset, (B, 2) (dy, dx) per instance")
        out, f1 = self._contrast(dataclasses.replace(batch, prepared=self.prepared(batch)))
        if self.uses_consistency:
            # f(x1) from the φ(x1) already computed (x1 + h(φ) with the residual skip); averaged over both
            # crops, as RCL and the consistency-only baseline do
            consistency = 0.5 * (
                self.consistency_loss(x1, self.model.output(f1, x1)) + self.consistency_loss(x2, self.model(x2))
            )
            out["consistency"] = consistency.detach()
            out["loss"] = out["loss"] + consistency
        return out

    @torch.no_grad()
    def after_step(self) -> None:
        """Push the last training forward's keys, update the momentum encoder (EMA), count the step."""
        for name, keys in self._pending.items():
            self._push(name, _gather_keys(keys))
        self._pending = {}
        query = dict(self.model.named_parameters())
        query.update({f"heads.{n}": p for n, p in self.heads.named_parameters()})
        pairs = [(query[n], k) for n, k in self.key_model.named_parameters()]
        pairs += [(query[f"heads.{n}"], k) for n, k in self.key_heads.named_parameters()]
        torch._foreach_lerp_([k for _, k in pairs], [q.detach() for q, _ in pairs], 1.0 - self.config.momentum)
        self.step += 1

    def _remember(self, **keys: Tensor) -> None:
        if self.training:
            self._pending = {name: k.detach() for name, k in keys.items()}

    def _push(self, name: str, keys: Tensor) -> None:
        queue, ptr = getattr(self, name), getattr(self, f"{name}_ptr")
        n, size = keys.shape[0], queue.shape[0]
        # More keys than slots: the last `size` keys land where a key-by-key push would leave them,
        # and no slot is written twice in one (non-deterministic on CUDA) index_put.
        start = ptr + max(0, n - size)
        idx = (start + torch.arange(min(n, size), device=queue.device)) % size
        queue[idx] = F.normalize(keys[-size:].float(), dim=1).to(queue.dtype)
        ptr.copy_((ptr + n) % size)

    def _grid(self, height: int, width: int) -> tuple[int, int]:
        g = max(1, round(math.sqrt(self.config.dense_samples)))
        return min(g, height), min(g, width)

    def extra_repr(self) -> str:
        return f"tau={self.tau}, queues={self.queue_names}"


# --------------------------------------------------------------------------------------------------------
# The methods
# --------------------------------------------------------------------------------------------------------


class VADeR(_DenseContrast):
    """VADeR (Pinheiro et al. 2020): per-pixel MoCo on the U-Net's φ. Returns ``loss``, ``dense``.

    Loss: for ``n = config.dense_samples`` (256) pixels per image drawn uniformly, with replacement, from the
    overlap of the two crops, query ``q = proj(φ(x1))`` at the pixel, positive key ``k = proj_k(φ_k(x2))``
    at the *same scene point* (exact, from ``batch.offset``), negatives the ``K = 16 · config.queue_size``
    pixel keys of the queue; InfoNCE with ``τ = 0.07`` (``config.tau_dense`` overrides), averaged over the
    ``B·n`` queries. After each step ``keys_per_image`` (16) of each image's sampled keys enter the queue, so
    it holds the keys of the last ``queue_size`` images, ``queue_size / B`` steps.

    Departures from the original (no public code; our reading of the paper):

    * Backbone: the U-Net's φ (full resolution, ``width`` channels) instead of a ResNet-50 FPN decoder. The
      original's decoder emits the 128-d embedding itself; here φ's width is fixed and ``h`` stays the
      reconstruction head, so a per-pixel MLP head (``C → max(C, proj_dim) → proj_dim``) maps φ to the
      embedding, as MoCo v2's projection head does.
    * Views: two overlapping same-scale noisy crops, no colour jitter, blur or resizing (RCL §2); the
      correspondence is an integer shift, exact at every pixel.
    * Pixels: a sample of ``n`` pixels per image rather than every pixel, to keep ``B·n×K`` logits small.
    * Queue: the pixel keys of ``config.queue_size`` images rather than MoCo's 65,536 keys, so it does not
      span many epochs of a small dataset (false negatives); queries see only queue negatives, no in-batch
      ones (as MoCo).
    * Not symmetrised (crop 1 → queries, crop 2 → keys), as MoCo.
    """

    name = "vader"
    default_tau = 0.07
    queue_names = ("queue",)
    keys_per_image = 16

    def _build_heads(self, channels: int, hidden: int, dim: int) -> nn.ModuleDict:
        return nn.ModuleDict({"dense": _mlp(channels, hidden, dim)})

    @classmethod
    def _draw(cls, batch: Batch, config: MethodConfig, seed: int, step: int, rank: int, world: int) -> dict:
        """The ``dense_samples`` pixel pairs of each instance (:func:`sample_correspondences`), from the run's
        seed and the step; under DDP drawn for the whole batch (zero offsets elsewhere) and sliced."""
        offset, mine = whole_batch(batch.offset, rank, world)
        h, w = batch.x1.shape[-2:]
        idx1, idx2 = sample_correspondences(offset, h, w, config.dense_samples, _rng.generator(seed, "dense", step))
        return {"idx1": own_slice(idx1, mine), "idx2": own_slice(idx2, mine)}

    def _contrast(self, batch: Batch) -> tuple[dict[str, Tensor], Tensor]:
        f1 = self.model.features(batch.x1)
        idx1, idx2 = batch.prepared["idx1"], batch.prepared["idx2"]
        q = self.heads["dense"](_gather_pixels(f1, idx1))
        with torch.no_grad():
            f2 = self.key_model.features(batch.x2)
            k = F.normalize(self.key_heads["dense"](_gather_pixels(f2, idx2)).float(), dim=-1)
        dense = info_nce(q.flatten(0, 1), k.flatten(0, 1), self.queue, self.tau)
        self._remember(queue=k[:, : self.keys_per_image].flatten(0, 1))
        return {"loss": dense, "dense": dense.detach()}, f1


class DenseCL(_DenseContrast):
    """DenseCL (Wang et al. 2021; WXinlong/DenseCL) on the U-Net's φ. Returns ``loss``, ``global``, ``dense``.

    ``φ`` is average-pooled to a ``g×g`` grid, ``g = round(√config.dense_samples)`` (16), which plays the role
    of DenseCL's backbone map. Global branch: ``GAP(φ(x1)) → MLP → proj_dim``, MoCo v2 InfoNCE against
    queue ``queue_global`` of global keys of crop 2. Dense branch: per-cell MLP ``→ proj_dim``; each query
    cell of crop 1 is matched to the crop-2 key cell whose *backbone* (pooled φ) features have the highest
    cosine similarity (DenseCL's own rule, although the exact geometric correspondence is known here — we keep
    the original's rule so the baseline is DenseCL, cells outside the overlap included, as in DenseCL);
    dense InfoNCE against ``queue_dense``, which holds ``normalize(mean over cells of the dense head output)``
    of other images' keys. ``τ = 0.2`` for both (``config.tau_dense`` overrides);
    ``L = (1 − λ)·L_global + λ·L_dense``, ``λ = 0.5``. Each step pushes ``B`` keys into each queue.

    Departures from the original:

    * Backbone: U-Net φ pooled to 16×16 instead of ResNet-50's C5 (7×7 at 224 px, 2048 channels); heads
      ``C → max(C, proj_dim) → proj_dim`` instead of 2048 → 2048 → 128 (no BN in either, as the original).
    * Views: two overlapping same-scale noisy crops without augmentation (original: MoCo v2 augmentation —
      random resized crops, colour jitter, grey, blur, flip), because augmentation alters the noise (RCL §2).
    * Queues: ``config.queue_size`` instead of 65,536, sized to smaller datasets: at most half the training
      instances (:meth:`check_instances` refuses more), or the queue holds keys of the query image itself.
    * Keys are enqueued in :meth:`after_step` rather than at the end of ``forward`` (same queue sequence).
    """

    name = "densecl"
    default_tau = 0.2
    queue_names = ("queue_global", "queue_dense")
    #: λ, the dense loss's weight
    dense_weight: ClassVar[float] = 0.5

    def _build_heads(self, channels: int, hidden: int, dim: int) -> nn.ModuleDict:
        return nn.ModuleDict({"global": _mlp(channels, hidden, dim), "dense": _mlp(channels, hidden, dim)})

    def _contrast(self, batch: Batch) -> tuple[dict[str, Tensor], Tensor]:
        grid = self._grid(*batch.x1.shape[-2:])
        f1 = self.model.features(batch.x1)
        p1 = F.adaptive_avg_pool2d(f1, grid)
        q_global = self.heads["global"](f1.mean(dim=(2, 3)))
        q_dense = _per_position(self.heads["dense"], p1)  # B×P×D
        with torch.no_grad():
            f2 = self.key_model.features(batch.x2)
            p2 = F.adaptive_avg_pool2d(f2, grid)
            k_global = self.key_heads["global"](f2.mean(dim=(2, 3)))
            k_dense = _per_position(self.key_heads["dense"], p2)
            with _float32(f2):
                k_global = F.normalize(k_global.float(), dim=-1)
                k_pooled = F.normalize(k_dense.float().mean(dim=1), dim=-1)  # DenseCL's queue-2 key
                k_dense = F.normalize(k_dense.float(), dim=-1)
            match = match_by_similarity(p1.flatten(2).transpose(1, 2), p2.flatten(2).transpose(1, 2))
            k_matched = k_dense.gather(1, match[..., None].expand(-1, -1, k_dense.shape[-1]))
        l_global = info_nce(q_global, k_global, self.queue_global, self.tau)
        l_dense = info_nce(q_dense.flatten(0, 1), k_matched.flatten(0, 1), self.queue_dense, self.tau)
        loss = (1.0 - self.dense_weight) * l_global + self.dense_weight * l_dense
        self._remember(queue_global=k_global, queue_dense=k_pooled)
        return {"loss": loss, "global": l_global.detach(), "dense": l_dense.detach()}, f1


class PixContrast(_DenseContrast):
    """PixContrast (Xie et al. 2021; zdaxie/PixPro) on the U-Net's φ. Returns ``loss``, ``dense``.

    ``φ`` of both crops, from the query and from the momentum encoder, is average-pooled to a ``g×g`` grid
    (``g = round(√config.dense_samples)``, 16) and projected per cell (``C → max(C, proj_dim) → proj_dim``).
    A query cell of one crop and a key cell of the other are positive when their centres, in the same
    image coordinates (``batch.offset``), are closer than ``T = 0.7`` × the bin diagonal (the bin is the pooled
    cell, ``H/g × W/g`` px; 1–4 positives per cell); every other key cell of the other crop is a negative.
    Loss per query cell: ``−log Σ_pos e^{s/τ} / Σ_all e^{s/τ}``, ``τ = 0.3`` (``config.tau_dense`` overrides),
    averaged over the cells with a positive (the overlap), symmetrised over the two crops (crop 1 queries
    against crop-2 momentum keys and vice versa). At full resolution (``g`` = crop size) the positive is
    exactly the same scene point.

    Departures from the original:

    * Backbone: U-Net φ pooled to 16×16 instead of ResNet-50's C5 (7×7); projector without BatchNorm
      (original: conv1×1–BN–ReLU–conv1×1) because batches are small.
    * Views: two overlapping same-scale noisy crops without augmentation (original: random resized crops
      at different scales, flips and colour jitter), so cell centres map by an integer shift (RCL §2).
    * No queue, as the original: negatives are the other crop's cells of the same image. No instance branch.
    * Both crops go through the query U-Net in one call (``torch.cat``); with BatchNorm in the U-Net both
      crops share batch statistics.
    """

    name = "pixcontrast"
    default_tau = 0.3
    #: PixPro's positive threshold, in bin diagonals
    threshold: ClassVar[float] = 0.7

    def _build_heads(self, channels: int, hidden: int, dim: int) -> nn.ModuleDict:
        return nn.ModuleDict({"dense": _mlp(channels, hidden, dim)})

    def _contrast(self, batch: Batch) -> tuple[dict[str, Tensor], Tensor]:
        b, (h, w) = batch.x1.shape[0], batch.x1.shape[-2:]
        grid = self._grid(h, w)
        x = torch.cat([batch.x1, batch.x2])
        f = self.model.features(x)
        q1, q2 = _per_position(self.heads["dense"], F.adaptive_avg_pool2d(f, grid)).split(b)
        with torch.no_grad():
            k = _per_position(self.key_heads["dense"], F.adaptive_avg_pool2d(self.key_model.features(x), grid))
            k1, k2 = k.split(b)
            pos = positive_mask(batch.offset, h, w, grid[0], grid[1], self.threshold)  # crop-1 × crop-2 cells
        dense = 0.5 * (
            multi_positive_nce(q1, k2, pos, self.tau) + multi_positive_nce(q2, k1, pos.transpose(1, 2), self.tau)
        )
        return {"loss": dense, "dense": dense.detach()}, f[:b]


class VADeRPlus(VADeR):
    """VADeR+ (paper §5): :class:`VADeR`'s loss plus the consistency loss (Eq. 5), unweighted, averaged over both crops.

    Returns ``loss``, ``dense``, ``consistency``. The consistency term trains ``h`` and φ together.
    """

    name = "vader+"
    uses_consistency = True


class DenseCLPlus(DenseCL):
    """DenseCL+ (paper §5): :class:`DenseCL`'s loss plus the consistency loss (Eq. 5), averaged over both crops.

    Returns ``loss``, ``global``, ``dense``, ``consistency``. The consistency term trains ``h`` and φ together.
    """

    name = "densecl+"
    uses_consistency = True


class PixContrastPlus(PixContrast):
    """PixContrast+ (paper §5): :class:`PixContrast`'s loss plus the consistency loss (Eq. 5), averaged over both crops.

    Returns ``loss``, ``dense``, ``consistency``. The consistency term trains ``h`` and φ together.
    """

    name = "pixcontrast+"
    uses_consistency = True
