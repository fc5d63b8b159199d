"""Every method behind one interface: two steps with finite losses and gradients reaching the U-Net."""

import pytest
import torch

from rcl import methods
from rcl.losses import ConsistencyLoss
from rcl.methods.core import grid_masks
from rcl.models import UNet


@pytest.fixture(scope="module")
def consistency():
    return ConsistencyLoss(g_e="random", arch="resnet18", layers=("layer1",))


def make_batch(rng, b=4, size=24, extra=8):
    """Two overlapping crops per instance cut from one noisy 'image', with their true offset."""
    y = torch.rand(b, 3, size + extra, size + extra, generator=rng)
    x = (y + 0.05 * torch.randn(y.shape, generator=rng)).clamp(0, 1)
    x_b = (y + 0.05 * torch.randn(y.shape, generator=rng)).clamp(0, 1)
    dy, dx = 3, 5
    crop = lambda t, a, c: t[..., a : a + size, c : c + size]  # noqa: E731
    offset = torch.tensor([[dy, dx]] * b)
    return methods.Batch(
        x1=crop(x, 0, 0),
        x2=crop(x, dy, dx),
        offset=offset,
        x1_second=crop(x_b, 0, 0),
        y1=crop(y, 0, 0),
        y2=crop(y, dy, dx),
        sigma=torch.full((b,), 12.75),
    )


@pytest.mark.parametrize("name", [m for m in methods.METHODS if methods.method_class(m).trains])
def test_two_steps_finite_and_reach_the_unet(name, rng, consistency):
    torch.manual_seed(0)
    model = UNet(width=8, depth=2)
    cfg = methods.MethodConfig(queue_size=32, dense_samples=16, tau=0.05)
    m = methods.build(name, model, cfg, consistency)
    assert m.name == name
    opt = torch.optim.Adam(m.trainable_parameters(), lr=1e-3)
    before = model.enc[0][0].weight.detach().clone()
    for _ in range(2):
        out = m(make_batch(rng))
        assert set(out) >= {"loss"} and all(torch.isfinite(v) for v in out.values())
        opt.zero_grad()
        out["loss"].backward()
        grad = model.enc[0][0].weight.grad
        assert grad is not None and grad.abs().sum() > 0
        opt.step()
        m.after_step()
    assert not torch.equal(before, model.enc[0][0].weight)
    assert not any(p.requires_grad for p in consistency.parameters())


def test_the_random_init_control_does_not_move_even_if_stepped(rng):
    """The control that keeps its initial weights: the engine never steps it (``trains`` is False), and its zero
    loss would leave the weights where they are if anything did."""
    m = methods.build("init", UNet(width=8, depth=2))
    assert not m.trains and methods.trained() == [n for n in methods.METHODS if n != "init"]
    assert methods.trained(["init", "rcl-emd-tuned"]) == ["rcl-emd-tuned"]
    before = {k: v.clone() for k, v in m.model.state_dict().items()}
    opt = torch.optim.Adam(m.trainable_parameters(), lr=1e-3)
    for _ in range(2):
        out = m(make_batch(rng))
        assert out["loss"].item() == 0.0
        opt.zero_grad()
        out["loss"].backward()
        opt.step()
    assert all(torch.equal(before[k], v) for k, v in m.model.state_dict().items())


def test_unknown_method_lists_valid():
    with pytest.raises(ValueError, match="valid methods: .*n2n"):
        methods.build("noise2void", UNet(width=8, depth=2))


def test_consistency_methods_require_g_e():
    with pytest.raises(ValueError, match="consistency"):
        methods.build("rcl-emd", UNet(width=8, depth=2))


def test_grid_masks_partition_the_image():
    masks = grid_masks(3, (7, 8))
    assert masks.shape == (9, 1, 1, 7, 8)
    assert torch.equal(masks.sum(0)[0, 0], torch.ones(7, 8, dtype=torch.long))


def test_noise2self_input_is_j_invariant(rng):
    """The masked input never contains the masked pixels' own values."""
    model = UNet(width=8, depth=2)
    seen = {}

    def spy(module, args):
        seen["x"] = args[0].detach().clone()

    model.register_forward_pre_hook(spy)
    m = methods.build("n2s", model)
    batch = make_batch(rng)
    m(batch)
    first = seen["x"]
    mask = grid_masks(4, (24, 24))[0, 0].bool().expand_as(first)
    changed = batch.x1.clone()
    changed[mask] += 0.5  # change only the masked pixels
    m.step.zero_()
    m(methods.Batch(x1=changed, x2=batch.x2, offset=batch.offset))
    assert torch.equal(seen["x"][mask], first[mask])


def test_rcl_finite_under_cpu_autocast(rng, consistency):
    m = methods.build("rcl-emd", UNet(width=8, depth=2), methods.MethodConfig(), consistency)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = m(make_batch(rng))
    assert out["loss"].dtype == torch.float32 and torch.isfinite(out["loss"])


def test_rcl_contrast_uses_the_configured_temperature(rng, consistency):
    batch = make_batch(rng)
    torch.manual_seed(0)
    hot = methods.build("rcl-emd", UNet(width=8, depth=2), methods.MethodConfig(tau=10.0), consistency)
    torch.manual_seed(0)
    cold = methods.build("rcl-emd", UNet(width=8, depth=2), methods.MethodConfig(tau=1e-4), consistency)
    log_n = torch.log(torch.tensor(4.0)).item()
    assert hot(batch)["contrast"].item() == pytest.approx(4 * log_n, rel=1e-3)
    assert cold(batch)["contrast"].item() != pytest.approx(4 * log_n, rel=1e-3)


@pytest.mark.parametrize(("task", "clean_task"), [("jdensr", "sr"), ("jdd", "demosaic")])
def test_the_oracles_noise_follows_the_training_datas_range(task, clean_task, rng):
    """The Oracle of a noisy task draws its inputs' noise in [0, sigma_max], the range the noisy training
    data (and the proxy test cases) use: at sigma_max = 0 its inputs are the noiseless degradation."""
    from rcl import tasks
    from rcl.train import PretrainConfig

    assert PretrainConfig(method="supervised", sigma_max=7.5).method_config().sigma_max == 7.5
    batch = make_batch(rng)
    seen = []
    for sigma_max in (0.0, 20.0):
        model = UNet(width=8, depth=2)
        model.register_forward_pre_hook(lambda module, args: seen.append(args[0].detach().clone()))
        cfg = methods.MethodConfig(supervised_task=task, sigma_max=sigma_max)
        methods.build("supervised", model, cfg)(batch)
    noiseless, _ = tasks.make_task(clean_task, batch.y1)
    assert torch.equal(seen[0], noiseless)
    assert (seen[1] - noiseless).abs().mean() > 1e-3


@pytest.mark.parametrize("seed", [0, -1])
def test_the_oracle_of_another_task_gets_its_inputs_with_the_batch_built_on_the_host(seed):
    """The engine's batches carry the Oracle's degraded input and target, drawn from the run's seed and the
    step, in float32 outside any autocast (the step once built them inside it: bfloat16 demosaicing on a CPU);
    a batch built elsewhere is prepared in the step, from the seed and step buffers, to the same loss, also
    under autocast."""
    import dataclasses

    from rcl import rng as _rng
    from rcl import tasks, train

    cfg = train.make_config("supervised", "smoke", supervised_task="jdd", seed=seed)
    ds = train.build_data(cfg)
    batch = train.build_batch(ds, cfg, 3)
    g = _rng.generator(seed % 2**64 % 2**63, "degrade", 3)
    x, y = tasks.make_task("jdd", batch.y1, g, sigma_range=(0.0, cfg.sigma_max))
    prepared = batch.prepared
    assert prepared["x"].dtype == torch.float32 and torch.equal(prepared["x"], x) and torch.equal(prepared["y"], y)
    m = train.build_method(cfg, ds)
    m.step.fill_(3)
    raw = dataclasses.replace(batch, prepared=None)
    seen = []
    m.model.register_forward_pre_hook(lambda module, args: seen.append(args[0].detach().clone()))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        m(batch), m(raw)
    assert torch.equal(seen[0], seen[1]) and torch.equal(seen[0], x)
    denoise = train.make_config("supervised", "smoke")
    assert train.build_batch(ds, denoise, 3).prepared is None  # the denoising Oracle reads x1 and y1


@pytest.mark.parametrize("task", ["jdensr", "jdd"])
def test_under_ddp_the_oracle_of_another_task_draws_what_one_process_draws_for_the_whole_batch(task):
    """Each process's degradations are its slice of the one-process batch's, not one noise draw repeated on
    every process (every process seeds the same generator)."""
    from rcl import train

    cfg = train.make_config("supervised", "smoke", supervised_task=task, batch_size=4)
    ds = train.build_data(cfg)
    whole = train.build_batch(ds, cfg, 3)
    halves = [train.build_batch(ds, cfg, 3, rank, 2) for rank in (0, 1)]
    for key in ("x", "y"):
        assert torch.equal(torch.cat([h.prepared[key] for h in halves]), whole.prepared[key])
        for h in halves:  # its own memory, not a view keeping the whole batch's draw alive
            assert h.prepared[key].untyped_storage().nbytes() == h.prepared[key].nbytes


def test_method_page_maps_every_code_name_to_its_display_name():
    """book/method.md's table of code names lists every registered method (and the tuned configuration) with the
    name the tables show (rcl.summary.NAMES), so the page cannot drift from the registry."""
    import re

    from paths import ROOT

    from rcl import summary

    rows = re.findall(r"^\| (`[^|]+`) \| ([^|]+) \|", (ROOT / "book" / "method.md").read_text(), re.MULTILINE)
    shown = {}
    for codes, names in rows:
        for code, name in zip(re.findall(r"`([^`]+)`", codes), names.split(",")):
            shown[code] = name.split(";")[0].strip()
    assert set(shown) == set(summary.NAMES) - {"sl-den", "oracle"}
    assert all(shown[c] == summary.NAMES[c] for c in shown), {c: (shown[c], summary.NAMES[c]) for c in shown}
