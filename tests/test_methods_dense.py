"""Dense contrastive baselines (rcl.methods.dense): training signal, momentum encoder, queues, resume, geometry."""

from __future__ import annotations

import copy
import dataclasses

import pytest
import torch
import torch.nn.functional as F

from rcl.losses import ConsistencyLoss
from rcl.methods.base import Batch, MethodConfig
from rcl.methods.dense import (
    DenseCL,
    DenseCLPlus,
    PixContrast,
    PixContrastPlus,
    VADeR,
    VADeRPlus,
    match_by_similarity,
    multi_positive_nce,
    positive_mask,
    sample_correspondences,
)
from rcl.models import UNet

PLAIN = [VADeR, DenseCL, PixContrast]
PLUS = [VADeRPlus, DenseCLPlus, PixContrastPlus]
ALL = PLAIN + PLUS
QUEUED = [VADeR, DenseCL, VADeRPlus, DenseCLPlus]
CONFIG = MethodConfig(proj_dim=16, queue_size=24, momentum=0.9, dense_samples=16)


@pytest.fixture(scope="module")
def consistency() -> ConsistencyLoss:
    return ConsistencyLoss(g_e="random", arch="resnet18", layers=("layer1",))


def crop_pairs(images: torch.Tensor, size: int, offsets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Crop 1 at (size/2, size/2) of each image, crop 2 shifted by ``offsets``: a real correspondence."""
    t = size // 2
    x1 = images[:, :, t : t + size, t : t + size]
    tops = [(t + int(dy), t + int(dx)) for dy, dx in offsets]
    x2 = torch.stack([im[:, y : y + size, x : x + size] for im, (y, x) in zip(images, tops)])
    return x1, x2


def make_batch(generator: torch.Generator, b: int = 4, size: int = 24, channels: int = 3, step: int = 1) -> Batch:
    """Two overlapping crops per instance cut out of one random image; offsets are multiples of ``step``."""
    images = torch.rand(b, channels, 2 * size, 2 * size, generator=generator)
    half = size // 2 // step
    offsets = step * torch.randint(-half + 1, half, (b, 2), generator=generator)
    x1, x2 = crop_pairs(images, size, offsets)
    return Batch(x1=x1.contiguous(), x2=x2.contiguous(), offset=offsets)


def build(cls, consistency, seed: int = 0, device="cpu"):
    """The method around a fresh U-Net on ``device``; the shared consistency loss is copied, so that moving the
    method (``.to(device)`` moves its modules in place) never moves the module-scoped fixture other tests use."""
    torch.manual_seed(seed)
    model = UNet(width=8, depth=2)
    consistency = copy.deepcopy(consistency) if cls.uses_consistency else None
    return cls(model, CONFIG, consistency, seed=7).to(device)


def key_params(method) -> list[torch.Tensor]:
    return [p.detach().clone() for p in [*method.key_model.parameters(), *method.key_heads.parameters()]]


# ---------------------------------------------------------------------------------------------------------
# Geometry
# ---------------------------------------------------------------------------------------------------------


def test_sampled_correspondences_are_the_same_scene_point(rng):
    batch = make_batch(rng, b=6, size=20)
    h, w = batch.x1.shape[-2:]
    idx1, idx2 = sample_correspondences(batch.offset, h, w, 50, rng)
    assert idx1.shape == idx2.shape == (6, 50)
    assert int(idx1.min()) >= 0 and int(idx2.min()) >= 0 and int(idx1.max()) < h * w and int(idx2.max()) < h * w
    c = batch.x1.shape[1]
    v1 = batch.x1.flatten(2).gather(2, idx1[:, None].expand(-1, c, -1))
    v2 = batch.x2.flatten(2).gather(2, idx2[:, None].expand(-1, c, -1))
    assert torch.equal(v1, v2)  # random pixel values: equal only at the same point of the big image


def test_sampling_covers_the_whole_overlap(rng):
    offset = torch.tensor([[3, -2]])
    idx1, _ = sample_correspondences(offset, 8, 8, 4000, rng)
    i, j = idx1 // 8, idx1 % 8
    assert set(i.unique().tolist()) == set(range(3, 8)) and set(j.unique().tolist()) == set(range(0, 6))


def test_full_resolution_positives_are_the_same_pixel(rng):
    batch = make_batch(rng, b=3, size=12)
    pos = positive_mask(batch.offset, 12, 12, 12, 12)
    assert int(pos.sum(-1).max()) == 1  # T = 0.7 diagonals < 1 px: the neighbours are negatives
    b, p, r = pos.nonzero(as_tuple=True)
    v1 = batch.x1.flatten(2)[b, :, p]
    v2 = batch.x2.flatten(2)[b, :, r]
    assert torch.equal(v1, v2)
    # every pixel of the overlap has its positive
    dy, dx = batch.offset[:, 0], batch.offset[:, 1]
    assert torch.equal(pos.any(-1).sum(-1), (12 - dy.abs()) * (12 - dx.abs()))


def test_pooled_positives_cover_the_same_region(rng):
    # bins of 4 px and offsets multiple of 4: exactly one positive, the cell with the same pooled content
    batch = make_batch(rng, b=4, size=32, channels=5, step=4)
    p1, p2 = F.avg_pool2d(batch.x1, 4).flatten(2), F.avg_pool2d(batch.x2, 4).flatten(2)
    pos = positive_mask(batch.offset, 32, 32, 8, 8)
    assert int(pos.sum(-1).max()) == 1
    b, p, r = pos.nonzero(as_tuple=True)
    torch.testing.assert_close(p1[b, :, p], p2[b, :, r])
    # a half-bin shift gives 2 positives along that axis (distance 2 px < 0.7·4√2 px)
    assert int(positive_mask(torch.tensor([[2, 0]]), 32, 32, 8, 8).sum(-1).max()) == 2


def test_densecl_argmax_matches_geometry_for_identity_features(rng):
    # φ replaced by the (16-channel, random) image itself, pooled: DenseCL's argmax rule finds the same cell
    batch = make_batch(rng, b=4, size=32, channels=16, step=4)
    p1 = F.avg_pool2d(batch.x1, 4).flatten(2).transpose(1, 2)
    p2 = F.avg_pool2d(batch.x2, 4).flatten(2).transpose(1, 2)
    match = match_by_similarity(p1, p2)
    pos = positive_mask(batch.offset, 32, 32, 8, 8)
    in_overlap = pos.any(-1)
    hit = pos.gather(2, match[..., None])[..., 0]
    assert bool(hit[in_overlap].all())


def test_multi_positive_nce_known_values():
    q = torch.eye(3)[None]  # three orthogonal queries; keys equal to them
    pos = torch.eye(3, dtype=torch.bool)[None]
    tau = 0.5
    expected = -torch.log(torch.exp(torch.tensor(2.0)) / (torch.exp(torch.tensor(2.0)) + 2))
    torch.testing.assert_close(multi_positive_nce(q, q, pos, tau), expected)
    # a row without positives is left out of the mean, and gives no NaN gradient
    q = q.clone().requires_grad_(True)
    pos[0, 0, 0] = False
    loss = multi_positive_nce(q, q.detach(), pos, tau)
    loss.backward()
    torch.testing.assert_close(loss.detach(), expected)
    assert torch.isfinite(q.grad).all()


def test_no_overlap_is_an_error(consistency, rng):
    batch = make_batch(rng, size=16)
    batch.offset[1] = torch.tensor([16, 0])
    with pytest.raises(ValueError, match="instance 1.*no overlap"):
        build(VADeR, consistency)(batch)


# ---------------------------------------------------------------------------------------------------------
# Training signal, momentum encoder, queues
# ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("cls", ALL, ids=lambda c: c.name)
def test_two_steps_train_phi_and_head_only_with_consistency(cls, consistency, rng, device):
    method = build(cls, consistency, device=device)
    opt = torch.optim.Adam(method.trainable_parameters(), lr=1e-3)
    batch = make_batch(rng).to(device)
    for _ in range(2):
        opt.zero_grad()
        out = method(batch)
        assert torch.isfinite(out["loss"]) and out["loss"].dim() == 0
        out["loss"].backward()
        assert method.model.enc[0][0].weight.grad.abs().sum() > 0  # φ is trained
        head_grad = method.model.head.weight.grad
        if cls.uses_consistency:
            assert head_grad is not None and head_grad.abs().sum() > 0
            assert "consistency" in out
        else:
            assert head_grad is None or head_grad.abs().sum() == 0
        opt.step()
        method.after_step()
    expected = {"vader": {"dense"}, "densecl": {"global", "dense"}, "pixcontrast": {"dense"}}[cls.name.rstrip("+")]
    assert expected <= set(out)


@pytest.mark.parametrize("cls", ALL, ids=lambda c: c.name)
def test_momentum_encoder_follows_and_is_frozen(cls, consistency, rng):
    method = build(cls, consistency)
    trainable = {id(p) for p in method.trainable_parameters()}
    frozen = [*method.key_model.parameters(), *method.key_heads.parameters()]
    assert all(not p.requires_grad and id(p) not in trainable for p in frozen)
    # starts as a copy of the query encoder
    torch.testing.assert_close(method.key_model.enc[0][0].weight, method.model.enc[0][0].weight)
    before = key_params(method)
    opt = torch.optim.Adam(method.trainable_parameters(), lr=1e-2)
    method(make_batch(rng))["loss"].backward()
    opt.step()
    assert all(torch.equal(a, b) for a, b in zip(before, key_params(method)))  # the step alone changes nothing
    method.after_step()
    after = key_params(method)
    assert any(not torch.equal(a, b) for a, b in zip(before, after))
    # EMA: k ← m·k + (1 − m)·q
    q = method.model.enc[0][0].weight.detach()
    torch.testing.assert_close(after[0], 0.9 * before[0] + 0.1 * q)
    assert int(method.step) == 1


@pytest.mark.parametrize("cls", QUEUED, ids=lambda c: c.name)
def test_queues_are_buffers_and_advance(cls, consistency, rng):
    method = build(cls, consistency)
    state = method.state_dict()
    buffers = dict(method.named_buffers())
    b = 4
    pushed = b * (VADeR.keys_per_image if issubclass(cls, VADeR) else 1)
    rows = cls.queue_rows(CONFIG)  # queue_size images' keys
    assert rows == CONFIG.queue_size * (VADeR.keys_per_image if issubclass(cls, VADeR) else 1)
    for name in cls.queue_names:
        assert name in state and f"{name}_ptr" in state and name in buffers
        assert buffers[name].shape == (rows, CONFIG.proj_dim)
        torch.testing.assert_close(buffers[name].norm(dim=1), torch.ones(rows))
    queues0 = {n: getattr(method, n).clone() for n in cls.queue_names}
    batch = make_batch(rng, b=b)
    for step in range(1, 4):
        method(batch)
        for n in cls.queue_names:
            assert int(getattr(method, f"{n}_ptr")) == ((step - 1) * pushed) % rows
        method.after_step()
        for n in cls.queue_names:
            assert int(getattr(method, f"{n}_ptr")) == (step * pushed) % rows
    for n in cls.queue_names:
        queue = getattr(method, n)
        assert not torch.equal(queue, queues0[n])
        torch.testing.assert_close(queue.norm(dim=1), torch.ones(rows))


@pytest.mark.parametrize("cls", ALL, ids=lambda c: c.name)
def test_forward_is_free_of_side_effects(cls, consistency, rng):
    method = build(cls, consistency)
    batch = make_batch(rng)
    state = {k: v.clone() for k, v in method.state_dict().items()}
    a, b = method(batch)["loss"], method(batch)["loss"]
    assert torch.equal(a, b)
    assert all(torch.equal(v, method.state_dict()[k]) for k, v in state.items())
    method.after_step()  # pushes one forward's keys, once
    for n in cls.queue_names:
        expected = VADeR.keys_per_image * 4 if issubclass(cls, VADeR) else 4
        assert int(getattr(method, f"{n}_ptr")) == expected % cls.queue_rows(CONFIG)
    method.eval()
    method(batch)
    ptrs = {n: int(getattr(method, f"{n}_ptr")) for n in cls.queue_names}
    method.after_step()  # an eval forward queues nothing
    assert ptrs == {n: int(getattr(method, f"{n}_ptr")) for n in cls.queue_names}


@pytest.mark.parametrize("cls", ALL, ids=lambda c: c.name)
def test_state_dict_round_trip_gives_identical_loss(cls, consistency, rng):
    method = build(cls, consistency, seed=0)
    opt = torch.optim.Adam(method.trainable_parameters(), lr=1e-3)
    batch = make_batch(rng)
    for _ in range(2):
        opt.zero_grad()
        method(batch)["loss"].backward()
        opt.step()
        method.after_step()
    fresh = build(cls, consistency, seed=1)
    fresh.seed.fill_(123)  # overwritten by the load, like everything else
    fresh.load_state_dict(method.state_dict())
    assert torch.equal(method(batch)["loss"], fresh(batch)["loss"])
    # and the next step's sampling is the same too
    method.after_step()
    fresh.after_step()
    assert torch.equal(method(batch)["loss"], fresh(batch)["loss"])


def test_vader_sampling_changes_with_the_step_and_a_prepared_batch_draws_what_the_step_would(consistency, rng):
    """The pixels drawn with the batch on the host (the engine's batches) are those an unprepared batch draws in
    the step from the seed and step buffers; they change with the step."""
    method = build(VADeR, consistency)
    batch = make_batch(rng)
    seed = int(method.seed)
    drawn = [VADeR.prepare(batch, CONFIG, seed, step).prepared for step in (0, 1)]
    assert not torch.equal(drawn[0]["idx1"], drawn[1]["idx1"])
    for step in (0, 1):
        assert torch.equal(method(batch)["loss"], method(dataclasses.replace(batch, prepared=drawn[step]))["loss"])
        method.after_step()


def test_under_ddp_a_process_draws_its_slice_of_the_whole_batch(rng):
    """Each process's VADeR pixels are its slice of what one process draws for the whole batch (every process
    seeds the same generator: sliced draws, not one draw repeated on every process)."""
    batch = make_batch(rng, b=4)
    whole = VADeR.prepare(batch, CONFIG, 7, 3).prepared
    halves = [VADeR.prepare(batch.map(lambda t, r=r: t[2 * r:2 * r + 2]), CONFIG, 7, 3, r, 2).prepared
              for r in (0, 1)]
    assert set(whole) == set(halves[0]) == {"idx1", "idx2"}
    for key in whole:
        assert torch.equal(torch.cat([h[key] for h in halves]), whole[key])
        assert all(h[key].untyped_storage().nbytes() == h[key].nbytes for h in halves)  # not views of the whole


@pytest.mark.parametrize("cls", ALL, ids=lambda c: c.name)
def test_autocast_bfloat16(cls, consistency, rng):
    method = build(cls, consistency)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = method(make_batch(rng, size=16))
    assert out["loss"].dtype == torch.float32 and torch.isfinite(out["loss"])
    out["loss"].backward()
    assert torch.isfinite(method.model.enc[0][0].weight.grad).all()


def test_temperatures_and_override(consistency):
    taus = {cls.name: build(cls, consistency).tau for cls in PLAIN}
    assert taus == {"vader": 0.07, "densecl": 0.2, "pixcontrast": 0.3}
    model = UNet(width=8, depth=2)
    assert VADeR(model, MethodConfig(tau_dense=0.5)).tau == 0.5
    with pytest.raises(ValueError, match="tau_dense"):
        VADeR(model, MethodConfig(tau_dense=0.0))


def test_plus_variants_need_a_consistency_module():
    with pytest.raises(ValueError, match="consistency"):
        DenseCLPlus(UNet(width=8, depth=2), CONFIG)


@pytest.mark.parametrize("skip", ["residual", "none", "concat"])
@pytest.mark.parametrize("cls", PLUS, ids=lambda c: c.name)
def test_plus_variants_compare_each_crop_with_the_networks_output(cls, skip, rng):
    """Eq. 5 on both crops is ``L_cons(x, f(x))`` with ``f`` the U-Net as a whole, whatever its skip
    (with the residual skip ``f(x) = x + h(φ(x))``, not ``h(φ(x))``)."""
    seen = []

    class Recording(ConsistencyLoss):
        def forward(self, x, fx):
            seen.append((x.detach().clone(), fx.detach().clone()))
            return super().forward(x, fx)

    torch.manual_seed(0)
    method = cls(UNet(width=8, depth=2, skip=skip), CONFIG, Recording(g_e="random", arch="resnet18",
                                                                      layers=("layer1",)), seed=7)  # fmt: skip
    batch = make_batch(rng)
    method(batch)
    assert len(seen) == 2
    with torch.no_grad():
        for (x, fx), crop in zip(seen, (batch.x1, batch.x2)):
            assert torch.equal(x, crop)
            torch.testing.assert_close(fx, method.model(crop), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("n", [5, 24, 64, 400])  # 400: more keys than slots
def test_queue_push_matches_key_by_key_reference(consistency, n):
    method = build(VADeR, consistency)
    method.queue_ptr.fill_(7)
    keys = F.normalize(torch.randn(n, CONFIG.proj_dim), dim=1)
    reference, ptr = method.queue.clone(), 7
    for k in keys:
        reference[ptr] = k
        ptr = (ptr + 1) % VADeR.queue_rows(CONFIG)
    method._remember(queue=keys)
    method.after_step()
    torch.testing.assert_close(method.queue, reference)
    assert int(method.queue_ptr) == ptr
