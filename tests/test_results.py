"""Saved results: keyed by settings and code, atomic, listed with their settings, logged for sweeps."""

import json

import pandas as pd
import pytest

from rcl import results


def frame(v=1.0):
    return pd.DataFrame({"method": ["a", "b"], "psnr": [v, v + 1]})


def test_cached_computes_once_then_reloads(tmp_path):
    calls = []
    settings = {"profile": "smoke", "dataset": "builtin", "seed": 0, "methods": ["a", "b"]}

    def compute():
        calls.append(1)
        return frame()

    f1, p1, reused1 = results.cached("proxy", settings, tmp_path, compute)
    f2, p2, reused2 = results.cached("proxy", dict(reversed(list(settings.items()))), tmp_path, compute)
    assert (reused1, reused2) == (False, True) and p1 == p2 and len(calls) == 1
    pd.testing.assert_frame_equal(f1, f2)
    assert p1.name.startswith("proxy-builtin-smoke-") and p1.with_suffix(".json").exists()
    assert not list(tmp_path.glob(".*tmp"))  # no temporary left behind
    _, p3, reused3 = results.cached("proxy", {**settings, "seed": 1}, tmp_path, compute)
    assert p3 != p1 and not reused3


def test_key_changes_with_code(monkeypatch):
    s = {"profile": "cpu"}
    k = results.key(s)
    monkeypatch.setattr(results, "code_version", lambda: "other")
    assert results.key(s) != k


def test_saved_lists_matching_complete_results(tmp_path):
    a = results.save(frame(1), "proxy", {"profile": "cpu", "seed": 0}, tmp_path)
    results.save(frame(2), "proxy", {"profile": "cpu", "seed": 1}, tmp_path)
    results.save(frame(3), "labels", {"profile": "cpu", "seed": 0}, tmp_path)
    (tmp_path / "proxy-x-cpu-orphan.csv").write_text("method,psnr\n")  # no sidecar: not a result
    assert len(results.saved(tmp_path)) == 3
    hits = results.saved(tmp_path, "proxy", seed=0)
    assert [h.path for h in hits] == [a] and hits[0].current and hits[0].frame().psnr.tolist() == [1, 2]


def test_log_records_saves_and_reloads(tmp_path, monkeypatch):
    log = tmp_path / "log.jsonl"
    monkeypatch.setenv(results.LOG_ENV, str(log))
    s = {"profile": "smoke", "tau": 0.1}
    results.cached("proxy", s, tmp_path, frame)
    results.cached("proxy", s, tmp_path, frame)
    entries = [json.loads(line) for line in log.read_text().splitlines()]
    assert [e["reused"] for e in entries] == [False, True]
    assert entries[0]["settings"] == s and entries[0]["kind"] == "proxy"


def test_bad_kind_and_bad_compute_are_named(tmp_path):
    with pytest.raises(ValueError, match="kind='a/b'"):
        results.path_for("a/b", {}, tmp_path)
    with pytest.raises(TypeError, match="must return a pandas DataFrame"):
        results.cached("proxy", {}, tmp_path, lambda: [1, 2])


def test_key_follows_the_profile_table_and_the_images(tmp_path):
    """A table's settings name a profile and a folder, not their contents: both are in its key."""
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "a.png").write_bytes(b"one")
    s = {"profile": "cpu", "pretrain": {"dataset": "folder", "data_dir": str(folder)}}
    k = results.key(s)
    (folder / "a.png").write_bytes(b"other")
    assert results.key(s) != k
    assert {"profiles.py", "config.py"} <= set(results.cache.CODE["results"])  # an edited profile is new code


def test_a_registered_datasets_key_follows_its_images_not_its_download_root(tmp_path):
    from rcl import datasets

    images = datasets.local_path("kodak24", tmp_path)
    images.mkdir(parents=True)
    (images / "a.png").write_bytes(b"one")
    s = {"runs": [{"dataset": "kodak24", "data_dir": str(tmp_path)}]}  # inside a list, too
    k = results.key(s)
    (tmp_path / "other-download.part").write_bytes(b"x")
    assert results.key(s) == k
    (images / "b.png").write_bytes(b"two")
    assert results.key(s) != k
