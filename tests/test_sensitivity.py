"""The sensitivity study's plan, its named configuration hook, and its analysis on known numbers."""

import pandas as pd
import pytest

from rcl import config, sensitivity, train


@pytest.mark.parametrize("profile", ["smoke", "cpu", "gpu"])
def test_plan_has_one_default_per_factor_and_the_references(profile):
    plan = sensitivity.plan(profile)
    rcl = plan[plan.factor != "reference"]
    assert list(dict.fromkeys(rcl.factor)) == list(sensitivity.FACTORS)
    assert (rcl.groupby("factor").default.sum() == 1).all()
    assert all(o == {} for o in rcl[rcl.default].overrides)  # the default is the profile's own run
    assert {"N2N", "Oracle"} <= set(plan[plan.factor == "reference"].setting)
    for r in rcl.itertuples():  # every setting is a valid pre-training config
        train.make_config(r.method, profile, **r.overrides)
    if profile == "smoke":
        assert (rcl.groupby("factor").size() == 2).all()
    else:
        assert set(rcl[rcl.factor == "alpha"].setting) >= {"α = 0.001", "α = 1", "α = 10"}
        assert {"g_e = none", "g_e = self-supervised"} <= set(rcl[rcl.factor == "g_e"].setting)
        assert any("median" in s for s in rcl[rcl.factor == "tau"].setting)


def test_combinations_share_the_default_run():
    combos, plan = sensitivity._combos("cpu", [0, 1])
    keys = {(tuple(c["methods"]), tuple(sorted(c["overrides"].items())), c["seed"]) for c in combos}
    assert len(keys) == len(combos) == 2 * plan.key.nunique()
    assert plan.key.nunique() < len(plan)  # the default setting appears under every factor, runs once


def test_named_configuration_resolves_to_its_method_and_overrides(monkeypatch):
    monkeypatch.setitem(config.NAMED_CONFIGS, "rcl-emd-x", {"method": "rcl-emd", "overrides": {"tau": 0.5},
                                                             "why": "test"})  # fmt: skip
    cfg = train.make_config("rcl-emd-x", "smoke")
    assert cfg.method == "rcl-emd" and cfg.tau == 0.5
    assert train.make_config("rcl-emd-x", "smoke", tau=0.2).tau == 0.2  # the caller's override wins
    assert train.run_dir(cfg) == train.run_dir(train.make_config("rcl-emd", "smoke", tau=0.5))


def test_analyse_finds_the_factor_that_matters():
    rows = []
    for seed in (0, 1, 2):
        for factor, setting, default, psnr in [
            ("tau", "τ = 0.01", True, 30.0), ("tau", "τ = 1", False, 33.0),
            ("alpha", "α = 0.001", True, 30.0), ("alpha", "α = 1", False, 30.05),
            ("reference", "N2N", False, 31.0),
        ]:  # fmt: skip
            rows.append({"factor": factor, "setting": setting, "default": default, "method": "x", "task": "denoise",
                         "seed": seed, "trial": 0, "image": "a", "psnr": psnr + 0.1 * seed, "ssim": 0.5})  # fmt: skip
    a = sensitivity.analyse(pd.DataFrame(rows))
    f = a["factors"].set_index("factor")
    assert f.loc["tau", "matters"] and not f.loc["alpha", "matters"]
    assert f.loc["tau", "best setting"] == "τ = 1" and f.loc["tau", "best − default (dB)"] == pytest.approx(3.0)
    assert a["best_vs_n2n"]["best − N2N (dB)"] == pytest.approx(2.0)
