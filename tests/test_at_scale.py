"""At scale: the ``gpu`` profile on a folder of one's own photographs — it starts without any dataset download,
refuses settings that make positives trivial or batches impossible before building anything, and says in one
line what to do when the paper's ImageNet ``g_e`` is not on the machine — and the at-scale results files
(:mod:`rcl.at_scale`) with their provenance, read back strictly and shown by the book's At scale page with
and without one."""

import dataclasses
import itertools
import json
import shutil
import subprocess
import sys
import urllib.error
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from paths import ROOT
from PIL import Image

import rcl
from rcl import analysis, apply, at_scale, cache, cli, config, data, methods, notebooks, provenance, summary, train


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


def test_a_queue_larger_than_half_the_instances_is_refused(photos, tmp_path, monkeypatch):
    """A negative queue drawn from few images fills with keys of the query's own image (false negatives)."""
    monkeypatch.setattr(train, "build_method", lambda *a, **k: pytest.fail("built before the queue was checked"))
    cfg = train.make_config("densecl", "smoke", dataset="folder", data_dir=str(photos), max_side=None, tile=256,
                            crop=128, batch_size=2, queue_size=2, runs_dir=str(tmp_path / "runs"), progress=False)
    with pytest.raises(ValueError, match=r"queue_size=2 exceeds half the 3 training instances.*queue_size <= 1"):
        train.pretrain(cfg)
    for m in ("n2n", "rcl-emd"):  # no queue: no such limit
        methods.method_class(m).check_instances(3, train.make_config(m, "smoke", queue_size=2))


def test_the_gpu_profiles_queues_fit_its_dataset():
    """VOC2012's train split: 5,717 photographs of at most 500 px, one 256-px tile each."""
    for m in methods.family("dense"):
        methods.method_class(m).check_instances(5717, train.make_config(m, "gpu"))


def test_a_crop_as_large_as_the_tile_is_refused_at_the_gpu_profile(photos):
    with pytest.raises(ValueError, match=r"crop=256 must be smaller than tile=256: .*trivial positive"):
        train.make_config("rcl-emd", "gpu", dataset="folder", data_dir=str(photos), crop=256)


def test_an_instance_no_larger_than_the_crop_is_refused_by_name(tmp_path):
    """A photograph smaller than the tile is kept whole; one that is also no larger than the crop (MIT's 128-px
    demosaicing patches at the gpu profile's crop of 128) gives both crops of a positive pair the same pixels."""
    folder = tmp_path / "patches"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for name, (h, w) in {"wide.png": (48, 60), "square.png": (48, 48)}.items():
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(folder / name)
    cfg = train.make_config("rcl-emd", "smoke", dataset="folder", data_dir=str(folder), crop=48, tile=64)
    with pytest.raises(ValueError, match=r"square\.png: an instance of 48×48 px .*crop=48 no room to shift.*trivial "
                       r"positive.*set crop below 48"):
        train.build_data(cfg)
    (folder / "square.png").unlink()  # room to shift along the width: accepted
    assert len(train.build_data(cfg)) == 1


# ----------------------------------------------------------------------------------- at-scale results files


@pytest.fixture(scope="module")
def smoke_results(tmp_path_factory):
    """An at-scale results file made at the smoke profile (the mechanism; real ones come from a GPU)."""
    root = tmp_path_factory.mktemp("at-scale")
    path = at_scale.run("smoke", root / "results" / "at-scale-smoke.json", {"runs_dir": str(root / "runs")},
                        command="python -m rcl at-scale --profile smoke", progress=False)
    return root, path


def test_a_results_file_carries_its_provenance_and_no_machine_path(smoke_results):
    root, path = smoke_results
    text = path.read_text()
    assert str(root) not in text, "a committed file names no folder of the machine it ran on"
    result = at_scale.load(path)
    p = result.provenance
    assert p["profile"] == "smoke" and p["methods"] == list(at_scale.METHODS) and p["tasks"] == ["denoise", "sr"]
    assert p["code"]["rcl"] == rcl.__version__ and p["code"]["training"] == cache.code_version("training")
    assert p["device"]["type"] == "cpu" and p["device"]["torch"] == torch.__version__
    assert p["device"]["numerics"] == config.numerics("cpu")  # the runs' keys' numerics (autocast, TF32)
    assert p["started"] <= p["finished"] and p["seconds"] > 0
    steps = {name: r["steps"] for name, r in p["runs"].items()}
    assert {s for name, s in steps.items() if not name.startswith("init-")} == {3}  # the smoke profile's, per run
    assert {s for name, s in steps.items() if name.startswith("init-")} == {0}  # the random init: no step
    for name, r in p["runs"].items():  # the largest logged loss, where a spike would show; none without a step
        assert ("max_loss" in r) == (not name.startswith("init-"))
        assert "max_loss" not in r or (r["max_loss"] >= r["final_loss"] and 1 <= r["max_loss_step"] <= r["steps"])
    assert p["data"]["test_images"] == len(data.BUILTIN_TEST)
    assert p["data"]["train"] == {"dataset": "builtin", "files": len(data.BUILTIN_TRAIN), "digest": None}
    rows = result.rows
    assert set(rows.method) >= {"rcl-emd", "consistency", "n2n", "n2s", "oracle", "copy", "init", "noisy input",
                                "bicubic"}
    # the networks' own output against their input (the copy-the-input control reads it); not the references'
    assert rows[rows.method == "copy"].psnr_vs_input.notna().all()
    assert rows[rows.method.isin(["noisy input", "bicubic"])].psnr_vs_input.isna().all()
    assert (rows.n >= 1).all() and rows.groupby(["method", "task", "condition", "seed", "trial"]).size().max() == 1
    facts = at_scale.describe(result)
    assert "computed on" in facts.index and "not recorded" not in facts.loc["command"].iloc[0]
    assert "the photographs, as described" not in facts.index  # no --data-note given: no such line
    assert facts.loc["code"].iloc[0].endswith(": the current library") and at_scale.library(result) == \
        "the current library"
    older = dataclasses.replace(result, provenance={**p, "code": {**p["code"], "evaluation": "0" * 12}})
    assert at_scale.library(older) == (f"another library, commit {(p['code']['commit'] or 'unknown')[:12]}, whose "
                                       "evaluation code differs from this build's")  # the book says so beside it
    assert facts.loc["training images"].iloc[0] == f"the bundled photographs ({len(data.BUILTIN_TRAIN)} training)"
    p["data"]["note"] = "BSDS500: its 200 training photographs"
    assert at_scale.describe(result).loc["the photographs, as described"].iloc[0] == p["data"]["note"]
    runs = at_scale.training(result)  # the book's table of the runs: a spike shows in its largest logged loss
    assert list(runs.index) == list(p["runs"]) and (runs.steps == pd.Series(steps)).all()
    assert runs["used as"].str.len().gt(0).all() and runs["used as"].str.contains(r"oracle \(sr\)").any()
    trained = runs[runs.steps > 0]
    assert (trained["largest logged loss"] >= trained["final loss"]).all() and trained["at step"].between(1, 3).all()


def test_a_results_file_says_what_each_denoising_networks_residual_is(smoke_results):
    """Notebook 03's residual table, per pre-training seed, for every network evaluated on denoising (under its
    name there) and the true noise, on the run's own training instances."""
    result = at_scale.load(smoke_results[1])
    r = result.residual_rows
    denoisers = set(result.rows[(result.rows.task == "denoise")].method) - {"noisy input"}
    assert set(r.residual) == denoisers | {"true noise"} and "oracle" in denoisers
    assert list(r.columns) == list(at_scale.RESIDUAL_KEYS) and set(r.seed) == set(result.provenance["seeds"])
    assert (r.tau == train.make_config("rcl-emd", "smoke").tau).all()
    noise = r[r.residual == "true noise"].iloc[0]
    assert noise["corr. with noise"] == pytest.approx(1.0) and noise["std / noise std"] == pytest.approx(1.0)
    table = at_scale.residuals(result)
    assert table.loc["rcl-emd", "seeds"] == len(result.provenance["seeds"]) and "true noise" in table.index
    assert "RCL-EMD's residual is" in analysis.what_the_residual_is(table, tau=table.tau["rcl-emd"])


def test_a_file_written_before_its_optional_sections_still_loads(smoke_results, tmp_path):
    blob = json.loads(smoke_results[1].read_text())
    for section in at_scale.OPTIONAL_SECTIONS:
        del blob[section]
    older = tmp_path / "older.json"
    older.write_text(json.dumps(blob))
    result = at_scale.load(older)
    assert result.residual_rows.empty and at_scale.residuals(result).empty and len(result.rows)
    assert result.image_rows.empty  # one seed: the comparisons are over trials either way
    assert at_scale.agreement(result).equals(at_scale.agreement(at_scale.load(smoke_results[1])))


def test_per_image_rows_are_the_papers_test_setting_image_by_image(smoke_results):
    result = at_scale.load(smoke_results[1])
    per, rows = result.image_rows, result.rows
    assert set(per.image) == set(range(result.provenance["data"]["test_images"]))
    assert set(per.condition) == {c for c in rows.condition if c.startswith("σ~U") or c == "clean"}
    keys = ["method", "task", "condition", "seed"]
    mean_of_images = per.groupby(keys).psnr.mean()
    mean_of_rows = rows[rows.condition.isin(set(per.condition))].groupby(keys).psnr.mean()
    assert np.allclose(mean_of_images.sort_index(), mean_of_rows.sort_index())  # the same cases, image by image


def _fake_study(seeds=(0, 1, 2), images=5) -> pd.DataFrame:
    """Rows as the proxy study gives them, with made-up PSNRs: several seeds (VADeR+ one, as a method outside
    ``rcl.methods.SEEDED``), trials and test images, denoising and SR."""
    rng = np.random.default_rng(0)
    rows = []
    denoisers = ("rcl-emd", "n2n", "n2s", "vader+", "oracle", "copy", "noisy input")
    tasks = (("denoise", ("σ~U[0,20]", "σ=10", "σ=20"), denoisers),
             ("sr", ("clean",), ("rcl-emd", "n2n", "sl-den", "oracle", "bicubic")))
    for task, conds, names in tasks:
        for m in names:
            for seed in seeds[:1] if m == "vader+" else seeds:
                for trial, i, cond in itertools.product(range(2), range(images), conds):
                    rows.append({"method": m, "task": task, "condition": cond, "seed": seed, "trial": trial,
                                 "image": f"p{i}.png", "psnr": 30 + rng.normal() + (m == "oracle") * 4,
                                 "mse": 1e-3, "ssim": 0.9, "psnr_vs_input": 60.0})
    return pd.DataFrame(rows)


def _file_of(df: pd.DataFrame, smoke_path: Path, path: Path, per_image: bool = True) -> at_scale.AtScale:
    """The smoke file's provenance with ``df``'s rows (and per-image section), written to ``path`` and read."""
    blob = json.loads(smoke_path.read_text())
    blob["provenance"].update(seeds=sorted(int(x) for x in set(df.seed)),
                              data={**blob["provenance"]["data"], "test_images": int(df.image.nunique())})
    blob.update(rows=at_scale._compact(df), per_image=at_scale._per_image(df))
    blob.pop("residuals", None)
    if not per_image:
        del blob["per_image"]
    path.write_text(json.dumps(blob))
    return at_scale.load(path)


def test_a_files_comparisons_are_over_seeds_and_test_images_as_the_books(smoke_results, tmp_path):
    """With several pre-training seeds, the per-image section gives each comparison the interval the book's own
    has (over seeds × test images), which the file's means over images could not; a method with one seed is
    compared over trials, as in the book: the same table as from the study's own rows."""
    df = _fake_study()
    ours = at_scale.agreement(_file_of(df, smoke_results[1], tmp_path / "seeds.json"))
    book = summary.agreement(df).drop(columns=[summary.BY_MSE, summary.MSE_DIFFERS])  # a file keeps no per-case MSE
    assert ours.equals(book) and set(ours.task) == {"denoise", "sr"}
    assert set(ours.over) == {"3 seeds × 5 test images", "2 trials of one seed"}  # N2N − VADeR+: one seed
    older = at_scale.agreement(_file_of(df, smoke_results[1], tmp_path / "older.json", per_image=False))
    assert set(older.over) == {"3 seeds", "2 trials of one seed"}  # without it: over seeds only, and it says so


def test_a_file_that_evaluates_the_books_runs_elsewhere_is_set_beside_the_books_verdicts(smoke_results, tmp_path):
    result = at_scale.load(smoke_results[1])
    p = result.provenance
    runs, seeds = set(p["runs"]), p["seeds"]
    assert at_scale.of_the_books_runs([result], runs, seeds, "smoke") == []  # tested on the bundled ones' own split
    p["data"]["test"].update(dataset="folder", digest="0123456789abcdef")  # as --test-dir records it
    assert at_scale.of_the_books_runs([result], runs, seeds, "smoke") == [result]
    assert at_scale.of_the_books_runs([result], runs, seeds, "cpu") == []  # another profile's protocol
    assert at_scale.of_the_books_runs([result], runs - {sorted(runs)[0]}, seeds, "smoke") == []  # a run not the book's
    assert at_scale.of_the_books_runs([result], runs, [*seeds, 9], "smoke") == []  # not the book's seeds
    result.provenance["device"]["numerics"] = "cuda-bf16"  # the same settings on a machine that computes otherwise
    assert "other numerics" in at_scale.not_the_books_runs(result, runs, seeds, "smoke")
    result.provenance["device"]["numerics"] = config.numerics(config.default_device())
    result.provenance["code"]["evaluation"] = "0" * 12
    assert at_scale.not_the_books_runs(result, runs, seeds, "smoke") == "evaluated by another evaluation code"
    result.provenance["code"]["evaluation"] = cache.code_version("evaluation")
    df = _fake_study()
    book = summary.agreement(df)
    fewer = _file_of(df[df.task == "denoise"], smoke_results[1], tmp_path / "denoise.json")
    side = at_scale.beside(book, fewer)
    n = fewer.provenance["data"]["test_images"]
    assert list(dict.fromkeys(side.columns.get_level_values(0))) == ["this book's test images",
                                                                     f"{n} other held-out photographs", "paper"]
    assert len(side) == len(book) and (side["paper"]["paper (dB)"].to_numpy() == book["paper (dB)"].to_numpy()).all()
    there = side[f"{n} other held-out photographs"]
    assert (there.loc["sr", "verdict"] == at_scale.ABSENT).all()  # the file holds no SR: it says so
    assert list(there.loc["denoise", "ours (dB)"]) == list(book.set_index("task").loc["denoise", "ours (dB)"])
    controls_only = _file_of(df[df.method.isin(["copy", "noisy input"])], smoke_results[1], tmp_path / "c.json")
    assert (at_scale.beside(book, controls_only)[f"{n} other held-out photographs"].verdict == at_scale.ABSENT).all()


def test_every_committed_results_file_loads_and_says_whose_runs_it_holds():
    folder = ROOT / "book" / "at_scale"
    found = at_scale.load_folder(folder)
    assert len(found) == len(list(folder.glob("*.json")))
    for r in found:  # by its own run names, a file of the book's runs is one; trained elsewhere, it is not
        p = r.provenance
        why = at_scale.not_the_books_runs(r, set(p["runs"]), p["seeds"], p["profile"]).split("; ")
        others = {"another proxy protocol", "evaluated by another evaluation code"}
        others |= {w for w in why if "numerics" in w}
        if p["data"]["train"]["dataset"] == "builtin":
            assert set(why) - {""} <= others  # tested elsewhere, with the book's seeds: only code or machine differ
        else:  # trained on a folder: runs the book (no override) never makes, so their names are never the book's
            assert "tested on its training data's own test split" not in why and p["pretrain"]["dataset"] != "builtin"


def test_the_book_reads_a_results_file_as_it_reads_its_own_rows(smoke_results):
    """Compact rows (means over test images) give the per-σ tables and controls of the per-image rows."""
    _, path = smoke_results
    rows = at_scale.load(path).rows
    per_image = rows.loc[rows.index.repeat(rows.n)]  # equal-size groups: the means are the same
    assert summary.per_sigma(rows).equals(summary.per_sigma(per_image))
    assert summary.controls(rows).equals(summary.controls(per_image))


def test_a_results_file_is_never_overwritten(smoke_results):
    _, path = smoke_results
    with pytest.raises(FileExistsError, match="never overwritten"):
        at_scale.run("smoke", path)


@pytest.mark.parametrize("edit, message", [
    (lambda b: "{not json", "not valid JSON"),
    (lambda b: {**b, "extra": 1}, "'provenance' and 'rows'"),
    (lambda b: {**b, "provenance": {k: v for k, v in b["provenance"].items() if k != "device"}}, "lacks .*device"),
    (lambda b: {**b, "provenance": {**b["provenance"], "schema": 99}}, "schema 99"),
    (lambda b: {**b, "rows": [{**b["rows"][0], "psnr": "31.2"}]}, "must be finite numbers"),
    (lambda b: {**b, "rows": [{**b["rows"][0], "psnr_vs_input": None}]}, "psnr_vs_input must be finite numbers"),
    (lambda b: {**b, "rows": []}, "no rows"),
    (lambda b: {**b, "provenance": {**b["provenance"], "data": {**b["provenance"]["data"], "note": 5}}}, "a note in"),
    (lambda b: {**b, "residuals": {"rcl-emd": 0.1}}, "'residuals' must be a list"),
    (lambda b: {**b, "per_image": [{**b["per_image"][0], "psnr": [30.0]}]}, "psnr must be a list of 4 finite"),
    (lambda b: {**b, "per_image": [{**b["per_image"][0], "image": "a.png"}]}, "per-image row 0 must have exactly"),
    (lambda b: {**b, "per_image": [{**b["per_image"][0], "seed": True}]}, "seed one of the file's seeds"),
    (lambda b: {**b, "per_image": b["per_image"][:1] * 2}, "repeats"),
    (lambda b: {**b, "per_image": b["per_image"][1:]}, "per-image rows and rows hold different"),
    (lambda b: {**b, "rows": [{**b["rows"][0], "seed": "0"}]}, "seed and trial integers"),
    (lambda b: {**b, "rows": [{**b["rows"][0], "trial": "x"}]}, "seed and trial integers"),
    (lambda b: {**b, "per_image": [{**b["per_image"][0], "seed": [0]}]}, "seed one of the file's seeds"),
    (lambda b: {**b, "provenance": {**b["provenance"], "device": {}}}, "device must name its name"),
    (lambda b: {**b, "provenance": {**b["provenance"], "code": {"rcl": 1}}}, "its code its rcl"),
    (lambda b: {**b, "provenance": {**b["provenance"], "started": 5}}, "started and finished must be times"),
    (lambda b: {**b, "provenance": {**b["provenance"], "runs": {"a": 1}}}, "runs must map"),
    (lambda b: {**b, "residuals": [{**b["residuals"][0], "seed": 7}]}, "seed must be one of the file's seeds"),
    (lambda b: json.dumps(b).replace('"psnr": 1', '"psnr": NaN', 1), "NaN is not a number"),
    (lambda b: {**b, "provenance": {**b["provenance"], "proxy": []}}, "must be objects"),
    (lambda b: {**b, "provenance": {**b["provenance"], "data": {**b["provenance"]["data"], "test": {}}}},
     "data's train and test"),
    (lambda b: {**b, "residuals": [{k: v for k, v in b["residuals"][0].items() if k != "tau"}]}, "must have exactly"),
    (lambda b: {**b, "residuals": [{**b["residuals"][0], "seed": 0.5}]}, "seed must be one of the file's seeds"),
    (lambda b: {**b, "residuals": [{**b["residuals"][0], "contrastive loss": "2.7"}]}, "the rest finite numbers"),
])  # fmt: skip
def test_what_is_not_a_results_file_is_refused_naming_it(smoke_results, tmp_path, edit, message):
    _, path = smoke_results
    changed = edit(json.loads(path.read_text()))
    bad = tmp_path / "bad.json"
    bad.write_text(changed if isinstance(changed, str) else json.dumps(changed))
    with pytest.raises(ValueError, match=f"bad.json: .*{message}"):
        at_scale.load(bad)


def _outputs(notebook: Path) -> str:
    nb = json.loads(notebook.read_text())
    out = []
    for cell in nb["cells"]:
        for o in cell.get("outputs", []):
            out.append("".join(o.get("text", "")))
            out.extend("".join(v) for k, v in o.get("data", {}).items() if k in ("text/markdown", "text/html"))
    return "\n".join(out)


@pytest.mark.slow
def test_the_at_scale_page_builds_with_and_without_a_results_file(smoke_results, tmp_path, monkeypatch):
    """Notebook 08 at the smoke profile, once with an empty results folder and once with the smoke file;
    the page with the file is rendered by Jupyter Book as the book is (``-W -n``). Its ``apply`` section leaves
    no temporary folder behind."""
    root, path = smoke_results
    temp = tmp_path / "temp"  # the kernels' temporary folder
    temp.mkdir()
    monkeypatch.setenv("TMPDIR", str(temp))
    source = notebooks.notebook_paths()[-1]
    assert source.name == "08_at_scale.ipynb"
    texts = {}
    for case, folder in (("without", tmp_path / "empty"), ("with", path.parent)):
        folder.mkdir(exist_ok=True)
        params = {"profile": "smoke", "runs_dir": str(root / "runs"), "at_scale_dir": str(folder)}
        texts[case] = _outputs(notebooks.execute(source, tmp_path / case, params, progress=False))
    assert "No at-scale results are committed yet" in texts["without"]
    assert not list(temp.glob("rcl-apply-*")), "notebook 08 left the apply command's folders behind"
    with_file = texts["with"]
    assert "not recomputed by this book's build" in with_file and path.name in with_file
    assert "computed on" in with_file and "Controls" in with_file
    assert "What the residuals are" in with_file and "RCL-EMD's residual is" in with_file
    assert "No at-scale results" not in with_file
    book = tmp_path / "book"  # the whole book, the other notebooks unexecuted (execution is off in the build)
    shutil.copytree(ROOT / "book", book, ignore=shutil.ignore_patterns("_build", "notebooks"))
    (book / "notebooks").mkdir()
    for p in notebooks.notebook_paths():
        shutil.copy(tmp_path / "with" / p.name if p == source else p, book / "notebooks" / p.name)
    jb = Path(sys.executable).with_name("jupyter-book")
    proc = subprocess.run([str(jb), "build", str(book), "-W", "-n", "--keep-going"], capture_output=True, text=True,
                          timeout=600)  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    page = (book / "_build" / "html" / "notebooks" / "08_at_scale.html").read_text()
    assert "not recomputed by this book" in page and path.name in page


@pytest.mark.slow
def test_the_results_summary_sets_an_evaluation_of_the_books_runs_beside_its_verdicts(smoke_dir, tmp_path):
    """Section 6 of notebook 07, with a file that evaluates the smoke book's own runs (notebook 04's methods and
    seeds) on two photographs written as a folder: the book's verdicts and the file's side by side."""
    params = json.loads((smoke_dir / "07_results_summary.ipynb").read_text())["metadata"]["papermill"]["parameters"]
    folders = {k: Path(params[k]) if Path(params[k]).is_absolute() else ROOT / "notebooks" / params[k]
               for k in ("runs_dir", "results_dir")}  # fmt: skip
    photos = tmp_path / "photos"
    photos.mkdir()
    for name, image in data.builtin_images(data.BUILTIN_TEST[:2]).items():
        apply.write_png(photos / f"{name}.png", image)
    smoke = config.settings("proxy", "smoke")
    files = tmp_path / "files"
    at_scale.run("smoke", files / "books-runs.json", {"runs_dir": str(folders["runs_dir"])},
                 {"test_dir": str(photos)}, methods=smoke["methods"], seeds=smoke["seeds"], progress=False)
    source = next(p for p in notebooks.notebook_paths() if p.name == "07_results_summary.ipynb")
    shown = _outputs(notebooks.execute(source, tmp_path / "out", {
        "profile": "smoke", **{k: str(v) for k, v in folders.items()}, "at_scale_dir": str(files)}, progress=False))
    assert "1 of the 1 committed file(s)" in shown and "books-runs.json" in shown
    assert "2 other held-out photographs" in shown and "s test images" in shown  # the book's, beside the file's


def test_a_copy_without_git_history_records_the_commit_it_is_told(monkeypatch, smoke_results):
    """Where the code runs from a copied working tree (no git), the file records the commit that
    ``RCL_COMMIT`` names, with uncommitted changes unknown, and the book says so."""
    def no_git(*args, **kwargs):
        raise FileNotFoundError("git")

    monkeypatch.setattr(subprocess, "run", no_git)
    monkeypatch.delenv(provenance.COMMIT_ENV, raising=False)
    assert provenance.git() == {"commit": None, "modified": None}
    monkeypatch.setenv(provenance.COMMIT_ENV, "0123456789abcdef")
    assert provenance.git() == {"commit": "0123456789abcdef", "modified": None}
    result = at_scale.load(smoke_results[1])
    result.provenance["code"].update(commit="0123456789abcdef", modified=None)
    assert "0123456789ab (given, run from a copy without git history" in at_scale.describe(result).loc["code"].iloc[0]
