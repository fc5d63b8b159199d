"""The random-generator convention (:mod:`rcl.rng`): streams, indices and seeds never share a state, and the
precision a run is trained in is part of its key (:func:`rcl.config.numerics`)."""

import itertools

import pytest
import torch

from rcl import config, rng, train


def test_streams_indices_and_seeds_never_start_from_the_same_state():
    """An affine rule (seed × prime + index) gives every stream the same generator at seed 0."""
    states = {}
    for seed, stream, index in itertools.product((0, 1, 2), rng.STREAMS, range(40)):
        states.setdefault(rng.generator(seed, stream, index).initial_seed(), []).append((seed, stream, index))
    assert all(len(v) == 1 for v in states.values())
    a = torch.randn(8, generator=rng.generator(0, "labels", 2))
    assert not torch.equal(a, torch.randn(8, generator=rng.generator(0, "test", 2)))
    assert torch.equal(a, torch.randn(8, generator=rng.generator(0, "labels", 2)))  # and reproducible


def test_an_unknown_stream_is_named():
    with pytest.raises(ValueError, match="unknown random stream 'batches'; valid:"):
        rng.generator(0, "batches")


def test_the_precision_of_a_run_is_in_its_key(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert config.numerics("cuda", amp=True) == "cuda-bf16" and config.numerics("cuda", amp=False) == ""
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    assert config.numerics("cuda", amp=True) == "cuda-fp16"
    keys = {train.run_key(train.make_config("n2n", "smoke", device="cuda", amp=amp)) for amp in (True, False)}
    assert len(keys) == 2
