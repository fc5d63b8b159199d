"""Loss spikes: what a pre-training run's log says about its stability.

Layer: evaluation (reads a run's log through the engine's :mod:`rcl.runs`; trains nothing).

RCL-EMD's loss can leap by orders of magnitude after several hundred steps at the ``cpu`` profile (Adam's ε,
``benchmarks/README.md``), and a network read after such a leap is not the one the steps before it made. A
*spike* is a logged loss above :data:`FACTOR` times the median of the losses logged before it, from the
:data:`FIRST` (sixth) logged loss on (the first are the start of training, high by nature). :func:`spikes` finds
them in one log, :func:`summary` reads a run's log into the row that notebook 06 and ``benchmarks/stability.py``
show.
"""

from __future__ import annotations

import math
import os
import statistics
from typing import Any

from rcl import runs as _runs

__all__ = ["FACTOR", "FIELDS", "FIRST", "spikes", "summary"]

#: A logged loss this many times the median of those before it is a spike.
FACTOR = 5.0
#: The first logged loss (counting from one) that can be called a spike: a log shorter than this shows none.
FIRST = 6
#: The fields of :func:`summary`'s row.
FIELDS = ("logged", "last loss", "largest loss", "at step", "spikes", "first spike")


def spikes(history: list[dict[str, Any]], factor: float = FACTOR) -> list[tuple[int, float]]:
    """The logged ``(step, loss)`` of ``history`` (a run's log, :func:`rcl.runs.history`) whose loss exceeds
    ``factor`` × the median of the losses logged before it (from the :data:`FIRST` logged loss on)."""
    out, seen = [], []
    for e in history:
        if len(seen) >= FIRST - 1 and e["loss"] > factor * statistics.median(seen):
            out.append((e["step"], e["loss"]))
        seen.append(e["loss"])
    return out


def summary(run: str | os.PathLike | list[dict[str, Any]], factor: float = FACTOR) -> dict[str, Any]:
    """A run's log in one row (``run``: its folder, or its log as :func:`rcl.runs.history` reads it): how many
    losses it logged (fewer than :data:`FIRST`: too few to show a spike), its last logged loss, its largest with
    the step, its spikes and the first one's step (None without one); for a run without a log, none logged, the
    losses NaN, the steps None and no spike."""
    logged = run if isinstance(run, list) else _runs.history(run)
    if not logged:
        return dict(zip(FIELDS, (0, math.nan, math.nan, None, 0, None)))
    worst = max(logged, key=lambda e: e["loss"])
    found = spikes(logged, factor)
    return dict(zip(FIELDS, (len(logged), logged[-1]["loss"], worst["loss"], worst["step"], len(found),
                             found[0][0] if found else None)))
