"""``python -m rcl apply`` on one large photograph: its time, its rate and the process's peak memory.

A user's photographs are large (a 12-megapixel camera gives 4000×3000). :func:`rcl.apply.apply_folder` runs
the U-Net over them tile by tile, so that its memory is that of one tile plus the image and its output,
whatever their size. This script writes one
synthetic photograph of the given size (smooth colour fields, edges and noise: the network's cost does not
depend on the content) as a PNG into a temporary folder, applies a profile's U-Net to it (random weights: the
cost does not depend on them either) and prints the wall time, the megapixels per second, the process's peak
resident memory (``getrusage``), how much of it the apply added to what was resident before it began, and on
CUDA the peak GPU memory allocated.

    python benchmarks/apply.py                      # 4000×3000, the cpu profile's U-Net, 8-bit output
    python benchmarks/apply.py --width 8000 --height 6000 --bits 16
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from rcl import apply, config, models, profiles, train


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _photograph(width: int, height: int, seed: int = 0) -> np.ndarray:
    """A ``height×width×3`` uint8 image: smooth colour gradients, a few sharp-edged discs, and noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    img = np.stack([xx / width, yy / height, 0.5 + 0.5 * np.sin(xx / 97.0) * np.cos(yy / 131.0)], axis=-1)
    for _ in range(12):
        cx, cy, r = rng.uniform(0, width), rng.uniform(0, height), rng.uniform(0.03, 0.15) * min(width, height)
        img[(xx - cx) ** 2 + (yy - cy) ** 2 < r * r] = rng.uniform(0, 1, 3)
    img += rng.normal(0, 0.04, img.shape).astype(np.float32)
    return (np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8)


def _apply(args: argparse.Namespace, src: Path, out: Path) -> None:
    """The measured part, in this process: its peak memory is then the apply's and the imports', not the
    synthetic photograph's making, which runs in a child process (its peak is its own)."""
    device = torch.device(args.device) if args.device else config.default_device()
    cfg = train.make_config("n2n", args.profile, progress=False)
    torch.manual_seed(0)
    net = models.UNet(cfg.unet_config()).eval()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    before = _peak_mib()
    t0 = time.perf_counter()
    written = apply.apply_folder(net, src, out, bits=args.bits, tile=args.tile, device=device, progress=False)
    seconds = time.perf_counter() - t0
    peak = _peak_mib()
    assert [w.name for w in written] == ["photo.png"]
    mpx = args.width * args.height / 1e6
    print(f"device: {device}, threads: {torch.get_num_threads()}, the {args.profile} profile's U-Net "
          f"(width {cfg.width}, depth {cfg.depth}), tile {args.tile} + overlap {apply.exact_overlap(net)}")
    print(f"{args.width}×{args.height} ({mpx:.1f} Mpx), {args.bits}-bit PNG out: {seconds:.1f} s "
          f"({mpx / seconds:.2f} Mpx/s); peak resident memory {peak:.0f} MiB "
          f"({peak - before:.0f} MiB above the {before:.0f} MiB of the process before the apply began)"
          + (f"; peak GPU memory allocated {torch.cuda.max_memory_allocated(device) / 2**20:.0f} MiB"
             if device.type == "cuda" else ""))


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--profile", choices=profiles.PROFILES, default="cpu", help="whose U-Net (default: %(default)s)")
    p.add_argument("--width", type=int, default=4000)
    p.add_argument("--height", type=int, default=3000)
    p.add_argument("--bits", type=int, choices=(8, 16), default=8, help="output PNG depth (default: %(default)s)")
    p.add_argument("--tile", type=int, default=512, help="apply's tile core (default: %(default)s, apply's)")
    p.add_argument("--device", default=None, help="(default: CUDA if available, else the CPU)")
    p.add_argument("--make-photo", help=argparse.SUPPRESS)  # the child's: write the photograph there, and stop
    args = p.parse_args(argv)
    if args.make_photo:
        from PIL import Image

        Image.fromarray(_photograph(args.width, args.height)).save(args.make_photo)
        return
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "in"
        src.mkdir()
        subprocess.run([sys.executable, __file__, "--width", str(args.width), "--height", str(args.height),
                        "--make-photo", str(src / "photo.png")], check=True)
        _apply(args, src, Path(tmp) / "out")


if __name__ == "__main__":
    main()
