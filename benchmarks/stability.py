"""Is the engine's mixed precision accurate enough over a long pre-training? One method, the same seeds,
trained with autocast and in float32.

The engine autocasts to bfloat16 on CPUs with native bf16 units and on CUDA GPUs (:mod:`rcl.train`); that
was checked against float32 on the `cpu` profile's 400 steps. This script trains ``--steps`` steps of
``--method`` for each seed in both precisions (``amp=True`` and ``amp=False``, otherwise the profile's
config), through the engine, into ``--runs-dir`` (finished runs are reused), and prints for each run:

* the largest logged loss and its step, and the *spikes*: how many logged steps, from the sixth logged loss
  on, exceed ``--spike`` times the median of the losses logged before them, and the first of them
  (:mod:`rcl.stability`, which notebook 06 reads the sensitivity study's runs with);
* the final loss, or where the run stopped on a non-finite loss;
* Adam's scale at the last step (the run's final checkpoint): the median over the network's parameters of
  ``√v̂``, the bias-corrected root mean square of the parameter's gradients, and the share of parameters whose
  ``√v̂`` is below ``ε``. A step moves a parameter by ``lr · m̂ / (√v̂ + ε)``: where ``√v̂ ≪ ε``, ``ε`` and not
  the gradient sets how far (``--steps`` short of a spike shows the state before it);
* the proxy protocol's denoising PSNR (the profile's proxy settings, :func:`rcl.evaluate.proxy_evaluate`) at
  σ = 20 and on the mixed range, and at the end the noisy input's on the same test cases
  (:func:`rcl.evaluate.reference_evaluate`).

Where the engine does not autocast (a CPU without bf16 units), both precisions are float32 and the same run:
the script says so and trains it once. On a CUDA GPU "float32" keeps PyTorch's float32 modes (TF32
convolutions by default); the header prints the numerics of both.

    python benchmarks/stability.py --steps 1600 --seeds 0 1 2        # RCL-EMD, cpu profile, both precisions
    python benchmarks/stability.py --method n2n --steps 1600 --seeds 0 --precisions amp
    python benchmarks/stability.py --seeds 0 1 2 --precisions amp --set lr=3e-4    # a setting of the engine's

``--set KEY=VALUE`` (repeatable) overrides a pre-training key as ``python -m rcl pretrain --set`` does, to ask
whether a setting (Adam's ε or learning rate, the batch) changes the picture; the header names the overrides.
"""

from __future__ import annotations

import argparse

import torch

from rcl import cli, config, evaluate, runs, stability, train
from rcl.methods import NAMED_CONFIGS, trained


def adam_scale(run_dir, eps: float, beta2: float) -> tuple[float, float]:
    """The median ``√v̂`` over the parameters Adam updates, and the share below ``eps``, at the run's final
    checkpoint (read as tensors only)."""
    state = runs.read(run_dir)["optimizer"]["state"].values()
    root = torch.cat([(s["exp_avg_sq"] / (1 - beta2 ** float(s["step"]))).sqrt().flatten() for s in state])
    return float(root.median()), float((root < eps).double().mean())


def measure(method: str, profile: str, steps: int, seed: int, amp: bool, runs_dir: str, factor: float,
            sets: dict[str, str] | None = None) -> dict:
    """One run's row (and its proxy config, for the noisy input's reference)."""
    cfg = train.make_config(method, profile, **{**(sets or {}), "steps": steps, "seed": seed, "amp": amp,
                                                "runs_dir": runs_dir, "progress": False})
    row = {"precision": "autocast" if amp else "float32", "seed": seed}
    try:
        run = train.pretrain(cfg)
    except FloatingPointError as err:  # a diverged run is a result here, not a failure of the script
        return {**row, "stopped": str(err).split(" (")[0]}, None
    median_root, below = adam_scale(run.path, cfg.eps, cfg.beta2)
    log = stability.summary(run.path, factor)
    pcfg = evaluate.proxy_config(run.path, profile, task="denoise")
    df, _ = evaluate.proxy_evaluate(run.path, pcfg, device=config.default_device())
    psnr = df.groupby("condition").psnr.mean()
    return {**row, "max loss": log["largest loss"], "at step": log["at step"], "spikes": log["spikes"],
            "first spike": log["first spike"], "final loss": log["last loss"],
            "median √v̂": median_root, "√v̂ < ε": below,
            "PSNR σ=20": psnr.get("σ=20"), "PSNR mixed": psnr.get("σ~U[0,20]")}, pcfg


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--method", default="rcl-emd")
    parser.add_argument("--profile", choices=config.PROFILES, default="cpu")
    parser.add_argument("--steps", type=int, default=1600, help="pre-training steps (default 1600)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--precisions", nargs="+", choices=["amp", "fp32"], default=["amp", "fp32"])
    parser.add_argument("--spike", type=float, default=stability.FACTOR,
                        help="a spike: loss > this × the median so far (default: %(default)s, rcl.stability's)")
    parser.add_argument("--runs-dir", default="runs")
    parser.add_argument("--set", action="append", metavar="KEY=VALUE",
                        help="override a pre-training key (repeatable; not steps, seed, amp or runs_dir)")
    args = parser.parse_args(argv)
    sets = cli._parse_sets(args.set)
    fixed = sorted(set(sets) & {"steps", "seed", "amp", "runs_dir", "progress"})
    if fixed:
        parser.error(f"--set {', '.join(fixed)}: set by the script's own options (--steps, --seeds, --precisions, "
                     "--runs-dir)")
    try:  # an unknown key or a bad value fails here, before any run
        train.make_config(args.method, args.profile, **sets)
    except ValueError as err:
        parser.error(str(err))
    config.check_choice("--method", args.method, trained([*config.ALL_METHODS, *NAMED_CONFIGS]))
    device = config.default_device()
    with_amp, without = config.numerics(device), config.numerics(device, amp=False)
    precisions = list(dict.fromkeys(args.precisions))
    if with_amp == without and len(precisions) > 1:
        print(f"no autocast on this {device.type}: both precisions are float32, the same run; trained once")
        precisions = ["fp32"]
    overrides = "".join(f", {k}={v}" for k, v in sets.items())
    print(f"{args.method}, profile {args.profile}{overrides}, {args.steps} steps; numerics with autocast "
          f"{with_amp or 'float32'!r}, without {without or 'float32'!r}")
    print("\n| precision | seed | max loss (step) | spikes (first) | final loss | median √v̂ | √v̂ < ε | PSNR σ=20 "
          "| PSNR mixed |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    reference = None
    for seed in args.seeds:
        for p in precisions:
            r, pcfg = measure(args.method, args.profile, args.steps, seed, p == "amp", args.runs_dir, args.spike,
                              sets)
            reference = reference or pcfg
            if "stopped" in r:
                print(f"| {r['precision']} | {seed} | {r['stopped']} ||||||", flush=True)
                continue
            first = f" ({r['first spike']})" if r["spikes"] else ""
            print(f"| {r['precision']} | {seed} | {r['max loss']:.4g} ({r['at step']}) | {r['spikes']}{first} "
                  f"| {r['final loss']:.4g} | {r['median √v̂']:.1e} | {r['√v̂ < ε']:.0%} | {r['PSNR σ=20']:.2f} "
                  f"| {r['PSNR mixed']:.2f} |", flush=True)
    if reference is not None:
        noisy = evaluate.reference_evaluate(reference).groupby("condition").psnr.mean()
        print(f"\nnoisy input, the same test cases: {noisy.get('σ=20'):.2f} dB at σ=20, "
              f"{noisy.get('σ~U[0,20]'):.2f} dB mixed")


if __name__ == "__main__":
    main()
