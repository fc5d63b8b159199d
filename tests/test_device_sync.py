"""The engine's steps read nothing back from the device: on a GPU each step's kernels are queued while the
previous step runs, and only log and checkpoint steps wait for it.

A host–device synchronisation happens where a tensor's value is needed on the host: ``.item()``, ``bool()``,
``int()``, ``float()`` (all dispatched as ``aten::_local_scalar_dense``), and ops whose output size depends on
the data (``nonzero``, ``masked_select``, boolean-mask indexing, ``unique``). A dispatch mode records every
such op, so the property is checked on the CPU, with no GPU. What it cannot see there: copies between host
and device (``.cpu()``, ``.to(device)`` of a host tensor: no-ops on a CPU; the headline methods' steps make
none, by reading, and keep their constants as buffers), ops that wait only in their CUDA kernels (``bincount``,
``histc``; none in a step), and DDP's own waits (``find_unused_parameters`` copies its map to the host). Adam's
own reads are left out: on the CPU it reads its step counters, which are host tensors there; on CUDA the
engine's Adam is fused and keeps them on the GPU.
"""

import json
import traceback
from collections import Counter

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from rcl import methods, runs, train

_READS = {"aten::_local_scalar_dense", "aten::nonzero", "aten::masked_select", "aten::_unique2",
          "aten::unique_consecutive", "aten::unique_dim", "aten::is_nonzero", "aten::equal"}  # fmt: skip

#: Trained methods (and settings) whose step still reads back, and where (the test fails once they no longer do).
KNOWN: dict[str, str] = {}


class ReadBacks(TorchDispatchMode):
    """Counts the ops that make the host wait for the device, by where the engine was when they ran."""

    def __init__(self):
        super().__init__()
        self.where = None  # set by the test: ("step", i) inside step i, ("after", i) between step i and i + 1
        self.hits = Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        name = func._schema.name
        masked = name == "aten::index" and any(
            isinstance(i, torch.Tensor) and i.dtype == torch.bool for i in (args[1] or []))
        if (name in _READS or masked) and not any("torch/optim/" in f.filename for f in traceback.extract_stack()):
            self.hits[self.where] += 1
        return func(*args, **(kwargs or {}))


def _run(tmp_path, monkeypatch, method, steps, log_every, checkpoint_every, **settings):
    spy, real = ReadBacks(), train._step

    def step(s, batch, i):
        spy.where = ("step", i)
        out = real(s, batch, i)
        spy.where = ("after", i)
        return out

    monkeypatch.setattr(train, "_step", step)
    cfg = train.make_config(method, "smoke", runs_dir=str(tmp_path), progress="false", steps=steps,
                            log_every=log_every, checkpoint_every=checkpoint_every, **settings)
    with spy:
        train.pretrain(cfg)
    return spy.hits


SETTINGS = {"rcl-emd-median-tau": ("rcl-emd", {"tau_scale": "median"}),
            "supervised-sr": ("supervised", {"supervised_task": "sr"}),
            "supervised-jdd": ("supervised", {"supervised_task": "jdd"})}


@pytest.mark.parametrize("name", [
    pytest.param(m, marks=pytest.mark.xfail(strict=True, reason=KNOWN[m])) if m in KNOWN else m
    for m in [*methods.trained(methods.METHODS), *SETTINGS]
])
def test_a_training_step_reads_nothing_back_from_the_device(tmp_path, monkeypatch, name):
    method, settings = SETTINGS.get(name, (name, {}))
    hits = _run(tmp_path, monkeypatch, method, steps=6, log_every=3, checkpoint_every=6, **settings)
    inside = {w: n for w, n in hits.items() if w and w[0] == "step" and w[1] not in (2, 5)}  # steps 3, 6 log
    assert not inside, f"{name}: read-backs inside steps {inside}"


def test_the_loop_reads_back_only_to_log_or_checkpoint(tmp_path, monkeypatch):
    hits = _run(tmp_path, monkeypatch, "rcl-emd", steps=8, log_every=4, checkpoint_every=2)
    after = {w[1] for w in hits if w and w[0] == "after"}
    assert after == {1, 3, 5, 7}  # after steps 2, 4, 6, 8: checkpoints (and logs), nothing in between
    assert not any(w and w[0] == "step" and w[1] not in (3, 7) for w in hits)  # only the logged steps' diagnostics


def test_a_non_finite_loss_is_named_by_its_step_and_nothing_from_it_on_is_saved(tmp_path, monkeypatch):
    real, calls = methods.core.Noise2Noise.forward, []

    def forward(self, batch):
        out = real(self, batch)
        calls.append(1)
        if len(calls) == 6:  # step 6
            out["loss"] = out["loss"] * float("nan")
        return out

    monkeypatch.setattr(methods.core.Noise2Noise, "forward", forward)
    cfg = train.make_config("n2n", "smoke", runs_dir=str(tmp_path), progress="false", steps=8, log_every=1,
                            checkpoint_every=4)
    with pytest.raises(FloatingPointError, match="non-finite loss in step 6 of 8"):
        train.pretrain(cfg)
    out = train.run_dir(cfg)
    assert runs.read(out)["step"] == 4
    logged = [json.loads(line)["step"] for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert logged == [1, 2, 3, 4, 5]  # checked before each log: step 6's is not written
    assert not (out / "result.json").exists() and not (out / "model.pt").exists()
    monkeypatch.setattr(methods.core.Noise2Noise, "forward", real)
    resumed = train.pretrain(cfg)  # the next attempt resumes from step 4 and finishes
    assert resumed.metrics["steps"] == 8 and all(torch.isfinite(v).all() for v in resumed.model().state_dict().values())
