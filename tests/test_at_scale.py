"""The ``gpu`` profile on a folder of one's own photographs: it starts without any dataset download, refuses
settings that make positives trivial or batches impossible before building anything, and says in one line
what to do when the paper's ImageNet ``g_e`` is not on the machine."""

import urllib.error

import numpy as np
import pytest
import torch
from PIL import Image

from rcl import cli, train


@pytest.fixture
def photos(tmp_path):
    """A folder of three 300×300 'photographs' (one 256-px tile each at the gpu profile)."""
    folder = tmp_path / "photos"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(3):
        Image.fromarray(rng.integers(0, 256, (300, 300, 3), dtype=np.uint8)).save(folder / f"p{i}.png")
    return folder


@pytest.fixture
def offline(tmp_path, monkeypatch):
    """No cached torchvision weights and no network."""
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))

    def unreachable(*args, **kwargs):
        raise urllib.error.URLError("Name or service not known")

    monkeypatch.setattr(torch.hub, "download_url_to_file", unreachable)


def test_the_gpu_profile_starts_on_a_folder_without_downloads(photos, tmp_path, offline):
    """The paper-scale shapes (tile 256, crop 128, U-Net width 32 depth 4, ResNet-50 g_e to stage 3) on a
    folder: one step, with the two things a machine without downloads lacks set — a batch the folder fills
    and a g_e that needs no ImageNet weights."""
    cfg = train.make_config("rcl-emd", "gpu", dataset="folder", data_dir=str(photos), batch_size=2, steps=1,
                            g_e="random", runs_dir=str(tmp_path / "runs"), progress=False)
    assert (cfg.tile, cfg.crop, cfg.width, cfg.depth, cfg.g_e_arch) == (256, 128, 32, 4, "resnet50")
    run = train.pretrain(cfg)
    assert (run.path / "model.pt").exists() and run.metrics["steps"] == 1


def _main(argv, capsys):
    status = cli.main(argv)
    return status, capsys.readouterr().err


def test_without_imagenet_weights_the_gpu_profile_says_what_to_set(photos, tmp_path, offline, capsys, monkeypatch):
    monkeypatch.delenv("RCL_DEBUG", raising=False)
    runs = tmp_path / "runs"
    argv = ["pretrain", "--profile", "gpu", "--set", "dataset=folder", "--set", f"data_dir={photos}",
            "--set", "batch_size=2", "--set", f"runs_dir={runs}"]
    status, err = _main(argv, capsys)
    assert status == 2 and err.startswith("rcl: error: ImageNet weights for resnet50") and err.count("\n") == 1
    assert "g_e_weights=PATH" in err and "g_e='self-supervised'" in err
    assert not any(runs.glob("rcl-emd-*")), "a run that never started leaves no directory"


def test_too_few_instances_are_refused_before_anything_is_built(photos, tmp_path, monkeypatch):
    """The folder has 3 instances; the gpu profile's batch is 64: refused before g_e is even loaded."""

    def never(*args, **kwargs):
        raise AssertionError("g_e was built before the batch was checked")

    monkeypatch.setattr(train, "build_method", never)
    cfg = train.make_config("rcl-emd", "gpu", dataset="folder", data_dir=str(photos),
                            runs_dir=str(tmp_path / "runs"), progress=False)
    with pytest.raises(ValueError, match=r"batch_size=64 exceeds the 3 instances .*set batch_size <= 3"):
        train.pretrain(cfg)


def test_a_crop_as_large_as_the_tile_is_refused_at_the_gpu_profile(photos):
    with pytest.raises(ValueError, match=r"crop=256 must be smaller than tile=256: .*trivial positive"):
        train.make_config("rcl-emd", "gpu", dataset="folder", data_dir=str(photos), crop=256)
