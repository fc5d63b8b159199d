"""g_e="imagenet" from a local weights file (``weights=PATH``, the config's ``g_e_weights``): no network.

The files here are randomly initialised torchvision ResNets saved to ``tmp_path``; nothing is downloaded.
"""

import io
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



@pytest.fixture
def imagenet_like():
    """A resnet18 state dict unlike any fresh model's, BatchNorm statistics and counters included, and its bytes."""
    g = torch.Generator().manual_seed(11)
    fresh = models.resnet18(weights=None).state_dict()
    state = {k: (torch.randint(1, 10**6, v.shape, generator=g) if k.endswith("num_batches_tracked")
                 else torch.rand(v.shape, generator=g) + 0.5) for k, v in fresh.items()}
    buf = io.BytesIO()
    torch.save(state, buf)
    return state, buf.getvalue()


def _named(tmp_path, monkeypatch, content: bytes, prefix_of: bytes | None = None):
    """Where resnet18's ImageNet file is cached, named as torchvision names it: by the sha256 prefix of
    ``prefix_of`` (default: of ``content`` itself); ``content`` is written there unless it is ``b""``."""
    import hashlib

    prefix = hashlib.sha256(content if prefix_of is None else prefix_of).hexdigest()[:8]
    path = tmp_path / "hub" / "checkpoints" / f"resnet18-{prefix}.pth"
    path.parent.mkdir(parents=True)
    if content:
        path.write_bytes(content)
    monkeypatch.setattr(encoders, "imagenet_weights_path", lambda arch: path)
    return path


def test_imagenet_weights_are_read_whole_without_running_code(tmp_path, imagenet_like, monkeypatch):
    """The cached ImageNet file is checked against its name's sha256 prefix, read with weights_only=True, and every
    parameter and buffer (BatchNorm statistics and counters too) is what torchvision's strict load would give."""
    state, content = imagenet_like
    _offline(monkeypatch, tmp_path)
    _named(tmp_path, monkeypatch, content)
    calls = []
    real = torch.load
    monkeypatch.setattr(torch, "load", lambda *a, **kw: calls.append(kw.get("weights_only")) or real(*a, **kw))
    got = encoders.load_encoder("imagenet", "resnet18").state_dict()
    assert calls == [True]
    reference = models.resnet18(weights=None)
    reference.load_state_dict(state, strict=True)
    assert got.keys() == reference.state_dict().keys()
    assert all(torch.equal(got[k], v) for k, v in reference.state_dict().items())


def test_a_cached_file_that_is_not_what_its_name_says_is_refused(tmp_path, imagenet_like, monkeypatch):
    _offline(monkeypatch, tmp_path)
    path = _named(tmp_path, monkeypatch, b"not the weights", prefix_of=imagenet_like[1])
    with pytest.raises(ValueError) as info:
        encoders.load_encoder("imagenet", "resnet18")
    message = str(info.value)
    assert str(path) in message and "sha256" in message and "delete it" in message and "\n" not in message


class _Served(io.BytesIO):
    """What ``urlopen`` returns for a download: the bytes, and their length in the headers."""

    def info(self):
        import email.message

        headers = email.message.Message()
        headers["Content-Length"] = str(len(self.getvalue()))
        return headers


@pytest.mark.parametrize("served", ["right", "wrong"])
def test_the_download_is_whole_and_checked_against_its_name(tmp_path, imagenet_like, monkeypatch, served):
    """torch.hub's downloader (run for real, over a fake connection) keeps a file only when its sha256 begins as its
    name says; otherwise it leaves nothing, neither the file nor a partial one, and the error says why."""
    state, content = imagenet_like
    path = _named(tmp_path, monkeypatch, b"", prefix_of=content)
    body = content if served == "right" else content[:-1] + b"x"
    monkeypatch.setattr(torch.hub, "urlopen", lambda request: _Served(body))
    if served == "right":
        got = encoders.load_encoder("imagenet", "resnet18").state_dict()
        assert path.read_bytes() == content and all(torch.equal(got[k], state[k]) for k in state)
    else:
        with pytest.raises(encoders.ImageNetWeightsUnavailable, match="invalid hash value"):
            encoders.load_encoder("imagenet", "resnet18")
        assert list(path.parent.iterdir()) == []
