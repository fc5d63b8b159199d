"""RCL and the baselines designed for noisy images: Noise2Noise, Noise2Self, consistency only, supervised; the
copy-the-input and random-init controls.

All share :class:`rcl.methods.base.Method`'s interface. Losses on images use ``config.loss_norm``
(``"l1"`` by default, the norm the paper uses for supervised fine-tuning; ``"l2"`` is Noise2Noise's
original choice) so the self-supervised baselines and the supervised Oracle are trained alike.

Layer: core (imports :mod:`rcl.distances`, :mod:`rcl.losses`, :mod:`rcl.methods.base`, :mod:`rcl.tasks` —
the supervised method degrades its crops with it — and :mod:`rcl.rng`).
"""

from __future__ import annotations

import dataclasses

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor
from torch.distributed.nn.functional import all_gather

from rcl import distances as _distances
from rcl import losses as _losses
from rcl import rng as _rng
from rcl import tasks as _tasks
from rcl.methods.base import Batch, Method, MethodConfig, own_slice, whole_batch

__all__ = ["RCL", "Consistency", "CopyInput", "Noise2Noise", "Noise2Self", "Supervised", "grid_masks"]


def _image_loss(a: Tensor, b: Tensor, norm: str) -> Tensor:
    if norm == "l1":
        return F.l1_loss(a, b)
    if norm == "l2":
        return F.mse_loss(a, b)
    raise ValueError(f"loss_norm must be 'l1' or 'l2', got {norm!r}")


def _all_gather_with_grad(t: Tensor) -> Tensor:
    """Concatenate ``t`` from every process, keeping gradients (SimCLR's cross-process negatives)."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return t
    return torch.cat(all_gather(t), dim=0)


class RCL(Method):
    """Residual contrastive learning (paper §3, Eqs. 2–6, Algorithm 1).

    Residuals ``n̂ = x − f(x)`` of both crops; ``L_contrast`` is Eq. 3 with ``config.distance`` and
    ``config.tau`` over the batch (under DDP the second crops of every process are gathered with
    gradients, so each anchor sees the negatives of the global batch, as SimCLR does);
    ``L_total = α·L_contrast + L_consistency`` (Eq. 6) with the consistency loss on both crops.
    Departures: the paper does not say whether Eq. 5 is applied to one or both crops; we average it over
    both so each crop is used by both terms.
    """

    name = "rcl"
    uses_consistency = True

    def __init__(self, model, config=None, consistency=None, distance: str | None = None):
        super().__init__(model, config, consistency)
        self.distance = _distances.get_distance(
            distance or self.config.distance, reduction=self.config.distance_reduction
        )

    def forward(self, batch: Batch) -> dict[str, Tensor]:
        x = torch.cat([batch.x1, batch.x2])  # one pass through the U-Net and g_e for both crops
        f = self.model(x)
        r1, r2 = (x - f).chunk(2)
        b = r1.shape[0]
        r1_all, r2_all = _all_gather_with_grad(r1), _all_gather_with_grad(r2)
        if r1_all.shape[0] == b:
            contrast = _losses.residual_contrastive_loss(
                r1, r2, self.distance, self.config.tau, self.config.contrast_reduction, self.config.tau_scale
            )
        else:  # this process's anchors against the global batch of second crops
            start = dist.get_rank() * b
            d = self.distance(r1, r2_all).float()
            logits = -d / _losses.effective_tau(d, self.config.tau, self.config.tau_scale)
            target = torch.arange(start, start + b, device=d.device)
            contrast = F.cross_entropy(logits, target, reduction=self.config.contrast_reduction)
            if self.config.contrast_reduction == "sum":
                # DDP averages gradients over processes; scaling the partial sum by the world size makes
                # the update that of the sum over the global batch, as on one process.
                contrast = contrast * dist.get_world_size()
        consistency = self.consistency_loss(x, f)  # = the mean of the two crops' losses (equal sizes)
        loss = _losses.rcl_loss(contrast, consistency, self.config.alpha)
        out = {"loss": loss, "contrast": contrast.detach(), "consistency": consistency.detach()}
        if self.diagnose and self.training:
            out.update(mechanism(f, r1, r2, {"contrast": self.config.alpha * contrast, "consistency": consistency}))
        return out


def mechanism(f: Tensor, r1: Tensor, r2: Tensor, terms: dict[str, Tensor]) -> dict[str, Tensor]:
    """What each term of Eq. 6 sends into the U-Net, and how far the residuals discriminate instances.

    ``grad_<term>``: the norm of the gradient of that (weighted) term with respect to the U-Net's output
    ``f`` — the signal the network receives from it (everything upstream of ``f`` sees only this);
    ``grad_ratio``: ``grad_contrast / grad_consistency`` when both are present. ``emd_gap``: the mean EMD
    between negative pairs minus that between positive pairs of the batch's residuals (Figure 2's
    quantity, averaged): positive when an anchor's own second crop is the closer one.
    """
    out = {}
    for name, term in terms.items():
        if term.requires_grad:
            (g,) = torch.autograd.grad(term, f, retain_graph=True)
            out[f"grad_{name}"] = g.float().norm()
    if "grad_contrast" in out and "grad_consistency" in out:
        out["grad_ratio"] = out["grad_contrast"] / out["grad_consistency"].clamp_min(1e-30)
    with torch.no_grad():
        d = _distances.get_distance("emd")(r1.float(), r2.float())
        off = ~torch.eye(d.shape[0], dtype=torch.bool, device=d.device)
        out["emd_gap"] = d[off].mean() - d.diagonal().mean()
    return out


class RCLEMD(RCL):
    name = "rcl-emd"

    def __init__(self, model, config=None, consistency=None):
        super().__init__(model, config, consistency, distance="emd")


class RCLBD(RCL):
    name = "rcl-bd"

    def __init__(self, model, config=None, consistency=None):
        super().__init__(model, config, consistency, distance="bd")


class RCLMMD(RCL):
    name = "rcl-mmd"

    def __init__(self, model, config=None, consistency=None):
        super().__init__(model, config, consistency, distance="mmd")


class Noise2Noise(Method):
    """Noise2Noise (Lehtinen et al. 2018): ``‖f(x₁) − x₁'‖`` with ``x₁'`` a second independent noisy draw
    of the same clean crop with the same NLF parameters (paper §5). Departures from the original code:
    the norm is ``config.loss_norm`` (L1 by default; the original uses L2 for Gaussian noise) and the
    target keeps the input's noise parameters instead of redrawing σ (as the RCL paper specifies).
    """

    name = "n2n"
    needs_second_draw = True

    def forward(self, batch: Batch) -> dict[str, Tensor]:
        if batch.x1_second is None:
            raise ValueError("n2n needs batch.x1_second, a second noisy draw of crop 1")
        loss = _image_loss(self.model(batch.x1), batch.x1_second, self.config.loss_norm)
        return {"loss": loss}


def grid_masks(width: int, size: tuple[int, int], device=None) -> Tensor:
    """Noise2Self's ``width²`` grid masks, ``(width², 1, 1, H, W)`` bool: phase ``i`` masks pixels with
    ``r % w == i % w`` and ``c % w == (i // w) % w``. Built once, vectorised."""
    h, w_ = size
    r = torch.arange(h, device=device).view(h, 1) % width
    c = torch.arange(w_, device=device).view(1, w_) % width
    phase = torch.arange(width * width, device=device).view(-1, 1, 1)
    masks = (r == phase % width) & (c == (phase // width) % width)
    return masks[:, None, None]


_N2S_KERNEL = torch.tensor([[0.5, 1.0, 0.5], [1.0, 0.0, 1.0], [0.5, 1.0, 0.5]]) / 6.0


class Noise2Self(Method):
    """Noise2Self (Batson & Royer 2019) with the grid masker: each step masks one of the ``w²`` phases
    (one mask for the whole batch and all channels), replaces masked pixels by the average of their 8
    neighbours (zero-centre kernel, so the input at a masked pixel does not depend on its value:
    J-invariance) or by zero, and takes the loss on masked pixels only. Inference is a single pass on
    the unmasked image, as the original's default. Departure: the phase cycles with a step counter kept
    as a buffer (the original draws it from the batch index), so resumed runs continue the cycle.

    With the residual backbone (``skip="residual"``) the masked input's fill passes through the global skip,
    so the head learns the correction to the 8-neighbour average at masked pixels — a J-invariant objective,
    and the representation φ the proxy protocol evaluates (it refits the head, with the skip, on φ of the
    unmasked image). The network's *own* single-pass output on an unmasked image is not J-invariant then (the
    skip adds the pixel's own noisy value back): read Noise2Self end to end only with ``skip="none"``.
    """

    name = "n2s"

    def __init__(self, model, config=None, consistency=None):
        super().__init__(model, config, consistency)
        if self.config.n2s_replace not in ("interpolate", "zero"):
            raise ValueError(f"n2s_replace must be 'interpolate' or 'zero', got {self.config.n2s_replace!r}")
        self.register_buffer("step", torch.zeros((), dtype=torch.long))
        self.register_buffer("kernel", _N2S_KERNEL.clone(), persistent=False)  # on the device with the method

    def forward(self, batch: Batch) -> dict[str, Tensor]:
        x = batch.x1
        w = self.config.n2s_grid
        phase = self.step.view(1) % (w * w)  # chosen on the device: the step counter is never read back
        mask = grid_masks(w, tuple(x.shape[-2:]), x.device).index_select(0, phase)[0, 0].to(x.dtype)
        if self.config.n2s_replace == "interpolate":
            k = self.kernel.to(x).expand(x.shape[1], 1, 3, 3)
            fill = F.conv2d(F.pad(x, (1, 1, 1, 1), mode="reflect"), k, groups=x.shape[1])
        else:
            fill = torch.zeros_like(x)
        x_in = x * (1 - mask) + fill * mask
        out = self.model(x_in)
        diff = (out - x).abs() if self.config.loss_norm == "l1" else (out - x) ** 2
        loss = (diff * mask).sum() / (mask.sum() * x.shape[0] * x.shape[1])
        return {"loss": loss}

    @torch.no_grad()
    def after_step(self) -> None:
        self.step += 1


class Consistency(Method):
    """The consistency loss (Eq. 5) alone — the paper's "effect of residual contrastive loss" ablation."""

    name = "consistency"
    uses_consistency = True

    def forward(self, batch: Batch) -> dict[str, Tensor]:
        x = torch.cat([batch.x1, batch.x2])
        f = self.model(x)
        loss = self.consistency_loss(x, f)  # the mean over both crops
        out = {"loss": loss}
        if self.diagnose and self.training:
            out.update(mechanism(f, *(x - f).chunk(2), {"consistency": loss}))
        return out


class CopyInput(Method):
    """A control, not a method of the paper: train ``f`` to reproduce its own noisy input, ``‖f(x) − x‖``.

    It measures what the backbone can represent at the profile's budget: a network that cannot copy its
    input end to end cannot denoise either, whatever its pre-training. Under the proxy protocol its
    features show what a representation that keeps the input, and nothing else, is worth.
    """

    name = "copy"

    def forward(self, batch: Batch) -> dict[str, Tensor]:
        return {"loss": _image_loss(self.model(batch.x1), batch.x1, self.config.loss_norm)}


class RandomInit(Method):
    """A control, not a method of the paper: no pre-training at all — the U-Net as initialised by the run's
    seed, which is where every other method of that seed starts (:func:`rcl.train.build_method`).

    Under the proxy protocol it is the baseline a pre-training must beat to have given the new head anything:
    the head (a 1×1 convolution on the frozen penultimate features, added to the input by the residual
    backbone) fitted on random convolutional features can already combine local filters of the noisy input, as a
    linear probe on a random network classifies above chance. A pre-training can also end below it (features
    that lost what the head needs). It is not "training from scratch" — that is the label study's SL arm. The
    engine saves it without a step (``trains = False``); its loss is zero, and would leave Adam's update at zero
    if it were trained.
    """

    name = "init"
    trains = False

    def forward(self, batch: Batch) -> dict[str, Tensor]:
        return {"loss": self.model(batch.x1).sum() * 0.0}


class Supervised(Method):
    """Supervised learning with clean targets: the paper's *Oracle* and "SL (Den)" pre-training.

    ``config.supervised_task`` picks the task (:mod:`rcl.tasks`): ``"denoise"`` trains on the noisy crop
    ``x1`` against its clean crop ``y1`` (Table 1's Oracle, Table 2's "SL (Den)"); another task builds its
    input from ``y1`` with that task's degradation (Table 2's Oracle for SR and JDenSR), noise (σ up to
    ``config.sigma_max``, the training data's range) drawn from the generator of the run's seed and the step
    (stream ``"degrade"``), so resumed runs see the same inputs.
    """

    name = "supervised"
    needs_clean = True

    def __init__(self, model, config=None, consistency=None):
        super().__init__(model, config, consistency)
        from rcl import tasks

        if self.config.supervised_task not in tasks.TASKS:
            raise ValueError(f"unknown supervised_task {self.config.supervised_task!r}; valid: {tasks.TASKS}")
        self.register_buffer("step", torch.zeros((), dtype=torch.long))
        # The run's seed (rcl.train seeds torch before building the method), for the task's degradations.
        self.register_buffer("seed", torch.tensor(torch.initial_seed() % 2**63, dtype=torch.long))

    @classmethod
    def prepare(cls, batch: Batch, config: MethodConfig, seed: int, step: int, rank: int = 0, world: int = 1) -> Batch:
        """The step's degraded input and target (``prepared["x"]``, ``["y"]``) for a task other than denoising,
        built on the host with the batch: drawn from the run's seed and the step (the same after a resume).

        Under DDP (``batch`` is process ``rank``'s slice) a noisy task's noise is drawn for the whole batch (the
        slice in place, zeros elsewhere: which numbers are drawn, and in which order, does not depend on the
        pixels) and the process keeps its slice, so ``world`` processes train on what one process would, not on
        one noise draw repeated ``world`` times."""
        if config.supervised_task == "denoise" or batch.y1 is None:
            return batch
        g = _rng.generator(seed, "degrade", step)
        y1, mine = batch.y1, slice(None)
        if config.supervised_task in _tasks.NOISY_TASKS:  # the others draw nothing
            y1, mine = whole_batch(batch.y1, rank, world)
        with torch.autocast("cpu", enabled=False):  # float32 as the test inputs, whatever the caller's context
            x, y = _tasks.make_task(config.supervised_task, y1, g, sigma_range=(0.0, config.sigma_max))
        return dataclasses.replace(batch, prepared={"x": own_slice(x, mine), "y": own_slice(y, mine)})

    def forward(self, batch: Batch) -> dict[str, Tensor]:
        if batch.y1 is None:
            raise ValueError("supervised needs batch.y1, the clean crop")
        if self.config.supervised_task == "denoise":
            x, y = batch.x1, batch.y1
        else:
            x, y = (prepared := self.prepared(batch))["x"], prepared["y"]
        return {"loss": _image_loss(self.model(x), y, self.config.loss_norm)}

    @torch.no_grad()
    def after_step(self) -> None:
        self.step += 1
