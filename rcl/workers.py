"""Independent jobs in worker processes, each with its share of the CPU cores or a GPU of its own.

:func:`run` calls a function on each job's argument, in this process (one job at a time) or in spawned worker
processes (no state shared with this one), and reports every job as it ends, failed ones included, so that a
study can keep what finished and name what did not. The sensitivity study evaluates its settings with it.

Layer: studies (imports :mod:`rcl.config` and torch; never the engine or the evaluation itself: the function it
is given does that).
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import Any

import torch

from rcl import config

__all__ = ["run"]

#: ``done(i, tag, result, error)``: job number ``i`` (from 1, in the order jobs end) with its ``tag`` has ended,
#: with its ``result`` (None if it failed) and its ``error`` (None if it did not).
Done = Callable[[int, Any, Any, "BaseException | None"], None]


def _start_worker(threads: int, gpus: Any) -> None:
    """A worker process: ``threads`` CPU threads and, with several GPUs, one GPU of its own (CUDA starts on
    first use, after this)."""
    torch.set_num_threads(threads)
    os.environ.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    if gpus is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = gpus.get()


def run(fn: Callable[[Any], Any], jobs: Sequence[tuple[Any, Any]], workers: int, done: Done) -> None:
    """``fn(argument)`` for every ``(tag, argument)`` of ``jobs``, ``workers`` at a time: one, here, with this
    process's threads; more, in that many spawned processes (``fn`` must be importable by name), each with
    ``cores // workers`` threads and, with several GPUs, a GPU of its own. A job's exception is reported to
    ``done`` and the others still run; Ctrl-C drops the jobs not yet started."""
    if workers <= 1:
        for i, (tag, argument) in enumerate(jobs, 1):
            try:
                result, error = fn(argument), None
            except Exception as e:  # reported with the others; the rest still run
                result, error = None, e
            done(i, tag, result, error)
        return
    context = multiprocessing.get_context("spawn")
    gpus, queue = config.gpu_ids(), None
    if len(gpus) > 1:
        queue = context.Queue()
        for i in range(workers):
            queue.put(gpus[i % len(gpus)])
    threads = max(1, (os.cpu_count() or 1) // workers)
    with ProcessPoolExecutor(workers, mp_context=context, initializer=_start_worker,
                             initargs=(threads, queue)) as pool:  # fmt: skip
        futures = {pool.submit(fn, argument): tag for tag, argument in jobs}
        try:
            for i, future in enumerate(as_completed(futures), 1):
                error = future.exception()
                done(i, futures[future], None if error else future.result(), error)
        except BaseException:  # Ctrl-C: what has finished is kept by the caller; what has not started is dropped
            pool.shutdown(wait=False, cancel_futures=True)
            raise
