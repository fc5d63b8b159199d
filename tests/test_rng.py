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


@pytest.fixture
def tf32():
    """Sets whether float32 matrix products and convolutions may use TF32 (restored after the test)."""
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32

    def set_tf32(matmul: bool, conv: bool) -> None:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = matmul, conv

    yield set_tf32
    set_tf32(*saved)


def test_the_precision_of_a_run_is_in_its_key(monkeypatch, tf32):
    tf32(False, False)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert config.numerics("cuda", amp=True) == "cuda-bf16" and config.numerics("cuda", amp=False) == "cuda-fp32"
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    assert config.numerics("cuda", amp=True) == "cuda-fp16"
    keys = {train.run_key(train.make_config("n2n", "smoke", device="cuda", amp=amp)) for amp in (True, False)}
    assert len(keys) == 2
    assert config.numerics("cpu", amp=False) == ""  # float32 on a CPU: no TF32 there


def test_tf32_on_a_gpu_is_in_the_key(monkeypatch, tf32):
    """Whether float32 matrix products and convolutions may use TF32 changes a GPU's numbers in any precision
    (the float32 parts of an autocast step too): a run trained with it is not served for one without."""
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    seen = {}
    for matmul, conv in itertools.product((False, True), repeat=2):
        tf32(matmul, conv)
        for amp in (True, False):
            seen[(matmul, conv, amp)] = train.run_key(train.make_config("n2n", "smoke", device="cuda", amp=amp))
    assert len(set(seen.values())) == len(seen)
    assert config.numerics("cuda") == "cuda-bf16-tf32-matmul+conv"
