"""The proxy evaluation protocol (paper §4): judge a representation by a re-fitted last layer.

For a pre-trained U-Net ``f = h ∘ φ``: freeze φ, replace ``h`` with a freshly initialised 1×1
convolution, fit it with an L1 loss on a small labelled set of a downstream task, and report PSNR/SSIM
on the task's test images — averaged over trials, with their spread.

Choices (see also the book's "Differences from the paper"):

* **Frozen features are computed once.** φ of the labelled inputs is computed once per trial and of the
  test inputs once per task, so fitting the head never re-runs the network; fitting is then cheap
  enough to run to convergence. A 1×1 conv is a per-pixel linear map, so the head is fitted on a sample of
  ``pixels`` feature vectors (all of them if fewer).
* **On the device, one test case at a time.** The heads of all trials are fitted first (Adam on the device, its
  least-squares start on the CPU); then each test case passes through the frozen network once, and every
  trial's head is applied and scored there, on the device. Memory is that of one test case, whatever the
  size of the test set; rows are listed trial by trial.
* **Fitting to convergence.** The head starts from its least-squares solution (a closed form, so the
  start does not depend on the old head) and Adam (β = (0.9, 0.999), ε = 1e-7, lr ``head_lr``) then
  minimises the L1 loss for ``head_steps`` full-batch steps. The loss curve is kept; ``converged`` says
  whether the last 10% of steps improved the loss by less than 0.1%.
* **Trials** differ in the labelled subset (``n_labels`` crops of ``label_size`` px from the training
  images), its noise draws and the Adam path; the test set is fixed (seeded draws of each test image's
  degradation), as a benchmark's test set is.
* **Test images are evaluated whole**, not as crops. For the noisy tasks each one is degraded at every σ
  of ``sigma_grid`` (one fixed draw each: the per-noise-level tables the field reports) *and* under
  ``test_draws`` draws of the paper's mixed range σ ~ U[0, ``sigma_max``], stratified: draw ``j`` of ``n`` has
  σ uniform in ``[j, j+1)·sigma_max/n`` (:func:`mixed_strata`). Every row names its
  ``condition`` (``"σ=10"``, ``"σ~U[0,20]"``, or ``"clean"`` for the noiseless SR and demosaicing).
* **Test images may be centre crops** (``test_crop``, e.g. 256 px at the ``cpu`` profile): evaluation
  costs a forward pass per test case, and a crop keeps the photograph's scale where downscaling would not.
* **Test images may come from another dataset** (``test_dataset``/``test_dir``): the field reports on
  standard test sets, never on its training images. :func:`test_images` refuses a test set that shares an
  image with the training split.
* **Two aggregations**: :func:`aggregate` gives the mean of per-case PSNR (what the field's tables report,
  and what our tables use) and the PSNR of the mean MSE over the same cases (which weighs the hard, noisy
  cases more) side by side.
* **The network's own output is scored too**: every row carries ``psnr_vs_input``, the PSNR of ``f(x)`` with
  the run's own head against its input ``x`` (end to end, the same for every trial). For the copy-the-input
  control it says whether the network can reproduce its input (:func:`rcl.summary.controls`).
* **Results** are a tidy table (method, task, trial, image, condition, psnr, mse, ssim, …) saved beside
  the run under ``proxy/<task>-<key>.json`` and reloaded instead of recomputed (:func:`rcl.cache.json_cache`:
  atomic, and computed once by concurrent callers). The key (:func:`evaluation_key`) hashes the config, the
  numerics of the device, the evaluation's code (:func:`rcl.cache.code_version`) and the contents of the
  training and test image folders — not their paths.
* **Random draws** come from :func:`rcl.rng.generator`: stream ``"labels"`` (a trial's labelled subset),
  ``"head"`` (its pixel sample) and ``"test"`` (a test case's degradation).

The label-efficiency study (Table 3) is :mod:`rcl.labels`; the statistics of comparisons :mod:`rcl.stats`.

Layer: evaluation (imports cache, rng, data, datasets, tasks, metrics, models and the training engine, whose
runs it evaluates; never the CLI, plots or notebooks).

Why one module: the protocol's parts — its config and cache key, the test images and their disjointness
check, the labelled sets, the head fit, the scores and the study — are one procedure that shares its private
helpers (the image loading and its memory cache, the test pairs, the feature pass); split, those helpers
would become an API between modules that only this protocol uses.
"""

from __future__ import annotations

import functools
import hashlib
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import Tensor
from tqdm.auto import tqdm

from rcl import cache as _cache
from rcl import config as _config
from rcl import data as _data
from rcl import methods as _methods
from rcl import metrics as _metrics
from rcl import rng as _rng
from rcl import runs as _runs
from rcl import tasks as _tasks
from rcl import train as _train
from rcl.models import UNet, memory_format

__all__ = [
    "HEADLINE",
    "SEEDED",
    "MIXED",
    "MSE_FLOOR",
    "EvalSet",
    "HEAD_FIELDS",
    "ProxyConfig",
    "aggregate",
    "condition_label",
    "end_to_end",
    "evaluation_key",
    "fit_head",
    "labelled_crops",
    "mixed_strata",
    "paper_cases",
    "proxy_config",
    "proxy_evaluate",
    "proxy_head",
    "proxy_predict",
    "reference_evaluate",
    "study",
    "summarise",
    "test_images",
    "training_images",
]


#: The smallest test image, test crop or labelled crop, in px: SSIM's window is 11 px, and ×2 super-resolution
#: halves the side before the network sees it.
MIN_SIZE = 16


@dataclass(frozen=True)
class EvalSet:
    """The images an evaluation reads and the test cases it scores: the training dataset (labelled crops come
    from its training split), the test images (its held-out split, or ``test_dataset``/``test_dir``, centre
    crops of ``test_crop`` px) and their degradations (every σ of ``sigma_grid``, ``test_draws`` draws of
    σ ~ U[0, ``sigma_max``]). Shared by :class:`ProxyConfig` and :class:`rcl.labels.LabelConfig`."""

    dataset: str = "builtin"
    data_dir: str | None = None
    max_side: int | None = 512
    sigma_max: float = 20.0
    test_draws: int = 3
    sigma_grid: tuple[float, ...] = (0.0, 5.0, 10.0, 15.0, 20.0)
    test_dataset: str | None = None
    test_dir: str | None = None
    test_crop: int | None = None

    def __post_init__(self) -> None:
        if self.test_draws < 0:
            raise ValueError(f"test_draws must be >= 0, got {self.test_draws}")
        object.__setattr__(self, "sigma_grid", tuple(float(v) for v in self.sigma_grid))
        if not math.isfinite(self.sigma_max) or self.sigma_max < 0:
            raise ValueError(f"sigma_max={self.sigma_max!r} must be a finite number >= 0 (0–255 scale)")
        if not all(v >= 0 and math.isfinite(v) for v in self.sigma_grid) or not (self.sigma_grid or self.test_draws):
            raise ValueError(f"sigma_grid must hold σ >= 0 (0–255 scale), and with test_draws=0 at least one; "
                             f"got sigma_grid={self.sigma_grid}, test_draws={self.test_draws}")
        if self.test_crop is not None and self.test_crop < MIN_SIZE:
            raise ValueError(f"test_crop must be None (whole images) or >= {MIN_SIZE} px, got {self.test_crop}")
        if self.test_dir is not None and self.test_dataset is None:
            object.__setattr__(self, "test_dataset", "folder")

    def eval_set(self) -> dict[str, Any]:
        """The fields of :class:`EvalSet` alone."""
        return {f.name: getattr(self, f.name) for f in fields(EvalSet)}


@dataclass(frozen=True)
class ProxyConfig(EvalSet):
    """What a proxy evaluation computes (everything here is part of its cache key)."""

    task: str = "denoise"
    n_labels: int = 16
    label_size: int = 96
    trials: int = 5
    head_steps: int = 300
    head_lr: float = 1e-3
    pixels: int = 2**16
    seed: int = 0

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.task not in _tasks.TASKS:
            raise ValueError(f"unknown task {self.task!r}; valid tasks: {_tasks.TASKS}")
        for name, low in (("trials", 1), ("n_labels", 1), ("head_steps", 0), ("pixels", 1), ("label_size", MIN_SIZE)):
            if getattr(self, name) < low:
                raise ValueError(f"{name}={getattr(self, name)!r} must be >= {low}")
        if not (math.isfinite(self.head_lr) and self.head_lr > 0):
            raise ValueError(f"head_lr={self.head_lr!r} must be a finite number > 0")

    def key(self, device: torch.device | str | None = None) -> str:
        """The key of this evaluation's cached table on ``device`` (:func:`evaluation_key`)."""
        return evaluation_key(self, device)


def evaluation_key(cfg: Any, device: torch.device | str | None = None) -> str:
    """The key of a cached evaluation (a :class:`ProxyConfig`, or a :class:`rcl.labels.LabelConfig`) on
    ``device`` (default: this machine's): :func:`rcl.cache.key` of its settings and numerics
    (:func:`rcl.config.numerics`), of the evaluation's code and of the contents of the training and the test
    image folders it reads. A changed library or a replaced image never serves an old table.

    The folders enter by their contents only: ``data_dir`` and ``test_dir`` count in the settings as given
    or not, so the same folder by a relative or an absolute path is the same key."""
    settings = _cache.canonical(cfg)
    for field in ("data_dir", "test_dir"):
        settings[field] = settings.get(field) is not None
    folders = [_data.image_root(cfg.dataset, cfg.data_dir), _data.image_root(cfg.test_dataset, cfg.test_dir)]
    return _cache.key({"config": settings, "numerics": _config.numerics(device)}, code="evaluation", folders=folders)


@torch.no_grad()
def _features(model: UNet, x: Tensor, device: torch.device, chunk: int = 8) -> Tensor:
    """φ(x) in float32, computed on ``device`` in chunks of ``chunk`` images, and left there."""
    return torch.cat([model.features(b.to(device)).float() for b in x.split(chunk)])


def labelled_crops(cfg: ProxyConfig, train: dict[str, Tensor], trial: int) -> tuple[Tensor, Tensor]:
    """A trial's labelled set: ``n_labels`` random crops of ``label_size`` px of the training images ``train``
    and their task inputs, drawn from ``rcl.rng.generator(cfg.seed, "labels", trial)``. Returns
    ``(inputs, targets)``."""
    g = _rng.generator(cfg.seed, "labels", trial)
    names = list(train)
    _data.check_sizes(train, cfg.label_size, "label_size")
    pick = torch.randint(len(names), (cfg.n_labels,), generator=g).tolist()
    ys = []
    for i in pick:
        img = train[names[i]]
        h, w = img.shape[-2:]
        t = int(torch.randint(h - cfg.label_size + 1, (1,), generator=g))
        left = int(torch.randint(w - cfg.label_size + 1, (1,), generator=g))
        ys.append(_data.crop(img, t, left, cfg.label_size))
    return _tasks.make_task(cfg.task, torch.stack(ys), g, sigma_range=(0.0, cfg.sigma_max))


_NOISELESS_TASKS = ("sr", "demosaic")

#: The ``condition`` of the paper's mixed noise range, e.g. ``"σ~U[0,20]"`` (see :func:`condition_label`).
MIXED = "σ~U"


def condition_label(sigma: float | None, sigma_max: float = 20.0) -> str:
    """``"σ=10"`` for a fixed noise level, ``"σ~U[0,20]"`` for the mixed range (``sigma=None``)."""
    return f"σ={sigma:g}" if sigma is not None else f"{MIXED}[0,{sigma_max:g}]"


def mixed_strata(cfg: EvalSet) -> list[tuple[float, float]]:
    """The σ ranges of an image's ``test_draws`` draws of the mixed range: ``[0, sigma_max]`` cut into as many
    equal strata, one draw in each (σ uniform within it). Each draw's σ is still uniform on the whole range
    when its stratum is picked at random, so the mean over draws estimates the same mean as independent
    draws — with less variance: every image is seen across the whole range, from nearly clean to the
    noisiest. Three independent draws per image left a 12-case mean at the mercy of whether one landed near
    σ = 0, where a network that changes little scores 50 dB and more."""
    n = cfg.test_draws
    return [(cfg.sigma_max * j / n, cfg.sigma_max * (j + 1) / n) for j in range(n)]


def _test_pairs(cfg: ProxyConfig, test: dict[str, Tensor]) -> Iterator[tuple[str, str, Tensor, Tensor]]:
    """Each test case's (image, condition, input, target): every σ of ``sigma_grid`` once and ``test_draws``
    draws of the mixed range per image, stratified (:func:`mixed_strata`; one ``"clean"`` case for the
    noiseless tasks), each a fixed seeded draw, so every method sees the same test set. Made one at a time,
    as they are consumed."""
    if cfg.task in _NOISELESS_TASKS:
        conds = [("clean", (0.0, 0.0))]
    else:
        conds = [(condition_label(s), (s, s)) for s in cfg.sigma_grid]
        conds += [(condition_label(None, cfg.sigma_max), stratum) for stratum in mixed_strata(cfg)]
    for k, (name, img) in enumerate(test.items()):
        for d, (cond, sigma_range) in enumerate(conds):
            g = _rng.generator(cfg.seed, "test", 1000 * k + d)
            x, y = _tasks.make_task(cfg.task, img[None], g, sigma_range=sigma_range)
            yield name, cond, x, y


def fit_head(feats: Tensor, targets: Tensor, steps: int, lr: float = 1e-3) -> tuple[torch.nn.Conv2d, list[float]]:
    """Fit a 1×1 conv ``C→3`` on pixel features (``P×C``) and targets (``P×3``) with L1; see module doc.

    Adam runs where ``feats`` are (the protocol's device). Returns the head, on the CPU, and the L1 loss
    curve (one value per step, the first before any Adam step).
    """
    p, c = feats.shape
    targets = targets.to(feats.device)
    # The least-squares start in float64 on the CPU, wherever the features are: LAPACK's rank-revealing
    # solver copes with a dead feature channel, where CUDA's QR-only one would not.
    a = torch.cat([feats.cpu(), torch.ones(p, 1, dtype=feats.dtype)], 1).double()
    sol = torch.linalg.lstsq(a, targets.double().cpu()).solution.float().to(feats.device)  # (C+1)×3
    weight = sol[:c].T.contiguous().requires_grad_()
    bias = sol[c].clone().requires_grad_()
    opt = torch.optim.Adam([weight, bias], lr=lr, betas=(0.9, 0.999), eps=1e-7)
    losses = torch.empty(steps + 1, device=feats.device)  # read once at the end: no device sync per step
    for step in range(steps + 1):
        loss = (feats @ weight.T + bias - targets).abs().mean()
        losses[step] = loss.detach()
        if step == steps:
            break
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    curve = losses.tolist()
    head = torch.nn.Conv2d(c, targets.shape[1], 1)
    with torch.no_grad():
        head.weight.copy_(weight.detach().view(-1, c, 1, 1).cpu())
        head.bias.copy_(bias.detach().cpu())
    return head, curve


def proxy_head(model: UNet, cfg: ProxyConfig, trial: int = 0, device: torch.device | str = "cpu",
               train: dict[str, Tensor] | None = None) -> tuple[torch.nn.Conv2d, list[float]]:
    """The head the protocol fits on the frozen ``model`` in trial ``trial`` of ``cfg``: on a sample of the
    pixels of that trial's labelled crops (:func:`labelled_crops` of ``train``, default
    :func:`training_images`), by :func:`fit_head`. Returns the head (on the CPU) and its loss curve; use it
    as ``model.output(model.features(x), x, head)``."""
    train = training_images(cfg) if train is None else train
    x, y = labelled_crops(cfg, train, trial)
    f = _features(model, x, torch.device(device))
    fp, yp = _pixels(f, model.head_target(x, y), cfg.pixels, _rng.generator(cfg.seed, "head", trial))
    return fit_head(fp, yp, cfg.head_steps, cfg.head_lr)


#: The :class:`ProxyConfig` fields that decide the head :func:`proxy_head` fits, beyond the run's data and
#: noise range, the task and the seed: the labelled crops and the fit.
HEAD_FIELDS = ("n_labels", "label_size", "head_steps", "head_lr", "pixels")


def proxy_config(run: str | os.PathLike, profile: str | None = None, **fields: Any) -> ProxyConfig:
    """The :class:`ProxyConfig` of the finished run ``run``: its data (``dataset``, ``data_dir``, ``max_side``)
    and noise range (``sigma_max``) as it was trained with; with ``profile``, that profile's proxy settings
    (:data:`rcl.profiles.PROXY_KEYS` of its ``"proxy"`` section, as notebook 04 uses them); ``fields`` for
    the rest. A ``ValueError`` naming the file if ``run`` is not a run directory."""
    trained = _runs.read_config(run)
    data = {k: trained[k] for k in ("dataset", "data_dir", "max_side", "sigma_max")}
    scale = {}
    if profile is not None:
        section = _config.settings("proxy", profile)
        scale = {k: section[k] for k in _config.PROXY_KEYS}
    return ProxyConfig(**{**data, **scale, **fields})


def _pixels(f: Tensor, y: Tensor, n: int, g: torch.Generator) -> tuple[Tensor, Tensor]:
    fp = f.permute(0, 2, 3, 1).reshape(-1, f.shape[1])
    yp = y.permute(0, 2, 3, 1).reshape(-1, y.shape[1])
    if fp.shape[0] > n:
        idx = torch.randperm(fp.shape[0], generator=g)[:n]
        fp, yp = fp[idx.to(fp.device)], yp[idx.to(yp.device)]
    return fp, yp


def _images(cfg: ProxyConfig) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
    return training_images(cfg), test_images(cfg)


def training_images(cfg: ProxyConfig) -> dict[str, Tensor]:
    """The training images of ``cfg`` (its dataset's training split, resized to ``max_side``), from which
    the labelled sets are cropped."""
    return _load_split(cfg.dataset, cfg.data_dir, cfg.max_side, "train")


def test_images(cfg: ProxyConfig) -> dict[str, Tensor]:
    """The test images of ``cfg``: the held-out split of the training dataset, or — with ``test_dataset``
    (``"folder"`` with ``test_dir``, or a registered name with ``test_dir`` its download root) — another
    dataset: a folder's ``test/`` subfolder if it has one, else every image in it.

    Raises if a test image is also a training image (same pixels after resizing, or a re-encoded copy) —
    checked for another test set and for a user's folder; a registered dataset's own splits are disjoint by
    construction: a verdict on images the network trained on says nothing about images it has not seen.
    """
    if cfg.test_dataset is None:
        test = _load_split(cfg.dataset, cfg.data_dir, cfg.max_side, "test")
        _data.check_sizes(test, MIN_SIZE)
        if cfg.dataset == "folder":  # a user's folder may hold one photograph twice, or in train/ and test/
            _check_disjoint(test, _load_split(cfg.dataset, cfg.data_dir, cfg.max_side, "train"), cfg.dataset)
        return _centre_crops(test, cfg.test_crop)
    if cfg.test_dataset == "folder":
        if cfg.test_dir is None:
            raise ValueError("test_dataset='folder' needs test_dir, the folder of test images")
        root = Path(cfg.test_dir)
        split = "test" if (root / "test").is_dir() else "all"
    else:
        split = "test"
    test = _load_split(cfg.test_dataset, cfg.test_dir, cfg.max_side, split)
    _data.check_sizes(test, MIN_SIZE)
    _check_disjoint(test, _load_split(cfg.dataset, cfg.data_dir, cfg.max_side, "train"), cfg.dataset)
    return _centre_crops(test, cfg.test_crop)


def _check_disjoint(test: dict[str, Tensor], train: dict[str, Tensor], dataset: str) -> None:
    shared = _shared_images(test, train)
    if shared:
        raise ValueError(f"test image {shared[0][0]!r} is the training image {shared[0][1]!r} "
                         f"({len(shared)} shared): test images must be disjoint from dataset={dataset!r}")


def _centre_crops(images: dict[str, Tensor], size: int | None) -> dict[str, Tensor]:
    """Each image's centre ``size×size`` crop (or the whole image along a side shorter than ``size``): the
    cost of evaluating a test image grows with its pixels, and a crop keeps the photograph's scale."""
    if size is None:
        return images
    out = {}
    for name, img in images.items():
        h, w = img.shape[-2:]
        top, left = max(0, (h - size) // 2), max(0, (w - size) // 2)
        out[name] = img[..., top : top + size, left : left + size]
    return out


def _thumbnails(images: dict[str, Tensor], size: int = 16) -> Tensor:
    return torch.stack([F.interpolate(t[None], size=(size, size), mode="area")[0] for t in images.values()])


def _shared_images(test: dict[str, Tensor], train: dict[str, Tensor], tol: float = 2 / 255) -> list[tuple[str, str]]:
    """Pairs (test name, training name) of the same photograph: equal pixels, or — a re-encoded or re-saved
    copy (JPEG/PNG, 8/16 bit) — 16×16 area thumbnails of the same aspect within ``tol`` everywhere."""
    if not test or not train:
        return []
    seen = {_digest(t): n for n, t in train.items()}
    out = [(n, seen[_digest(t)]) for n, t in test.items() if _digest(t) in seen]
    ratio = lambda t: round(t.shape[-1] / t.shape[-2], 2)  # noqa: E731
    a, b = _thumbnails(test), _thumbnails(train).flatten(1)
    step = max(1, 2**24 // b.numel())  # test thumbnails compared at a time: at most 64 MiB of differences
    close = torch.cat([(a[i : i + step].flatten(1)[:, None] - b[None]).abs().amax(2) <= tol
                       for i in range(0, len(a), step)])  # fmt: skip
    tn, rn = list(test), list(train)
    for i, j in close.nonzero().tolist():
        if ratio(test[tn[i]]) == ratio(train[rn[j]]) and (tn[i], rn[j]) not in out:
            out.append((tn[i], rn[j]))
    return out


def _digest(t: Tensor) -> str:
    return hashlib.sha256(str(tuple(t.shape)).encode() + t.contiguous().numpy().tobytes()).hexdigest()


def _load_split(dataset: str, data_dir: str | None, max_side: int | None, split: str) -> dict[str, Tensor]:
    """Decoded, resized images of one split, kept for the next evaluation (callers never modify them). The
    memory cache is keyed by the folder's contents (names, sizes, modification times), so images added or
    replaced on disk are read again."""
    identity = tuple(tuple(entry) for entry in _cache.folder_identity(_data.image_root(dataset, data_dir)))
    return _load_split_cached(dataset, data_dir, max_side, split, identity)


@functools.lru_cache(maxsize=8)
def _load_split_cached(dataset: str, data_dir: str | None, max_side: int | None, split: str,
                       identity: tuple) -> dict[str, Tensor]:
    return _data.resize_max_side(_data.load_images(dataset, split, data_dir), max_side)


def proxy_evaluate(
    run: str | os.PathLike | UNet,
    cfg: ProxyConfig,
    method: str | None = None,
    device: torch.device | str = "cpu",
    cache: bool = True,
) -> tuple[pd.DataFrame, dict[int, list[float]]]:
    """Proxy evaluation of a finished run directory (or a U-Net) on ``cfg.task``.

    Returns the tidy table — one row per (trial, test image): method, task, trial, image, psnr, ssim —
    and each trial's head-fit loss curve. With a run directory the result is saved under
    ``<run>/proxy/<task>-<key>.json`` (:meth:`ProxyConfig.key` on ``device``) and reloaded on the next
    call; ``cache=False`` computes it afresh and saves nothing.
    """
    device = torch.device(device)
    if isinstance(run, UNet):
        out = _proxy_table(run.to(device, memory_format=memory_format(device)).eval(), cfg, method or "model", device)
    else:
        run = Path(run)

        def compute() -> dict:
            name = method or _runs.read_config(run, ("method",))["method"]
            return _proxy_table(_runs.load_model(run, device), cfg, name, device)

        out, _ = _cache.json_cache(run / "proxy" / f"{cfg.task}-{cfg.key(device)}.json", compute, enabled=cache)
    return pd.DataFrame(out["rows"]), {int(k): v for k, v in out["curves"].items()}


def _proxy_table(model: UNet, cfg: ProxyConfig, method: str, device: torch.device) -> dict:
    """The proxy evaluation of ``model`` as saved: the config, the rows and each trial's loss curve."""
    old_head = [p.detach().clone() for p in model.head.parameters()]
    train, test = _images(cfg)
    fits = [proxy_head(model, cfg, trial, device, train) for trial in range(cfg.trials)]
    heads = [head.to(device) for head, _ in fits]
    curves = {trial: curve for trial, (_, curve) in enumerate(fits)}
    # Test cases one at a time, each through the frozen network once and every trial's head: memory stays
    # that of one case, and heads, outputs and scores stay on the device. Rows are listed trial by trial.
    rows: list[list[dict]] = [[] for _ in heads]
    for name, cond, x, y in _test_pairs(cfg, test):
        x, y = x.to(device), y.to(device)
        ft = _features(model, x, device)
        with torch.no_grad():  # the network's own output, end to end: how far it is from reproducing its input
            own = _psnr_capped(model.output(ft, x).clamp(0, 1), x)
        for trial, (head, (_, curve)) in enumerate(zip(heads, fits)):
            with torch.no_grad():
                out = model.output(ft, x, head).clamp(0, 1)
            rows[trial].append({"method": method, "task": cfg.task, "trial": trial, **_scores(name, cond, out, y),
                                "fit_loss": curve[-1], "converged": _converged(curve), "psnr_vs_input": own})
        del ft, out  # before the next case's features exist
    rows = [row for trial_rows in rows for row in trial_rows]
    # The protocol changes only the head, and never the run's own: the frozen network is untouched.
    assert all(torch.equal(a, b) for a, b in zip(old_head, model.head.parameters()))
    return {"config": _cache.canonical(cfg), "rows": rows, "curves": curves}


def _converged(curve: list[float]) -> bool:
    if len(curve) < 20:
        return False
    tail = curve[-max(2, len(curve) // 10) :]
    return (tail[0] - tail[-1]) <= 1e-3 * max(tail[0], 1e-12)


@torch.no_grad()
def end_to_end(model: torch.nn.Module, cfg: ProxyConfig, device: torch.device | str = "cpu") -> pd.DataFrame:
    """The model's own output (no re-fitted head) on the same test pairs, with the same metrics."""
    _, test = _images(cfg)
    model = model.to(device, memory_format=memory_format(device)).eval()
    rows = []
    for name, cond, x, y in _test_pairs(cfg, test):
        x, y = x.to(device), y.to(device)
        out = model(x).float().clamp(0, 1)
        rows.append({"task": cfg.task, **_scores(name, cond, out, y), "psnr_vs_input": _psnr_capped(out, x)})
    return pd.DataFrame(rows)


#: An exact output (MSE 0, as the noisy input at σ = 0) scores this PSNR instead of infinity, so means stay
#: finite: the MSE is floored at 10⁻¹⁰ for both aggregations.
MSE_FLOOR = 1e-10


def _psnr_capped(out: Tensor, y: Tensor) -> float:
    """PSNR of one case, at most that of :data:`MSE_FLOOR` (100 dB) where the output is exact."""
    return min(float(_metrics.psnr(out, y)[0]), -10 * float(np.log10(MSE_FLOOR)))


def _scores(name: str, cond: str, out: Tensor, y: Tensor) -> dict:
    """One test case's row: image, condition, PSNR, MSE (for the PSNR of the mean MSE) and SSIM."""
    mse = max(float(((out.clamp(0, 1) - y) ** 2).mean()), MSE_FLOOR)
    return {"image": name, "condition": cond, "psnr": _psnr_capped(out, y), "mse": mse,
            "ssim": float(_metrics.ssim(out, y)[0])}


def paper_cases(df: pd.DataFrame) -> pd.DataFrame:
    """The rows of the paper's test setting: the mixed noise range σ ~ U[0, σ_max] (and the noiseless tasks'
    ``"clean"`` cases). Tables set beside the paper's use these; the per-σ tables use every condition."""
    if "condition" not in df:
        return df
    return df[df.condition.str.startswith(MIXED) | (df.condition == "clean")]


def reference_evaluate(cfg: ProxyConfig, cache_dir: str | os.PathLike | None = None) -> pd.DataFrame:
    """The reference row: the task's input itself as the output (noisy input, bicubic, bilinear).

    Computed with the same test pairs and metrics as :func:`proxy_evaluate`; deterministic, so one
    trial's value is repeated for every trial. With ``cache_dir`` saved there as
    ``reference-<task>-<key>.json`` (:meth:`ProxyConfig.key`) and reloaded.
    """

    def compute() -> list[dict]:
        _, test = _images(cfg)
        name_of = {"denoise": "noisy input", "sr": "bicubic", "jdensr": "noisy bicubic", "demosaic": "bilinear",
                   "jdd": "noisy bilinear"}
        rows = []
        device = _config.default_device()  # the device of the key: scores computed where the methods' are
        for name, cond, x, y in _test_pairs(cfg, test):
            scores = _scores(name, cond, x.to(device), y.to(device))
            rows.extend({"method": name_of[cfg.task], "task": cfg.task, "trial": t, **scores}
                        for t in range(cfg.trials))
        return rows

    if cache_dir is None:
        return pd.DataFrame(compute())
    rows, _ = _cache.json_cache(Path(cache_dir) / f"reference-{cfg.task}-{cfg.key()}.json", compute)
    return pd.DataFrame(rows)


def aggregate(df: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    """Per group of ``by``: the mean of per-case PSNR (``psnr``, the field's convention and our tables') and
    the PSNR of the mean MSE over the same cases (``psnr_of_mse``), with the case count ``n``."""
    g = df.groupby(by)
    out = g.psnr.mean().to_frame("psnr")
    out["psnr_of_mse"] = -10 * np.log10(g.mse.mean().clip(lower=MSE_FLOOR))
    out["n"] = g.size()
    return out.reset_index()


def summarise(df: pd.DataFrame) -> pd.DataFrame:
    """Mean and std over trials of the per-trial mean over test images, per method and task."""
    per_trial = df.groupby(["method", "task", "trial"])[["psnr", "ssim"]].mean()
    return per_trial.groupby(["method", "task"]).agg(["mean", "std"])


HEADLINE = _methods.HEADLINE  # the method registry's (rcl.methods.HEADLINE)
SEEDED = _methods.SEEDED  # the methods pre-trained with every seed (rcl.methods.SEEDED)


def study(
    methods: list[str],
    tasks: list[str],
    profile: str,
    proxy: dict | None = None,
    pretrain: dict | None = None,
    progress: bool = True,
    seeds: tuple[int, ...] | list[int] = (0,),
    seeded: tuple[str, ...] = SEEDED,
) -> pd.DataFrame:
    """Pre-train (or reuse) every method and evaluate it on every task: the rows of Tables 1 and 2.

    The supervised baseline appears as ``oracle`` on denoising (it is the denoising Oracle) and as
    ``sl-den`` on the other tasks, where the Oracle is a supervised run on that task itself
    (``supervised_task``; trained only when ``"supervised"`` is among ``methods``). Reference rows (input
    as output) are added per task. ``proxy`` holds :class:`ProxyConfig` fields, ``pretrain``
    :func:`rcl.train.make_config` keys. Methods in ``seeded`` are pre-trained once per seed of ``seeds``,
    the others with ``seeds[0]``; every row names its pre-training ``seed``. The test set and the labelled
    subsets depend on ``proxy["seed"]`` (default ``seeds[0]``) only, so every pre-training seed is
    evaluated on the same test cases.
    """
    pretrain = {k: v for k, v in (pretrain or {}).items() if k != "seed"}
    if "method" in pretrain:
        raise ValueError(f"pre-training setting method={pretrain['method']!r}: the methods are chosen by methods "
                         "(--methods on the command line), not by a pre-training setting")
    seeds = list(seeds)
    if not seeds:
        raise ValueError("seeds=[]: give at least one pre-training seed, e.g. seeds=[0]")
    proxy = {"seed": seeds[0], **(proxy or {})}
    device = _config.default_device()
    # Every setting is checked before the first pre-training (which may take hours): the evaluation of each
    # task, the test images, and every method's pre-training configuration.
    base = _train.make_config("n2n", profile, **pretrain)
    checked = [ProxyConfig(task=task, dataset=base.dataset, data_dir=base.data_dir, max_side=base.max_side,
                           sigma_max=base.sigma_max, **proxy) for task in tasks]
    if checked:
        test_images(checked[0])  # the same images for every task
    for m in methods:
        _train.make_config(m, profile, **pretrain)
    jobs = []
    for task in tasks:
        for m in methods:
            label = m if m != "supervised" else ("oracle" if task == "denoise" else "sl-den")
            jobs.extend((task, m, label, {}, s) for s in (seeds if m in seeded else seeds[:1]))
        if task != "denoise" and "supervised" in methods:
            jobs.extend((task, "supervised", "oracle", {"supervised_task": task}, s)
                        for s in (seeds if "supervised" in seeded else seeds[:1]))
    frames = []
    runs_dir = pretrain.get("runs_dir", "runs")
    bar = tqdm(jobs, desc="proxy evaluation", disable=_config.progress_disabled(progress))
    for i, (task, m, label, extra, seed) in enumerate(bar, 1):
        bar.set_postfix(task=task, method=label, seed=seed)
        _config.status(f"proxy evaluation {i}/{len(jobs)}: {task}, {label}, seed {seed}")
        cfg = _train.make_config(m, profile, **{**pretrain, **extra, "seed": seed, "progress": progress})
        run = _train.pretrain(cfg)
        pcfg = ProxyConfig(task=task, dataset=cfg.dataset, data_dir=cfg.data_dir, max_side=cfg.max_side,
                           sigma_max=cfg.sigma_max, **proxy)
        df, _ = proxy_evaluate(run.path, pcfg, method=label, device=device)
        frames.append(df.assign(method=label, run=run.path.name, seed=seed))
    for task in tasks:
        pcfg = ProxyConfig(task=task, dataset=base.dataset, data_dir=base.data_dir, max_side=base.max_side,
                           sigma_max=base.sigma_max, **proxy)
        ref = reference_evaluate(pcfg, Path(runs_dir) / "references")
        frames.extend(ref.assign(run="reference", seed=s) for s in seeds)
    return pd.concat(frames, ignore_index=True)


def proxy_predict(run: str | os.PathLike, cfg: ProxyConfig, image: int = 0, trial: int = 0,
                  condition: str | None = None):
    """Input, target and proxy output (head re-fitted as in trial ``trial``) for test image ``image`` under
    ``condition`` (default: the largest σ of the grid, else the first case; for the mixed range, the image's
    first draw, which is its lowest stratum of σ: :func:`mixed_strata`)."""
    model = _runs.load_model(run)
    train, test = _images(cfg)
    name = list(test)[image]
    cases = [(c, x, y) for n, c, x, y in _test_pairs(cfg, test) if n == name]
    if condition is None and cfg.sigma_grid and cfg.task not in _NOISELESS_TASKS:
        condition = condition_label(max(cfg.sigma_grid))
    _, x, y = next((case for case in cases if case[0] == condition), cases[0])
    head, _ = proxy_head(model, cfg, trial, "cpu", train)
    with torch.no_grad():
        out = model.output(_features(model, x, torch.device("cpu")), x, head).clamp(0, 1)
    return x[0], y[0], out[0]
