"""Floating-point operations of one pre-training step per method, and the rate achieved against the peak.

For each method at a profile's shapes (batch, crop, U-Net, g_e): the FLOPs of one step's forward and
backward pass, counted by ``torch.utils.flop_counter.FlopCounterMode`` (matrix products and convolutions;
elementwise work, sorting and the optimiser are not counted), and — unless ``--flops-only`` — the median
time of a full step (forward with the engine's autocast, backward, Adam) on this machine, the achieved
rate and its share of the device's peak. The data are synthetic tiles of the profile's size: the cost of a
step does not depend on the pixels.

Peaks (``--peak-gflops`` overrides):

* CPU: cores × clock × FLOP per cycle per core. The clock is ``cpu MHz`` of ``/proc/cpuinfo`` (the base
  clock a VM reports). FLOP/cycle: 32 in float32 on AMD Zen 4 (family 25, model ≥ 16: two 256-bit FMA
  pipes; AVX-512 runs double-pumped on them), 64 in bfloat16 there (``VDPBF16PS``: twice float32's
  products per pipe); elsewhere 2 FMA pipes × the widest vector's float32 lanes × 2.
* CUDA: the dense bfloat16 Tensor Core figure of the card's data sheet for the cards listed in
  ``_GPU_PEAKS`` (e.g. H100/H200 SXM: 989 TFLOP/s), else ``--peak-gflops``.

    python benchmarks/flops.py --profile cpu              # time and count every cpu-profile method
    python benchmarks/flops.py --profile gpu --flops-only # count the paper-scale step (any machine)
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from rcl import config, data, models, profiles, train
from rcl.methods import trained

_GPU_PEAKS = {"H100": 989e12, "H200": 989e12, "A100": 312e12, "L4": 121e12, "RTX 4090": 165e12}


def _cpuinfo() -> dict[str, str]:
    info = {}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if ":" in line:
                    k, v = line.split(":", 1)
                    info.setdefault(k.strip(), v.strip())
    except OSError:
        pass
    return info


def cpu_peak(bf16: bool) -> tuple[float, str]:
    """This CPU's peak FLOP/s (float32, or bfloat16 with ``bf16``) and how it was derived."""
    info = _cpuinfo()
    cores = len(os.sched_getaffinity(0))
    ghz = float(info.get("cpu MHz", "0") or 0) / 1000
    flags = info.get("flags", "").split()
    amd = info.get("vendor_id") == "AuthenticAMD"
    zen4 = amd and info.get("cpu family") == "25" and int(info.get("model", 0)) >= 16
    if zen4:
        per_cycle, why = (64, "Zen 4, bf16 dot products") if bf16 else (32, "Zen 4, 2 × 256-bit FMA")
    else:
        lanes = 16 if "avx512f" in flags else 8 if "avx2" in flags else 4
        per_cycle, why = 2 * lanes * 2 * (2 if bf16 and "avx512_bf16" in flags else 1), f"2 FMA × {lanes} lanes"
    return cores * ghz * 1e9 * per_cycle, f"{cores} cores × {ghz:.2f} GHz × {per_cycle} FLOP/cycle ({why})"


def gpu_peak() -> tuple[float, str]:
    name = torch.cuda.get_device_name()
    for key, peak in _GPU_PEAKS.items():
        if key in name:
            return peak, f"{name}: {peak / 1e12:.0f} TFLOP/s dense bf16 (data sheet)"
    return float("nan"), f"{name}: unknown peak (pass --peak-gflops)"


#: ``torch.compile``'s mode for each compiled variant: ``"graphs"`` replays each compiled region as a CUDA
#: graph (static shapes: one batch shape per step), which removes the CPU's kernel launches.
COMPILE_MODES = {"compiled": "default", "graphs": "reduce-overhead"}


def _setup(method: str, profile: str, device: torch.device, extra: dict, contiguous: bool = False,
           compile: str | None = None):
    """A method, its optimiser and one batch as the engine sets them up (its memory layout, fused Adam on
    CUDA); ``contiguous`` keeps the tensors in the default layout instead, to measure what the layout buys;
    ``compile`` (a ``torch.compile`` mode) wraps the U-Net and g_e in ``torch.compile`` (which the engine does
    not), to measure that."""
    cfg = train.make_config(method, profile, progress=False, device=str(device), **extra)
    g = torch.Generator().manual_seed(0)
    tiles = {f"t{i}": torch.rand(3, cfg.tile, cfg.tile, generator=g) for i in range(cfg.batch_size)}
    ds = data.NoisyImages.build(tiles, seed=0, sigma_range=(0.0, cfg.sigma_max))
    layout = torch.contiguous_format if contiguous else models.memory_format(device)
    model = train.build_method(cfg, ds, device).train().to(memory_format=layout)
    if compile:
        model.model = torch.compile(model.model, mode=compile)
        if model.consistency is not None and model.consistency.encoder is not None:
            # features() calls g_e's stages one by one, so it is what is compiled (not the encoder's forward)
            model.consistency.features = torch.compile(model.consistency.features, mode=compile)
    opt = torch.optim.Adam(model.trainable_parameters(), lr=cfg.lr, eps=cfg.eps, fused=device.type == "cuda" or None)
    return cfg, model, opt, train.build_batch(ds, cfg, 0).to(device, memory_format=layout)


def measure(method: str, profile: str, device: torch.device, steps: int, flops_only: bool, extra: dict,
            contiguous: bool = False) -> dict:
    cfg, model, opt, batch = _setup(method, profile, device, extra, contiguous)
    with FlopCounterMode(display=False) as counter:
        model(batch)["loss"].backward()
    flops = counter.get_total_flops()
    row = {"method": method, "batch": cfg.batch_size, "crop": cfg.crop, "GFLOP/step": flops / 1e9}
    if flops_only:
        return row
    _timed_step(cfg, model, opt, batch, device)  # warm-up
    step = statistics.median(_timed_step(cfg, model, opt, batch, device) for _ in range(steps))
    return {**row, "ms/step": 1e3 * step, "GFLOP/s": flops / step / 1e9}


def _timed_step(cfg, model, opt, batch, device: torch.device) -> float:
    """Seconds of one full step: forward under the engine's autocast, backward, Adam."""
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.compiler.cudagraph_mark_step_begin()  # a new step: CUDA graphs may reuse the last one's outputs
    t0 = time.perf_counter()
    with config.autocast(device, cfg.amp):
        loss = model(batch)["loss"]
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - t0


def compare_layouts(method: str, profile: str, device: torch.device, steps: int, extra: dict,
                    variants: tuple[str, ...] = ("contiguous", "engine")) -> dict:
    """Median step time of each variant — ``"contiguous"`` (the default layout), ``"engine"`` (the engine's
    setup), ``"compiled"`` (the engine's, U-Net and g_e compiled), ``"graphs"`` (compiled into CUDA graphs) —
    their steps interleaved so that a busy machine slows all alike. The first steps, which compile, are not
    timed. A variant that fails to set up or compile is left out of the timing, its error printed (NaN)."""
    setups, failed = {}, {}
    for name in variants:
        try:
            setups[name] = _setup(method, profile, device, extra, contiguous=name == "contiguous",
                                  compile=COMPILE_MODES.get(name))  # fmt: skip
            for _ in range(3):  # warm-up (compilation included; CUDA graphs record on the third call)
                _timed_step(*setups[name], device)
        except Exception as err:  # noqa: BLE001 - a benchmark reports what did not run and goes on
            setups.pop(name, None)
            failed[name] = float("nan")
            print(f"{method}: {name} failed: {type(err).__name__}: {str(err).splitlines()[0][:200]}", flush=True)
    times: dict[str, list[float]] = {name: [] for name in setups}
    for _ in range(steps):
        for name in list(setups):
            try:
                times[name].append(_timed_step(*setups[name], device))
            except Exception as err:  # noqa: BLE001 - as above, during the timed steps
                setups.pop(name), times.pop(name)
                failed[name] = float("nan")
                print(f"{method}: {name} failed: {type(err).__name__}: {str(err).splitlines()[0][:200]}", flush=True)
    return {**failed, **{name: 1e3 * statistics.median(t) for name, t in times.items()}}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--profile", choices=profiles.PROFILES, default="cpu")
    p.add_argument("--methods", nargs="+", default=None, help="(default: the profile's notebook-03 methods)")
    p.add_argument("--steps", type=int, default=5, help="timed steps per method, after one warm-up (default: 5)")
    p.add_argument("--flops-only", action="store_true", help="count FLOPs, time nothing")
    p.add_argument("--peak-gflops", type=float, default=None, help="the device's peak, GFLOP/s")
    p.add_argument("--device", default=None, help="(default: CUDA if available, else the CPU)")
    p.add_argument("--contiguous", action="store_true", help="default layout, not the engine's")
    p.add_argument("--compare-layouts", action="store_true", help="time the default and the engine's layout, "
                   "interleaved, and print the speed-up")
    p.add_argument("--compile", action="store_true", help="with --compare-layouts: also the engine's setup with the "
                   "U-Net and g_e under torch.compile, and on CUDA compiled into CUDA graphs")
    args = p.parse_args(argv)
    device = torch.device(args.device) if args.device else config.default_device()
    methods = args.methods or trained(profiles.values("pretraining", args.profile)["methods"])
    # FLOPs need no pretrained weights: a random g_e of the same architecture costs the same
    extra = {"g_e": "random"} if profiles.values("pretrain", args.profile).get("g_e") == "imagenet" else {}
    bf16 = bool(config.numerics(device)) or (device.type == "cuda" and torch.cuda.is_bf16_supported())
    peak, why = (args.peak_gflops * 1e9, "given") if args.peak_gflops else (
        gpu_peak() if device.type == "cuda" else cpu_peak(bf16))
    print(f"profile={args.profile}, device={device}, torch {torch.__version__}, threads {torch.get_num_threads()}, "
          f"{'bf16 autocast' if bf16 else 'float32'}, {'contiguous' if args.contiguous else 'engine'} layout; "
          f"peak {peak / 1e9:.0f} GFLOP/s = {why}")
    if args.compare_layouts:
        compiled = [v for v in COMPILE_MODES if args.compile and (v != "graphs" or device.type == "cuda")]
        variants = ("contiguous", "engine", *compiled)
        columns = ["method", *(f"{v} ms/step" for v in variants), "engine speed-up",
                   *(f"{v} speed-up" for v in compiled)]  # fmt: skip
        print("| " + " | ".join(columns) + " |\n" + "|---" * len(columns) + "|")
        for m in methods:
            r = compare_layouts(m, args.profile, device, args.steps, extra, variants)
            cells = [m, *(f"{r[v]:.1f}" for v in variants), f"{r['contiguous'] / r['engine']:.2f}×",
                     *(f"{r['engine'] / r[v]:.2f}×" for v in compiled)]  # fmt: skip
            print("| " + " | ".join(cells) + " |", flush=True)
        return
    print("| method | batch | crop | GFLOP/step | ms/step | GFLOP/s | of peak |\n|---|---|---|---|---|---|---|")
    for m in methods:
        r = measure(m, args.profile, device, args.steps, args.flops_only, extra, args.contiguous)
        timed = "ms/step" in r
        print(f"| {m} | {r['batch']} | {r['crop']} | {r['GFLOP/step']:.2f} | "
              + (f"{r['ms/step']:.0f} | {r['GFLOP/s']:.1f} | {100 * r['GFLOP/s'] * 1e9 / peak:.1f}% |" if timed
                 else "– | – | – |"), flush=True)


if __name__ == "__main__":
    main()
