"""Is this GPU ready for the ``gpu`` profile? A few real pre-training steps of every method.

Each method runs ``--steps`` steps through the real engine (:func:`rcl.train.pretrain`: CUDA, automatic
mixed precision, channels-last, checkpoints written atomically), in a throw-away runs folder. For each the
script prints the median steady-state step time (the engine logs every ``--log-every`` steps and reads
nothing back from the GPU in between, so a step is timed as a log interval over its steps; the intervals that
start within the first ``--warmup`` steps are dropped), the
throughput in training images per second (instances of the batch; two-view methods push two crops of
each through the U-Net), the peak GPU memory, and "build/step": the time one CPU thread takes to build
and copy one batch, over the step time (the engine builds batches ahead in several threads, so above 100%
is fine until it approaches the number of threads, when the GPU waits for data). Run it once on a new
machine; it needs no download:

    python benchmarks/gpu_readiness.py                        # every method, gpu profile, builtin images
    python benchmarks/gpu_readiness.py --methods rcl-emd n2n --steps 30 --out gpu.json
    python benchmarks/gpu_readiness.py --dataset voc2012 --data-dir data   # the profile's own data

What it substitutes, and says so: the ``gpu`` profile's dataset (PASCAL VOC) is replaced by the images
bundled with the package unless ``--dataset`` names one that is present, with tiles small enough to fill
a batch; ImageNet weights for ``g_e`` are replaced by a randomly initialised network of the same
architecture when they are not cached (the cost of a step is the same).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time

import torch

from rcl import config, profiles, train
from rcl import data as _data
from rcl.methods import trained


def _gpu_name(device: torch.device) -> str:
    if device.type == "cuda":
        p = torch.cuda.get_device_properties(device)
        return f"{p.name} ({p.total_memory / 2**30:.0f} GiB, {p.multi_processor_count} SMs)"
    return "CPU (no CUDA device: timings are not GPU figures)"


def _imagenet_available(arch: str) -> bool:
    """Cached already (no download is attempted: a machine without network would wait for a timeout)."""
    from rcl.encoders import imagenet_weights_path

    return imagenet_weights_path(arch).exists()


def _fit_tile(cfg_values: dict, dataset: str, data_dir: str | None) -> int:
    """The profile's tile, halved (never below the crop) until the dataset's tiles fill one batch."""
    images = _data.resize_max_side(_data.load_images(dataset, "train", data_dir), cfg_values["max_side"])
    tile = cfg_values["tile"]
    while (
        tile > cfg_values["crop"]
        and len(_data.tile_images(images, tile, cfg_values["crop"])) < cfg_values["batch_size"]
    ):
        tile = max(cfg_values["crop"], tile // 2)
    return tile


def run_method(name: str, overrides: dict, steps: int, warmup: int, runs_dir: str, device: torch.device,
               log_every: int = 5) -> dict:
    cfg = train.make_config(
        name,
        overrides.pop("profile"),
        steps=steps,
        runs_dir=runs_dir,
        progress=False,
        log_every=log_every,
        checkpoint_every=steps,
        **overrides,
    )
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    t0 = time.perf_counter()
    result = train.pretrain(cfg)
    wall = time.perf_counter() - t0
    logged = [(h["step"], h["time_s"]) for h in result.history()]
    per_step = [(tb - ta) / (sb - sa) for (sa, ta), (sb, tb) in zip(logged[:-1], logged[1:]) if sa >= warmup]
    step_s = statistics.median(per_step)
    # the batch is built on the CPU each step (seeded by (seed, step)); how much of the step is that?
    ds = train.build_data(cfg)
    t1 = time.perf_counter()
    for s in range(5):
        train.build_batch(ds, cfg, s).to(device, non_blocking=True)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    batch_s = (time.perf_counter() - t1) / 5
    peak = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else float("nan")
    return {
        "method": name,
        "batch_size": cfg.batch_size,
        "crop": cfg.crop,
        "step_ms": 1e3 * step_s,
        "images_per_s": cfg.batch_size / step_s,
        "peak_gib": peak,
        "batch_build_share": batch_s / step_s,
        "final_loss": result.metrics.get("final_loss"),
        "checkpoint": (result.path / "checkpoint.pt").exists() and (result.path / "model.pt").exists(),
        "wall_s": wall,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", choices=config.PROFILES, default="gpu")
    parser.add_argument("--methods", nargs="+", default=trained(config.ALL_METHODS), metavar="METHOD")
    parser.add_argument("--steps", type=int, default=20, help="steps per method (default 20)")
    parser.add_argument("--warmup", type=int, default=5, help="first steps left out of the timing (default 5)")
    parser.add_argument("--log-every", type=int, default=5, help="steps per timed interval (default 5)")
    parser.add_argument("--dataset", default="builtin", help="dataset to draw crops from (default: builtin)")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--batch-size", type=int, default=None, help="override the profile's batch size")
    parser.add_argument("--no-amp", action="store_true", help="train in float32 (to measure what AMP buys)")
    parser.add_argument("--out", default=None, help="also write the results as JSON to this file")
    args = parser.parse_args(argv)
    for m in args.methods:
        config.check_choice("--methods", m, config.ALL_METHODS)
    if args.log_every < 1 or args.steps < args.warmup + 2 * args.log_every:
        parser.error(f"--steps ({args.steps}) must be at least --warmup + 2 × --log-every "
                     f"({args.warmup + 2 * args.log_every}), and --log-every at least 1, to time one interval")

    device = config.default_device()
    values = profiles.values("pretrain", args.profile)
    if args.batch_size:
        values["batch_size"] = args.batch_size
    notes = []
    overrides = {"profile": args.profile, "dataset": args.dataset, "data_dir": args.data_dir, "amp": not args.no_amp}
    if args.batch_size:
        overrides["batch_size"] = args.batch_size
    tile = _fit_tile(values, args.dataset, args.data_dir)
    if tile != values["tile"]:
        overrides["tile"] = tile
        notes.append(
            f"tile {values['tile']} -> {tile} so that {args.dataset}'s tiles fill a batch of {values['batch_size']}"
        )
    if values.get("g_e") == "imagenet" and not _imagenet_available(values["g_e_arch"]):
        overrides["g_e"] = "random"
        notes.append(f"g_e: ImageNet {values['g_e_arch']} weights not cached, a random {values['g_e_arch']} instead")

    print(f"device: {_gpu_name(device)}; torch {torch.__version__}; profile {args.profile}; AMP {not args.no_amp}")
    print(
        f"batch {values['batch_size']} instances, crop {values['crop']}, U-Net width {values['width']} "
        f"depth {values['depth']}, g_e {overrides.get('g_e', values['g_e'])} {values['g_e_arch']}"
    )
    for n in notes:
        print(f"note: {n}")
    print("\n| method | ms/step | images/s | peak GiB | build/step | final loss |\n|---|---:|---:|---:|---:|---:|")
    rows = []
    with tempfile.TemporaryDirectory(prefix="rcl-gpu-readiness-") as tmp:
        for name in args.methods:
            try:
                row = run_method(name, dict(overrides), args.steps, args.warmup, tmp, device, args.log_every)
            except Exception as err:  # report and go on: one broken method should not hide the others
                row = {"method": name, "error": f"{type(err).__name__}: {err}"}
                print(f"| {name} | failed: {row['error']} |||||", flush=True)
            else:
                print(
                    f"| {name} | {row['step_ms']:.1f} | {row['images_per_s']:.0f} | {row['peak_gib']:.2f} "
                    f"| {row['batch_build_share']:.0%} | {row['final_loss']:.4g} |",
                    flush=True,
                )
            rows.append(row)
    failed = [r["method"] for r in rows if "error" in r]
    print(f"\n{len(rows) - len(failed)}/{len(rows)} methods ran" + (f"; failed: {failed}" if failed else ""))
    if args.out:
        payload = {
            "device": _gpu_name(device),
            "torch": torch.__version__,
            "profile": args.profile,
            "amp": not args.no_amp,
            "notes": notes,
            "rows": rows,
        }
        tmp_out = args.out + ".tmp"
        with open(tmp_out, "w") as f:
            json.dump(payload, f, indent=2)
        os.replace(tmp_out, args.out)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
