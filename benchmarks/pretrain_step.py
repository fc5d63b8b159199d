"""Time one pre-training step of each method relative to Noise2Noise, at a profile.

Noise2Noise passes one crop per instance through the U-Net, the two-view methods two; to compare like
with like, n2n is timed with twice the batch, so every method pushes the same number of crops through
the U-Net per step. For RCL the script also times, in isolation and on the same shapes, the residual
distance (forward + backward of the pairwise matrix) and the consistency encoder g_e (forward +
backward through its features for both crops), and prints their share of the RCL step. Each step is timed
twice: waited for one by one (the median), and queued, ``--steps`` in a row with one wait at the end (the mean),
as the engine's loop queues them (it reads nothing back between log steps; this script's step is its own,
with unfused Adam and no batches built ahead). On a GPU the difference is the CPU's launch time that the queue
hides; on a CPU the two differ only by the spread of step times.

    python benchmarks/pretrain_step.py --profile cpu
    python benchmarks/pretrain_step.py --profile gpu --methods rcl-emd n2n --steps 20 \
        --set dataset=folder data_dir=PHOTOS g_e=random
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from rcl import config, distances, train
from rcl.methods import trained


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timeit(fn, device: torch.device, steps: int, warmup: int) -> float:
    for _ in range(warmup):
        fn()
    _sync(device)
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _queued(fn, device: torch.device, steps: int) -> float:
    """Mean time of ``steps`` calls with one wait at the end: what a loop that reads nothing back per step
    (the engine's) gets, where the CPU queues a step's kernels while the GPU runs the last one's."""
    fn()
    _sync(device)
    t0 = time.perf_counter()
    for _ in range(steps):
        fn()
    _sync(device)
    return (time.perf_counter() - t0) / steps


def time_method(
    name: str, profile: str, device: torch.device, steps: int, warmup: int, batch_size: int | None, extra: dict
):
    overrides = {**extra, **({"batch_size": batch_size} if batch_size else {})}
    cfg = train.make_config(name, profile, progress=False, **overrides)
    ds = train.build_data(cfg)
    m = train.build_method(cfg, ds, device)
    opt = torch.optim.Adam(m.trainable_parameters(), lr=cfg.lr, eps=cfg.eps)
    batch = train.build_batch(ds, cfg, 0).to(device)
    use_amp = device.type == "cuda"

    def step():
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_amp):
            loss = m(batch)["loss"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        m.after_step()

    return (_timeit(step, device, steps, warmup), _queued(step, device, steps)), cfg, batch, m


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", choices=config.PROFILES, default="cpu")
    parser.add_argument("--methods", nargs="+", default=trained(config.ALL_METHODS))
    parser.add_argument("--steps", type=int, default=5, help="timed steps per method (median reported)")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--device", default=None, help="default: CUDA if available, else CPU")
    parser.add_argument(
        "--set",
        nargs="*",
        default=[],
        metavar="KEY=VALUE",
        help="config overrides, e.g. dataset=folder data_dir=PHOTOS g_e=random (the gpu profile's VOC and "
        "ImageNet weights need downloads)",
    )
    args = parser.parse_args()
    extra = dict(kv.split("=", 1) for kv in args.set)
    device = torch.device(args.device) if args.device else config.default_device()
    print(
        f"device: {torch.cuda.get_device_name(device) if device.type == 'cuda' else 'CPU'}, "
        f"torch {torch.__version__}, threads {torch.get_num_threads()}, profile {args.profile}"
    )

    base_cfg = train.make_config("n2n", args.profile, **extra)
    (n2n_time, n2n_queued), *_ = time_method("n2n", args.profile, device, args.steps, args.warmup,
                                             2 * base_cfg.batch_size, extra)
    crops = 2 * base_cfg.batch_size
    print(f"\nn2n with batch {crops} (the same crops through the U-Net): {n2n_time * 1e3:.1f} ms/step waited for "
          f"one by one, {n2n_queued * 1e3:.1f} ms/step queued ({args.steps} steps, one wait at the end)")
    print(f"{'method':<14}{'ms/step':>10}{'× n2n':>8}{'queued':>10}{'× n2n':>8}")
    results = {}
    for name in args.methods:
        (t, q), cfg, batch, m = time_method(name, args.profile, device, args.steps, args.warmup, None, extra)
        results[name] = (t, cfg, batch, m)
        print(f"{name:<14}{t * 1e3:>10.1f}{t / n2n_time:>8.2f}{q * 1e3:>10.1f}{q / n2n_queued:>8.2f}")

    for name in [n for n in args.methods if n.startswith("rcl-")]:
        t, cfg, batch, m = results[name]
        t_dist, t_ge = rcl_parts(name, cfg, batch, m, device, args.steps, args.warmup)
        print(
            f"\n{name}: distance {t_dist * 1e3:.1f} ms ({t_dist / t:.1%} of its step), "
            f"g_e {t_ge * 1e3:.1f} ms ({t_ge / t:.1%} of its step)"
        )


def rcl_parts(name, cfg, batch, m, device, steps, warmup) -> tuple[float, float]:
    """Time RCL's distance and g_e (forward + backward) on the shapes of its step, in isolation."""
    d = distances.get_distance(name.split("-")[1], reduction=cfg.distance_reduction)
    x = torch.cat([batch.x1, batch.x2])
    r1, r2 = torch.randn_like(batch.x1, requires_grad=True), torch.randn_like(batch.x2, requires_grad=True)
    fx = x.clone().requires_grad_()
    t_dist = _timeit(lambda: d(r1, r2).sum().backward(), device, steps, warmup)
    t_ge = _timeit(lambda: m.consistency(x, fx).backward(), device, steps, warmup)
    return t_dist, t_ge


if __name__ == "__main__":
    main()
