"""The cache module and the keys built on it: nothing stale is ever served, nothing half-written is left."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass

import numpy as np
import pytest
from PIL import Image

from rcl import cache, train


def test_atomic_write_leaves_no_temporary_on_failure(tmp_path):
    target = tmp_path / "out.json"
    cache.atomic_write_text(target, "old")

    def fail(f):
        f.write(b"partial")
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError):
        cache.atomic_write(target, fail)
    assert target.read_text() == "old"  # the old file, whole
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.json"]


def test_load_or_compute_computes_once_then_reloads(tmp_path):
    calls = []

    def compute():
        calls.append(1)
        return {"value": len(calls)}

    a, reused_a = cache.json_cache(tmp_path / "x.json", compute)
    b, reused_b = cache.json_cache(tmp_path / "x.json", compute)
    assert (a, reused_a, reused_b) == ({"value": 1}, False, True) and b == a and len(calls) == 1
    c, reused_c = cache.json_cache(tmp_path / "x.json", compute, enabled=False)
    assert not reused_c and c == {"value": 2}


def test_keys_follow_settings_and_not_their_order():
    @dataclass(frozen=True)
    class S:
        a: int = 1
        b: tuple = (1, 2)

    assert cache.key(S()) == cache.key({"b": [1, 2], "a": 1})
    assert cache.key(S()) != cache.key(S(a=2))


def test_code_version_changes_with_the_code(tmp_path, monkeypatch):
    root = tmp_path / "pkg"
    shutil.copytree(cache.ROOT, root, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(cache, "ROOT", root)
    before = {kind: cache.code_version(kind) for kind in cache.CODE}
    with open(root / "metrics.py", "a") as f:
        f.write("\n# an edit to the evaluation\n")
    after = {kind: cache.code_version(kind) for kind in cache.CODE}
    assert after["training"] == before["training"]  # metrics do not train
    assert after["evaluation"] != before["evaluation"] and after["results"] != before["results"]
    with pytest.raises(ValueError, match="valid"):
        cache.code_version("nothing")


def _folder(path, n=6, size=80, seed=0):
    path.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(path / f"img{i}.png")
    return path


def test_folder_identity_is_its_contents_not_its_path(tmp_path, monkeypatch):
    folder = _folder(tmp_path / "photos")
    monkeypatch.chdir(tmp_path)
    rel = train.make_config("n2n", "smoke", dataset="folder", data_dir="photos", runs_dir=str(tmp_path / "runs"))
    absolute = train.make_config("n2n", "smoke", dataset="folder", data_dir=str(folder),
                                 runs_dir=str(tmp_path / "runs"))
    assert train.run_key(rel) == train.run_key(absolute)
    assert cache.folder_identity("photos") == cache.folder_identity(folder)


def test_replacing_an_image_in_a_folder_retrains(tmp_path):
    folder = _folder(tmp_path / "photos")
    cfg = train.make_config("n2n", "smoke", dataset="folder", data_dir=str(folder), runs_dir=str(tmp_path / "runs"),
                            steps=1, batch_size=2, max_side=None, progress=False)
    first = train.pretrain(cfg)
    assert train.pretrain(cfg).reused
    _folder(tmp_path / "other", seed=1)
    os.replace(tmp_path / "other" / "img0.png", folder / "img0.png")  # same name, other pixels
    second = train.pretrain(cfg)
    assert not second.reused and second.path != first.path


def test_concurrent_writers_of_one_file_never_collide(tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    target = tmp_path / "cache" / "shared.json"
    texts = [f"writer {i}" * 1000 for i in range(8)]

    def write(text):
        for _ in range(30):
            cache.atomic_write_text(target, text)

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(write, texts))  # a shared temporary name made renames fail here
    assert target.read_text() in texts and not list(target.parent.glob(".*.tmp"))


def test_folder_identity_follows_linked_folders_but_not_loops(tmp_path):
    real = _folder(tmp_path / "elsewhere", n=2)
    folder = _folder(tmp_path / "photos", n=1)
    plain = cache.folder_identity(folder)
    (folder / "more").symlink_to(real, target_is_directory=True)
    (folder / "again").symlink_to(real, target_is_directory=True)  # a second route to the same folder: listed too
    (folder / "one.png").symlink_to(real / "img0.png")  # a linked file, as before
    (real / "loop").symlink_to(folder, target_is_directory=True)  # a link back up: a loop, not followed
    linked = cache.folder_identity(folder)
    inside = ["img0.png", "img1.png"]
    assert [entry[0] for entry in linked] == sorted([*(e[0] for e in plain), "one.png",
                                                      *(f"{d}/{n}" for d in ("more", "again") for n in inside)])
    (real / "img1.png").write_bytes(b"changed")  # a change in the linked folder is a change of the folder
    assert cache.folder_identity(folder) != linked


def test_an_output_path_that_cannot_be_a_file_is_named_before_any_work(tmp_path):
    """A folder in the output's place, or a file where its folder would be, is named itself (not a temporary
    file of the write), and :func:`rcl.cache.check_writable` says so before the work that would produce it."""
    (tmp_path / "folder").mkdir()
    (tmp_path / "file").write_text("x")
    with pytest.raises(IsADirectoryError, match="a folder, not a file") as err:
        cache.atomic_write_text(tmp_path / "folder", "y")
    assert err.value.filename == str(tmp_path / "folder")
    with pytest.raises(NotADirectoryError, match="a file, where the --out's folder would be") as err:
        cache.check_writable(tmp_path / "file" / "deeper" / "out.csv", "--out")
    assert err.value.filename == str(tmp_path / "file")
    assert cache.check_writable(tmp_path / "new" / "out.csv") == tmp_path / "new" / "out.csv"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file", "folder"]  # nothing made, nothing left
