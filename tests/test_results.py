"""Saved results: keyed by settings and code, atomic, listed with their settings, logged for sweeps."""

import json
from pathlib import Path

import pandas as pd
import pytest

from rcl import results

ROOT = Path(__file__).resolve().parent.parent


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


def test_key_follows_the_encoder_weights_file_it_names_and_only_then_has_one(tmp_path):
    """A table whose runs used a g_e weights file is not reloaded after that file changed (the runs are trained
    again, their key digests it); settings that name no such file keep the key they had."""
    weights = tmp_path / "g_e.pt"
    weights.write_bytes(b"one")
    s = {"profile": "cpu", "overrides": {"g_e": "imagenet", "g_e_weights": str(weights)}}
    k = results.key(s)
    weights.write_bytes(b"other")
    assert results.key(s) != k
    plain = {"profile": "cpu", "overrides": {}}
    payload = {"settings": results._canonical(plain), "code": results.code_version()}
    assert results.key(plain) == results.cache.key(payload, length=10)  # no "files" entry: the key is unchanged
    weights.unlink()
    with pytest.raises(FileNotFoundError, match="g_e_weights="):
        results.key(s)


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


def _study(seed_offset=0.0):
    """Two settings × two seeds × three test cases: what a study's rows look like."""
    rows = [{"setting": s, "seed": seed, "image": i, "condition": "σ~U[0,20]", "psnr": 30 + k + seed + i * 0.25
             + seed_offset, "mse": 0.001 * (i + 1), "ssim": 0.5}
            for k, s in enumerate(["a", "b"]) for seed in (0, 1) for i in range(3)]  # fmt: skip
    return pd.DataFrame(rows)


def test_a_published_copy_keeps_the_means_per_group_and_says_where_it_came_from(tmp_path, monkeypatch):
    settings = {"profile": "cpu", "dataset": "builtin", "seeds": [0, 1]}
    results.save(_study(), "study", settings, tmp_path / "results")
    (here,) = results.saved(tmp_path / "results", "study")
    folder = tmp_path / "studies"
    path = results.publish(here, ["setting", "seed"], folder, ["profile", "dataset"], "python -m rcl study --publish",
                           {"training_logs": [{"setting": "a", "seed": 0, "spikes": 1, "first spike": None}]})
    (copy,) = results.saved(folder, "study", profile="cpu")
    assert copy.path == path and path.name == here.path.name and copy.published and copy.current
    assert not here.published and copy.created == here.created and copy.settings == here.settings
    got = copy.frame()
    want = _study().groupby(["setting", "seed"]).agg(psnr=("psnr", "mean"), mse=("mse", "mean"),
                                                     ssim=("ssim", "mean"), n=("psnr", "size")).reset_index()
    pd.testing.assert_frame_equal(got, want)  # the means of each group, its size, nothing of the machine
    prov = copy.provenance
    assert {"commit", "modified", "device", "saved", "published", "rows_computed", "reduction", "command"} <= set(prov)
    assert prov["rows_computed"] == 12 and prov["command"] == "python -m rcl study --publish"
    assert prov["training_logs"] == [{"setting": "a", "seed": 0, "spikes": 1, "first spike": None}]  # extra, kept
    with pytest.raises(ValueError, match=r"extra \['commit'\]: names the provenance gives itself"):
        results.publish(here, ["setting"], tmp_path / "other", ["profile"], extra={"commit": "x"})
    assert str(tmp_path) not in path.with_suffix(".json").read_text()  # no path of this machine
    said = results.describe(copy, "python -m rcl study")
    assert "**published**" in said and "not recomputed by this build" in said and "the current one" in said
    assert "12 rows reduced to 4 means" in said and "published**" not in results.describe(here, "python -m rcl study")
    # a second publication of the same study and profile replaces the first; another profile is kept
    results.save(_study(1.0), "study", {**settings, "seeds": [0, 1, 2]}, tmp_path / "results")
    newer = results.saved(tmp_path / "results", "study", seeds=[0, 1, 2])[0]
    results.publish(newer, ["setting", "seed"], folder, ["profile", "dataset"])
    results.save(_study(), "study", {**settings, "profile": "smoke"}, tmp_path / "results")
    results.publish(results.saved(tmp_path / "results", "study", profile="smoke")[0], ["setting"], folder,
                    ["profile", "dataset"])
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        [newer.path.name, newer.path.with_suffix(".json").name, *(p.name for p in folder.glob("study-*-smoke-*"))])
    assert len(list(folder.iterdir())) == 4
    # the library changes: the copy says so and how to compute it again; a stale result cannot be published
    monkeypatch.setattr(results, "code_version", lambda *numerics: "changed")
    stale = results.saved(folder, "study", profile="cpu")[0]
    assert "**the library has changed since**" in results.describe(stale, "python -m rcl study") and not stale.current
    assert "`python -m rcl study` computes it again" in results.describe(stale, "python -m rcl study")
    monkeypatch.undo()
    assert results.saved(folder, "study", profile="cpu")[0].current
    monkeypatch.setattr(results, "reduction", lambda: "another")  # reduced by another version of this module
    assert not results.saved(folder, "study", profile="cpu")[0].current
    with pytest.raises(ValueError, match=r"study-builtin-cpu-.*\.csv: computed by library version .* run the study "
                                         "again, then publish it"):  # fmt: skip
        results.publish(stale, ["setting"], folder, ["profile"])


def test_what_a_notebook_shows_current_first_then_computed_here_then_newest(tmp_path, monkeypatch):
    s = {"profile": "cpu", "dataset": "builtin"}
    results.save(_study(), "study", s, tmp_path / "results")
    here = results.saved(tmp_path / "results")[0]
    results.publish(here, ["setting"], tmp_path / "studies", ["profile"])
    folders = [tmp_path / "results", tmp_path / "studies"]
    assert not results.find("study", folders).published  # both current: the one computed here
    assert results.find("study", [None, tmp_path / "studies"]).published  # none here: the published copy
    assert results.find("study", folders, profile="gpu") is None and results.find("other", folders) is None
    monkeypatch.setattr(results, "code_version", lambda *numerics: "changed")
    results.save(_study(), "study", {**s, "seeds": [0]}, tmp_path / "studies-src")
    new = results.saved(tmp_path / "studies-src")[0]
    results.publish(new, ["setting"], tmp_path / "studies", ["profile"])  # by the changed library: current
    assert results.find("study", folders).path.parent == tmp_path / "studies"
    assert results.find("study", folders).current


def test_a_published_copy_is_current_with_the_numerics_it_records(tmp_path, monkeypatch):
    """Another machine's numerics (float32 where this one autocasts) make its runs other runs, not an older
    library: the copy stays current, says whose numerics it has, and is shown before a stale local result."""
    results.save(_study(), "study", {"profile": "cpu", "dataset": "builtin"}, tmp_path / "results")
    here = results.saved(tmp_path / "results")[0]
    results.publish(here, ["setting"], tmp_path / "studies", ["profile"])
    mine = results.numerics()
    monkeypatch.setattr(results, "numerics", lambda: "elsewhere")
    copy = results.saved(tmp_path / "studies")[0]
    assert copy.current and copy.numerics == mine and not results.saved(tmp_path / "results")[0].current
    said = results.describe(copy, "python -m rcl study")
    assert f"numerics `{mine}`" in said and "this machine's numerics are `elsewhere`" in said
    assert "changed since" not in said and "the current one" in said
    assert results.find("study", [tmp_path / "results", tmp_path / "studies"]).published


def test_a_published_copy_names_another_processor_with_the_same_numerics(tmp_path, monkeypatch):
    """bfloat16 on two processors computes other numbers under one numerics string: a copy from another processor
    says so; one from this processor does not."""
    results.save(_study(), "study", {"profile": "cpu", "dataset": "builtin"}, tmp_path / "results")
    results.publish(results.saved(tmp_path / "results")[0], ["setting"], tmp_path / "studies", ["profile"])
    copy = results.saved(tmp_path / "studies")[0]
    assert "another processor" not in results.describe(copy, "python -m rcl study")
    monkeypatch.setattr(results.provenance, "device", lambda: {"name": "Another CPU 9000"})
    said = results.describe(copy, "python -m rcl study")
    assert "this machine is another processor, Another CPU 9000" in said and "the current one" in said


def test_publishing_replaces_only_the_same_study_and_never_writes_into_its_results_folder(tmp_path):
    res, studies = tmp_path / "results", tmp_path / "studies"
    for seed in (0, 1):
        results.save(_study(seed), "study", {"profile": "cpu", "dataset": "builtin", "seed": seed}, res)
        results.publish(results.saved(res, seed=seed)[0], ["setting"], studies, ["profile", "dataset", "seed"])
    assert {s.settings["seed"] for s in results.saved(studies)} == {0, 1}  # another seed is another study
    with pytest.raises(ValueError, match="the folder the result was saved in; publish into another"):
        results.publish(results.saved(res)[0], ["setting"], res, ["profile"])
    assert not any(s.published for s in results.saved(res))


def test_reduce_keeps_rows_without_a_key_and_counts_every_row():
    frame = _study().astype({"seed": "float"})
    frame.loc[0, "seed"] = float("nan")
    out = results.reduce(frame, ["setting", "seed"])
    assert out.n.sum() == len(frame) and out.seed.isna().sum() == 1


@pytest.mark.parametrize("path", sorted((ROOT / results.STUDIES_DIR).glob("*.csv")), ids=lambda p: p.stem)
def test_every_committed_study_is_a_complete_published_copy_its_notebook_can_read(path):
    """Each copy in book/studies carries its provenance, holds every row of the study it reduces, and gives
    its notebook's tables (whether it is current is for the book to say, not this test)."""
    from rcl import backbones, notebooks, sensitivity

    (copy,) = [s for s in results.saved(path.parent) if s.path == path]
    prov, frame = copy.provenance, copy.frame()
    assert copy.published and {"commit", "modified", "device", "saved", "published", "rows_computed", "reduction",
                               "command"} <= set(prov)  # fmt: skip
    assert prov["command"].startswith(f"python -m rcl {copy.kind} --profile {copy.settings['profile']}")
    assert int(frame.n.sum()) == prov["rows_computed"] and str(ROOT) not in path.with_suffix(".json").read_text()
    if copy.kind == "sensitivity":
        assert set(sensitivity.PUBLISHED_BY) < set(frame.columns)
        assert sensitivity.findings(sensitivity.analyse(frame), copy.settings["profile"])
    else:
        assert copy.kind == "backbones" and len(backbones.summary(frame)) and len(backbones.copy_control(frame))
    assert notebooks.STUDIES[1] == results.STUDIES_DIR


def test_the_notebooks_default_folder_of_published_studies_is_the_librarys():
    from rcl import notebooks

    assert notebooks.STUDIES[1] == results.STUDIES_DIR
