"""``benchmarks/gpu_session.sh``, the one script a GPU loan runs, checked at the smoke profile on the CPU.

A loan is rare and short, so the script must not be the thing that fails on it. Each of its phases reports a
failure in its log and goes on (a run there should keep what the other phases give), so this test reads the
log: at ``PROFILE=smoke`` every phase runs and none fails, and the at-scale results file it writes loads.
"""

import os
import subprocess
import sys

import pytest
from paths import ROOT

from rcl import apply, at_scale, data


@pytest.mark.slow
def test_the_gpu_session_script_runs_every_phase_at_the_smoke_profile(tmp_path):
    photos = tmp_path / "photos"
    for split, names in (("train", data.BUILTIN_TRAIN), ("test", data.BUILTIN_TEST[:2])):
        (photos / split).mkdir(parents=True)
        for name, image in data.builtin_images(names).items():
            apply.write_png(photos / split / f"{name}.png", image)
    out, runs = tmp_path / "out", tmp_path / "runs"
    env = {**os.environ, "PROFILE": "smoke", "PHOTOS": str(photos), "OUT": str(out), "RUNS": str(runs),
           "PY": sys.executable, "BUDGET_S": "900", "TMPDIR": str(tmp_path)}
    proc = subprocess.run(["bash", str(ROOT / "benchmarks" / "gpu_session.sh")], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=1200)
    log = (out / "log.txt").read_text()
    assert proc.returncode == 0, log[-3000:]
    assert "## failed" not in log and "## skipped" not in log, log[-3000:]
    phases = [line for line in log.splitlines() if line.startswith("## ") and "left)" in line]
    assert len(phases) >= 6  # the at-scale run, the step benchmark, flops twice, g_e and evaluation
    assert {"env.txt", "log.txt", "step.txt", "flops.txt", "more.txt"} <= {p.name for p in out.iterdir()}
    (results,) = out.glob("at-scale-smoke-*.json")
    result = at_scale.load(results)
    assert result.provenance["profile"] == "smoke" and len(at_scale.training(result)) >= 7
    assert result.provenance["data"]["test_images"] == 2  # the held-out photographs, all evaluated
    # in words, what they were (DATA_NOTE's default): the folder's name and its counts
    assert result.provenance["data"]["note"] == (f"photos: {len(data.BUILTIN_TRAIN)} files in train/; held out, the "
                                                 "first 2 of test/ by name")
    assert not result.residual_rows.empty  # what each network's residual is, at the file's scale
    assert not runs.exists()  # removed once the at-scale run succeeded: only the small results file comes back
