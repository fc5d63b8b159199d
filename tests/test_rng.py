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
def fp32_modes():
    """Sets PyTorch's float32 modes for matmul and cuDNN convolutions (``"ieee"`` or ``"tf32"``; restored after)."""
    b = torch.backends
    saved = b.fp32_precision, b.cuda.matmul.fp32_precision, b.cudnn.conv.fp32_precision

    def set_modes(matmul: str, conv: str) -> None:
        b.cuda.matmul.fp32_precision, b.cudnn.conv.fp32_precision = matmul, conv

    yield set_modes
    b.fp32_precision = saved[0]
    set_modes(*saved[1:])


def _a_gpu_machine(monkeypatch):
    """This machine as one with a CUDA device, so that configs naming ``device="cuda"`` are accepted here."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)


def test_the_precision_of_a_run_is_in_its_key(monkeypatch, fp32_modes):
    fp32_modes("ieee", "ieee")
    _a_gpu_machine(monkeypatch)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert config.numerics("cuda", amp=True).startswith("cuda-bf16-fp32:")
    assert config.numerics("cuda", amp=False).startswith("cuda-fp32-fp32:")
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    assert config.numerics("cuda", amp=True).startswith("cuda-fp16-fp32:")
    keys = {train.run_key(train.make_config("n2n", "smoke", device="cuda", amp=amp)) for amp in (True, False)}
    assert len(keys) == 2
    assert config.numerics("cpu", amp=False) == ""  # float32 on a CPU: no TF32 there


def test_tf32_on_a_gpu_is_in_the_key(monkeypatch, fp32_modes):
    """Whether float32 matrix products and convolutions may use TF32 changes a GPU's numbers in any precision
    (the float32 parts of an autocast step too): a run trained with it is not served for one without, whichever
    API set it — the fp32_precision settings or the legacy allow_tf32 flags (mixing them made the legacy flags
    unreadable, so they are not what the key reads)."""
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    _a_gpu_machine(monkeypatch)
    seen = {}
    for matmul, conv in itertools.product(("ieee", "tf32"), repeat=2):
        fp32_modes(matmul, conv)
        for amp in (True, False):
            seen[(matmul, conv, amp)] = train.run_key(train.make_config("n2n", "smoke", device="cuda", amp=amp))
    assert len(set(seen.values())) == len(seen)
    fp32_modes("ieee", "tf32")
    torch.backends.cuda.matmul.allow_tf32 = True  # the legacy API after the new one
    assert "matmul=tf32" in config.numerics("cuda")
    torch.backends.cudnn.conv.fp32_precision = "ieee"  # now the legacy cudnn.allow_tf32 raises on reading
    assert config.numerics("cuda").endswith("conv=ieee")
