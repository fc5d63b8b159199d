"""One whole proxy evaluation — head fits, the frozen network on every test case, scores — its time and peak memory.

The proxy protocol (:func:`rcl.evaluate.proxy_evaluate`) fits ``trials`` heads on a run's frozen features, then
passes every test case (each test image under every condition) through the network once and scores every
trial's head on it. At the ``gpu`` profile, on whole photographs, this is most of an at-scale run's
evaluation. The script evaluates a random U-Net of a profile's architecture (the cost does not depend on its
weights) with the profile's proxy settings on a folder of test photographs, without reading or writing any
cache, and prints the seconds of the head fits and of the test cases, and the peak memory: on CUDA
``torch.cuda.max_memory_allocated``, on the CPU the process's peak resident set size (``ru_maxrss``; the
decoded images included).

    python benchmarks/proxy_protocol.py --test-dir PHOTOS/test                    # cpu profile, CPU or CUDA
    python benchmarks/proxy_protocol.py --profile gpu --test-dir PHOTOS/test --trials 2 --head-steps 300
"""

from __future__ import annotations

import argparse
import resource
import time
from pathlib import Path

import torch

from rcl import config, evaluate, models, profiles, train


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--profile", choices=profiles.PROFILES, default="cpu")
    p.add_argument("--test-dir", required=True, help="a folder of test photographs (its test/ subfolder if it has one)")
    p.add_argument("--task", default="denoise", help="(default: denoise)")
    p.add_argument("--trials", type=int, default=None, help="(default: the profile's)")
    p.add_argument("--head-steps", type=int, default=None, help="(default: the profile's)")
    p.add_argument("--device", default=None, help="(default: CUDA if available, else the CPU)")
    args = p.parse_args(argv)
    if not Path(args.test_dir).is_dir():
        p.error(f"--test-dir {args.test_dir}: not a folder")
    device = torch.device(args.device) if args.device else config.default_device()
    section = profiles.values("proxy", args.profile)
    fields = {k: section[k] for k in profiles.PROXY_KEYS}
    fields.update({k: v for k, v in (("trials", args.trials), ("head_steps", args.head_steps)) if v is not None})
    run = train.make_config("n2n", args.profile, progress=False)  # the profile's image size and U-Net
    # labelled crops from the bundled images (offline); the test cases from the folder
    cfg = evaluate.ProxyConfig(task=args.task, max_side=run.max_side, test_dir=args.test_dir, **fields)
    torch.manual_seed(0)
    net = models.UNet(run.unet_config())
    net = net.to(device, memory_format=models.memory_format(device)).eval()
    evaluate.test_images(cfg), evaluate.training_images(cfg)  # decoded once, outside the timing
    fits = []
    real_fit = evaluate.fit_head

    def timed_fit(*a, **k):
        t0 = time.perf_counter()
        out = real_fit(*a, **k)
        fits.append(time.perf_counter() - t0)
        return out

    evaluate.fit_head = timed_fit
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    df, _ = evaluate.proxy_evaluate(net, cfg, device=device, cache=False)
    if device.type == "cuda":
        torch.cuda.synchronize()
    total = time.perf_counter() - t0
    if device.type == "cuda":
        peak = f"{torch.cuda.max_memory_allocated() / 2**20:.0f} MiB on the GPU"
    else:
        peak = f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB resident (process peak)"
    cases = len(df) // cfg.trials
    print(f"profile={args.profile}, task={args.task}, device={device}, torch {torch.__version__}, "
          f"threads {torch.get_num_threads()}; U-Net width {net.config.width} depth {net.config.depth}; "
          f"{df.image.nunique()} test images, {cases} test cases, {cfg.trials} trials of {cfg.head_steps} head steps")
    rest = total - sum(fits)
    print(f"total {total:.1f} s: fitting the heads {sum(fits):.1f} s "
          f"({1e3 * sum(fits) / max(1, (cfg.head_steps + 1) * len(fits)):.2f} ms per step); the rest (features of the "
          f"labelled crops and test cases, every trial's head scored) {rest:.1f} s ({1e3 * rest / cases:.0f} ms per "
          f"test case); peak memory {peak}")


if __name__ == "__main__":
    main()
