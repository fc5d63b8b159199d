"""The pre-training engine: one loop for every method, from a laptop CPU to several GPUs.

:func:`pretrain` takes a :class:`PretrainConfig` (plain, hashable data; :func:`make_config` builds one
from a profile plus overrides) and

* picks the device (CUDA, then MPS, then CPU); autocasts on CUDA (bfloat16, else float16 with a gradient
  scaler) and on a CPU with native bfloat16 units (1.6× faster per step on 2 AVX-512 cores; ``amp=False``: off);
  on both, channels-last networks and batches (:func:`rcl.models.memory_format`); on CUDA, fused Adam;
* optimises with Adam, β = (0.9, 0.999), ε = 1e-7, lr 1e-3 (paper §4);
* is seeded: the model's initialisation from ``seed``, and every batch from a generator seeded by
  ``(seed, step)``, so a resumed run sees exactly the batches an uninterrupted one would;
* shows a tqdm bar with the running loss, appends metrics to ``metrics.jsonl``, and checkpoints every
  ``checkpoint_every`` steps (:mod:`rcl.runs`), so an interrupted run resumes exactly;
* reads nothing back from the device between those steps (a GPU queues each step while the last one runs;
  ``tests/test_device_sync.py``): the loss's finiteness is noted on the device and checked before a log or
  checkpoint, which names the first step whose loss was not finite;
* keys its run directory (:func:`run_key`, via :mod:`rcl.cache`) by the config, the training code, the numerics
  (autocast, TF32) and the image folder's contents: a finished run is reused, a changed one retrains;
* under ``torchrun`` (``WORLD_SIZE`` > 1) uses DistributedDataParallel: each process takes its slice of the
  global batch, RCL gathers the second crops of all processes (negatives span it), and only rank 0 writes.

:func:`build_data`, :func:`build_method` and :func:`build_batch` are the public pieces of a run, for
notebooks, tests and benchmarks that look inside one.

Layer: engine (imports the core — data, models, methods, encoders, losses — and the configuration; never the
evaluation, CLI, plots or notebooks).

Why one module: the loop, its resume, its checkpoints and its distributed set-up share one session state
(``_Session``) and one run directory; split, that state would become an interface only the engine uses.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor
from torch.nn.parallel import DistributedDataParallel
from tqdm.auto import tqdm

from rcl import cache as _cache
from rcl import config as _config
from rcl import data as _data
from rcl import encoders as _encoders
from rcl import methods as _methods
from rcl import profiles as _profiles
from rcl import rng as _rng
from rcl import runs as _runs
from rcl.losses import ConsistencyLoss
from rcl.models import UNet, UNetConfig, memory_format

__all__ = ["PretrainConfig", "RunResult", "build_batch", "build_data", "build_method", "config_keys",
           "make_config", "pretrain", "run_dir", "run_key"]


@dataclass(frozen=True)
class PretrainConfig(_methods.MethodConfig):
    """Everything that determines a pre-training run: the method's hyper-parameters (inherited from
    :class:`rcl.methods.MethodConfig`, with its defaults) and the data, optimisation, U-Net and engine
    settings. Flat, so ``--set key=value`` reaches any field; validated when built."""

    method: str = "rcl-emd"
    # data
    dataset: str = "builtin"
    data_dir: str | None = None
    max_side: int | None = 512
    tile: int = 128
    sigma_max: float = 20.0
    overlap_min: float = 0.25
    overlap_max: float = 1.0
    crop: int = 48
    batch_size: int = 8
    # optimisation (paper §4)
    steps: int = 400
    lr: float = 1e-3
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-7
    seed: int = 0
    # U-Net
    width: int = 24
    depth: int = 3
    norm: str = "none"
    skip: str = "residual"  # the backbone study's choice (rcl.backbones, notebook 03); "none" is the plain U-Net
    # the consistency loss's encoder, beyond the method's g_e, g_e_arch and g_e_layers
    g_e_weights: str | None = None  # a local torchvision ResNet state dict for g_e="imagenet" (offline)
    g_e_steps: int = 300  # SimCLR steps of g_e="self-supervised" (trained once per data and seed, cached)
    # engine (not part of the run key)
    amp: bool = True
    checkpoint_every: int = 50
    log_every: int = 10
    runs_dir: str = "runs"
    device: str | None = None
    progress: bool = True

    def __post_init__(self) -> None:
        super().__post_init__()
        _methods.method_class(self.method)  # raises with the list of valid methods
        bad = [k for k in ("tile", "crop", "lr", "eps", "width", "depth") if not getattr(self, k) > 0]
        if bad:
            raise ValueError(f"{bad[0]}={getattr(self, bad[0])!r} must be > 0")
        if 2**self.depth > self.crop:  # each level halves the crop; beyond it the U-Net pads more than it sees
            raise ValueError(f"depth={self.depth} halves the crop {self.depth} times: 2**depth={2**self.depth} must be "
                             f"<= crop={self.crop}; lower depth or raise crop")
        if self.crop >= self.tile:  # instances are tiles: two crops as large as the tile are the same pixels
            raise ValueError(f"crop={self.crop} must be smaller than tile={self.tile}: a positive pair's two crops "
                             "would be the same pixels (a trivial positive); lower crop or raise tile")
        if self.device:
            _config.device(self.device)  # a device this machine lacks is named before anything is written
        if self.batch_size < 2:
            raise ValueError(f"batch_size must be >= 2 (contrastive negatives), got {self.batch_size}")
        if not 0 < self.overlap_min <= self.overlap_max <= 1:
            raise ValueError(f"need 0 < overlap_min <= overlap_max <= 1, got {self.overlap_min}, {self.overlap_max}")
        for name in ("steps", "checkpoint_every", "log_every", "g_e_steps"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}={getattr(self, name)!r} must be >= 1")
        if not self.sigma_max >= 0:
            raise ValueError(f"sigma_max={self.sigma_max!r} must be >= 0 (noise std on the 0–255 scale)")
        if self.data_dir is not None and self.dataset == "builtin":
            raise ValueError(f"data_dir={self.data_dir!r} is set but dataset='builtin' does not read it: set "
                             "dataset=folder (a folder of images) or a registered dataset's name")
        if self.max_side is not None and self.max_side < self.tile:
            raise ValueError(f"max_side={self.max_side} must be None or >= tile={self.tile}")
        if not (0 <= self.beta1 < 1 and 0 <= self.beta2 < 1):
            raise ValueError(f"beta1 and beta2 must lie in [0, 1), got {self.beta1}, {self.beta2}")

    def method_config(self) -> _methods.MethodConfig:
        """The method's hyper-parameters alone."""
        return _methods.MethodConfig(**{f.name: getattr(self, f.name) for f in fields(_methods.MethodConfig)})

    def unet_config(self) -> UNetConfig:
        return UNetConfig(width=self.width, depth=self.depth, norm=self.norm, skip=self.skip)


#: Fields that may be None, with a value of the type they take otherwise (``--set max_side=none``,
#: ``--set tau_dense=0.2``).
_OPTIONAL = {"max_side": 0, "tau_dense": 0.0, "data_dir": "", "g_e_weights": "", "device": ""}

#: Fields that change how a run executes, not what it computes.
_RUNTIME_ONLY = ("amp", "checkpoint_every", "log_every", "runs_dir", "device", "progress")


def config_keys() -> list[str]:
    """Every key ``--set`` accepts."""
    return [f.name for f in fields(PretrainConfig)]


def make_config(method: str = "rcl-emd", profile: str = "cpu", **overrides: Any) -> PretrainConfig:
    """The ``profile``'s config for ``method`` with ``overrides`` (strings are parsed to the field type).

    ``method`` may also name a configuration of :data:`rcl.methods.NAMED_CONFIGS` (e.g. ``rcl-emd-tuned``).
    """
    _config.check_profile(profile)
    if method in _methods.NAMED_CONFIGS:  # a named configuration: its method and overrides, the caller's win
        named = _methods.NAMED_CONFIGS[method]
        method, overrides = named.method, {**named.overrides, **overrides}
    keys = set(config_keys())
    unknown = sorted(set(overrides) - keys)
    if unknown:
        raise ValueError(f"unknown config key(s) {unknown}; valid keys: {', '.join(sorted(keys))}")
    defaults = {**{f.name: f.default for f in fields(PretrainConfig)}, **_OPTIONAL}
    parsed = {k: _config.parse_value(k, v, defaults[k], optional=k in _OPTIONAL) for k, v in overrides.items()}
    values = {**_profiles.values("pretrain", profile), **parsed}
    return PretrainConfig(method=method, **values)


def _numerics(cfg: PretrainConfig) -> str:
    """The numerics this config trains with (:func:`rcl.config.numerics`): ``""`` is float32 on a CPU."""
    return _config.numerics(cfg.device, cfg.amp)


def run_key(cfg: PretrainConfig) -> str:
    """Hash of the config's computational fields, of the training code, of the numerics (bfloat16 or float16 autocast,
    or TF32, computes other numbers than float32: another run), of the images' folder by its contents (not its
    path) and of a g_e weights file by its content."""
    payload = {k: v for k, v in asdict(cfg).items() if k not in _RUNTIME_ONLY}
    if _numerics(cfg):
        payload["numerics"] = _numerics(cfg)
    if cfg.g_e_weights is not None:
        payload["g_e_weights"] = _cache.file_digest(cfg.g_e_weights, "g_e_weights")
    root = _data.image_root(cfg.dataset, cfg.data_dir)
    if root is not None:
        payload["data_dir"] = None  # the folder is identified by its contents below
    return _cache.key(payload, code="training", folders=[root] if root is not None else [])


def run_dir(cfg: PretrainConfig) -> Path:
    """``runs_dir/<method>-<key>``: where this config's checkpoint, log and result live."""
    return Path(cfg.runs_dir) / f"{cfg.method.replace('+', 'plus')}-{run_key(cfg)}"


@dataclass
class RunResult:
    """A finished run: where it is, its config, its final metrics and whether it was reused."""

    path: Path
    config: PretrainConfig
    metrics: dict[str, float] = field(default_factory=dict)
    reused: bool = False

    def model(self, device: str | torch.device = "cpu") -> UNet:
        return _runs.load_model(self.path, device)

    def history(self) -> list[dict[str, Any]]:
        return _runs.history(self.path)


def build_data(cfg: PretrainConfig) -> _data.NoisyImages:
    """The run's training instances: its dataset's training images, resized, tiled, with their seeded noise."""
    images = _data.resize_max_side(_data.load_images(cfg.dataset, "train", cfg.data_dir), cfg.max_side)
    instances = _data.tile_images(images, cfg.tile, min_size=cfg.crop, parameter="crop")
    _check_room(instances, cfg.crop)
    return _data.NoisyImages.build(instances, seed=cfg.seed, sigma_range=(0.0, cfg.sigma_max))


def _check_room(instances: dict[str, torch.Tensor], crop: int) -> None:
    """Raise naming the first instance no larger than ``crop`` in both dimensions: kept whole (smaller than the
    tile), it leaves a positive pair's second crop no room to shift, so both crops are the same pixels."""
    for name, img in instances.items():
        h, w = img.shape[-2:]
        if max(h, w) <= crop:
            raise ValueError(f"{name}: an instance of {w}×{h} px (width × height, as read and resized) leaves "
                             f"crop={crop} no room to shift, so a positive pair's two crops would be the same pixels "
                             f"(a trivial positive): set crop below {max(h, w)}, or use larger images")


def _check_batch(ds: _data.NoisyImages, cfg: PretrainConfig) -> int:
    """The number of instances of ``ds``; raises if a batch of ``cfg.batch_size`` distinct ones cannot be drawn."""
    n = len(ds)
    if cfg.batch_size > n:
        raise ValueError(
            f"batch_size={cfg.batch_size} exceeds the {n} instances (tiles of {cfg.tile} px) of dataset="
            f"{cfg.dataset!r}: set batch_size <= {n} (--set batch_size={n}; in a notebook overrides={{'batch_size': "
            f"{n}}}) or a smaller tile, or train on more images (dataset=folder data_dir=DIR, or a registered "
            "dataset: python -m rcl datasets list)"
        )
    return n


def build_method(cfg: PretrainConfig, ds: _data.NoisyImages | None = None,
                 device: torch.device | str = "cpu") -> _methods.Method:
    """The run's method around a freshly initialised U-Net (seeded by ``cfg.seed``), with its consistency
    loss when it uses one (the self-supervised g_e is trained on ``ds``, or cached), on ``device``."""
    klass = _methods.method_class(cfg.method)
    torch.manual_seed(cfg.seed)
    model = UNet(cfg.unet_config())
    consistency = None
    if klass.uses_consistency:
        if ds is None and cfg.g_e == "self-supervised":
            ds = build_data(cfg)
        consistency = _consistency_module(cfg, ds, torch.device(device))
    return klass(model, cfg.method_config(), consistency).to(device)


def build_batch(ds: _data.NoisyImages, cfg: PretrainConfig, step: int, rank: int = 0, world: int = 1) -> _methods.Batch:
    """The batch of ``step``, the same after any resume (seeded by ``(seed, step)``).

    ``batch_size`` distinct instances are drawn (so no instance is its own negative), their crop pairs
    sampled as Algorithm 1; under DDP each process takes its contiguous slice. The method adds what it builds on
    the host (:meth:`rcl.methods.Method.prepare`), under DDP its slice of what one process builds.
    """
    g = _rng.generator(cfg.seed, "batch", step)
    n = _check_batch(ds, cfg)
    idx = torch.randperm(n, generator=g)[: cfg.batch_size]
    corners = _data.sample_crop_pairs(ds.sizes()[idx], cfg.crop, (cfg.overlap_min, cfg.overlap_max), g)
    if cfg.batch_size % world:
        raise ValueError(f"batch_size={cfg.batch_size} must be divisible by the {world} processes")
    per = cfg.batch_size // world
    sl = slice(rank * per, (rank + 1) * per)
    idx, corners = idx[sl], corners[sl]
    pick = lambda seq: [seq[i] for i in idx.tolist()]  # noqa: E731
    x1, x2 = _data.crop_pairs(pick(ds.noisy), corners, cfg.crop)
    second, _ = _data.crop_pairs(pick(ds.noisy2), corners, cfg.crop)
    y1, y2 = _data.crop_pairs(pick(ds.clean), corners, cfg.crop)
    offset = corners[:, 2:] - corners[:, :2]
    batch = _methods.Batch(x1=x1, x2=x2, offset=offset, x1_second=second, y1=y1, y2=y2, sigma=ds.sigma[idx].float())
    seed = cfg.seed % 2**64 % 2**63  # the seed a method's buffers hold (torch.initial_seed() after manual_seed)
    return _methods.method_class(cfg.method).prepare(batch, cfg.method_config(), seed, step, rank, world)


def _consistency_module(cfg: PretrainConfig, ds: _data.NoisyImages, device: torch.device) -> ConsistencyLoss:
    state = None
    if cfg.g_e == "self-supervised":
        state, _ = _encoders.cached_simclr_encoder(
            ds.noisy,
            Path(cfg.runs_dir) / "encoders",
            arch=cfg.g_e_arch,
            seed=cfg.seed,
            crop=min(64, cfg.tile),
            steps=cfg.g_e_steps,
            device=device,
            progress=cfg.progress,
        )
    return ConsistencyLoss(
        cfg.g_e, cfg.g_e_arch, cfg.g_e_layers, state_dict=state, seed=cfg.seed, weights=cfg.g_e_weights
    ).to(device)


def _distributed(cfg: PretrainConfig) -> tuple[int, int, int]:
    """``(rank, world size, local rank)``; under ``torchrun`` (``WORLD_SIZE`` > 1) the process group is joined
    first: NCCL bound to this process's own GPU (``cuda:LOCAL_RANK``, made the current device before the group
    exists, so no collective lands on GPU 0) when the run is on CUDA, Gloo when it is on the CPU."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1, 0
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if not dist.is_initialized():
        device = _device(cfg, local_rank)
        if device.type == "cuda" and device.index != local_rank:
            raise ValueError(f"device={cfg.device!r} under torchrun: each process trains on its own GPU, "
                             f"cuda:LOCAL_RANK (here cuda:{local_rank}); set device=cuda or leave it unset")
        if device.type == "cuda" and local_rank >= torch.cuda.device_count():
            raise ValueError(f"LOCAL_RANK={local_rank} but this process sees {torch.cuda.device_count()} CUDA "
                             "device(s): start torchrun with --nproc-per-node at most the number of GPUs, each "
                             "process seeing them all")
        if device.type == "cuda":
            torch.cuda.set_device(device)
            dist.init_process_group("nccl", device_id=device)
        else:
            dist.init_process_group("gloo")
    return dist.get_rank(), world, local_rank


def _device(cfg: PretrainConfig, local_rank: int) -> torch.device:
    """The run's device: ``cfg.device`` or the default; plain ``"cuda"`` is this process's GPU, ``cuda:LOCAL_RANK``."""
    dev = _config.device(cfg.device) if cfg.device else _config.default_device()
    return torch.device("cuda", local_rank) if dev.type == "cuda" and dev.index is None else dev


def pretrain(cfg: PretrainConfig, stop_after: int | None = None) -> RunResult:
    """Run (or reuse, or resume) the pre-training ``cfg`` describes; returns the finished run.

    ``stop_after`` ends the loop early after that many steps in total (for tests of resuming); the
    run is then left unfinished, with its checkpoint, exactly as an interruption would leave it.
    """
    rank, world, local_rank = _distributed(cfg)
    out = run_dir(cfg)
    if _finished(out):
        return _reused(out, cfg)
    # one process per run: a second one (a parallel sweep needing the same run) waits, then reuses it
    try:
        with _cache.lock(out / ".lock", what=str(out)) if world == 1 else contextlib.nullcontext():
            if _finished(out):
                return _reused(out, cfg)
            (out / "failed.json").unlink(missing_ok=True)
            return _train(cfg, stop_after, out, rank, world, local_rank)
    except Exception as err:
        if rank == 0:
            _runs.mark_failed(out, err)
        raise


def _finished(out: Path) -> bool:
    """Whether the run in ``out`` is finished: its result and its network are both there (a run whose
    ``model.pt`` was deleted is trained again, as the message of :func:`rcl.runs.load_model` says)."""
    return (out / "result.json").exists() and (out / "model.pt").exists()


def _reused(out: Path, cfg: PretrainConfig) -> RunResult:
    return RunResult(out, cfg, json.loads((out / "result.json").read_text()).get("metrics", {}), reused=True)


_NONE_BAD = 2**62  # no step's loss was non-finite (steps are counted from 1, as in the log)


@dataclass
class _Session:
    """What one training segment works with (built by :func:`_setup`)."""

    cfg: PretrainConfig
    out: Path
    rank: int
    world: int
    device: torch.device
    ds: _data.NoisyImages
    method: _methods.Method
    trainer: torch.nn.Module
    opt: torch.optim.Optimizer
    scaler: torch.amp.GradScaler
    amp_dtype: torch.dtype | None  # None: no autocast
    start: int = 0  # the step it starts from
    seconds: float = 0.0  # training time of the segments before this one
    first_bad: Tensor = field(init=False)  # on the device: the first step (1-based) whose loss was not finite

    @property
    def cuda(self) -> bool:
        return self.device.type == "cuda"

    def __post_init__(self) -> None:
        self.first_bad = torch.full((), _NONE_BAD, dtype=torch.long, device=self.device)


def _setup(cfg: PretrainConfig, out: Path, rank: int, world: int, local_rank: int) -> _Session:
    """Device, data, method, optimiser and mixed precision of a run, resumed from its checkpoint if any."""
    device = _device(cfg, local_rank)
    ds = build_data(cfg)
    _methods.method_class(cfg.method).check_instances(_check_batch(ds, cfg), cfg)  # before building the method
    method = build_method(cfg, ds, device).to(memory_format=memory_format(device))
    opt = torch.optim.Adam(method.trainable_parameters(), lr=cfg.lr, betas=(cfg.beta1, cfg.beta2), eps=cfg.eps,
                           fused=device.type == "cuda" or None)  # one kernel per step; the CPU's foreach is faster
    cpu_amp = device.type == "cpu" and bool(_numerics(cfg))  # native bf16 units: autocast pays off
    use_amp = cfg.amp and (device.type == "cuda" or cpu_amp)
    bf16 = cpu_amp or (device.type == "cuda" and torch.cuda.is_bf16_supported())
    amp_dtype = (torch.bfloat16 if bf16 else torch.float16) if use_amp else None
    scaler = torch.amp.GradScaler("cuda", enabled=amp_dtype == torch.float16)
    trainer = method
    if world > 1:
        ids = [device.index] if device.type == "cuda" else None
        trainer = DistributedDataParallel(method, device_ids=ids, find_unused_parameters=True)
    _resume(session := _Session(cfg, out, rank, world, device, ds, method, trainer, opt, scaler, amp_dtype))
    return session


def _resume(s: _Session) -> None:
    """Load the run's checkpoint (model, optimiser, scaler, RNG states, step, time so far) if it has one,
    and drop log entries written after it."""
    state = _runs.read(s.out)
    if state is not None:
        # on the CPU: the RNG states must stay CPU byte tensors; the optimiser moves its state to the params
        s.method.load_state_dict(state["method"])
        s.opt.load_state_dict(state["optimizer"])
        s.scaler.load_state_dict(state["scaler"])
        torch.set_rng_state(state["rng_cpu"])
        if s.cuda and state.get("rng_cuda") is not None:
            torch.cuda.set_rng_state(state["rng_cuda"], s.device)
        s.start, s.seconds = state["step"], float(state.get("seconds", 0.0))
    log = s.out / "metrics.jsonl"
    if s.rank == 0 and log.exists():  # entries logged after the checkpoint, and a torn last line, are dropped
        kept = [entry for entry in _runs.history(s.out) if entry["step"] <= s.start]
        _cache.atomic_write_text(log, "".join(json.dumps(entry) + "\n" for entry in kept))


def _step(s: _Session, batch: _methods.Batch, step: int) -> dict[str, Tensor]:
    """One optimiser step on ``batch``; returns the method's losses (``"loss"`` is what was minimised). Nothing
    is read back from the device: the first step with a non-finite loss is noted there, for :func:`_check_finite`."""
    s.method.diagnose = (step + 1) % s.cfg.log_every == 0 or step + 1 == s.cfg.steps  # the steps it logs
    amp = torch.autocast(s.device.type, dtype=s.amp_dtype) if s.amp_dtype else contextlib.nullcontext()
    with amp:
        losses = s.trainer(batch)
    loss = losses["loss"]
    torch.minimum(s.first_bad, torch.where(torch.isfinite(loss.detach()), _NONE_BAD, step + 1), out=s.first_bad)
    s.opt.zero_grad(set_to_none=True)
    s.scaler.scale(loss).backward()
    s.scaler.step(s.opt)
    s.scaler.update()
    s.method.after_step()
    return losses


def _check_finite(s: _Session) -> None:
    """Raise if a loss since the segment began was not finite, on any process (every process calls this at
    the same steps: before anything is logged or checkpointed)."""
    bad = s.first_bad.clone()
    if s.world > 1:  # DDP averages the gradients: one process's bad loss spoils every process's weights
        dist.all_reduce(bad, op=dist.ReduceOp.MIN)
    if (bad := int(bad)) != _NONE_BAD:
        raise FloatingPointError(f"{s.cfg.method}: non-finite loss in step {bad} of {s.cfg.steps} ({s.out}); "
                                 "nothing from that step on was logged or checkpointed: lower lr, or check the other "
                                 "settings")


def _checkpoint(s: _Session, done: int, seconds: float) -> None:
    _runs.write(s.out, {
        "step": done,
        "seconds": seconds,
        "method": s.method.state_dict(),
        "optimizer": s.opt.state_dict(),
        "scaler": s.scaler.state_dict(),
        "rng_cpu": torch.get_rng_state(),
        "rng_cuda": torch.cuda.get_rng_state(s.device) if s.cuda else None,
    })  # fmt: skip


def _batches(s: _Session, end: int):
    """The batches of steps ``start … end − 1``, built ahead (on CUDA by several threads: one GPU step is
    shorter than one batch's CPU copies), on the device."""
    workers = max(1, min(4, (os.cpu_count() or 2) // (2 * max(1, int(os.environ.get("LOCAL_WORLD_SIZE", "1"))))))
    built = _data.prefetch(lambda step: build_batch(s.ds, s.cfg, step, s.rank, s.world), range(s.start, end),
                           pin=s.cuda, depth=2 * workers if s.cuda else 2, workers=workers if s.cuda else 1)
    return (b.to(s.device, non_blocking=True, memory_format=memory_format(s.device)) for b in built)


def _train(cfg: PretrainConfig, stop_after: int | None, out: Path, rank: int, world: int, local_rank: int):
    """The training loop: steps from the checkpoint (or 0) to ``steps`` (or ``stop_after``), logging every
    ``log_every`` and checkpointing every ``checkpoint_every`` steps; rank 0 writes the model at the end."""
    if rank == 0:
        _cache.atomic_write_json(out / "config.json", {**asdict(cfg), "key": run_key(cfg),
                                                       "code": _cache.code_version("training")}, indent=2)
    if not _methods.method_class(cfg.method).trains:  # the random init: the network as built; no data, no step
        return _finish(cfg, out, build_method(cfg).model, rank, world, {"final_loss": None, "steps": 0, "seconds": 0.0})
    s = _setup(cfg, out, rank, world, local_rank)
    s.method.train()
    end = cfg.steps if stop_after is None else min(cfg.steps, stop_after)
    hidden = _config.progress_disabled(cfg.progress) or rank != 0
    bar = tqdm(range(s.start, end), initial=s.start, total=cfg.steps, desc=cfg.method, disable=hidden,
               dynamic_ncols=True)
    running, t0 = None, time.perf_counter()
    elapsed = lambda: s.seconds + time.perf_counter() - t0  # noqa: E731 — over every segment of the run
    for step, batch in zip(bar, _batches(s, end)):  # device work is queued; read back only to log or checkpoint
        losses = _step(s, batch, step)
        value = losses["loss"].detach().float()
        running = value.clone() if running is None else running.lerp_(value, 0.1)  # the bar's running loss
        done = step + 1
        logs, saves = done % cfg.log_every == 0 or done == cfg.steps, done % cfg.checkpoint_every == 0 or done == end
        if logs or saves:
            _check_finite(s)
        if logs:
            shown = running.clone()
            if world > 1:
                dist.all_reduce(shown, op=dist.ReduceOp.AVG)
            bar.set_postfix(loss=f"{shown.item():.4g}")
        if rank == 0 and logs:
            entry = {"step": done, "time_s": elapsed(), **{k: float(v.detach()) for k, v in losses.items()}}
            with (out / "metrics.jsonl").open("a") as f:
                f.write(json.dumps(entry) + "\n")
        if rank == 0 and saves:
            _checkpoint(s, done, elapsed())
    bar.close()
    if end < cfg.steps:
        return RunResult(out, cfg, {"step": end})
    last = [e for e in RunResult(out, cfg).history() if e["step"] == cfg.steps]
    metrics = {"final_loss": last[-1]["loss"] if last else None, "steps": cfg.steps, "seconds": elapsed()}
    return _finish(cfg, out, s.method.model, rank, world, metrics)


def _finish(cfg: PretrainConfig, out: Path, model: UNet, rank: int, world: int, metrics: dict) -> RunResult:
    """Rank 0 writes the finished run's network, then its result (the run is finished once both exist)."""
    if rank == 0:
        _cache.save_tensors({"unet": asdict(cfg.unet_config()), "state": model.state_dict()}, out / "model.pt")
        _cache.atomic_write_json(out / "result.json", {"metrics": metrics, "config": asdict(cfg)}, indent=2)
    if world > 1:
        dist.barrier()
    return RunResult(out, cfg, metrics)
