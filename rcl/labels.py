"""The label-efficiency study (paper §5, Table 3): supervised learning from scratch against RCL
pre-training plus supervised fine-tuning, as the number of labels grows.

The study's unit is a pre-training seed (:func:`label_study`): the RCL run pre-trained with seed ``s`` is
fine-tuned with seed ``s``, which draws its labelled subsets, SL's initialisation and the batch order, so
the spread over units includes the pre-training seed. For each unit the largest labelled set is drawn once
(:func:`label_subsets`, the proxy protocol's labelled crops: :func:`rcl.evaluate.labelled_crops`) and every
smaller count is a prefix of it. Both arms — a randomly initialised U-Net of the run's architecture ("SL")
and the pre-trained run ("RCL+SL") — are fine-tuned on the same subsets with the same batch order
(:func:`finetune`, stream ``"finetune"`` of :func:`rcl.rng.generator`) and evaluated end to end on the proxy
protocol's test cases (:func:`rcl.evaluate.end_to_end`), beside the test inputs themselves (arm ``"noisy
input"``, the reference of the study's controls: :func:`rcl.summary.label_controls`). :func:`annotation_cost`
then asks how many labels SL needs to match RCL+SL (:func:`labels_to_match`), with a bootstrap over units
(:func:`rcl.stats.bootstrap_units`).

One run's table (:func:`label_efficiency`) is saved under ``<run>/labels/<key>.json``
(:func:`rcl.cache.json_cache`), keyed like a proxy evaluation (:func:`rcl.evaluate.evaluation_key`: the
config, the numerics of the device, the evaluation's code and the contents of the image folders).

Layer: evaluation (imports cache, config, rng, models, the training engine whose runs it fine-tunes,
:mod:`rcl.evaluate` and :mod:`rcl.stats`; never the CLI, plots or notebooks).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import Tensor

from rcl import cache as _cache
from rcl import evaluate as _evaluate
from rcl import rng as _rng
from rcl import runs as _runs
from rcl import stats as _stats
from rcl.config import autocast, status
from rcl.models import UNet, UNetConfig, memory_format

__all__ = ["ARMS", "LabelConfig", "MIN_BOOTSTRAP_SEEDS", "REFERENCE", "annotation_cost", "finetune", "label_efficiency",
           "label_study", "label_subsets", "labels_to_match"]

#: The study's two arms, and the arm of its reference rows (the test inputs scored as outputs).
ARMS = ("SL", "RCL+SL")
REFERENCE = "noisy input"


@dataclass(frozen=True)
class LabelConfig(_evaluate.EvalSet):
    """The label-efficiency study: what it computes (everything here is part of its cache key).

    A *label* is one clean/noisy crop pair of ``label_size`` px from the training images (not a whole
    image). Subsets are nested: for each seed the largest set is drawn once and every smaller count is a
    prefix of it, so ``10 ⊂ 100 ⊂ …``. Both arms see the same subsets and the same seeds. ``seeds`` are
    fine-tuning seeds of one run in :func:`label_efficiency`, and the pre-training seeds of the runs in
    :func:`label_study` (each run fine-tuned with its own). Each fine-tuning runs ``steps`` Adam steps on
    batches of ``batch_size`` labels (fewer when there are fewer labels). ``test_seed`` draws the test cases'
    degradations, as :class:`rcl.evaluate.ProxyConfig`'s ``seed`` does (notebook 05 passes notebook 04's
    ``seed``, so both score the same test cases whatever the seeds).
    """

    counts: tuple[int, ...] = (0, 4, 16, 64, 256)
    seeds: tuple[int, ...] = (0, 1, 2)
    label_size: int = 64
    steps: int = 200
    batch_size: int = 16
    lr: float = 1e-3
    test_seed: int = 0

    def __post_init__(self) -> None:
        super().__post_init__()
        if list(self.counts) != sorted(set(self.counts)) or min(self.counts) < 0:
            raise ValueError(f"counts must be distinct, increasing and >= 0, got {self.counts}")
        if not self.seeds:
            raise ValueError("seeds must name at least one seed")
        if self.steps < 0 or self.batch_size < 1:
            raise ValueError(f"steps must be >= 0 and batch_size >= 1, got steps={self.steps}, "
                             f"batch_size={self.batch_size}")
        if self.label_size < _evaluate.MIN_SIZE:
            raise ValueError(f"label_size={self.label_size!r} must be >= {_evaluate.MIN_SIZE}")
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise ValueError(f"lr={self.lr!r} must be a finite number > 0")

    def key(self, device: torch.device | str | None = None) -> str:
        """The key of this study's cached table on ``device`` (:func:`rcl.evaluate.evaluation_key`)."""
        return _evaluate.evaluation_key(self, device)

    def proxy(self) -> _evaluate.ProxyConfig:
        """The test-set definition shared with the proxy evaluation (denoising)."""
        return _evaluate.ProxyConfig(task="denoise", seed=self.test_seed, **self.eval_set())


def label_subsets(cfg: LabelConfig, train: dict[str, Tensor], seed: int) -> tuple[Tensor, Tensor]:
    """The seed's largest labelled set, noisy inputs and clean targets; count ``k`` uses the first ``k``."""
    n = max(cfg.counts)
    if n == 0:
        return torch.empty(0, 3, cfg.label_size, cfg.label_size), torch.empty(0, 3, cfg.label_size, cfg.label_size)
    pcfg = _evaluate.ProxyConfig(task="denoise", n_labels=n, label_size=cfg.label_size, sigma_max=cfg.sigma_max,
                                 seed=seed)
    return _evaluate.labelled_crops(pcfg, train, trial=0)


def finetune(model: UNet, x: Tensor, y: Tensor, cfg: LabelConfig, seed: int, device="cpu") -> UNet:
    """Supervised L1 fine-tuning of the whole network on ``(x, y)`` (Adam as in pre-training); the batch
    order is drawn from ``rcl.rng.generator(seed, "finetune", len(x))``, so both arms see the same batches.
    Autocast as the pre-training engine (bfloat16 on a CPU with native bf16 units or a CUDA GPU; the loss
    in float32), channels-last where that is faster (:func:`rcl.models.memory_format`), fused Adam on CUDA, as
    the engine. The labelled set and every step's batch order go to the device once, so a step reads nothing
    back and copies nothing from the host (a copy from pageable memory would wait for the GPU every step)."""
    device = torch.device(device)
    model = model.to(device, memory_format=memory_format(device)).train()
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, betas=(0.9, 0.999), eps=1e-7,
                           fused=device.type == "cuda" or None)
    g = _rng.generator(seed, "finetune", len(x))
    b = min(cfg.batch_size, len(x))
    order = torch.randint(len(x), (cfg.steps, b), generator=g).to(device)  # the same draws as one per step
    x, y = x.to(device), y.to(device)
    for idx in order:
        with autocast(device):
            out = model(x[idx])
        loss = F.l1_loss(out.float(), y[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return model.eval()


def label_efficiency(
    run: str | os.PathLike, cfg: LabelConfig, device: torch.device | str = "cpu", cache: bool = True
) -> pd.DataFrame:
    """Table 3 on our data: SL from scratch vs RCL pre-training + SL fine-tuning, per label count and seed.

    ``run`` is a finished pre-training run (RCL); ``cfg.seeds`` are fine-tuning seeds. Returns rows (arm,
    labels, seed, psnr, ssim, …) over the test cases; count 0 evaluates the pre-trained network directly
    (Table 3's first row; SL has no 0 row), and arm :data:`REFERENCE` scores the test inputs themselves.
    Saved under ``<run>/labels/<key>.json`` (:meth:`LabelConfig.key` on ``device``) and reloaded;
    ``cache=False`` computes it afresh and saves nothing.
    """
    run = Path(run)
    rows, _ = _cache.json_cache(run / "labels" / f"{cfg.key(device)}.json", lambda: _study(run, cfg, device),
                                enabled=cache)
    return pd.DataFrame(rows)


def label_study(runs: Mapping[int, str | os.PathLike], cfg: LabelConfig, device: torch.device | str = "cpu",
                cache: bool = True) -> pd.DataFrame:
    """Table 3 over pre-training seeds: ``runs[s]`` is the RCL run pre-trained with seed ``s``, for every
    ``s`` of ``cfg.seeds``, and is fine-tuned with seed ``s`` (:func:`label_efficiency` with that one seed).
    Column ``seed`` is then the unit — pre-training, labelled subsets, SL's initialisation and batch order
    all vary with it — so a spread or interval over it includes the pre-training seed. Within a unit SL
    starts from the very weights the RCL run started from (both are ``UNet(arch)`` under
    ``torch.manual_seed(s)``), so pre-training is the only difference between the arms. Each run's table is
    cached in the run, as :func:`label_efficiency`'s. A run whose ``config.json`` names another seed is
    refused."""
    if sorted(runs) != sorted(cfg.seeds):
        raise ValueError(f"label_study needs one run per seed of seeds={list(cfg.seeds)}, got runs for "
                         f"{sorted(runs)}")
    for s, run in runs.items():
        trained = _runs.read_config(run, needed=("seed",))["seed"]
        if trained != s:
            raise ValueError(f"runs[{s}] = {str(run)!r} was pre-trained with seed {trained}, not {s}: the study "
                             "pairs each pre-training seed with its own run")
    return pd.concat([label_efficiency(runs[s], replace(cfg, seeds=(s,)), device, cache) for s in cfg.seeds],
                     ignore_index=True)


def _study(run: Path, cfg: LabelConfig, device: torch.device | str) -> list[dict]:
    """The rows of :func:`label_efficiency`, computed."""
    pcfg = cfg.proxy()
    train = _evaluate.training_images(pcfg)
    _evaluate.test_images(pcfg)  # refuses a test set that shares a training image, before any fine-tuning
    arch = UNetConfig(**torch.load(run / "model.pt", map_location="cpu", weights_only=True)["unet"])
    rows = []

    def record(arm: str, k: int, seed: int, model: torch.nn.Module) -> None:
        e2e = _evaluate.end_to_end(model, pcfg, device)
        rows.extend({"arm": arm, "labels": k, "seed": seed, **r} for r in e2e.to_dict("records"))

    # the test inputs scored as outputs, the controls' reference: the same test cases for every seed
    inputs = _evaluate.end_to_end(torch.nn.Identity(), pcfg, device).drop(columns="psnr_vs_input")
    for seed in cfg.seeds:
        status(f"label efficiency: seed {seed} of {list(cfg.seeds)}, counts {list(cfg.counts)}")
        rows.extend({"arm": REFERENCE, "labels": 0, "seed": seed, **r} for r in inputs.to_dict("records"))
        x_all, y_all = label_subsets(cfg, train, seed)
        for k in cfg.counts:
            if k == 0:
                record("RCL+SL", 0, seed, _runs.load_model(run, device))
                continue
            x, y = x_all[:k], y_all[:k]
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                scratch = UNet(arch)
            record("SL", k, seed, finetune(scratch, x, y, cfg, seed, device))
            record("RCL+SL", k, seed, finetune(_runs.load_model(run, device), x, y, cfg, seed, device))
    return rows


def labels_to_match(counts, psnrs, target: float) -> float:
    """Labels the curve ``(counts, psnrs)`` needs to reach ``target`` PSNR, interpolating linearly in
    ``log10(labels)``; ``nan`` when the target lies outside the curve's range (no extrapolation)."""
    pts = sorted((c, p) for c, p in zip(counts, psnrs) if c > 0)
    for (c0, p0), (c1, p1) in zip(pts, pts[1:]):
        lo, hi = min(p0, p1), max(p0, p1)
        if lo <= target <= hi and p1 != p0:
            t = (target - p0) / (p1 - p0)
            return 10 ** (math.log10(c0) + t * (math.log10(c1) - math.log10(c0)))
    return float("nan")


#: Fewer seeds (the study's units) than this and a bootstrap over them is reported as a range, not a 95% interval.
MIN_BOOTSTRAP_SEEDS = 5


def annotation_cost(df: pd.DataFrame, k: int, n_boot: int = 2000, seed: int = 0) -> dict:
    """How many labels SL needs to match RCL+SL at ``k`` labels (paper §5's annotation-cost estimate).

    Point estimate from the mean curves; a 95% bootstrap interval resampling seeds — the study's units
    (the same resampled seeds for both arms, since they share subsets; :func:`rcl.stats.bootstrap_units`).
    The fraction of failed bootstraps (target outside SL's measured range) is reported too, and the number
    of seeds: with few (``seeds < MIN_BOOTSTRAP_SEEDS``) the bootstrap can only span the per-seed estimates,
    and its interval is a range, not a 95% interval. ``sl_rises`` says whether SL's mean curve rises with the count:
    where it does not, the match is the curve's first crossing of the target, and labels are no measure of
    cost.
    """
    per = _evaluate.paper_cases(df).groupby(["arm", "labels", "seed"]).psnr.mean().reset_index()
    sl = per[per.arm == "SL"].pivot(index="seed", columns="labels", values="psnr")
    rcl = per[(per.arm == "RCL+SL") & (per.labels == k)].set_index("seed").psnr
    seeds = sl.index.intersection(rcl.index).to_numpy()

    def match(s) -> float:
        return labels_to_match(sl.columns, sl.loc[s].mean().to_numpy(), float(rcl.loc[s].mean()))

    point = match(seeds)
    ci, failed = _stats.bootstrap_units(seeds, match, n_boot, seed)
    curve = sl.loc[seeds, [c for c in sl.columns if c > 0]].mean().to_numpy()
    return {"k": k, "sl_labels": point, "ci95": ci, "saving": 1 - k / point if point == point else float("nan"),
            "failed_share": failed, "seeds": len(seeds), "sl_rises": bool((np.diff(curve) >= 0).all())}
