"""The proxy evaluation protocol and the metrics it reports."""

import numpy as np
import pandas as pd
import pytest
import torch
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from rcl import evaluate, metrics, stats, train
from rcl.models import UNet, memory_format


def test_psnr_ssim_agree_with_scikit_image(rng):
    y = torch.rand(2, 3, 48, 40, generator=rng, dtype=torch.float64).float()
    x = (y + 0.05 * torch.randn(y.shape, generator=rng)).clamp(0, 1)
    for k in range(2):
        a, b = x[k].permute(1, 2, 0).double().numpy(), y[k].permute(1, 2, 0).double().numpy()
        assert metrics.psnr(x, y)[k].item() == pytest.approx(peak_signal_noise_ratio(b, a, data_range=1), abs=1e-3)
        ref = structural_similarity(b, a, data_range=1, channel_axis=2, gaussian_weights=True, sigma=1.5,
                                    use_sample_covariance=False)
        assert metrics.ssim(x, y)[k].item() == pytest.approx(ref, abs=2e-3)


def test_metrics_clamp_outputs():
    y = torch.full((1, 3, 16, 16), 0.5)
    assert metrics.psnr(y + 2.0, y).item() == pytest.approx(metrics.psnr(torch.ones_like(y), y).item())


def test_fit_head_recovers_a_linear_map_and_decreases_l1(rng):
    f = torch.randn(5000, 6, generator=rng)
    w = torch.randn(3, 6, generator=rng)
    y = f @ w.T + 0.1 + 0.01 * torch.randn(5000, 3, generator=rng)
    head, curve = evaluate.fit_head(f, y, steps=50)
    torch.testing.assert_close(head.weight.view(3, 6), w, atol=2e-3, rtol=0)
    assert curve[-1] <= curve[0] + 1e-9 and len(curve) == 51


@pytest.fixture
def tiny_cfg():
    return evaluate.ProxyConfig(task="denoise", max_side=96, n_labels=4, label_size=32, trials=2, head_steps=100)


@pytest.mark.parametrize("task", ["denoise", "sr", "demosaic"])
def test_network_outputting_its_input_reproduces_the_input_rows(task, tiny_cfg):
    cfg = evaluate.ProxyConfig(**{**tiny_cfg.__dict__, "task": task})
    e2e = evaluate.end_to_end(torch.nn.Identity(), cfg)
    ref = evaluate.reference_evaluate(cfg)
    first = ref[ref.trial == 0]  # the same test cases, in the same order
    assert list(first.image) == list(e2e.image) and list(first.condition) == list(e2e.condition)
    np.testing.assert_allclose(e2e[["psnr", "ssim"]].to_numpy(), first[["psnr", "ssim"]].to_numpy())


def test_every_row_scores_the_networks_own_output_against_its_input(tiny_cfg):
    """``psnr_vs_input`` is the network's own output (its own head, end to end) against its input: the same for
    every trial, equal to :func:`rcl.evaluate.end_to_end`'s, and capped at 100 dB where the output is exact."""
    torch.manual_seed(0)
    model = UNet(width=8, depth=2, skip="residual")
    df, _ = evaluate.proxy_evaluate(model, tiny_cfg)
    e2e = evaluate.end_to_end(model, tiny_cfg)
    for _, trial in df.groupby("trial"):
        np.testing.assert_allclose(trial.psnr_vs_input.to_numpy(), e2e.psnr_vs_input.to_numpy(), rtol=1e-5)
    torch.nn.init.zeros_(model.head.weight)
    torch.nn.init.zeros_(model.head.bias)  # a zero head: the residual network is the identity
    exact, _ = evaluate.proxy_evaluate(model, tiny_cfg)
    assert (exact.psnr_vs_input == 100).all()  # exact in every condition (task inputs are clamped to [0, 1])


def test_only_the_head_changes_and_cached_features_equal_uncached(tiny_cfg):
    torch.manual_seed(0)
    model = UNet(width=8, depth=2)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    df, _ = evaluate.proxy_evaluate(model, tiny_cfg)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # φ and the old head intact
    # cached features (computed once, chunked) equal a direct forward pass
    x = torch.rand(3, 3, 40, 40)
    torch.testing.assert_close(evaluate._features(model, x, torch.device("cpu"), chunk=2), model.features(x))
    assert set(df.columns) >= {"method", "task", "trial", "image", "psnr", "ssim"} and df.trial.nunique() == 2


def test_the_table_is_the_protocol_case_by_case_with_one_case_in_memory(tiny_cfg, device, monkeypatch):
    """The table equals the protocol written plainly — each trial's head (fitted on the CPU) on each test
    case's features — bit for bit on the CPU (to rounding on a GPU), trial by trial; and while it is scored,
    the features of one test case at most are alive: memory does not grow with the test set."""
    import weakref

    torch.manual_seed(0)
    # the layout proxy_evaluate computes in on the CPU (channels-last convolutions round differently)
    model = UNet(width=8, depth=2).eval().to(memory_format=memory_format("cpu"))
    train_images, test = evaluate._images(tiny_cfg)
    expected = []
    for trial in range(tiny_cfg.trials):
        head, curve = evaluate.proxy_head(model, tiny_cfg, trial, "cpu", train_images)
        for name, cond, x, y in evaluate._test_pairs(tiny_cfg, test):
            with torch.no_grad():
                out = model.output(model.features(x), x, head).clamp(0, 1)
            scores = evaluate._scores(name, cond, out, y)
            expected.append({"method": "model", "task": "denoise", "trial": trial, **scores, "fit_loss": curve[-1]})

    alive, features, scores = [], evaluate._features, evaluate._scores

    def tracked(*a, **k):
        f = features(*a, **k)
        alive.append(weakref.ref(f))
        return f

    def counted(*a, **k):
        assert sum(r() is not None for r in alive) <= 1
        return scores(*a, **k)

    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)  # a GPU's convolutions in float32, as the CPU's
    monkeypatch.setattr(evaluate, "_features", tracked)
    monkeypatch.setattr(evaluate, "_scores", counted)
    df, _ = evaluate.proxy_evaluate(model, tiny_cfg, device=device)
    want = pd.DataFrame(expected)
    assert list(df.trial) == list(want.trial) and list(df.image) == list(want.image)
    assert list(df.condition) == list(want.condition)
    if device.type == "cpu":
        pd.testing.assert_frame_equal(df[want.columns], want)
    else:
        np.testing.assert_allclose(df[["psnr", "ssim"]].to_numpy(), want[["psnr", "ssim"]].to_numpy(), atol=0.1)


def test_results_reloaded_not_recomputed(tmp_path, tiny_cfg, monkeypatch):
    run = train.pretrain(train.make_config("n2n", "smoke", runs_dir=str(tmp_path), progress="false"))
    first, _ = evaluate.proxy_evaluate(run.path, tiny_cfg)
    assert (run.path / "proxy").is_dir()

    def boom(*a, **k):
        raise AssertionError("recomputed")

    monkeypatch.setattr(evaluate, "fit_head", boom)
    again, _ = evaluate.proxy_evaluate(run.path, tiny_cfg)
    assert first.equals(again)
    other = evaluate.ProxyConfig(**{**tiny_cfg.__dict__, "dataset": "folder", "data_dir": str(tmp_path)})
    assert other.key() != tiny_cfg.key()  # another dataset never mixes with these results


@pytest.mark.slow
def test_refitted_head_recovers_end_to_end_denoising(tmp_path):
    """For a model trained on denoising itself, the re-fitted head is at least as good as its own head."""
    cfg = train.make_config("supervised", "smoke", runs_dir=str(tmp_path), progress="false", steps=60, width=8)
    run = train.pretrain(cfg)
    pcfg = evaluate.ProxyConfig(task="denoise", max_side=128, n_labels=8, label_size=48, trials=2, head_steps=200)
    df, curves = evaluate.proxy_evaluate(run.path, pcfg)
    e2e = evaluate.end_to_end(run.model(), pcfg)
    assert df.psnr.mean() >= e2e.psnr.mean() - 0.2
    assert all(c[-1] <= c[0] for c in curves.values())


def test_paired_difference_on_known_numbers():
    rows = [{"method": m, "task": "denoise", "trial": t, "image": "a", "psnr": v, "ssim": 0.5}
            for m, vals in {"a": [30, 31.5, 32], "b": [29, 30, 31]}.items() for t, v in enumerate(vals)]
    out = stats.paired_difference(pd.DataFrame(rows), "a", "b", "denoise")
    assert out["mean_diff_db"] == pytest.approx(7 / 6) and 1.0 <= out["ci95"][0] <= out["ci95"][1] <= 1.5
    assert 0 < out["p_value"] < 0.05 and out["n"] == 3


@pytest.mark.slow
def test_same_seeds_give_identical_tables_on_cpu(tmp_path):
    """Two independent studies (fresh runs, fresh caches) with the same seeds: the same table, bit for bit."""
    from rcl import config

    nb = config.settings("proxy", "smoke")
    proxy = {k: nb[k] for k in ("trials", "n_labels", "label_size", "head_steps", "test_draws")}
    tables = [
        evaluate.study(["rcl-emd", "n2n"], ["denoise", "sr"], "smoke", proxy=proxy,
                       pretrain={"runs_dir": str(tmp_path / d), "progress": False}, progress=False)  # fmt: skip
        for d in ("a", "b")
    ]
    drop = ["run"]  # run directory names are equal too, but live under different roots
    pd.testing.assert_frame_equal(tables[0].drop(columns=drop), tables[1].drop(columns=drop))
    assert (tables[0].run == tables[1].run).all()


@pytest.mark.parametrize("setting, text", [({"label_size": 0}, "label_size=0 must be >= 16"),
                                           ({"pixels": 0}, "pixels=0 must be >= 1"),
                                           ({"head_lr": float("inf")}, "head_lr=inf must be a finite number > 0"),
                                           ({"head_lr": -1.0}, "head_lr=-1.0 must be a finite number > 0"),
                                           ({"sigma_grid": (float("nan"),)}, "sigma_grid must hold"),
                                           ({"sigma_max": float("inf")}, "sigma_max=inf must be a finite")])
def test_a_proxy_setting_that_cannot_work_is_named(setting, text):
    """Each of these gave a traceback from deep in the fitting, or NaN outputs with no error."""
    with pytest.raises(ValueError, match=text.replace("(", r"\(").replace(")", r"\)")):
        evaluate.ProxyConfig(**setting)


def test_a_test_image_too_small_to_score_is_named(tmp_path):
    """A 7×3 test image crashed inside SSIM; it is refused by name, as the training images are."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for name, (h, w) in {"ok.png": (40, 40), "tiny.png": (3, 7)}.items():
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(tmp_path / name)
    cfg = evaluate.ProxyConfig(test_dataset="folder", test_dir=str(tmp_path))
    with pytest.raises(ValueError, match=r"tiny\.png: image of 7×3 px .* smaller than the required 16 px"):
        evaluate.test_images(cfg)
