"""The consistency encoder ``g_e`` with its BatchNorms folded into its convolutions, against ``g_e`` as loaded.

Eq. 5's ``g_e`` is frozen, so each BatchNorm is a fixed affine map per channel and can be folded into the
convolution before it (:func:`rcl.encoders.fold_batchnorm`): the same function, one memory-bound pass over
each activation fewer, forward and backward. :class:`rcl.losses.ConsistencyLoss` computes with the folded
copy. This script times what one training step asks of ``g_e`` — the target ``φ(g_e(x))`` without gradient,
then ``φ(g_e(f(x)))`` forward and backward to its input — for a profile's ``g_e`` on both crops of a batch,
under the engine's autocast and memory layout, both forms interleaved so that a busy machine slows them
alike; and prints how far each form's features are from float32 (the folding's error, next to autocast's).

    python benchmarks/consistency_encoder.py --profile cpu             # ResNet-18 to stage 1, 16 crops of 48
    python benchmarks/consistency_encoder.py --profile gpu --batch 8   # ResNet-50 to stage 3, crops of 128
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

from rcl import config, losses, models, profiles, train


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--profile", choices=profiles.PROFILES, default="cpu")
    p.add_argument("--batch", type=int, help="instances per batch (default: the profile's); g_e sees twice as many")
    p.add_argument("--repeats", type=int, default=10, help="timed steps per form (default: 10)")
    p.add_argument("--device", default=None, help="(default: CUDA if available, else the CPU)")
    args = p.parse_args(argv)
    device = torch.device(args.device) if args.device else config.default_device()
    cfg = train.make_config("rcl-emd", args.profile, g_e="random", progress=False)
    n = 2 * (args.batch or cfg.batch_size)
    fmt = models.memory_format(device)
    loss = losses.ConsistencyLoss("random", cfg.g_e_arch, cfg.g_e_layers, seed=0).to(device, memory_format=fmt)
    g = torch.Generator().manual_seed(0)
    x = torch.rand(n, 3, cfg.crop, cfg.crop, generator=g)
    fx = (x + 0.05 * torch.randn(x.shape, generator=g)).clamp(0, 1)
    x, fx = (t.to(device).contiguous(memory_format=fmt) for t in (x, fx))
    forms = {"as loaded": loss.encoder, "folded": loss.folded}

    def step(form: str) -> float:
        e = forms[form]
        pred = fx.detach().requires_grad_()
        if device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        with config.autocast(device):
            with torch.no_grad():
                target = loss.features(x, e)
            value = sum(F.mse_loss(a.float(), b.float()) for a, b in zip(loss.features(pred, e), target))
        value.backward()
        if device.type == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - t0

    with torch.no_grad():
        exact = [f.float() for f in loss.features(fx, loss.encoder)]
        with config.autocast(device):
            out = {k: [f.float() for f in loss.features(fx, e)] for k, e in forms.items()}
        folded32 = [f.float() for f in loss.features(fx, loss.folded)]
    rel = lambda a, b: max(float((p - q).norm() / q.norm()) for p, q in zip(a, b))  # noqa: E731
    for form in forms:
        step(form), step(form)  # warm-up
    times: dict[str, list[float]] = {k: [] for k in forms}
    for _ in range(args.repeats):
        for k in forms:
            times[k].append(step(k))
    med = {k: 1e3 * statistics.median(t) for k, t in times.items()}
    precision = "bf16 autocast" if config.numerics(device) or device.type == "cuda" else "float32"
    print(f"g_e = {cfg.g_e_arch} to {cfg.g_e_layers[-1]}, {n} crops of {cfg.crop} px, {device}, {precision}, "
          f"{torch.get_num_threads()} threads, {args.repeats} interleaved steps after 2 warm-ups")
    print(f"{'form':<10} {'ms/step':>8} {'rel. error vs float32':>22}")
    for k in forms:
        print(f"{k:<10} {med[k]:8.1f} {rel(out[k], exact):22.2e}")
    print(f"folded in float32: rel. error {rel(folded32, exact):.2e}; speed-up {med['as loaded'] / med['folded']:.2f}×")


if __name__ == "__main__":
    main()
