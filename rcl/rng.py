"""One convention for random generators: every random draw comes from a generator named by (seed, stream, index).

Layer: ground floor (imports only torch).

A *seed* is the user's (``seed=0`` of a run, a trial's evaluation seed); a *stream* names what is drawn
(the batches of a run, the labelled subsets of the proxy protocol, the test degradations, …) and an
*index* which draw of that stream (the step, the trial, the test case). :func:`generator` maps the three
to a seeded :class:`torch.Generator` as ``seed × STREAMS[stream] + index`` — each stream its own prime
multiplier, so two streams of the same seed do not start from the same state. The formula is the one the
project's results were computed with; a change here changes every number the book shows.
"""

from __future__ import annotations

import torch

__all__ = ["STREAMS", "generator"]

#: Each stream's multiplier (a prime). ``"dense"`` shares the batch stream's: a dense baseline's sampling
#: at a step draws from the same state as that step's batch (harmless — it samples positions, not data —
#: and kept so that saved results stay reproducible).
STREAMS: dict[str, int] = {
    "batch": 1_000_003,  # rcl.train: the batch of a step (index: the step)
    "dense": 1_000_003,  # rcl.methods.dense: a dense baseline's sampling (index: the step)
    "queue": 1,  # rcl.methods.dense: the initial negative queues (index: the queue)
    "labels": 7_919,  # rcl.evaluate: a trial's labelled subset (index: the trial)
    "head": 31,  # rcl.evaluate: a trial's pixel sample for the head fit (index: the trial)
    "test": 104_729,  # rcl.evaluate: a test case's degradation (index: 1000 × image + case)
    "finetune": 10_007,  # rcl.labels: the batch order of a fine-tuning (index: the number of labels)
}


def generator(seed: int | None, stream: str | None = None, index: int = 0,
              device: torch.device | str = "cpu") -> torch.Generator:
    """The generator of ``(seed, stream, index)`` on ``device``; without a stream, seeded by ``seed`` itself;
    with ``seed=None``, seeded at random."""
    g = torch.Generator(device=device)
    if seed is None:
        g.seed()
        return g
    if stream is None:
        value = int(seed)
    else:
        if stream not in STREAMS:
            raise ValueError(f"unknown random stream {stream!r}; valid: {sorted(STREAMS)}")
        value = int(seed) * STREAMS[stream] + int(index)
    g.manual_seed(value % 2**63)
    return g
