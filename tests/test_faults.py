"""Runs and files that go wrong: hostile pickles, broken checkpoints, a full disk, failed runs, parameters
that would go astray. Each test says what used to happen."""

from __future__ import annotations

import errno
import json

import pytest
import torch

from rcl import cache, config, runs, train
from rcl.notebooks import NOTEBOOK_DIR as NOTEBOOKS


class _Payload:
    """Pickles to a call that writes a file: what a crafted ``.pt`` file could do when unpickled."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def smoke(tmp_path, method="n2n", **kw):
    return train.make_config(method, "smoke", runs_dir=str(tmp_path / "runs"), progress=False, **kw)


def test_loading_a_crafted_model_never_executes_it(tmp_path):
    """``model.pt`` and checkpoints were unpickled with ``weights_only=False``: a crafted file ran its code."""
    run = tmp_path / "run"
    run.mkdir()
    marker = tmp_path / "executed"
    torch.save({"unet": {}, "state": _Payload(marker)}, run / "model.pt")
    with pytest.raises(ValueError, match=r"model\.pt: not a readable model"):
        runs.load_model(run)
    torch.save({"step": 1, "method": _Payload(marker)}, run / runs.CURRENT)
    assert runs.read(run) is None  # refused like any unreadable checkpoint
    assert not marker.exists()


def _model(result):
    return result.model().state_dict()


def _same(a, b):
    return all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("broken", ["current", "both"])
def test_a_broken_checkpoint_resumes_from_the_previous_one_or_restarts(tmp_path, capsys, broken):
    """A truncated ``checkpoint.pt`` blocked its run for ever with a raw torch error."""
    full = train.pretrain(smoke(tmp_path / "a", steps=6, checkpoint_every=2))
    cfg = smoke(tmp_path / "b", steps=6, checkpoint_every=2)
    partial = train.pretrain(cfg, stop_after=4)
    assert (partial.path / runs.PREVIOUS).exists()  # the checkpoint of step 2, kept
    (partial.path / runs.CURRENT).write_bytes(b"")  # killed while the disk was full: an empty file
    if broken == "both":
        (partial.path / runs.PREVIOUS).write_bytes(b"PK\x03\x04 truncated")
    resumed = train.pretrain(cfg)
    err = capsys.readouterr().err
    assert f"{partial.path / runs.CURRENT}: cannot read this checkpoint" in err
    assert ("resuming from" if broken == "current" else "restarting the run from step 0") in err
    assert _same(_model(full), _model(resumed))  # and the run ends exactly where an unbroken one does


def test_a_full_disk_names_the_file_and_leaves_no_temporary(tmp_path):
    """A full disk left ``*.tmp`` files and a C++ message."""
    target = tmp_path / "runs" / "checkpoint.pt"

    def full(f):
        f.write(b"partial")
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(OSError, match=r"checkpoint\.pt: the disk is full") as info:
        cache.atomic_write(target, full)
    assert info.value.errno == errno.ENOSPC
    assert list(target.parent.iterdir()) == []


def test_a_run_that_fails_before_its_first_checkpoint_leaves_nothing(tmp_path):
    """A failed run left an orphan ``runs/<method>-<key>/`` with only ``config.json`` and a lock."""
    cfg = smoke(tmp_path, batch_size=64)  # more than the built-in images' 47 instances
    with pytest.raises(ValueError, match="batch_size=64 exceeds"):
        train.pretrain(cfg)
    assert not train.run_dir(cfg).exists()


def test_a_run_that_fails_later_says_why_and_resumes(tmp_path, monkeypatch):
    cfg = smoke(tmp_path, steps=4, checkpoint_every=2)
    real = train._step

    def fail_at_3(s, batch, step):
        if step == 3:
            raise FloatingPointError("non-finite loss (simulated)")
        return real(s, batch, step)

    monkeypatch.setattr(train, "_step", fail_at_3)
    with pytest.raises(FloatingPointError):
        train.pretrain(cfg)
    mark = json.loads((train.run_dir(cfg) / "failed.json").read_text())
    assert mark["error"] == "FloatingPointError" and "simulated" in mark["reason"]
    monkeypatch.setattr(train, "_step", real)
    done = train.pretrain(cfg)
    assert not (done.path / "failed.json").exists() and (done.path / "result.json").exists()


def test_a_resumed_run_reports_its_last_loss_and_its_whole_time(tmp_path):
    """After a resume ``result.json`` held the running loss of the last segment (or None when killed after
    the last checkpoint) and that segment's seconds only."""
    cfg = smoke(tmp_path, steps=4, checkpoint_every=2)
    first = train.pretrain(cfg, stop_after=2)
    seconds_before = first.history()[-1]["time_s"]
    done = train.pretrain(cfg)
    assert done.metrics["final_loss"] == done.history()[-1]["loss"]
    assert done.metrics["seconds"] >= seconds_before
    # killed after the last checkpoint, before the result was written: no step left to run
    (done.path / "result.json").unlink()
    (done.path / "model.pt").unlink()
    again = train.pretrain(cfg)
    assert again.metrics["final_loss"] == done.metrics["final_loss"]
    assert again.metrics["seconds"] >= done.history()[-1]["time_s"] > 0


def test_data_dir_without_a_dataset_that_reads_it_is_an_error():
    """``--set data_dir=X`` without ``dataset=folder`` trained silently on the built-in images."""
    with pytest.raises(ValueError, match="data_dir='photos' is set but dataset='builtin' does not read it"):
        train.make_config("n2n", "smoke", data_dir="photos")


@pytest.mark.parametrize("section,key,value,message", [
    ("noise", "max_side", -1, "max_side=-1 is not valid: it must be >= 1"),
    ("proxy", "sigma_grid", [-3.0], r"sigma_grid=\[-3.0\] is not valid: it must be >= 0"),
    ("labels", "steps", 0, "steps=0 is not valid: it must be >= 1"),
])  # fmt: skip
def test_notebook_numbers_out_of_range_are_named(section, key, value, message):
    """``max_side=-1`` was accepted."""
    with pytest.raises(ValueError, match=message):
        config.settings(section, "smoke", **{key: value})


def test_a_negative_noise_level_is_named_plainly():
    """``sigma_max=-3`` said ``sigma_max=False is not valid; choose one of (True,)``."""
    with pytest.raises(ValueError, match=r"sigma_max=-3.0 is not valid: it must be a number > 0"):
        config.check_positive("sigma_max", -3.0)
    nb = json.loads((NOTEBOOKS / "01_noise_simulation.ipynb").read_text())
    code = "".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code")
    assert 'config.check_positive("sigma_max", sigma_max' in code


def test_settings_that_make_positives_trivial_are_refused():
    """crop = tile made both crops of a positive pair the same pixels (the gpu profile's on the bundled images)."""
    with pytest.raises(ValueError, match="crop=64 must be smaller than tile=64: .* trivial positive"):
        train.make_config("rcl-emd", "smoke", crop=64, tile=64)
