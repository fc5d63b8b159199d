"""The encoders g_e of the consistency loss: seeded ResNets and the self-supervised (SimCLR) one, cached."""

import pytest
import torch

from rcl import encoders, losses

TINY = dict(arch="resnet18", steps=2, batch_size=4, crop=32, seed=0, progress=False, device="cpu")


def test_seeded_resnet_leaves_the_global_rng_alone():
    torch.manual_seed(11)
    expected = torch.rand(3)
    torch.manual_seed(11)
    a, b = encoders.build_resnet("resnet18", seed=5), encoders.build_resnet("resnet18", seed=5)
    assert torch.equal(torch.rand(3), expected)
    assert all(torch.equal(v, b.state_dict()[k]) for k, v in a.state_dict().items())
    assert not torch.equal(a.conv1.weight, encoders.build_resnet("resnet18", seed=6).conv1.weight)
    frozen = encoders.load_encoder("random", "resnet18", seed=5)
    assert torch.equal(frozen.conv1.weight, a.conv1.weight)
    assert not frozen.training and not any(p.requires_grad for p in frozen.parameters())
    with pytest.raises(ValueError, match="resnet18"):
        encoders.build_resnet("vgg16")


def test_nt_xent_rewards_aligned_views(rng):
    z = torch.randn(8, 16, generator=rng)
    assert encoders.nt_xent(z, z) < encoders.nt_xent(z, torch.randn(8, 16, generator=rng))


def test_self_supervised_encoder_trains_caches_and_loads(tmp_path, rng, monkeypatch):
    images = [torch.rand(3, 40, 40, generator=rng) for _ in range(3)]
    state, path = encoders.cached_simclr_encoder(images, tmp_path, **TINY)
    assert path.exists() and path.name.startswith("simclr-resnet18-")
    assert list(tmp_path.glob("*.tmp")) == []
    fresh = encoders.train_simclr_encoder(images, **TINY)
    assert all(torch.equal(state[k], fresh[k]) for k in state)  # the cached weights are the trained ones

    def fail(*args, **kwargs):
        raise AssertionError("a cached encoder must not be retrained")

    monkeypatch.setattr(encoders, "train_simclr_encoder", fail)
    copies = [im.clone() for im in images]  # the same contents, other tensors
    again, same = encoders.cached_simclr_encoder(copies, tmp_path, **dict(TINY, lr=1e-3, device=None))
    assert same == path and all(torch.equal(state[k], again[k]) for k in state)
    loss = losses.ConsistencyLoss(g_e="self-supervised", arch="resnet18", state_dict=path, layers=("layer1",))
    x = torch.rand(1, 3, 32, 32, generator=rng)
    assert loss(x, x).item() == 0.0


def test_cache_key_follows_the_images_and_the_settings(tmp_path, rng, monkeypatch):
    images = [torch.rand(3, 40, 40, generator=rng) for _ in range(2)]
    trained = []

    def record(images, **config):
        trained.append(config)
        return {"w": torch.zeros(1)}

    monkeypatch.setattr(encoders, "train_simclr_encoder", record)
    _, path = encoders.cached_simclr_encoder(images, tmp_path, **TINY)
    changed = [images[0].clone(), images[1].clone()]
    changed[1][0, 0, 0] += 0.5
    _, other_images = encoders.cached_simclr_encoder(changed, tmp_path, **TINY)
    _, other_seed = encoders.cached_simclr_encoder(images, tmp_path, **dict(TINY, seed=1))
    assert len({path, other_images, other_seed}) == 3 and len(trained) == 3
    assert trained[0] == dict(TINY, batch_size=4, tau=0.5, lr=1e-3)  # the complete settings reach training
    with pytest.raises(TypeError, match="unknown SimCLR setting"):
        encoders.cached_simclr_encoder(images, tmp_path, **dict(TINY, momentum=0.9))
    assert len(trained) == 3


def test_simclr_trains_the_encoder_on_inputs_normalised_as_the_consistency_loss_shows_them(monkeypatch):
    """Images at the ImageNet mean colour reach the first convolution as zeros, in SimCLR training (the
    augmentations reduced to a crop) and in the consistency loss alike."""
    seen = []
    build, weights = encoders.resnet_builder("resnet18")

    def recording(**kwargs):
        model = build(**kwargs)
        model.conv1.register_forward_pre_hook(lambda module, args: seen.append(args[0].detach().clone()))
        return model, weights

    monkeypatch.setattr(encoders, "resnet_builder", lambda arch: (lambda **kw: recording(**kw)[0], weights))
    monkeypatch.setattr(encoders, "_augment", lambda crop: lambda im: im[:, :crop, :crop])
    grey = torch.tensor(encoders.IMAGENET_MEAN).view(3, 1, 1).expand(3, 40, 40).clone()
    encoders.train_simclr_encoder([grey, grey.clone()], **TINY)
    assert seen and all(s.abs().max() < 1e-6 for s in seen)
    monkeypatch.undo()
    loss = losses.ConsistencyLoss(g_e="random", arch="resnet18", layers=("layer1",))
    seen.clear()
    loss.encoder.conv1.register_forward_pre_hook(lambda module, args: seen.append(args[0].detach().clone()))
    loss.features(grey[None], encoder=loss.encoder)
    assert len(seen) == 1 and seen[0].abs().max() < 1e-6
