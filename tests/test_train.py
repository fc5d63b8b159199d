"""The pre-training engine: reuse, exact resume, DDP equivalence, config errors, the CLI under torchrun."""

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from rcl import data, methods, runs, train

HERE = Path(__file__).resolve().parent


def smoke(tmp_path, method="rcl-emd", **kw):
    return train.make_config(method, "smoke", runs_dir=str(tmp_path), progress="false", **kw)


def test_unknown_method_profile_or_key_lists_valid():
    with pytest.raises(ValueError, match="valid methods: .*rcl-emd"):
        train.make_config("simclr", "smoke")
    with pytest.raises(ValueError, match="smoke"):
        train.make_config("n2n", "tpu")
    with pytest.raises(ValueError, match="valid keys: .*batch_size"):
        train.make_config("n2n", "smoke", batchsize=4)
    with pytest.raises(ValueError, match="expected an integer"):
        train.make_config("n2n", "smoke", steps="many")


def test_config_strings_are_parsed():
    cfg = train.make_config("n2n", "smoke", steps="5", tau="0.5", g_e_layers="layer1,layer3", amp="false")
    assert cfg.steps == 5 and cfg.tau == 0.5 and cfg.g_e_layers == ("layer1", "layer3") and cfg.amp is False


def test_batches_are_seeded_distinct_and_sliced():
    cfg = train.make_config("n2n", "smoke", batch_size=4)
    ds = train.build_data(cfg)
    a, b = train.build_batch(ds, cfg, 3), train.build_batch(ds, cfg, 3)
    assert torch.equal(a.x1, b.x1) and torch.equal(a.offset, b.offset)
    assert not torch.equal(a.x1, train.build_batch(ds, cfg, 4).x1)
    halves = [train.build_batch(ds, cfg, 3, rank, 2) for rank in (0, 1)]
    assert torch.equal(torch.cat([h.x1 for h in halves]), a.x1)
    assert not torch.equal(a.x1_second, a.x1)  # an independent second draw


def test_finished_run_is_reused(tmp_path):
    cfg = smoke(tmp_path, "n2n", steps=2)
    first = train.pretrain(cfg)
    assert not first.reused and (first.path / "model.pt").exists() and len(first.history()) == 2
    mtime = (first.path / "model.pt").stat().st_mtime_ns
    second = train.pretrain(cfg)
    assert second.reused and second.path == first.path
    assert (first.path / "model.pt").stat().st_mtime_ns == mtime
    assert train.run_dir(smoke(tmp_path, "n2n", steps=3)) != first.path  # another config, another run


def test_the_random_init_run_is_where_every_run_of_its_seed_starts(tmp_path, monkeypatch):
    """The random-init control is saved without a step and without building the data: its network is the
    initialisation that every other method of the same seed starts from, another seed gives another one, and the
    finished run is reused."""
    with monkeypatch.context() as m:
        m.setattr(train, "build_data", lambda cfg: pytest.fail("the random init built the training data"))
        first = train.pretrain(smoke(tmp_path, "init"))
    assert json.loads((first.path / "config.json").read_text())["method"] == "init"
    assert first.metrics["steps"] == 0 and not first.history() and (first.path / "model.pt").exists()
    start = train.build_method(smoke(tmp_path, "n2n")).model.state_dict()
    saved = first.model().state_dict()
    assert saved.keys() == start.keys() and all(torch.equal(saved[k], start[k]) for k in start)
    trained = train.pretrain(smoke(tmp_path, "n2n")).model().state_dict()
    assert not all(torch.equal(trained[k], start[k]) for k in start)  # the other methods do move from it
    other = train.pretrain(smoke(tmp_path, "init", seed=1)).model().state_dict()
    assert not all(torch.equal(other[k], start[k]) for k in start)
    assert train.pretrain(smoke(tmp_path, "init")).reused


@pytest.mark.parametrize("method", ["rcl-emd", "n2s"])
def test_interrupted_run_resumes_bitwise(tmp_path, method):
    full = train.pretrain(smoke(tmp_path / "a", method, steps=4))
    cfg = smoke(tmp_path / "b", method, steps=4)
    partial = train.pretrain(cfg, stop_after=2)
    assert not (partial.path / "result.json").exists()
    assert json.loads((partial.path / "metrics.jsonl").read_text().splitlines()[-1])["step"] == 2
    resumed = train.pretrain(cfg)
    a, b = full.model().state_dict(), resumed.model().state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert [e["loss"] for e in full.history()] == [e["loss"] for e in resumed.history()]


@pytest.mark.parametrize("method", ["rcl-emd", "vader", "consistency"])
def test_pretrain_on_each_device_resumes(tmp_path, device, method):
    """On CUDA this is the AMP + channels-last path; kernels there may be non-deterministic, so close, not equal."""
    full = train.pretrain(smoke(tmp_path / "a", method, steps=4, device=device.type))
    cfg = smoke(tmp_path / "b", method, steps=4, device=device.type)
    train.pretrain(cfg, stop_after=2)
    resumed = train.pretrain(cfg)
    losses = [[e["loss"] for e in r.history()] for r in (full, resumed)]
    assert all(map(torch.isfinite, torch.tensor(losses).flatten()))
    torch.testing.assert_close(torch.tensor(losses[0]), torch.tensor(losses[1]), rtol=1e-3, atol=1e-5)
    model = resumed.model(device)
    assert next(model.parameters()).device.type == device.type


def torchrun(*args: str) -> subprocess.CompletedProcess:
    """Two CPU processes under torchrun (gloo), one thread each; fails the test with their stderr."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


@pytest.mark.slow
def test_a_non_finite_loss_on_one_process_stops_every_process_before_its_next_checkpoint(tmp_path):
    out = tmp_path / "said"
    torchrun(str(HERE / "ddp_nonfinite_worker.py"), str(tmp_path / "runs"), str(out))
    for rank in (0, 1):  # rank 0's own losses were finite, but DDP averaged rank 1's NaN gradients into its weights
        assert "non-finite loss in step 3 of 6" in Path(f"{out}.rank{rank}.txt").read_text()
    (run,) = (tmp_path / "runs").glob("n2n-*")
    assert runs.read(run)["step"] == 2 and not (run / "model.pt").exists()


@pytest.mark.slow
@pytest.mark.parametrize("method, sets", [("rcl-emd", {}), ("vader", {}), ("supervised", {"supervised_task": "jdd"})],
                         ids=["rcl-emd", "vader", "supervised-jdd"])
def test_ddp_two_processes_equal_one_process_on_the_concatenated_batch(tmp_path, method, sets):
    """Also for the methods that draw random numbers with the batch (VADeR's pixels, the JDD Oracle's noise):
    each process draws its slice of the one-process batch's draws. The JDD case fails where every process
    draws the same noise; VADeR's loss and gradients at initialisation hardly depend on which pixels are drawn
    (it passed then too), so its draws are checked in ``test_methods_dense.py``."""
    out = tmp_path / "ddp.pt"
    torchrun(str(HERE / "ddp_worker.py"), method, str(out), *(f"{k}={v}" for k, v in sets.items()))
    ddp = torch.load(out, weights_only=True)

    cfg = train.make_config(method, "smoke", batch_size=4, progress="false", **sets)
    ds = train.build_data(cfg)
    m = train.build_method(cfg, ds)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # one thread, as each worker: with two, float32 sums run in another order
    try:
        losses = m(train.build_batch(ds, cfg, 0))
        losses["loss"].backward()
    finally:
        torch.set_num_threads(threads)
    torch.testing.assert_close(ddp["loss"], losses["loss"].detach(), rtol=1e-5, atol=1e-6)
    grads = {name: p.grad for name, p in m.model.named_parameters() if p.grad is not None}  # plain VADeR: no h
    assert grads.keys() == ddp["grads"].keys()
    for name, grad in grads.items():
        torch.testing.assert_close(ddp["grads"][name], grad, rtol=1e-4, atol=1e-6, msg=name)


@pytest.mark.slow
def test_cli_pretrain_under_torchrun(tmp_path):
    proc = torchrun(
        "-m", "rcl", "pretrain", "--method", "rcl-emd", "--profile", "smoke",
        "--set", f"runs_dir={tmp_path}", "--set", "progress=false",
    )  # fmt: skip
    assert "finished run" in proc.stdout
    assert len(list(tmp_path.glob("rcl-emd-*/model.pt"))) == 1


@pytest.mark.parametrize("depth, workers", [(1, 1), (2, 1), (5, 1), (4, 3)])
def test_prefetch_yields_every_step_once_in_order_and_raises(depth, workers):
    out = list(data.prefetch(lambda s: s * 10, range(3, 9), pin=False, depth=depth, workers=workers))
    assert out == [30, 40, 50, 60, 70, 80]

    def build(step):
        if step == 2:
            raise ValueError("bad step 2")
        return step

    with pytest.raises(ValueError, match="bad step 2"):
        list(data.prefetch(build, range(5), pin=False, depth=depth, workers=workers))


def _cli_pretrain(runs: Path, steps: int, **popen) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "rcl", "pretrain", "--method", "rcl-emd", "--profile", "smoke",
           "--set", f"runs_dir={runs}", "--set", f"steps={steps}", "--set", "checkpoint_every=3"]  # fmt: skip
    return subprocess.Popen(cmd, env={**os.environ, "OMP_NUM_THREADS": "1", "TQDM_DISABLE": "1"}, **popen)


@pytest.mark.slow
@pytest.mark.parametrize("kill_after_lines", [4, 11])
def test_killed_process_resumes_to_the_same_model(tmp_path, kill_after_lines):
    """SIGKILL mid-run (checkpoint writes included), rerun: the model equals an uninterrupted run's."""
    steps = 20
    proc = _cli_pretrain(tmp_path / "killed", steps)
    log = None
    while proc.poll() is None:
        log = next((tmp_path / "killed").glob("*/metrics.jsonl"), None)
        if log is not None and len(log.read_text().splitlines()) >= kill_after_lines:
            proc.kill()
            break
    proc.wait(timeout=120)
    assert log is not None and not (log.parent / "result.json").exists(), "the run finished before it was killed"
    assert _cli_pretrain(tmp_path / "killed", steps).wait(timeout=300) == 0
    assert _cli_pretrain(tmp_path / "straight", steps).wait(timeout=300) == 0
    (a,) = (tmp_path / "killed").glob("*/model.pt")
    (b,) = (tmp_path / "straight").glob("*/model.pt")
    assert a.parent.name == b.parent.name
    sa, sb = (torch.load(p, weights_only=True)["state"] for p in (a, b))
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert len(log.read_text().splitlines()) == steps  # the log holds each step once


@pytest.mark.slow
def test_two_processes_on_one_run_train_it_once(tmp_path):
    procs = [_cli_pretrain(tmp_path, 12, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    errs = [p.communicate(timeout=300)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0]
    (run,) = tmp_path.glob("rcl-emd-*")
    assert len((run / "metrics.jsonl").read_text().splitlines()) == 12
    assert sum("another process is training this run" in e for e in errs) <= 1


@pytest.mark.parametrize("key,value,message", [
    ("tau", 0.0, "tau=0.0 must be > 0"), ("momentum", 1.0, "momentum=1.0 must lie in"),
    ("loss_norm", "l3", "loss_norm='l3' is not valid"), ("g_e", "vgg", "g_e='vgg' is not valid"),
    ("alpha", -1.0, "alpha=-1.0 must be >= 0"), ("lr", 0.0, "lr=0.0 must be > 0"),
    ("sigma_max", -3.0, "sigma_max=-3.0 must be >= 0"), ("max_side", 16, "max_side=16 must be None or >= tile"),
    ("max_side", -1, "max_side=-1 must be None or >= tile"),
])  # fmt: skip
def test_values_are_validated_where_they_are_set(key, value, message):
    with pytest.raises(ValueError, match=message):
        train.make_config("rcl-emd", "smoke", **{key: value})


def test_every_config_key_round_trips_through_set():
    """``--set key=value`` reaches every field, the method's hyper-parameters included, and parses back to the
    profile's own value."""
    cfg = train.make_config("rcl-emd", "cpu")
    for key in train.config_keys():
        if key == "method":
            continue
        value = getattr(cfg, key)
        text = (",".join(value) if isinstance(value, tuple) else "none" if value is None
                else str(value).lower() if isinstance(value, bool) else str(value))
        assert getattr(train.make_config("rcl-emd", "cpu", **{key: text}), key) == value, key
    assert set(train.config_keys()) >= {f.name for f in dataclasses.fields(methods.MethodConfig)}


def test_a_log_line_torn_by_an_interruption_is_dropped_on_resume(tmp_path):
    full = train.pretrain(smoke(tmp_path / "a", "n2n", steps=4, log_every=1))
    cfg = smoke(tmp_path / "b", "n2n", steps=4, log_every=1)
    partial = train.pretrain(cfg, stop_after=2)
    log = partial.path / "metrics.jsonl"
    written = log.read_text().splitlines()
    with log.open("a") as f:
        f.write('{"step": 3, "loss": 0.1')  # killed while appending
    assert [e["step"] for e in runs.history(partial.path)] == [1, 2]
    resumed = train.pretrain(cfg)
    assert [e["loss"] for e in resumed.history()] == [e["loss"] for e in full.history()]
    assert log.read_text().splitlines()[:2] == written  # the entries before the tear, byte for byte
    log.write_text('{"step": 1}\nnot json\n{"step": 2}\n')
    with pytest.raises(ValueError, match=r"metrics.jsonl: line 2 is not JSON"):
        runs.history(partial.path)


@pytest.mark.parametrize("device", ["cpu", "cuda"])
def test_torchrun_joins_the_group_on_its_own_device(monkeypatch, device):
    """Under torchrun a CPU run joins with Gloo; a CUDA run makes cuda:LOCAL_RANK current, then joins with NCCL
    bound to it (so no collective lands on GPU 0)."""
    calls = []
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("LOCAL_RANK", "1")
    monkeypatch.setattr(train.dist, "is_initialized", lambda: False)
    monkeypatch.setattr(train.dist, "get_rank", lambda: 1)
    monkeypatch.setattr(train.dist, "init_process_group", lambda backend, **kw: calls.append(("init", backend, kw)))
    monkeypatch.setattr(train.torch.cuda, "set_device", lambda d: calls.append(("set_device", d)))
    monkeypatch.setattr(train._config, "device", lambda name: torch.device(name))
    monkeypatch.setattr(train.torch.cuda, "device_count", lambda: 2)
    cfg = dataclasses.replace(train.make_config("n2n", "smoke"), device=device)
    assert train._distributed(cfg) == (1, 2, 1)
    if device == "cpu":
        assert calls == [("init", "gloo", {})]
        return
    cuda1 = torch.device("cuda", 1)
    assert calls == [("set_device", cuda1), ("init", "nccl", {"device_id": cuda1})]
    with pytest.raises(ValueError, match=r"device='cuda:0' under torchrun: each process trains on its own GPU"):
        train._distributed(dataclasses.replace(cfg, device="cuda:0"))  # every rank on GPU 0
    monkeypatch.setattr(train.torch.cuda, "device_count", lambda: 1)  # a launcher that shows each process one GPU
    with pytest.raises(ValueError, match=r"LOCAL_RANK=1 but this process sees 1 CUDA device"):
        train._distributed(cfg)


def test_a_run_whose_network_was_deleted_is_trained_again(tmp_path):
    """``apply`` and ``evaluate`` say "the run has not finished (no model.pt); run the pretrain command again":
    that command must then train it, not report the run reused (its ``result.json`` is still there)."""
    cfg = train.make_config("n2n", "smoke", runs_dir=str(tmp_path), progress=False)
    first = train.pretrain(cfg)
    model = (first.path / "model.pt").read_bytes()
    (first.path / "model.pt").unlink()
    again = train.pretrain(cfg)
    assert not again.reused and (again.path / "model.pt").read_bytes() == model
    assert [e["step"] for e in again.history()] == list(range(1, cfg.steps + 1))
    assert train.pretrain(cfg).reused
