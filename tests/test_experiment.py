"""The experiment's design: backbones that can denoise, per-σ test conditions, both aggregations, seed-aware
intervals, test images disjoint from training, and the mechanism diagnostics."""

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from rcl import analysis, data, evaluate, results, stats, summary, train
from rcl.methods import core
from rcl.models import SKIPS, UNet, UNetConfig


@pytest.mark.parametrize("skip", SKIPS)
def test_backbones_keep_shapes_and_compose_from_features(skip, rng):
    model = UNet(width=8, depth=2, skip=skip)
    x = torch.rand(2, 3, 30, 22, generator=rng)
    out = model(x)
    assert out.shape == x.shape
    torch.testing.assert_close(model.output(model.features(x), x), out)


def test_residual_backbone_with_a_zero_head_is_the_identity(rng):
    model = UNet(width=8, depth=2, skip="residual")
    torch.nn.init.zeros_(model.head.weight)
    torch.nn.init.zeros_(model.head.bias)
    x = torch.rand(1, 3, 24, 24, generator=rng)
    torch.testing.assert_close(model(x), x)
    # the proxy protocol fits the head to y − x, so a perfect head gives f(x) = y
    y = torch.rand_like(x)
    torch.testing.assert_close(model.head_target(x, y) + x, y)


def test_concat_backbone_sees_the_input_at_the_top_decoder_level():
    plain, concat = UNet(width=8, depth=2), UNet(width=8, depth=2, skip="concat")
    assert concat.dec[-1][0].in_channels == plain.dec[-1][0].in_channels + 3


def test_bad_skip_names_the_valid_ones():
    with pytest.raises(ValueError, match="residual"):
        UNetConfig(skip="global")


def test_residual_proxy_head_is_fitted_to_the_residual(rng):
    """Under the proxy protocol with the residual skip the new head maps φ(x) to y − x and the output is
    x + h(φ): a least-squares head on random features then stays near the input. Fitted to y instead (the
    plain U-Net's target) and added to x, the output would be about 2x − noise, far below the input."""
    cfg = evaluate.ProxyConfig(task="denoise", max_side=96, n_labels=4, label_size=32, trials=1, head_steps=0,
                               test_draws=1, sigma_grid=(10.0,))
    torch.manual_seed(0)
    model = UNet(width=8, depth=2, skip="residual")
    df, _ = evaluate.proxy_evaluate(model, cfg)
    ref = evaluate.reference_evaluate(cfg)
    # the least-squares head starts at ~0 residual correction for random features: never far below the input
    assert df.psnr.mean() > ref.psnr.mean() - 1.0


def test_test_cases_cover_the_sigma_grid_and_the_mixed_range():
    cfg = evaluate.ProxyConfig(task="denoise", max_side=64, test_draws=2, sigma_grid=(0.0, 10.0, 20.0))
    rows = evaluate.reference_evaluate(cfg)
    per_image = rows[rows.trial == 0].groupby("image").condition.apply(list)
    assert all(c == ["σ=0", "σ=10", "σ=20", "σ~U[0,20]", "σ~U[0,20]"] for c in per_image)
    by = rows[rows.trial == 0].groupby("condition").psnr.mean()
    assert by["σ=0"] == pytest.approx(100.0)  # an exact input scores the floor's 100 dB, not infinity
    assert by["σ=10"] > by["σ=20"]
    sr = evaluate.reference_evaluate(evaluate.ProxyConfig(task="sr", max_side=64))
    assert set(sr.condition) == {"clean"}


def test_aggregations_differ_as_defined():
    df = pd.DataFrame({"method": "m", "condition": "c", "psnr": [20.0, 40.0], "mse": [1e-2, 1e-4]})
    out = evaluate.aggregate(df, ["method", "condition"]).iloc[0]
    assert out.psnr == pytest.approx(30.0)
    assert out.psnr_of_mse == pytest.approx(-10 * np.log10((1e-2 + 1e-4) / 2))
    assert out.psnr_of_mse < out.psnr  # the mean MSE weighs the hard case more


def _rows(values: dict[tuple[str, int, int], float], condition="σ~U[0,20]") -> pd.DataFrame:
    return pd.DataFrame([{"method": m, "seed": s, "trial": t, "task": "denoise", "image": "a", "condition": condition,
                          "psnr": v, "mse": 10 ** (-v / 10)} for (m, s, t), v in values.items()])


def test_paired_difference_over_seeds_is_a_t_interval_over_seeds():
    vals = {}
    for s, d in enumerate([0.1, 0.5, 0.3]):
        for t in range(4):
            vals[("a", s, t)] = 30 + d + 0.001 * t
            vals[("b", s, t)] = 30 + 0.001 * t
    out = stats.paired_difference(_rows(vals), "a", "b", "denoise")
    assert out["unit"] == "seed" and out["n"] == 3
    assert out["mean_diff_db"] == pytest.approx(0.3)
    from scipy.stats import t as student_t

    half = student_t.ppf(0.975, 2) * np.std([0.1, 0.5, 0.3], ddof=1) / np.sqrt(3)
    assert out["ci95"] == pytest.approx((0.3 - half, 0.3 + half))
    one_seed = stats.paired_difference(_rows({k: v for k, v in vals.items() if k[1] == 0}), "a", "b", "denoise")
    assert one_seed["unit"] == "trial" and one_seed["n"] == 4


def test_mixed_range_draws_take_one_sigma_in_each_stratum():
    """An image's mixed-range draws cut [0, σ_max] into equal strata, one draw in each: the strata tile the
    range, and each case's noise (measured as the std of input − target) lies in its own stratum."""
    cfg = evaluate.ProxyConfig(task="denoise", max_side=128, test_draws=5, sigma_grid=(), test_crop=96)
    strata = evaluate.mixed_strata(cfg)
    assert strata[0][0] == 0.0 and strata[-1][1] == cfg.sigma_max
    assert all(a[1] == b[0] for a, b in zip(strata, strata[1:]))
    assert np.allclose([hi - lo for lo, hi in strata], cfg.sigma_max / 5)
    test = evaluate.test_images(cfg)
    cases = [(name, 255 * float((x - y).std())) for name, _, x, y in evaluate._test_pairs(cfg, test)]
    for name in test:
        measured = [s for n, s in cases if n == name]
        assert len(measured) == 5
        for (lo, hi), s in zip(strata, measured):
            assert lo - 1.0 <= s <= hi + 1.0  # clipping at 0 and 1 lowers a draw's std a little


def test_crossed_interval_reduces_to_a_t_interval_over_the_factor_that_varies():
    """Seed effects plus an interaction whose row and column sums are zero: the images' mean square is 0, below
    the interaction's, so the images' component is set to zero and the interval is Student's t over the seeds'
    means (S − 1 degrees of freedom). Transposed, the same over the images' means."""
    from scipy.stats import t as student_t

    interaction = 0.1 * np.array([[1.0, -1.0, 0.0, 0.0], [-1.0, 1.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]])
    seeds = np.array([0.1, 0.5, 0.3])
    table = seeds[:, None] + interaction
    for d, means in ((table, table.mean(1)), (table.T, table.T.mean(0))):  # transposed: the images (columns) vary
        out = stats.crossed_interval(d)
        half = student_t.ppf(0.975, len(means) - 1) * np.std(means, ddof=1) / np.sqrt(len(means))
        assert out["mean"] == pytest.approx(means.mean())
        assert out["ci95"] == pytest.approx((means.mean() - half, means.mean() + half))
        assert out["df"] == pytest.approx(len(means) - 1)
    with pytest.raises(ValueError, match="seeds × images"):
        stats.crossed_interval(np.ones((1, 4)))
    with pytest.raises(ValueError, match="1 cells are missing"):
        stats.crossed_interval(np.where(interaction == 0.1, np.nan, interaction)[:, :3][[0, 2]])


def test_crossed_interval_with_every_component_is_the_anova_formula():
    """Seed, image and interaction effects all present: V = (MS_s + MS_i − MS_e)/(SI), as computed by hand."""
    d = np.array([[0.3, 1.2, -0.4, 0.9], [0.8, 1.5, 0.2, 1.1], [0.1, 0.7, -0.9, 0.8]])
    s, i = d.shape
    mu, rows, cols = d.mean(), d.mean(1), d.mean(0)
    ms_s, ms_i = i * ((rows - mu) ** 2).sum() / (s - 1), s * ((cols - mu) ** 2).sum() / (i - 1)
    ms_e = ((d - rows[:, None] - cols[None] + mu) ** 2).sum() / ((s - 1) * (i - 1))
    assert ms_s > ms_e and ms_i > ms_e
    out = stats.crossed_interval(d)
    assert out["se"] == pytest.approx(np.sqrt((ms_s + ms_i - ms_e) / (s * i)))
    dof = (ms_s + ms_i - ms_e) ** 2 / (ms_s**2 / (s - 1) + ms_i**2 / (i - 1) + ms_e**2 / ((s - 1) * (i - 1)))
    assert out["df"] == pytest.approx(dof)


def test_crossed_interval_covers_the_mean_at_its_level():
    """Seeds × images tables drawn from a crossed random-effects model (seed, image and interaction effects):
    the 95% interval covers the true mean in about 95% of draws (1,000 tables of 3 seeds × 4 images)."""
    gen = np.random.default_rng(0)
    covered = []
    for _ in range(1000):
        d = 0.7 + 0.5 * gen.standard_normal((3, 1)) + gen.standard_normal((1, 4)) + 0.3 * gen.standard_normal((3, 4))
        lo, hi = stats.crossed_interval(d)["ci95"]
        covered.append(lo <= 0.7 <= hi)
    assert 0.92 <= np.mean(covered) <= 0.985


def test_paired_difference_over_seeds_and_images_includes_the_images_spread():
    """Several seeds and test images: the unit is seed × image. When the difference changes sign from one
    photograph to another, a t interval over seeds (each averaged over the same four images) excludes zero,
    but the interval that treats the images as a sample does not."""
    image_effect = {"a": -1.0, "b": 0.2, "c": 1.4, "d": 0.4}
    rows = []
    for s, seed_effect in enumerate([0.24, 0.28, 0.26]):
        for img, e in image_effect.items():
            rows += [{"method": "a", "seed": s, "trial": 0, "task": "denoise", "image": img, "condition": "c",
                      "psnr": 30 + seed_effect + e},
                     {"method": "b", "seed": s, "trial": 0, "task": "denoise", "image": img, "condition": "c",
                      "psnr": 30.0}]
    out = stats.paired_difference(pd.DataFrame(rows), "a", "b", "denoise")
    assert out["unit"] == "seed×image" and out["n"] == 3 and out["n_images"] == 4
    assert out["mean_diff_db"] == pytest.approx(0.51)
    lo, hi = stats.t_interval(np.array([0.24, 0.28, 0.26]) + 0.25)
    assert lo > 0  # seeds alone: the difference looks certain
    assert out["ci95"][0] < 0 < out["ci95"][1]  # but over photographs like these the mean is unsure
    assert summary.interval_over(out) == "3 seeds × 4 test images"


def test_paired_difference_averages_trials_and_cases_and_drops_an_incomplete_image():
    """Each (seed, image) cell is the mean over trials and the image's cases; an image one method lacks for
    one seed leaves the table (3 images remain), and with one complete image left the unit is the seed."""
    gen = np.random.default_rng(1)
    rows = []
    for s in range(3):
        for img in "abcd":
            for t in range(2):
                for _case in range(3):
                    v = gen.normal(30, 1)
                    rows += [{"method": "a", "seed": s, "trial": t, "task": "denoise", "image": img, "condition": "c",
                              "psnr": v + 0.5 + 0.1 * s}, {"method": "b", "seed": s, "trial": t, "task": "denoise",
                                                            "image": img, "condition": "c", "psnr": v}]
    df = pd.DataFrame(rows)
    out = stats.paired_difference(df, "a", "b", "denoise")
    assert out["unit"] == "seed×image" and out["mean_diff_db"] == pytest.approx(0.6)
    holes = df[~((df.method == "b") & (df.seed == 1) & (df.image == "c"))]
    out = stats.paired_difference(holes, "a", "b", "denoise")
    assert out["unit"] == "seed×image" and out["n_images"] == 3 and out["n"] == 3
    one = holes[~((holes.method == "b") & (holes.seed == 2) & holes.image.isin(["a", "b"]))]
    out = stats.paired_difference(one, "a", "b", "denoise")
    assert out["unit"] == "seed" and out["n"] == 3 and out["n_images"] == 1


def test_controls_report_each_check_from_the_data():
    vals = {}
    for cond, (inp, ora, n2n) in {"σ=10": (28, 33, 32.5), "σ=15": (24.5, 30, 29.5), "σ=20": (22, 24, 23.5),
                                  "σ~U[0,20]": (30, 33, 31.5)}.items():
        vals[cond] = _rows({("noisy input", 0, 0): inp, ("oracle", 0, 0): ora, ("n2n", 0, 0): n2n}, cond)
    df = pd.concat(vals.values())
    checks = summary.controls(df).set_index("check")
    assert checks.loc["denoise, σ=10: Oracle − noisy input ≥ 3", "holds"]
    assert not checks.loc["denoise, σ=20: Oracle − noisy input ≥ 3", "holds"]  # 24 − 22 = 2 dB
    assert checks.loc["denoise, σ~U[0,20] (PSNR of the mean MSE): Oracle − noisy input ≥ 0", "holds"]
    gap = checks.loc["denoise, σ~U[0,20]: |N2N − Oracle| ≤ 1"]
    assert gap["value (dB)"] == pytest.approx(-1.5) and not gap["holds"]


def _write_images(folder, images):
    folder.mkdir(parents=True, exist_ok=True)
    for name, t in images.items():
        Image.fromarray((t.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)).save(folder / f"{name}.png")


def test_a_test_folder_is_evaluated_and_must_be_disjoint_from_training(tmp_path):
    train_imgs = {f"t{i}": torch.rand(3, 64, 64, generator=torch.Generator().manual_seed(i)) for i in range(4)}
    _write_images(tmp_path / "train", train_imgs)
    held = {f"h{i}": torch.rand(3, 48, 56, generator=torch.Generator().manual_seed(10 + i)) for i in range(2)}
    _write_images(tmp_path / "photos", held)
    base = dict(task="denoise", dataset="folder", data_dir=str(tmp_path / "train"), max_side=None, n_labels=2,
                label_size=32, trials=1, head_steps=0, test_draws=1, sigma_grid=(10.0,))
    cfg = evaluate.ProxyConfig(**base, test_dir=str(tmp_path / "photos"))
    assert cfg.test_dataset == "folder"
    test = evaluate.test_images(cfg)
    assert set(test) == {"h0.png", "h1.png"}
    train_names = set(data.load_images("folder", "train", str(tmp_path / "train")))
    assert not set(test) & train_names
    train_split = evaluate._load_split("folder", str(tmp_path / "train"), None, "train")
    digests = {evaluate._digest(t) for t in train_split.values()}
    assert not {evaluate._digest(t) for t in test.values()} & digests
    torch.manual_seed(0)
    df, _ = evaluate.proxy_evaluate(UNet(width=8, depth=2), cfg)
    assert set(df.image) == {"h0.png", "h1.png"}
    # a training image in the test folder is refused, by content, whatever its file name
    train_all = data.load_images("folder", "all", str(tmp_path / "train"))
    name, img = next(iter(train_all.items()))
    _write_images(tmp_path / "photos", {"renamed": img})
    with pytest.raises(ValueError, match="is the training image"):
        evaluate.test_images(evaluate.ProxyConfig(**base, test_dir=str(tmp_path / "photos")))


def _batch(rng, b=4, s=24):
    x1 = torch.rand(b, 3, s, s, generator=rng)
    return core.Batch(x1=x1, x2=torch.rand(b, 3, s, s, generator=rng), offset=torch.zeros(b, 2, dtype=torch.long))


def test_rcl_diagnostics_measure_each_terms_gradient_into_the_network(rng):
    from rcl.losses import ConsistencyLoss

    cfg = train.make_config("rcl-emd", "smoke")
    torch.manual_seed(0)
    method = core.RCLEMD(UNet(width=8, depth=2, skip="residual"), cfg.method_config(),
                         ConsistencyLoss("random", "resnet18", ("layer1",), seed=0))
    batch = _batch(rng)
    assert "grad_ratio" not in method(batch)  # off unless the engine asks (it costs extra backward passes)
    method.diagnose = True
    out = method(batch)
    # the same numbers by hand: each term's gradient with respect to f(x)
    x = torch.cat([batch.x1, batch.x2])
    f = method.model(x)
    r1, r2 = (x - f).chunk(2)
    contrast = cfg.alpha * core._losses.residual_contrastive_loss(r1, r2, method.distance, cfg.tau)
    (gc,) = torch.autograd.grad(contrast, f, retain_graph=True)
    (gs,) = torch.autograd.grad(method.consistency(x, f), f)
    assert out["grad_contrast"].item() == pytest.approx(gc.norm().item(), rel=1e-4)
    assert out["grad_consistency"].item() == pytest.approx(gs.norm().item(), rel=1e-4)
    assert out["grad_ratio"].item() == pytest.approx(gc.norm().item() / gs.norm().item(), rel=1e-4)
    assert torch.isfinite(out["emd_gap"])
    out["loss"].backward()  # the diagnostics leave the training graph usable


def test_engine_logs_the_mechanism_on_logged_steps(tmp_path):
    cfg = train.make_config("rcl-emd", "smoke", runs_dir=str(tmp_path), progress=False, steps=2, log_every=1)
    hist = train.pretrain(cfg).history()
    assert len(hist) == 2 and all({"grad_ratio", "emd_gap", "grad_contrast"} <= set(h) for h in hist)


def test_residual_report_scores_the_true_noise_as_the_noise(rng):
    images = data.load_images("builtin", "train", limit=2)
    ds = data.NoisyImages.build(data.tile_images(data.resize_max_side(images, 128), 64), seed=0,
                                sigma_range=(10.0, 20.0))
    ident = torch.nn.Identity()
    report = analysis.residual_report(ds, 32, {"true noise": None, "identity": ident, "zero": lambda x: 0 * x},
                                      tau=0.01)
    assert report.loc["true noise", "corr. with noise"] == pytest.approx(1.0)
    assert report.loc["true noise", "EMD to noise"] == pytest.approx(0.0, abs=1e-7)
    assert report.loc["identity", "std / noise std"] == pytest.approx(0.0)
    assert report.loc["zero", "corr. with image detail"] > 0.1  # the image itself as residual carries its detail


def test_residual_report_on_at_most_limit_instances_is_a_seeded_subset():
    images = data.load_images("builtin", "train", limit=2)
    ds = data.NoisyImages.build(data.tile_images(data.resize_max_side(images, 128), 32), seed=0,
                                sigma_range=(10.0, 20.0))
    models = {"true noise": None, "zero": lambda x: 0 * x}
    whole = analysis.residual_report(ds, 16, models, tau=0.1)
    assert analysis.residual_report(ds, 16, models, tau=0.1, limit=len(ds)).equals(whole)  # no subset: unchanged
    part = analysis.residual_report(ds, 16, models, tau=0.1, limit=4)
    assert part.equals(analysis.residual_report(ds, 16, models, tau=0.1, limit=4))  # the same subset again
    assert not part.equals(whole) and part.loc["true noise", "corr. with noise"] == pytest.approx(1.0)
    assert part.loc["true noise", "positive nearest (%)"] % 25 == 0  # four anchors
    with pytest.raises(ValueError, match="limit=1: give at least 2 instances"):
        analysis.residual_report(ds, 16, models, tau=0.1, limit=1)


def test_what_the_residual_is_names_noise_detail_or_neither():
    rows = {"true noise": [1.0, 0.0, 1.0, 3.0], "denoiser": [0.8, 0.1, 0.9, 2.9],
            "fingerprint": [0.01, -0.01, 1.0, 2.5], "detail": [0.05, 0.4, 1.0, 3.5],
            "anti": [-0.3, 0.05, 1.0, 3.5], "sharpens": [0.0, -0.6, 0.2, 4.0]}
    report = pd.DataFrame.from_dict(rows, orient="index", columns=["corr. with noise", "corr. with image detail",
                                                                   "std / noise std", "contrastive loss"])
    assert "mostly the noise" in analysis.what_the_residual_is(report, "denoiser")
    said = analysis.what_the_residual_is(report, "fingerprint", "RCL", tau=0.1)
    assert said.startswith("RCL's residual is **neither") and "at τ = 0.1" in said and "would *not* lower" in said
    assert "more image detail" in analysis.what_the_residual_is(report, "detail")
    assert "would lower the loss further" in analysis.what_the_residual_is(report, "detail")
    assert "anti-correlated with the noise" in analysis.what_the_residual_is(report, "anti")
    assert "anti-correlated with the image's detail" in analysis.what_the_residual_is(report, "sharpens")


def test_cli_evaluates_a_finished_run_on_a_folder_it_never_trained_on(tmp_path):
    import subprocess
    import sys

    train_imgs = {f"t{i}": torch.rand(3, 96, 96, generator=torch.Generator().manual_seed(i)) for i in range(6)}
    _write_images(tmp_path / "train", train_imgs)
    _write_images(tmp_path / "photos", {"p0": torch.rand(3, 64, 80, generator=torch.Generator().manual_seed(99))})
    cfg = train.make_config("n2n", "smoke", dataset="folder", data_dir=str(tmp_path / "train"), max_side=None,
                            runs_dir=str(tmp_path / "runs"), progress=False)
    run = train.pretrain(cfg).path
    args = [sys.executable, "-m", "rcl", "evaluate", str(run), "--test-dir", str(tmp_path / "photos"),
            "--set", "trials=1", "--set", "n_labels=2", "--set", "label_size=32", "--set", "head_steps=5",
            "--set", "sigma_grid=20,5,10", "--set", "test_draws=1", "--out", str(tmp_path / "rows.csv")]
    out = subprocess.run(args, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "(1 image, 1 trial)" in out.stdout
    assert out.stdout.index("σ=5 ") < out.stdout.index("σ=10") < out.stdout.index("σ=20")  # by σ, not as text
    assert set(pd.read_csv(tmp_path / "rows.csv").image) == {"p0.png"}
    # a folder holding one of the run's training images is refused with one line
    _write_images(tmp_path / "photos", {"copy": data.load_images("folder", "train", str(tmp_path / "train"))["t0.png"]})
    out = subprocess.run(args, capture_output=True, text=True, timeout=300)
    assert out.returncode == 2 and "is the training image" in out.stderr and "Traceback" not in out.stderr


def test_backbone_study_reports_controls_per_backbone_and_condition(tmp_path):
    from rcl import backbones

    table = backbones.run("smoke", tmp_path / "runs", skips=("residual", "none"), methods=("copy",), progress=False)
    assert set(table.skip) == {"residual", "none", "any"}
    assert set(table.method) == {"copy", "init", "noisy input"}
    assert {"end to end", "proxy", "input"} == set(table.protocol)
    wide = backbones.summary(table)
    assert list(wide.columns[:3]) == ["σ=0", "σ=10", "σ=20"]  # the smoke grid, in order, then the mixed range
    copy = backbones.copy_control(table)
    assert set(copy.index) == {"residual", "none"}
    # the residual backbone starts near the identity: its copy control is far closer to its input
    assert copy["residual"] > copy["none"]
    # a published copy (the means per backbone, method, protocol, condition and trial) shows the same tables,
    # also where its conditions hold different numbers of test cases (the copy control weighs them by their counts)
    uneven = table.drop(index=table.index[(table.method == "copy") & (table.condition == "σ=0")][:3])
    reduced = results.reduce(uneven, backbones.PUBLISHED_BY)
    assert len(reduced) < len(uneven) and reduced.n.nunique() > 1
    pd.testing.assert_frame_equal(backbones.summary(reduced), backbones.summary(uneven))
    pd.testing.assert_series_equal(backbones.copy_control(reduced), backbones.copy_control(uneven))
    assert not backbones.copy_control(reduced.drop(columns="n")).equals(backbones.copy_control(uneven))  # unweighted


@pytest.mark.slow
def test_the_backbone_study_is_published_per_seed_and_notebook_03_finds_it(tmp_path):
    """``python -m rcl backbones --seed 1 --publish`` publishes that seed's study beside the seed-0 copy, records
    the command, and notebook 03's loader shows it where no study was computed."""
    from rcl import backbones, cli

    dirs = ["--runs-dir", str(tmp_path / "runs"), "--results-dir", str(tmp_path / "results"), "--studies-dir",
            str(tmp_path / "studies")]  # fmt: skip
    for seed in ("0", "1"):
        assert cli.main(["backbones", "--profile", "smoke", "--quiet", "--seed", seed, "--publish", *dirs]) == 0
    copies = results.saved(tmp_path / "studies", "backbones")
    assert sorted(c.settings["seed"] for c in copies) == [0, 1] and all(c.published and c.current for c in copies)
    shown = backbones.load("smoke", tmp_path / "none", seed=1, studies_dir=tmp_path / "studies")
    assert shown.provenance["command"] == "python -m rcl backbones --profile smoke --seed 1 --publish"
    assert "**published**" in backbones.describe(shown) and len(backbones.summary(shown.frame()))


def test_a_new_saved_study_makes_the_notebook_that_shows_it_stale(tmp_path):
    import shutil

    from rcl import notebooks

    src = notebooks.NOTEBOOK_DIR / "03_pretraining.ipynb"
    out = tmp_path / "out"
    out.mkdir()
    params = {"profile": "smoke", "results_dir": str(tmp_path / "results")}
    shutil.copy(src, out / src.name)
    notebooks._stamp(out / src.name, src, params)
    assert notebooks.is_current(src, out, params)
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "proxy-builtin-smoke-abc.json").write_text("{}")  # not a study 03 reads
    assert notebooks.is_current(src, out, params)
    (tmp_path / "results" / "backbones-builtin-smoke-abc.json").write_text("{}")
    assert not notebooks.is_current(src, out, params)
    # so does a published copy of it, in the studies folder the notebook is given
    params["studies_dir"] = str(tmp_path / "studies")
    notebooks._stamp(out / src.name, src, params)
    assert notebooks.is_current(src, out, params)
    (tmp_path / "studies").mkdir()
    (tmp_path / "studies" / "backbones-builtin-cpu-abc.csv").write_text("skip,psnr\n")
    assert not notebooks.is_current(src, out, params)


def test_encoder_sensitivity_ranks_an_encoder_that_ignores_noise_above_one_that_sees_only_noise():
    y = data.resize_max_side(data.load_images("builtin", "train", limit=1), 64)
    crops = data.tile_images(y, 32)
    clean = torch.stack(list(crops.values()))

    class Loss(torch.nn.Module):
        def __init__(self, f):
            super().__init__()
            self.f = f

        def forward(self, x, fx):
            return ((self.f(x) - self.f(fx)) ** 2).mean()

    smooth = Loss(lambda t: torch.nn.functional.avg_pool2d(t, 4))  # blind to pixel noise, sees structure
    table = analysis.encoder_sensitivity({"smooth": smooth, "identity": Loss(lambda t: t)}, clean)
    assert table.loc["identity", "detail / noise"] == pytest.approx(1.0, rel=0.05)  # equal energy, equal cost
    assert table.loc["smooth", "detail / noise"] > 1.1 * table.loc["identity", "detail / noise"]


def test_a_folders_own_test_split_must_be_disjoint_from_its_training_split(tmp_path):
    """A photograph in both ``train/`` and ``test/`` of the user's folder (under another name) is refused."""
    imgs = {f"p{i}": torch.rand(3, 40, 40, generator=torch.Generator().manual_seed(i)) for i in range(3)}
    _write_images(tmp_path / "train", imgs)
    _write_images(tmp_path / "test", {"q0": torch.rand(3, 40, 40, generator=torch.Generator().manual_seed(9))})
    base = dict(task="denoise", dataset="folder", data_dir=str(tmp_path), max_side=None, n_labels=2,
                label_size=32, trials=1, head_steps=0, test_draws=1, sigma_grid=(10.0,))
    assert set(evaluate.test_images(evaluate.ProxyConfig(**base))) == {"test/q0.png"}
    _write_images(tmp_path / "test", {"copy-of-p1": imgs["p1"]})
    with pytest.raises(ValueError, match="'test/copy-of-p1.png' is the training image 'train/p1.png'"):
        evaluate.test_images(evaluate.ProxyConfig(**base))
