"""The pre-training engine: one loop for every method, from a laptop CPU to several GPUs.

:func:`pretrain` takes a :class:`PretrainConfig` (plain, hashable data; :func:`make_config` builds one
from a profile plus overrides) and

* picks the device (CUDA, then MPS, then CPU); on CUDA uses autocast (bfloat16 where supported, else
  float16 with a gradient scaler) and channels-last memory; on a CPU with native bfloat16 units
  (``avx512_bf16`` or AMX) autocasts to bfloat16 as well — 1.6× faster per step on a 2-core AVX-512 CPU,
  and the distances and losses still compute in float32 (``amp=False`` turns it off);
* optimises with Adam, β = (0.9, 0.999), ε = 1e-7, lr 1e-3 (paper §4);
* is seeded: the model's initialisation from ``seed``, and every batch from a generator seeded by
  ``(seed, step)``, so a resumed run sees exactly the batches an uninterrupted one would;
* shows a tqdm bar with the running loss, appends metrics to ``metrics.jsonl``, and writes a checkpoint
  every ``checkpoint_every`` steps atomically (temporary file, then rename), with the optimiser and RNG
  states, so an interrupted run resumes exactly;
* keys its run directory by a hash of the config and of the library's training code, so a finished run
  (``result.json`` present) is reused instead of retrained, and a changed library retrains;
* under ``torchrun`` (``WORLD_SIZE`` > 1) uses DistributedDataParallel: each process takes its slice of
  the global batch, RCL gathers the second crops of all processes with gradients (so negatives span the
  global batch), and only rank 0 writes.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import os
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

from rcl import config as _config
from rcl import data as _data
from rcl import methods as _methods
from rcl.models import UNet, UNetConfig

__all__ = [
    "PROFILE_VALUES",
    "PretrainConfig",
    "RunResult",
    "build_batch",
    "config_keys",
    "load_model",
    "make_config",
    "pretrain",
    "run_dir",
]

#: Library files whose content is part of every run's key (a change retrains).
_CODE_FILES = (
    "methods/__init__.py",
    "noise.py",
    "data.py",
    "models.py",
    "distances.py",
    "losses.py",
    "encoders.py",
    "train.py",
    "methods/base.py",
    "methods/core.py",
    "methods/dense.py",
)


@dataclass(frozen=True)
class PretrainConfig:
    """Everything that determines a pre-training run (flat, so ``--set key=value`` reaches any field)."""

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
    # method hyper-parameters (see rcl.methods.MethodConfig)
    tau: float = 0.01
    tau_scale: str = "absolute"
    alpha: float = 1e-3
    distance_reduction: str = "pooled"
    contrast_reduction: str = "sum"
    g_e: str = "random"
    g_e_arch: str = "resnet18"
    g_e_layers: tuple[str, ...] = ("layer1",)
    g_e_weights: str | None = None  # a local torchvision ResNet state dict for g_e="imagenet" (offline)
    g_e_steps: int = 300  # SimCLR steps of g_e="self-supervised" (trained once per data and seed, cached)
    n2s_grid: int = 4
    proj_dim: int = 128
    queue_size: int = 1024
    momentum: float = 0.99
    dense_samples: int = 256
    tau_dense: float | None = None
    loss_norm: str = "l1"
    supervised_task: str = "denoise"
    # engine (not part of the run key)
    amp: bool = True
    checkpoint_every: int = 50
    log_every: int = 10
    runs_dir: str = "runs"
    device: str | None = None
    progress: bool = True

    def __post_init__(self) -> None:
        _methods.method_class(self.method)  # raises with the list of valid methods
        if self.g_e is None:  # "none" on a command line parses to None
            object.__setattr__(self, "g_e", "none")
        _config.check_choice("g_e", self.g_e, ("imagenet", "random", "self-supervised", "none"))
        _config.check_choice("tau_scale", self.tau_scale, ("absolute", "median"))
        if self.crop > self.tile:
            raise ValueError(f"crop={self.crop} must not exceed tile={self.tile} (instances are tiles)")
        if self.batch_size < 2:
            raise ValueError(f"batch_size must be >= 2 (contrastive negatives), got {self.batch_size}")
        if not 0 < self.overlap_min <= self.overlap_max <= 1:
            raise ValueError(f"need 0 < overlap_min <= overlap_max <= 1, got {self.overlap_min}, {self.overlap_max}")
        if self.steps < 1 or self.checkpoint_every < 1 or self.log_every < 1:
            raise ValueError("steps, checkpoint_every and log_every must be >= 1")

    def method_config(self) -> _methods.MethodConfig:
        names = {f.name for f in fields(_methods.MethodConfig)}
        return _methods.MethodConfig(**{k: v for k, v in asdict(self).items() if k in names})

    def unet_config(self) -> UNetConfig:
        return UNetConfig(width=self.width, depth=self.depth, norm=self.norm, skip=self.skip)


#: Fields that change how a run executes, not what it computes.
_RUNTIME_ONLY = ("amp", "checkpoint_every", "log_every", "runs_dir", "device", "progress")

#: Profile values for pre-training; anything else keeps the dataclass default.
PROFILE_VALUES: dict[str, dict[str, Any]] = {
    "smoke": dict(
        max_side=128,
        tile=64,
        crop=32,
        batch_size=4,
        steps=3,
        width=8,
        depth=2,
        g_e="random",
        g_e_arch="resnet18",
        g_e_layers=("layer1",),
        queue_size=64,
        dense_samples=32,
        g_e_steps=3,
        checkpoint_every=2,
        log_every=1,
    ),
    "cpu": dict(
        max_side=512,
        tile=128,
        crop=48,
        batch_size=8,
        steps=400,
        width=24,
        depth=3,
        g_e="random",
        g_e_arch="resnet18",
        g_e_layers=("layer1",),
        queue_size=1024,
    ),
    "gpu": dict(
        max_side=None,
        tile=256,
        crop=128,
        batch_size=64,
        steps=20000,
        width=32,
        depth=4,
        g_e="imagenet",
        g_e_arch="resnet50",
        g_e_layers=("layer1", "layer2", "layer3"),
        queue_size=16384,
        dataset="voc2012",
        tau=0.1,
        checkpoint_every=1000,
        log_every=50,
    ),
}


def config_keys() -> list[str]:
    """Every key ``--set`` accepts."""
    return [f.name for f in fields(PretrainConfig)]


def _coerce(name: str, value: Any) -> Any:
    """Turn a command-line string into the field's type (tuples from comma lists, None from 'none')."""
    if not isinstance(value, str):
        return value
    default = next(f.default for f in fields(PretrainConfig) if f.name == name)
    if isinstance(default, str):  # a choice: "none" is a value of its own (skip, norm, g_e)
        return value
    if value.lower() in ("none", "null"):
        return None
    if isinstance(default, bool):
        if value.lower() not in ("true", "false", "1", "0"):
            raise ValueError(f"{name}={value!r}: expected true or false")
        return value.lower() in ("true", "1")
    if isinstance(default, tuple):
        return tuple(v for v in value.split(",") if v)
    if isinstance(default, int) or name in ("max_side",):
        try:
            return int(value)
        except ValueError as err:
            raise ValueError(f"{name}={value!r}: expected an integer") from err
    if isinstance(default, float) or name == "tau_dense":
        try:
            return float(value)
        except ValueError as err:
            raise ValueError(f"{name}={value!r}: expected a number") from err
    return value


def make_config(method: str = "rcl-emd", profile: str = "cpu", **overrides: Any) -> PretrainConfig:
    """The ``profile``'s config for ``method`` with ``overrides`` (strings are parsed to the field type).

    ``method`` may also name a configuration of :data:`rcl.config.NAMED_CONFIGS` (e.g. ``rcl-emd-tuned``).
    """
    _config.check_profile(profile)
    if method in _config.NAMED_CONFIGS:  # a named configuration: its method and overrides, the caller's win
        named = _config.NAMED_CONFIGS[method]
        method, overrides = named["method"], {**named["overrides"], **overrides}
    keys = set(config_keys())
    unknown = sorted(set(overrides) - keys)
    if unknown:
        raise ValueError(f"unknown config key(s) {unknown}; valid keys: {', '.join(sorted(keys))}")
    values = {**PROFILE_VALUES[profile], **{k: _coerce(k, v) for k, v in overrides.items()}}
    return PretrainConfig(method=method, **values)


def _code_version() -> str:
    root = Path(__file__).resolve().parent
    h = hashlib.sha256()
    for rel in _CODE_FILES:
        p = root / rel
        if p.exists():
            h.update(rel.encode())
            h.update(p.read_bytes())
    return h.hexdigest()[:12]


def _cpu_autocast(cfg: PretrainConfig) -> bool:
    """Whether this config trains on a CPU with bfloat16 autocast (``amp`` on a CPU with native bf16)."""
    device = torch.device(cfg.device) if cfg.device else _config.default_device()
    return cfg.amp and device.type == "cpu" and _config.cpu_has_bf16()


def _file_digest(path: str) -> str:
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"g_e_weights={path!r}: no such file (a torchvision ResNet state dict)")
    h = hashlib.sha256()
    with p.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:16]


def run_key(cfg: PretrainConfig) -> str:
    """Hash of the config's computational fields and of the training code."""
    payload = {k: v for k, v in asdict(cfg).items() if k not in _RUNTIME_ONLY}
    payload["code"] = _code_version()
    if _cpu_autocast(cfg):  # bfloat16 on the CPU computes other numbers than float32: another run
        payload["cpu_bf16"] = True
    if cfg.g_e_weights is not None:  # the weights file by its content, not its path
        payload["g_e_weights"] = _file_digest(cfg.g_e_weights)
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:12]


def run_dir(cfg: PretrainConfig) -> Path:
    """``runs_dir/<method>-<key>``: where this config's checkpoint, log and result live."""
    return Path(cfg.runs_dir) / f"{cfg.method.replace('+', 'plus')}-{run_key(cfg)}"


def _atomic_json(path: Path, obj: Any) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2, default=str))
    os.replace(tmp, path)


def _atomic_save(obj: Any, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


@dataclass
class RunResult:
    """A finished run: where it is, its config, its final metrics and whether it was reused."""

    path: Path
    config: PretrainConfig
    metrics: dict[str, float] = field(default_factory=dict)
    reused: bool = False

    def model(self, device: str | torch.device = "cpu") -> UNet:
        return load_model(self.path, device)

    def history(self) -> list[dict[str, Any]]:
        f = self.path / "metrics.jsonl"
        return [json.loads(line) for line in f.read_text().splitlines()] if f.exists() else []


def load_model(path: str | os.PathLike, device: str | torch.device = "cpu") -> UNet:
    """The pre-trained U-Net of a finished run directory."""
    path = Path(path)
    if not (path / "model.pt").exists():
        raise FileNotFoundError(f"{path}: no model.pt — the run has not finished")
    blob = torch.load(path / "model.pt", map_location=device, weights_only=False)
    model = UNet(UNetConfig(**blob["unet"])).to(device)
    model.load_state_dict(blob["state"])
    return model.eval()


def _instances(cfg: PretrainConfig) -> _data.NoisyImages:
    images = _data.load_images(cfg.dataset, "train", cfg.data_dir)
    images = _data.resize_max_side(images, cfg.max_side)
    instances = _data.tile_images(images, cfg.tile, min_size=cfg.crop)
    return _data.NoisyImages.build(instances, seed=cfg.seed, sigma_range=(0.0, cfg.sigma_max))


def _step_generator(seed: int, step: int) -> torch.Generator:
    return torch.Generator().manual_seed((seed * 1_000_003 + step) % (2**63))


def build_batch(ds: _data.NoisyImages, cfg: PretrainConfig, step: int, rank: int = 0, world: int = 1) -> _methods.Batch:
    """The batch of ``step``: the same on every process and after any resume (seeded by ``(seed, step)``).

    ``batch_size`` distinct instances are drawn (so no instance is its own negative), their crop pairs
    sampled as Algorithm 1; under DDP each process takes its contiguous slice.
    """
    g = _step_generator(cfg.seed, step)
    n = len(ds)
    if cfg.batch_size > n:
        raise ValueError(
            f"batch_size={cfg.batch_size} exceeds the {n} instances of the dataset; lower batch_size or tile"
        )
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
    return _methods.Batch(x1=x1, x2=x2, offset=offset, x1_second=second, y1=y1, y2=y2, sigma=ds.sigma[idx].float())


def _consistency_module(cfg: PretrainConfig, ds: _data.NoisyImages, device: torch.device):
    from rcl.losses import ConsistencyLoss

    state = None
    if cfg.g_e == "self-supervised":
        from rcl import encoders

        state, _ = encoders.cached_simclr_encoder(
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


def _distributed() -> tuple[int, int, int]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        dist.init_process_group(backend)
    if world > 1:
        return dist.get_rank(), world, int(os.environ.get("LOCAL_RANK", "0"))
    return 0, 1, 0


def _device(cfg: PretrainConfig, local_rank: int) -> torch.device:
    if cfg.device:
        return torch.device(cfg.device)
    dev = _config.default_device()
    if dev.type == "cuda":
        return torch.device("cuda", local_rank)
    return dev


def _prefetch(build, steps, pin: bool, depth: int = 2, workers: int = 1):
    """Yield ``build(step)`` for each step in order, built ``depth`` steps ahead by ``workers`` threads.

    Batches are built on the CPU (seeded by their step, so which thread builds them, and when, changes
    nothing); on CUDA the GPU would otherwise wait for them, and pinned memory lets their copy to the device
    run async. Building is mostly tensor copies, which release the GIL, so threads run it in parallel.
    """
    from concurrent.futures import ThreadPoolExecutor

    def job(step):
        batch = build(step)
        if pin:
            batch = _methods.Batch(**{f.name: _pin(getattr(batch, f.name)) for f in fields(batch)})
        return batch

    steps = iter(steps)
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="rcl-batches") as pool:
        queue = [pool.submit(job, s) for s in itertools.islice(steps, depth)]
        try:
            while queue:
                batch = queue.pop(0).result()
                queue.extend(pool.submit(job, s) for s in itertools.islice(steps, 1))
                yield batch
        finally:
            for fut in queue:
                fut.cancel()


def _pin(t):
    return t.pin_memory() if t is not None else None


def pretrain(cfg: PretrainConfig, stop_after: int | None = None) -> RunResult:
    """Run (or reuse, or resume) the pre-training ``cfg`` describes; returns the finished run.

    ``stop_after`` ends the loop early after that many steps in total (for tests of resuming); the
    run is then left unfinished, with its checkpoint, exactly as an interruption would leave it.
    """
    rank, world, local_rank = _distributed()
    out = run_dir(cfg)
    if (out / "result.json").exists():
        return _reused(out, cfg)
    # one process per run: a second one (a parallel sweep needing the same run) waits, then reuses it
    with _exclusive(out, enabled=world == 1):
        if (out / "result.json").exists():
            return _reused(out, cfg)
        return _train(cfg, stop_after, out, rank, world, local_rank)


def _reused(out: Path, cfg: PretrainConfig) -> RunResult:
    result = json.loads((out / "result.json").read_text())
    return RunResult(out, cfg, result.get("metrics", {}), reused=True)


@contextlib.contextmanager
def _exclusive(out: Path, enabled: bool = True):
    """Hold an exclusive lock on the run directory (``.lock``, released when the process ends)."""
    if not enabled:
        yield
        return
    import fcntl
    import sys

    out.mkdir(parents=True, exist_ok=True)
    with open(out / ".lock", "w") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print(f"{out}: another process is training this run; waiting for it to finish", file=sys.stderr)
            fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _train(cfg: PretrainConfig, stop_after: int | None, out: Path, rank: int, world: int, local_rank: int):
    from tqdm.auto import tqdm

    device = _device(cfg, local_rank)
    if rank == 0:
        out.mkdir(parents=True, exist_ok=True)
        _atomic_json(out / "config.json", {**asdict(cfg), "key": run_key(cfg), "code": _code_version()})

    ds = _instances(cfg)
    klass = _methods.method_class(cfg.method)
    torch.manual_seed(cfg.seed)
    model = UNet(cfg.unet_config())
    consistency = _consistency_module(cfg, ds, device) if klass.uses_consistency else None
    method = klass(model, cfg.method_config(), consistency).to(device)
    use_cuda = device.type == "cuda"
    if use_cuda:
        method = method.to(memory_format=torch.channels_last)
    opt = torch.optim.Adam(method.trainable_parameters(), lr=cfg.lr, betas=(cfg.beta1, cfg.beta2), eps=cfg.eps)
    cpu_amp = device.type == "cpu" and _cpu_autocast(cfg)  # native bf16 units: autocast pays off
    amp_dtype = torch.bfloat16 if cpu_amp or (use_cuda and torch.cuda.is_bf16_supported()) else torch.float16
    use_amp = cfg.amp and (use_cuda or cpu_amp)
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp and amp_dtype == torch.float16)

    start = 0
    ckpt = out / "checkpoint.pt"
    if ckpt.exists():
        # on the CPU: the RNG states must stay CPU byte tensors; the optimiser moves its state to the params
        state = torch.load(ckpt, map_location="cpu", weights_only=False)
        method.load_state_dict(state["method"])
        opt.load_state_dict(state["optimizer"])
        scaler.load_state_dict(state["scaler"])
        torch.set_rng_state(state["rng_cpu"])
        if use_cuda and state.get("rng_cuda") is not None:
            torch.cuda.set_rng_state(state["rng_cuda"], device)
        start = state["step"]
    log = out / "metrics.jsonl"
    if rank == 0 and log.exists():  # drop entries logged after the checkpoint we resume from
        kept = [line for line in log.read_text().splitlines() if line and json.loads(line)["step"] <= start]
        log.write_text("".join(line + "\n" for line in kept))

    trainer = method
    if world > 1:
        from torch.nn.parallel import DistributedDataParallel as DDP

        trainer = DDP(method, device_ids=[device.index] if use_cuda else None, find_unused_parameters=True)
    method.train()
    end = cfg.steps if stop_after is None else min(cfg.steps, stop_after)
    bar = tqdm(
        range(start, end),
        initial=start,
        total=cfg.steps,
        desc=cfg.method,
        disable=_config.progress_disabled(cfg.progress) or rank != 0,
        dynamic_ncols=True,
    )
    running, t0 = None, time.perf_counter()
    # on CUDA, several threads build batches ahead (one GPU step is shorter than one batch's CPU copies)
    workers = max(1, min(4, (os.cpu_count() or 2) // (2 * max(1, int(os.environ.get("LOCAL_WORLD_SIZE", "1"))))))
    batches = _prefetch(
        lambda s: build_batch(ds, cfg, s, rank, world),
        range(start, end),
        pin=use_cuda,
        depth=2 * workers if use_cuda else 2,
        workers=workers if use_cuda else 1,
    )
    for step, host_batch in zip(bar, batches):
        batch = host_batch.to(device, non_blocking=True, memory_format=torch.channels_last if use_cuda else None)
        method.diagnose = (step + 1) % cfg.log_every == 0 or step + 1 == cfg.steps  # the steps it logs
        autocast = torch.autocast(device.type, dtype=amp_dtype) if use_amp else contextlib.nullcontext()
        with autocast:
            losses = trainer(batch)
        loss = losses["loss"]
        if not torch.isfinite(loss):
            raise FloatingPointError(f"{cfg.method}: non-finite loss {loss.item()} at step {step} ({out})")
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
        method.after_step()
        value = loss.detach()
        if world > 1:
            dist.all_reduce(value, op=dist.ReduceOp.AVG)
        running = value.item() if running is None else 0.9 * running + 0.1 * value.item()
        bar.set_postfix(loss=f"{running:.4g}")
        done = step + 1
        if rank == 0 and (done % cfg.log_every == 0 or done == cfg.steps):
            entry = {"step": done, "time_s": time.perf_counter() - t0}
            entry.update({k: float(v.detach()) for k, v in losses.items()})
            with log.open("a") as f:
                f.write(json.dumps(entry) + "\n")
        if rank == 0 and (done % cfg.checkpoint_every == 0 or done == end):
            _atomic_save(
                {
                    "step": done,
                    "method": method.state_dict(),
                    "optimizer": opt.state_dict(),
                    "scaler": scaler.state_dict(),
                    "rng_cpu": torch.get_rng_state(),
                    "rng_cuda": torch.cuda.get_rng_state(device) if use_cuda else None,
                },
                ckpt,
            )
    bar.close()
    if end < cfg.steps:
        return RunResult(out, cfg, {"step": end})
    metrics = {"final_loss": running, "steps": cfg.steps, "seconds": time.perf_counter() - t0}
    if rank == 0:
        _atomic_save({"unet": asdict(cfg.unet_config()), "state": method.model.state_dict()}, out / "model.pt")
        _atomic_json(out / "result.json", {"metrics": metrics, "config": asdict(cfg)})
    if world > 1:
        dist.barrier()
    return RunResult(out, cfg, metrics)
