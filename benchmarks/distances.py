"""Time the pairwise residual distances of :mod:`rcl.distances` against naive per-pair loops.

For two batches of ``B`` residuals ``C×S×S`` (defaults: 64 of 3×128×128, the paper's batch and minimal
crop) this measures one forward + backward of the full ``B×B`` distance matrix, and the same ``B²``
distances computed pair by pair:

* EMD against ``scipy.stats.wasserstein_distance`` (forward only: scipy has no gradient) and against
  POT's ``ot.wasserstein_1d`` on torch tensors (forward + backward);
* every distance against a Python loop calling the same distance on one pair at a time (fwd + bwd),
  which isolates what batching the pairs buys.

A naive loop runs over pairs in random order until ``--naive-seconds`` is spent; its time for all
``B²`` pairs is the median time per pair × ``B²`` (extrapolated when fewer pairs were timed, and the
table says from how many). Ours is the best of ``--repeats`` calls (fewer once ``--ours-seconds``
is spent). Both estimators keep bursts of load from other processes out of the numbers.
Peak memory of our call: on CUDA ``torch.cuda.max_memory_allocated`` above the memory allocated
before the call; on CPU the peak resident set size (``VmHWM``, reset through ``/proc/self/clear_refs``)
above the resident size before the call (after ``malloc_trim``), which includes allocator overhead.
For MMD it also prints what the exact quadratic estimator's ``n×n`` kernel matrix would need.

Example: ``python benchmarks/distances.py`` (≈1 minute on a 2-core CPU), or
``python benchmarks/distances.py --device cuda --batch 128 --repeats 10``.
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import os
import random
import re
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from rcl.distances import EMD, MMD, Bhattacharyya, PairwiseDistance  # noqa: E402

MIB = 2**20


# ------------------------------------------------------------------------------------------ measuring
def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _proc_kib(field: str) -> int | None:
    try:
        text = Path("/proc/self/status").read_text()
    except OSError:
        return None
    match = re.search(rf"{field}:\s+(\d+) kB", text)
    return int(match.group(1)) if match else None


def _trim_heap() -> None:
    """Give freed heap memory back to the OS (glibc), so RSS before a call is not inflated by slack."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def _reset_peak_rss() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")  # Linux ≥ 4.0: reset VmHWM to the current RSS
    except OSError:
        return False
    return True


def peak_memory(fn: Callable[[], None], device: torch.device) -> tuple[float | None, str]:
    """Run ``fn`` once; return its peak memory above the memory in use before it (MiB), and the method."""
    if device.type == "cuda":
        _sync(device)
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
        fn()
        _sync(device)
        return (torch.cuda.max_memory_allocated(device) - before) / MIB, "torch.cuda.max_memory_allocated"
    gc.collect()
    _trim_heap()
    before = _proc_kib("VmRSS")
    if before is None or not _reset_peak_rss():
        fn()
        return None, "unavailable (no /proc/self/clear_refs)"
    fn()
    return (_proc_kib("VmHWM") - before) / 1024, "peak RSS (VmHWM) above RSS before the call"


def time_ours(distance: PairwiseDistance, a: torch.Tensor, b: torch.Tensor, repeats: int, budget_s: float):
    """Peak memory of the first fwd+bwd (it includes one-time allocations), then the best of up to
    ``repeats`` timed calls (fewer once ``budget_s`` is spent; at least one)."""

    def step() -> None:
        a.grad = b.grad = None
        distance(a, b).sum().backward()

    memory, method = peak_memory(step, a.device)
    times: list[float] = []
    for _ in range(repeats):
        if sum(times) > budget_s:
            break
        _sync(a.device)
        start = time.perf_counter()
        step()
        _sync(a.device)
        times.append(time.perf_counter() - start)
    return min(times), memory, method


def time_pairs(per_pair: Callable[[int, int], None], batch: int, budget_s: float, device: torch.device, rng):
    """Time a per-pair function over random pairs until ``budget_s``; median per pair × ``batch²``.

    The median of the per-pair times (rather than their sum) keeps bursts of load from other processes
    out of the extrapolation, as the best-of-repeats does for our batched call.
    """
    pairs = [(i, j) for i in range(batch) for j in range(batch)]
    rng.shuffle(pairs)
    per_pair(*pairs[0])  # warm-up, not timed
    times: list[float] = []
    begin = time.perf_counter()
    for i, j in pairs:
        start = time.perf_counter()
        per_pair(i, j)
        _sync(device)
        times.append(time.perf_counter() - start)
        if time.perf_counter() - begin > budget_s:
            break
    return statistics.median(times) * len(pairs), len(times)


# --------------------------------------------------------------------------------------------- naive
def scipy_emd_pair(a: torch.Tensor, b: torch.Tensor, per_channel: bool) -> Callable[[int, int], None]:
    from scipy.stats import wasserstein_distance

    an = a.detach().cpu().double().numpy()
    bn = b.detach().cpu().double().numpy()

    def pair(i: int, j: int) -> None:
        if per_channel:
            sum(wasserstein_distance(an[i, c].ravel(), bn[j, c].ravel()) for c in range(an.shape[1]))
        else:
            wasserstein_distance(an[i].ravel(), bn[j].ravel())

    return pair


def _leaves(x: torch.Tensor) -> list[torch.Tensor]:
    """One independent leaf per residual, so a per-pair backward touches that residual only (slicing
    a batch leaf would allocate and accumulate a full-batch gradient for every pair)."""
    return [r.detach().clone().requires_grad_() for r in x]


def pot_emd_pair(a: torch.Tensor, b: torch.Tensor) -> Callable[[int, int], None]:
    import ot

    warnings.filterwarnings("ignore", message="The use of `x.T`", category=UserWarning)  # inside POT
    la, lb = _leaves(a), _leaves(b)

    def pair(i: int, j: int) -> None:
        ot.wasserstein_1d(la[i].reshape(-1), lb[j].reshape(-1), p=1).backward()

    return pair


def loop_pair(distance: PairwiseDistance, a: torch.Tensor, b: torch.Tensor) -> Callable[[int, int], None]:
    la, lb = _leaves(a), _leaves(b)

    def pair(i: int, j: int) -> None:
        distance(la[i][None], lb[j][None]).sum().backward()

    return pair


# ---------------------------------------------------------------------------------------------- main
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="Prints a Markdown table: distance, our fwd+bwd time for the B×B matrix, the naive per-pair "
        "reference and its time for B² pairs, the speed-up, and our peak memory.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--batch", type=int, default=64, help="residuals per batch B (the matrix is B×B)")
    parser.add_argument("--size", type=int, default=128, help="crop side S (residuals are C×S×S)")
    parser.add_argument("--channels", type=int, default=3, help="channels C")
    parser.add_argument("--repeats", type=int, default=3, help="timed fwd+bwd repeats (best reported)")
    parser.add_argument(
        "--ours-seconds", type=float, default=3.0, help="stop repeating our call once this much is spent"
    )
    parser.add_argument(
        "--device", default="auto", help="'auto' (CUDA if available, else CPU), 'cpu', 'cuda', 'cuda:1'…"
    )
    parser.add_argument(
        "--naive-seconds",
        type=float,
        default=2.5,
        help="time budget per naive per-pair loop; fewer than B² pairs are then timed and extrapolated",
    )
    parser.add_argument("--mmd-features", type=int, default=256, help="random Fourier features D of MMD")
    parser.add_argument(
        "--only", nargs="*", default=None, help="rows to run, among: emd emd_per_channel bd bd_histogram mmd"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the inputs and of the pair order")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else None
    device = device or torch.device(args.device)
    gen = torch.Generator().manual_seed(args.seed)
    shape = (args.batch, args.channels, args.size, args.size)
    # residual-like inputs: noise of std ~5/255 and ~8/255 in [0, 1] units
    a = (0.02 * torch.randn(shape, generator=gen)).to(device).requires_grad_()
    b = (0.03 * torch.randn(shape, generator=gen)).to(device).requires_grad_()
    n = args.channels * args.size**2
    pairs = args.batch**2
    rng = random.Random(args.seed)

    rows = {
        "emd": (EMD(), [("scipy wasserstein_distance (fwd only)", lambda: scipy_emd_pair(a, b, False))]),
        "emd_per_channel": (
            EMD(reduction="per_channel"),
            [("scipy wasserstein_distance ×C (fwd only)", lambda: scipy_emd_pair(a, b, True))],
        ),
        "bd": (Bhattacharyya(), []),
        "bd_histogram": (Bhattacharyya(method="histogram"), []),
        "mmd": (MMD(n_features=args.mmd_features), []),
    }
    rows["emd"][1].append(("POT ot.wasserstein_1d (fwd+bwd)", lambda: pot_emd_pair(a, b)))
    for distance, refs in rows.values():
        refs.append(("same distance, per-pair loop (fwd+bwd)", lambda d=distance: loop_pair(d, a, b)))
    selected = args.only or list(rows)
    unknown = sorted(set(selected) - set(rows))
    if unknown:
        raise SystemExit(f"--only: unknown rows {unknown}; valid: {sorted(rows)}")

    threads = f", {torch.get_num_threads()} threads" if device.type == "cpu" else ""
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    print(f"# torch {torch.__version__} on {device} ({name}{threads})")
    print(f"# B = {args.batch} residuals of {args.channels}×{args.size}×{args.size} (n = {n}) per batch,")
    print(
        f"# matrix {args.batch}×{args.batch}; ours = best of ≤{args.repeats} fwd+bwd; "
        f"naive = median time per pair × {pairs} pairs\n"
    )
    print("| distance | ours fwd+bwd (s) | naive reference | naive, B² pairs (s) | speed-up | ours peak (MiB) |")
    print("|---|---:|---|---:|---:|---:|")
    memory_method, mmd_peak, notes = "", None, []
    total_start = time.perf_counter()
    for row in selected:
        distance, refs = rows[row]
        ours, memory, memory_method = time_ours(distance, a, b, args.repeats, args.ours_seconds)
        if row == "mmd":
            mmd_peak = memory
        mem = f"{memory:.0f}" if memory is not None else "n/a"
        for k, (label, make) in enumerate(refs):
            naive, done = time_pairs(make(), args.batch, args.naive_seconds, device, rng)
            if done < pairs:
                label += f" ¹ {done}/{pairs} pairs"
                notes.append(row)
            cells = (row, f"{ours:.3g}", mem) if k == 0 else ("", "", "")
            print(f"| {cells[0]} | {cells[1]} | {label} | {naive:.3g} | {naive / ours:,.0f}× | {cells[2]} |")
        sys.stdout.flush()

    print(f"\nPeak memory: {memory_method}.")
    if notes:
        print(f"¹ Timed on the random subset of pairs shown (median per pair), extrapolated to {pairs} pairs.")
    if mmd_peak is not None:
        kernel = n * n * 4 / MIB
        print(
            f"MMD memory is bounded: peak {mmd_peak:.0f} MiB for the {args.batch}×{args.batch} matrix at "
            f"n = {n}, whereas the exact quadratic estimator needs an n×n float32 kernel matrix of "
            f"{kernel:,.0f} MiB for a single pair."
        )
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"Total benchmark time {time.perf_counter() - total_start:.0f} s; 1-min load average at the end "
        f"{load:.1f} on {os.cpu_count()} CPUs (well above the threads used means other jobs shared the CPU)."
    )


if __name__ == "__main__":
    main()
