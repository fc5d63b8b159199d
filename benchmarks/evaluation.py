"""The evaluation's forward pass in the default and the engine's memory layout, and whether they agree.

The proxy protocol, the label-efficiency study and ``python -m rcl apply`` spend their time in forward passes
of a trained U-Net (``UNet.features`` on whole test images, no gradient, float32). This script times that
pass for a profile's U-Net on a batch of test-sized images in the default (contiguous) layout and in the
layout the project uses on the device (:func:`rcl.models.memory_format`), interleaved so that a busy
machine slows both alike, and prints the largest difference between the two outputs.

    python benchmarks/evaluation.py --profile cpu            # 8 images of 256×256, the cpu profile's U-Net
    python benchmarks/evaluation.py --profile gpu --size 512 # on CUDA when available
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from rcl import config, models, profiles, train


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--profile", choices=profiles.PROFILES, default="cpu")
    p.add_argument("--batch", type=int, default=8, help="images per forward pass (default: 8, the evaluation's chunk)")
    p.add_argument("--size", type=int, default=256, help="image side in pixels (default: 256, the cpu test crop)")
    p.add_argument("--repeats", type=int, default=10, help="timed passes per layout (default: 10)")
    p.add_argument("--device", default=None, help="(default: CUDA if available, else the CPU)")
    args = p.parse_args(argv)
    device = torch.device(args.device) if args.device else config.default_device()
    cfg = train.make_config("n2n", args.profile, progress=False)
    torch.manual_seed(0)
    net = models.UNet(cfg.unet_config()).to(device).eval()  # random weights: the cost does not depend on them
    x = torch.rand(args.batch, 3, args.size, args.size, generator=torch.Generator().manual_seed(0)).to(device)
    layouts = {"contiguous": torch.contiguous_format, "engine": models.memory_format(device)}
    nets = {k: models.UNet(cfg.unet_config()).to(device).eval() for k in layouts}
    for k, fmt in layouts.items():
        nets[k].load_state_dict(net.state_dict())
        nets[k] = nets[k].to(memory_format=fmt)
    inputs = {k: x.contiguous(memory_format=fmt) for k, fmt in layouts.items()}

    def run(k: str) -> tuple[float, torch.Tensor]:
        if device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        with torch.no_grad():
            out = nets[k].features(inputs[k])
        if device.type == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - t0, out

    outs = {k: run(k)[1] for k in layouts}  # warm-up
    times: dict[str, list[float]] = {k: [] for k in layouts}
    for _ in range(args.repeats):
        for k in layouts:
            times[k].append(run(k)[0])
    med = {k: 1e3 * statistics.median(t) for k, t in times.items()}
    diff = float((outs["contiguous"] - outs["engine"]).abs().max())
    print(f"profile={args.profile} U-Net (width {cfg.width}, depth {cfg.depth}), "
          f"{args.batch}×3×{args.size}×{args.size}, device={device}, torch {torch.__version__}, "
          f"threads {torch.get_num_threads()}, float32, no gradient")
    print("| layout | ms per pass | images/s |\n|---|---|---|")
    for k in layouts:
        print(f"| {k} ({'channels-last' if layouts[k] == torch.channels_last else 'contiguous'}) | {med[k]:.0f} | "
              f"{args.batch / med[k] * 1e3:.1f} |")
    print(f"speed-up {med['contiguous'] / med['engine']:.2f}×; largest |difference| of the features: {diff:.2e}")


if __name__ == "__main__":
    main()
