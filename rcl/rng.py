"""One convention for random generators: every random draw comes from a generator named by (seed, stream, index).

Layer: ground floor (imports only torch).

A *seed* is the user's (``seed=0`` of a run, a trial's evaluation seed); a *stream* names what is drawn
(the batches of a run, the labelled subsets of the proxy protocol, the test degradations, …) and an
*index* which draw of that stream (the step, the trial, the test case). :func:`generator` maps the three
to a seeded :class:`torch.Generator` whose seed is 63 bits of the SHA-256 of ``"seed:stream:index"``, so two
streams, two indices or two seeds never start from the same state (an affine formula such as
``seed × prime + index`` gives every stream the same generator at seed 0, and lets ``(seed, index)`` pairs of
one stream collide). The formula is the one the project's results were computed with; a change here changes
every number the book shows. Without a stream, ``seed`` itself seeds the generator — as
``torch.manual_seed(seed)`` seeds the networks' initial weights, which is why no draw of a run uses that.
"""

from __future__ import annotations

import hashlib

import torch

__all__ = ["STREAMS", "generator"]

#: The streams, and what each draws (its index in brackets).
STREAMS: dict[str, str] = {
    "noise": "rcl.data: the simulated noise of a set of training instances (0)",
    "batch": "rcl.train: the batch of a step (the step)",
    "dense": "rcl.methods.dense: a dense baseline's pixel sampling (the step)",
    "queue": "rcl.methods.dense: the initial negative queues (the queue)",
    "degrade": "rcl.methods.core: the Oracle's degradations for a task other than denoising (the step)",
    "labels": "rcl.evaluate: a trial's labelled subset (the trial)",
    "head": "rcl.evaluate: a trial's pixel sample for the head fit (the trial)",
    "test": "rcl.evaluate: a test case's degradation (1000 × image + case)",
    "finetune": "rcl.labels: the batch order of a fine-tuning (the number of labels)",
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
        digest = hashlib.sha256(f"{int(seed)}:{stream}:{int(index)}".encode()).digest()
        value = int.from_bytes(digest[:8], "little") >> 1
    g.manual_seed(value % 2**63)
    return g
