"""g_e="imagenet" from a local weights file (``weights=PATH``, the config's ``g_e_weights``): no network.

The files here are randomly initialised torchvision ResNets saved to ``tmp_path``; nothing is downloaded.
"""

import urllib.error

import pytest
import torch
from torchvision import models

from rcl import encoders, losses


def _offline(monkeypatch, tmp_path):
    """Any attempt to reach torchvision's cache or downloader fails the test."""
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))

    def no_network(*args, **kwargs):
        raise AssertionError("a local weights file must not touch torchvision's downloader")

    monkeypatch.setattr(torch.hub, "download_url_to_file", no_network)
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", no_network)


@pytest.fixture(scope="module")
def resnet18_state():
    torch.manual_seed(7)
    return models.resnet18(weights=None).state_dict()


@pytest.fixture
def resnet18_file(tmp_path, resnet18_state):
    path = tmp_path / "resnet18-local.pth"
    torch.save(resnet18_state, path)
    return path


def test_local_weights_load_into_a_frozen_eval_encoder(tmp_path, resnet18_file, resnet18_state, monkeypatch):
    _offline(monkeypatch, tmp_path)
    loss = losses.ConsistencyLoss(g_e="imagenet", arch="resnet18", layers=("layer1", "layer2"), weights=resnet18_file)
    encoder = loss.encoder
    state = encoder.state_dict()
    for key, value in resnet18_state.items():
        assert torch.equal(state[key], value), key
    assert not encoder.training
    assert not any(p.requires_grad for p in encoder.parameters())
    loss.train()
    assert not encoder.training  # BatchNorm statistics stay frozen
    x = torch.rand(1, 3, 32, 32)
    fx = (x + 0.1).requires_grad_()
    loss(x, fx).backward()
    assert fx.grad is not None and all(p.grad is None for p in encoder.parameters())
    assert "resnet18-local.pth" in repr(loss)


def test_str_path_and_load_encoder(tmp_path, resnet18_file, resnet18_state, monkeypatch):
    _offline(monkeypatch, tmp_path)
    encoder = encoders.load_encoder("imagenet", "resnet18", weights=str(resnet18_file))
    assert torch.equal(encoder.conv1.weight, resnet18_state["conv1.weight"])
    assert not encoder.training and not any(p.requires_grad for p in encoder.parameters())


@pytest.mark.parametrize("entry", ["state_dict", "model"])
def test_checkpoint_wrapper_and_missing_fc(tmp_path, resnet18_state, entry, monkeypatch):
    _offline(monkeypatch, tmp_path)
    path = tmp_path / "checkpoint.pt"
    no_fc = {k: v for k, v in resnet18_state.items() if not k.startswith("fc.")}
    torch.save({entry: no_fc, "epoch": 3}, path)
    loss = losses.ConsistencyLoss(g_e="imagenet", arch="resnet18", layers=("layer1",), weights=path)
    assert torch.equal(loss.encoder.layer1[0].conv1.weight, resnet18_state["layer1.0.conv1.weight"])


def test_another_classifier_head_is_ignored(tmp_path, resnet18_state):
    path = tmp_path / "finetuned.pth"
    torch.save(dict(resnet18_state, **{"fc.weight": torch.zeros(10, 512), "fc.bias": torch.zeros(10)}), path)
    encoder = encoders.load_encoder("imagenet", "resnet18", weights=path)
    assert encoder.fc.weight.shape == (1000, 512)
    assert torch.equal(encoder.layer4[1].bn2.running_var, resnet18_state["layer4.1.bn2.running_var"])


def test_only_the_stages_used_must_be_present(tmp_path, resnet18_state):
    path = tmp_path / "trunk.pth"
    torch.save({k: v for k, v in resnet18_state.items() if not k.startswith(("layer4.", "fc."))}, path)
    loss = losses.ConsistencyLoss(g_e="imagenet", arch="resnet18", layers=("layer1", "layer3"), weights=path)
    assert torch.equal(loss.encoder.layer3[0].conv1.weight, resnet18_state["layer3.0.conv1.weight"])
    with pytest.raises(ValueError, match=r"not a resnet18 state dict: key layer4\.\S+ is missing"):
        losses.ConsistencyLoss(g_e="imagenet", arch="resnet18", layers=("layer4",), weights=path)


def test_wrong_arch_names_file_arch_and_the_likely_arch(tmp_path, resnet18_file):
    with pytest.raises(ValueError) as info:
        losses.ConsistencyLoss(g_e="imagenet", arch="resnet50", weights=resnet18_file)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{resnet18_file}: not a resnet50 state dict: ")
    assert "layer1.0.conv1.weight has shape (64, 64, 3, 3), expected (64, 64, 1, 1)" in message
    assert "it looks like a resnet18 state dict" in message


def test_wrong_shape_and_unexpected_key(tmp_path, resnet18_state):
    shaped = dict(resnet18_state, **{"layer2.0.conv1.weight": torch.zeros(128, 64, 1, 1)})
    torch.save(shaped, tmp_path / "shaped.pth")
    with pytest.raises(
        ValueError,
        match=r"shaped\.pth: not a resnet18 state dict: layer2\.0\.conv1\.weight has shape "
        r"\(128, 64, 1, 1\), expected \(128, 64, 3, 3\)$",
    ):
        encoders.load_encoder("imagenet", "resnet18", weights=tmp_path / "shaped.pth")
    extra = dict(resnet18_state, **{"head.weight": torch.zeros(3)})
    torch.save(extra, tmp_path / "extra.pth")
    with pytest.raises(ValueError, match=r"extra\.pth: not a resnet18 state dict: unexpected key head\.weight"):
        encoders.load_encoder("imagenet", "resnet18", weights=tmp_path / "extra.pth")


@pytest.mark.parametrize("content", ["truncated", "garbage", "empty", "model-object", "not-a-dict"])
def test_unreadable_file_names_the_file(tmp_path, resnet18_file, content):
    path = tmp_path / f"{content}.pth"
    if content == "truncated":
        data = resnet18_file.read_bytes()
        path.write_bytes(data[: len(data) // 2])
    elif content == "garbage":
        path.write_bytes(b"this is not a checkpoint\n" * 10)
    elif content == "empty":
        path.write_bytes(b"")
    elif content == "model-object":
        torch.save(torch.nn.Linear(2, 2), path)  # a pickled module: refused by weights_only=True
    else:
        torch.save([torch.zeros(3)], path)
    with pytest.raises(ValueError) as info:
        losses.ConsistencyLoss(g_e="imagenet", arch="resnet18", weights=path)
    message = str(info.value)
    assert str(path) in message and "resnet18" in message and "\n" not in message


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"nope\.pth does not exist.*g_e_weights"):
        losses.ConsistencyLoss(g_e="imagenet", arch="resnet18", weights=tmp_path / "nope.pth")
    with pytest.raises(FileNotFoundError, match="is not a file"):
        losses.ConsistencyLoss(g_e="imagenet", arch="resnet18", weights=tmp_path)


@pytest.mark.parametrize("g_e", ["random", "self-supervised", "none"])
def test_weights_need_g_e_imagenet(resnet18_file, g_e):
    with pytest.raises(ValueError) as info:
        losses.ConsistencyLoss(g_e=g_e, arch="resnet18", weights=resnet18_file)
    message = str(info.value)
    assert "g_e_weights" in message and f"g_e={g_e!r}" in message and "g_e='imagenet'" in message
    assert "\n" not in message


def test_load_encoder_refuses_weights_without_imagenet(resnet18_file):
    with pytest.raises(ValueError, match=r"g_e_weights.*only used with g_e='imagenet', but g_e='random'"):
        encoders.load_encoder("random", "resnet18", weights=resnet18_file)


def test_offline_without_weights_points_to_a_local_file(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))

    def offline(*args, **kwargs):
        raise urllib.error.URLError("network unreachable\nsecond line")

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    with pytest.raises(encoders.ImageNetWeightsUnavailable) as info:
        losses.ConsistencyLoss(g_e="imagenet", arch="resnet18", layers=("layer1",))
    message = str(info.value)
    assert "\n" not in message
    assert "g_e_weights=PATH" in message and "resnet18-f37072fd.pth" in message
    assert str(tmp_path / "hub" / "checkpoints") in message  # where torch looks for the weights
    assert "'random'" in message and "'self-supervised'" in message  # and the offline alternatives


def test_load_resnet_weights_and_where_torchvision_caches(tmp_path, resnet18_file, resnet18_state, monkeypatch):
    _offline(monkeypatch, tmp_path)
    state = encoders.load_resnet_weights(resnet18_file, "resnet18")
    assert state.keys() == resnet18_state.keys() and all(torch.equal(state[k], resnet18_state[k]) for k in state)
    assert encoders.imagenet_weights_path("resnet18") == tmp_path / "hub" / "checkpoints" / "resnet18-f37072fd.pth"


def _cached(tmp_path, monkeypatch, content: bytes | None = None, state=None):
    """A file in torch's hub cache named, as torchvision names them, by its own sha256 prefix (or, with
    ``content``, by another file's prefix), standing for resnet18's ImageNet weights."""
    import hashlib
    import io

    buf = io.BytesIO()
    torch.save(state, buf)
    prefix = hashlib.sha256(buf.getvalue()).hexdigest()[:8]
    path = tmp_path / "hub" / "checkpoints" / f"resnet18-{prefix}.pth"
    path.parent.mkdir(parents=True)
    path.write_bytes(buf.getvalue() if content is None else content)
    monkeypatch.setattr(encoders, "imagenet_weights_path", lambda arch: path)
    return path


def test_imagenet_weights_are_read_without_running_code(tmp_path, resnet18_state, monkeypatch):
    """The cached ImageNet file is checked against its name's sha256 prefix and read with weights_only=True."""
    _offline(monkeypatch, tmp_path)
    _cached(tmp_path, monkeypatch, state=resnet18_state)
    calls = []
    real = torch.load
    monkeypatch.setattr(torch, "load", lambda *a, **kw: calls.append(kw.get("weights_only")) or real(*a, **kw))
    encoder = encoders.load_encoder("imagenet", "resnet18")
    assert calls == [True]
    got = encoder.state_dict()
    assert all(torch.equal(got[k], resnet18_state[k]) for k in resnet18_state)


def test_a_cached_file_that_is_not_what_its_name_says_is_refused(tmp_path, resnet18_state, monkeypatch):
    _offline(monkeypatch, tmp_path)
    path = _cached(tmp_path, monkeypatch, content=b"not the weights", state=resnet18_state)
    with pytest.raises(ValueError) as info:
        encoders.load_encoder("imagenet", "resnet18")
    message = str(info.value)
    assert str(path) in message and "sha256" in message and "delete it" in message and "\n" not in message


def test_the_download_is_checked_against_the_name(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    asked = {}

    def download(url, dst, hash_prefix=None, progress=True):
        asked.update(url=url, dst=dst, hash_prefix=hash_prefix)
        raise RuntimeError(f'invalid hash value (expected "{hash_prefix}", got "00000000")')

    monkeypatch.setattr(torch.hub, "download_url_to_file", download)
    with pytest.raises(encoders.ImageNetWeightsUnavailable, match="invalid hash value"):
        encoders.load_encoder("imagenet", "resnet18")
    assert asked["hash_prefix"] == "f37072fd" and asked["dst"].endswith("resnet18-f37072fd.pth")
    assert not (tmp_path / "hub" / "checkpoints" / "resnet18-f37072fd.pth").exists()
