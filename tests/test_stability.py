"""Loss spikes in a run's log (rcl.stability): what counts as one, a run's log in one row, and how the
sensitivity study's steps factor is read with its runs' spikes."""

import json
import math

import numpy as np
import pandas as pd

from rcl import sensitivity, stability, train


def _log(losses):
    return [{"step": 10 * (i + 1), "loss": v} for i, v in enumerate(losses)]


def _write_log(run, losses):
    (run / "metrics.jsonl").write_text("\n".join(json.dumps(e) for e in _log(losses)))


def test_a_spike_is_a_loss_far_above_the_median_before_it_after_the_first_five():
    flat = _log([1.0, 0.9, 0.8, 0.7, 0.6, 0.5, 0.45, 0.4])
    assert stability.spikes(flat) == []
    early = _log([1.0, 50.0, 0.8, 0.7, 0.6, 0.5])  # the start of training is high by nature: never a spike
    assert stability.spikes(early) == []
    late = _log([1.0, 0.9, 0.8, 0.7, 0.6, 0.5, 0.6, 4.1, 300.0, 0.5])
    assert stability.spikes(late) == [(80, 4.1), (90, 300.0)]  # 4.1 > 5 × 0.75, the median of the seven before
    assert stability.spikes(late, factor=10.0) == [(90, 300.0)]


def test_a_runs_log_in_one_row(tmp_path):
    _write_log(tmp_path, [1, 0.9, 0.8, 0.7, 0.6, 0.5, 9, 0.4])
    row = stability.summary(tmp_path)
    assert row == {"logged": 8, "last loss": 0.4, "largest loss": 9, "at step": 70, "spikes": 1, "first spike": 70}
    empty = stability.summary(tmp_path / "nothing")
    assert empty["logged"] == 0 and math.isnan(empty["largest loss"]) and empty["spikes"] == 0
    assert empty["at step"] is None and empty["first spike"] is None


def test_the_steps_factors_runs_are_found_where_the_study_put_them(tmp_path):
    plan = sensitivity.plan("smoke")
    (name,) = plan[(plan.factor == "steps") & ~plan.default].setting
    r = plan[plan.setting == name].iloc[0]
    pretrain = sensitivity.study_arguments("smoke", [r.method], r.overrides, 4, tmp_path)["pretrain"]
    path = train.run_dir(train.make_config(r.method, "smoke", **pretrain))
    path.mkdir(parents=True)
    (path / "result.json").write_text("{}")
    _write_log(path, [1, 1, 1, 1, 1, 1, 8])
    logs = sensitivity.training_logs("smoke", list(np.array([4, 5])), tmp_path)  # seeds as a table gives them
    assert list(logs.steps) == sorted(logs.steps) and len(logs) == 2 * (plan.factor == "steps").sum()
    found = logs[logs.here]
    assert found[["setting", "seed", "spikes", "first spike"]].values.tolist() == [[name, 4, 1, 70]]
    line = sensitivity.spikes_line(logs)
    assert line.startswith("Of the 1 run of the steps factor whose logs are here and long enough, 1 shows a loss spike")
    assert f"{name} (seed 4: 1 of 1); the earliest at step 70" in line and "3 runs not found in `runs_dir`." in line
    calm = sensitivity.spikes_line(logs.assign(spikes=logs.spikes.where(~logs.here, 0)))
    assert "0 show a loss spike" in calm and "instability" not in calm
    _write_log(path, [1, 1, 8])  # the smoke profile's runs log a loss or three: too few to show a spike
    short = sensitivity.spikes_line(sensitivity.training_logs("smoke", [4, 5], tmp_path))
    assert "Of the 0 runs" in short and "1 run logged fewer than 6 losses, too few to show one" in short
    assert "spikes cannot be read here" in sensitivity.spikes_line(logs[~logs.here])
    assert "cannot be read" in sensitivity.spikes_line(pd.DataFrame(columns=logs.columns))


def test_a_published_copy_carries_the_logs_a_build_without_the_runs_reads(tmp_path):
    plan = sensitivity.plan("smoke")
    (name,) = plan[(plan.factor == "steps") & ~plan.default].setting
    r = plan[plan.setting == name].iloc[0]
    pretrain = sensitivity.study_arguments("smoke", [r.method], r.overrides, 4, tmp_path / "runs")["pretrain"]
    path = train.run_dir(train.make_config(r.method, "smoke", **pretrain))
    path.mkdir(parents=True)
    (path / "result.json").write_text("{}")
    _write_log(path, [1, 1, 1, 1, 1, 1, 8])
    extra = sensitivity.published_extra("smoke", [4], tmp_path / "runs")
    assert json.loads(json.dumps(extra, allow_nan=False)) == extra  # JSON data: no NaN
    (kept,) = extra["training_logs"]  # the log itself, read by the reader's rule: never a stale reading
    assert (kept["setting"], kept["seed"]) == (name, 4) and kept["log"] == [[10 * (i + 1), v] for i, v in
                                                                              enumerate([1, 1, 1, 1, 1, 1, 8])]
    elsewhere = sensitivity.training_logs("smoke", [4], tmp_path / "other", extra["training_logs"])
    row = elsewhere[elsewhere.setting == name].iloc[0]
    assert not row.here and row.recorded and (row.spikes, row["first spike"], row.logged) == (1, 70, 7)
    assert not elsewhere[elsewhere.setting != name].recorded.any()  # the default's run: neither here nor recorded
    # a published copy's own record wins over a run of this build at the same place, which did not make its rows
    calm = [{**kept, "log": kept["log"][:-1]}]  # without the spike
    assert sensitivity.training_logs("smoke", [4], tmp_path / "runs", calm).query("here").spikes.tolist() == [1]
    shown = sensitivity.training_logs("smoke", [4], tmp_path / "runs", calm, prefer_recorded=True)
    assert shown.query("recorded").spikes.tolist() == [0] and not shown.here.any()
    line = sensitivity.spikes_line(elsewhere)
    assert "whose logs were recorded with the published copy and are long enough, 1 shows a loss spike" in line
    assert "1 run not found in `runs_dir`" in line
