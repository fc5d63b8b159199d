"""Cached evaluations are found by their key: the settings, the evaluation's code, the contents of the
image folders (not their paths) — a change to any of them recomputes, and nothing else does."""

import os

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from rcl import cache, evaluate, labels, train


def _image(path, seed, h=64, w=64):
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = torch.rand(h, w, 3, generator=torch.Generator().manual_seed(seed)).numpy()
    Image.fromarray((pixels * 255).round().astype(np.uint8)).save(path)


@pytest.fixture
def folders(tmp_path):
    for i in range(3):
        _image(tmp_path / "train" / f"t{i}.png", i)
    for i in range(2):
        _image(tmp_path / "photos" / f"h{i}.png", 10 + i, 48, 56)
    return tmp_path


def test_a_new_evaluation_code_version_recomputes_the_proxy_table(tmp_path, monkeypatch):
    run = train.pretrain(train.make_config("n2n", "smoke", runs_dir=str(tmp_path), progress="false"))
    cfg = evaluate.ProxyConfig(task="denoise", max_side=96, n_labels=2, label_size=32, trials=1, head_steps=5,
                               test_draws=0, sigma_grid=(10.0,), test_crop=48)
    fits = []
    real_fit = evaluate.fit_head
    monkeypatch.setattr(evaluate, "fit_head", lambda *a, **k: fits.append(1) or real_fit(*a, **k))
    first, _ = evaluate.proxy_evaluate(run.path, cfg)
    evaluate.proxy_evaluate(run.path, cfg)
    assert len(fits) == 1  # the second call reloaded the saved table

    real_version = cache.code_version
    monkeypatch.setattr(cache, "code_version",
                        lambda kind="results": "0" * 12 if kind == "evaluation" else real_version(kind))
    again, _ = evaluate.proxy_evaluate(run.path, cfg)
    assert len(fits) == 2  # another evaluation code: recomputed, not served the old table
    assert len(list((run.path / "proxy").glob("*.json"))) == 2
    pd.testing.assert_frame_equal(first, again)  # the same numbers: only the code's version changed


def test_the_label_and_reference_keys_follow_the_evaluation_code(monkeypatch):
    proxy, study = evaluate.ProxyConfig(), labels.LabelConfig()
    before = proxy.key(), study.key()
    real_version = cache.code_version
    monkeypatch.setattr(cache, "code_version",
                        lambda kind="results": "0" * 12 if kind == "evaluation" else real_version(kind))
    assert proxy.key() != before[0] and study.key() != before[1]


def test_replacing_an_image_changes_the_key_and_the_images_read(folders):
    cfg = evaluate.ProxyConfig(dataset="folder", data_dir=str(folders / "train"), max_side=None,
                               test_dir=str(folders / "photos"))
    study = labels.LabelConfig(dataset="folder", data_dir=str(folders / "train"), max_side=None,
                               test_dir=str(folders / "photos"))
    keys, old = (cfg.key(), study.key()), evaluate.test_images(cfg)["h0.png"]
    _image(folders / "photos" / "h0.png", 99, 40, 56)  # the same name, another photograph
    assert cfg.key() != keys[0] and study.key() != keys[1]
    new = evaluate.test_images(cfg)["h0.png"]  # read again, not served from memory
    assert new.shape != old.shape
    keys = cfg.key(), study.key()
    _image(folders / "train" / "t0.png", 98, 72, 64)  # a training image replaced
    assert cfg.key() != keys[0] and study.key() != keys[1]


def test_a_folder_by_a_relative_or_an_absolute_path_has_one_key(folders, monkeypatch):
    monkeypatch.chdir(folders)
    given = {"dataset": "folder", "max_side": None}
    for cls in (evaluate.ProxyConfig, labels.LabelConfig):
        relative = cls(**given, data_dir="train", test_dir="photos")
        absolute = cls(**given, data_dir=str(folders / "train"), test_dir=os.path.join(os.getcwd(), "photos"))
        assert relative.key() == absolute.key()
        other = cls(**given, data_dir="train", test_dir="train")  # another folder: another key
        assert other.key() != relative.key()
