"""The notebooks execute at the smoke profile, show their figures, and the book builds from them.

``make test`` executes the notebooks once with papermill into ``build/smoke`` and points
``RCL_SMOKE_NOTEBOOKS`` there (nbval then re-runs those copies); run alone, the ``smoke_dir`` fixture
(conftest) executes them into a temporary folder itself.
"""

import json
from pathlib import Path

import nbformat
import pytest

from rcl import notebooks, sweep_plan

ROOT = Path(__file__).resolve().parent.parent
SOURCES = notebooks.notebook_paths()


@pytest.mark.parametrize("source", SOURCES, ids=[p.stem for p in SOURCES])
def test_source_notebook_is_clean_and_parameterised(source):
    nb = nbformat.read(source, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(not c.outputs and c.execution_count is None for c in code), "commit notebooks without outputs"
    tagged = [c for c in code if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, "exactly one cell tagged 'parameters'"
    assert 'profile = "cpu"' in tagged[0].source, "the default profile is cpu"


@pytest.mark.slow
@pytest.mark.parametrize("source", SOURCES, ids=[p.stem for p in SOURCES])
def test_smoke_execution_shows_figures(source, smoke_dir):
    nb = json.loads((smoke_dir / source.name).read_text())
    outputs = [o for c in nb["cells"] if c["cell_type"] == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    assert sum("image/png" in o.get("data", {}) for o in outputs) >= 2


@pytest.mark.slow
def test_bad_parameter_fails_naming_it(tmp_path):
    import papermill as pm

    with pytest.raises(pm.PapermillExecutionError, match="tile='large' must be int"):
        notebooks.execute(SOURCES[0], tmp_path, {"profile": "smoke", "tile": "large"}, progress=False)
    with pytest.raises(ValueError, match="profile='huge' is not valid"):
        notebooks.execute(SOURCES[0], tmp_path, {"profile": "huge"}, progress=False)
    assert not (tmp_path / SOURCES[0].name).exists()  # nothing complete-looking is left behind


@pytest.mark.slow
def test_book_builds_with_figures(smoke_book):
    assert (smoke_book / "index.html").exists()
    for p in SOURCES:
        page = (smoke_book / "notebooks" / f"{p.stem}.html").read_text()
        assert page.count("<img") >= 2


@pytest.mark.slow
def test_results_page_shows_the_saved_results(smoke_dir):
    """Every mean PSNR of the saved proxy and label results, computed here with plain pandas from the files,
    appears on the results page: the page is read back from those files, not typed."""
    from rcl import summary
    from rcl.labels import ARMS

    page = json.loads((smoke_dir / "07_results_summary.ipynb").read_text())
    results_dir = Path(page["metadata"]["papermill"]["parameters"]["results_dir"])
    if not results_dir.is_absolute():
        results_dir = ROOT / "notebooks" / results_dir
    shown = "".join(
        "".join(o.get("data", {}).get(mime, ""))
        for c in page["cells"]
        if c["cell_type"] == "code"
        for o in c.get("outputs", [])
        for mime in ("text/html", "text/markdown")
    )
    saved = {kind: summary.book_result(results_dir, kind, "smoke") for kind in ("proxy", "labels")}
    assert all(saved.values()), f"no current saved results in {results_dir} (executed by older code?)"
    def paper_setting(df):  # the tables beside the paper's use the mixed noise range (and SR's clean cases)
        return df[df.condition.str.startswith("σ~U") | (df.condition == "clean")]

    proxy = paper_setting(saved["proxy"].frame())
    means = proxy.groupby(["method", "task", "seed", "trial"]).psnr.mean().groupby(["method", "task"]).mean()
    labels = paper_setting(saved["labels"].frame())
    labels = labels[labels.arm.isin(ARMS)]  # the test inputs' rows are the controls' reference
    label_means = labels.groupby(["arm", "labels", "seed"]).psnr.mean().groupby(["arm", "labels"]).mean()
    expected = [f"{v:.2f}" for v in [*means, *label_means]]
    missing = [v for v in expected if v not in shown]
    assert len(expected) >= 8 and not missing, f"values of the saved results not on the page: {missing}"


@pytest.mark.slow
@pytest.mark.parametrize("source", SOURCES, ids=[p.stem for p in SOURCES])
def test_bad_profile_fails_in_the_first_cell_naming_it(source, tmp_path):
    import papermill as pm

    with pytest.raises(pm.PapermillExecutionError) as err:
        pm.execute_notebook(str(source), str(tmp_path / source.name), parameters={"profile": "huge"},
                            progress_bar=False, cwd=str(source.parent))  # fmt: skip
    assert "profile='huge'" in str(err.value) and "smoke" in str(err.value)
    nb = nbformat.read(tmp_path / source.name, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    injected = next(i for i, c in enumerate(code) if "injected-parameters" in c.metadata.get("tags", []))
    failed = next(i for i, c in enumerate(code) if any(o.get("output_type") == "error" for o in c.outputs))
    assert failed == injected + 1, "the first cell after the parameters should reject the bad value"


def _tiny_notebook(path: Path, text: str) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell('profile = "cpu"\nx = 1', metadata={"tags": ["parameters"]}),
                nbformat.v4.new_code_cell(f"print({text!r}, x)")]  # fmt: skip
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)
    return path


@pytest.mark.slow
def test_rerun_keeps_current_notebooks_and_executes_from_the_first_changed_one(tmp_path, capsys):
    a, b = _tiny_notebook(tmp_path / "01_a.ipynb", "a"), _tiny_notebook(tmp_path / "02_b.ipynb", "b")
    out = tmp_path / "out"
    run = lambda **kw: notebooks.execute_all("smoke", out, {"x": 2}, [a, b], progress=False, **kw)  # noqa: E731
    mtimes = lambda: [(out / p.name).stat().st_mtime_ns for p in (a, b)]  # noqa: E731
    run()
    first = mtimes()
    run()
    assert mtimes() == first and capsys.readouterr().out.count("up to date") == 2
    _tiny_notebook(a, "a changed")  # an earlier notebook changed: both run again
    run()
    second = mtimes()
    assert all(s != f for s, f in zip(second, first))
    notebooks.execute_all("smoke", out, {"x": 3}, [a, b], progress=False)  # other parameters
    third = mtimes()
    assert all(t != s for t, s in zip(third, second))
    run(force=True)
    assert all(m != t for m, t in zip(mtimes(), third))
    assert "a changed" in (out / a.name).read_text()


@pytest.mark.slow
def test_a_notebook_executed_on_a_machine_that_computes_otherwise_is_not_current(tmp_path, monkeypatch):
    """The fingerprint holds the machine's numerics, as run and result keys do: a notebook executed where
    autocast runs in another precision (a GPU, a CPU without bfloat16) is executed again here."""
    a = _tiny_notebook(tmp_path / "01_a.ipynb", "a")
    out = tmp_path / "out"
    notebooks.execute_all("smoke", out, {"x": 2}, [a], progress=False)
    assert notebooks.is_current(a, out, {"x": 2, "profile": "smoke"})
    monkeypatch.setattr(notebooks, "numerics", lambda: "cuda-bf16-fp32:all=none,matmul=none,conv=tf32")
    assert not notebooks.is_current(a, out, {"x": 2, "profile": "smoke"})


def _parameters_cell(source: Path) -> str:
    nb = nbformat.read(source, as_version=4)
    return next(c.source for c in nb.cells if "parameters" in c.metadata.get("tags", []))


@pytest.mark.parametrize("cwd", ["root", "notebooks", "elsewhere"])
def test_runs_and_results_default_to_the_projects_folders_whatever_the_working_directory(cwd, tmp_path, monkeypatch):
    """The README's papermill recipe runs from the repository's folder, ``rcl notebooks`` and Jupyter in
    notebooks/; each parameters cell that names runs_dir or results_dir gives the project's own folders."""
    monkeypatch.chdir({"root": ROOT, "notebooks": ROOT / "notebooks", "elsewhere": tmp_path}[cwd])
    with_dirs = [p for p in SOURCES if "runs_dir" in _parameters_cell(p)]
    assert [p.name[:2] for p in with_dirs] == ["03", "04", "05", "06", "07", "08"]
    for source in with_dirs:
        namespace: dict = {}
        exec(_parameters_cell(source), namespace)
        assert Path(namespace["runs_dir"]).resolve() == ROOT / "runs", source.name
        assert Path(namespace["results_dir"]).resolve() == ROOT / "results", source.name
    expected = {"root": "runs", "notebooks": "../runs", "elsewhere": str(ROOT / "runs")}[cwd]
    assert notebooks.project_dir("runs") == expected  # executed notebooks show ../runs, as they did


def test_gpu_parameters_say_what_to_set_on_the_bundled_images():
    """At the gpu profile the bundled photographs give fewer instances than a batch: the parameters cells of
    the notebooks that pre-train say so, with the right numbers, and the overrides they suggest build every
    method of the profile offline (the batch fits, the dense baselines' queues too, no ImageNet weights)."""
    import ast

    from rcl import train

    cfg = train.make_config("rcl-emd", "gpu", dataset="builtin", progress=False)
    ds = train.build_data(cfg)
    n = len(ds)
    assert n < cfg.batch_size
    suggestions = set()
    for source in SOURCES[2:5]:
        cell = _parameters_cell(source)
        assert f"batches of {cfg.batch_size} instances" in cell and f"({n} tiles of {cfg.tile} px)" in cell
        assert "python -m rcl datasets download voc2012" in cell and 'dataset = "voc2012"' in cell
        suggestions.add(cell.split("overrides = ")[1].split("\n")[0].rstrip(".").strip())
    (suggested,) = suggestions  # the same advice in every notebook
    overrides = ast.literal_eval(suggested)
    for method in ("rcl-emd", "vader", "densecl+"):
        small = train.make_config(method, "gpu", dataset="builtin", progress=False, **overrides)
        assert train._check_batch(ds, small) <= n
        train.build_method(small, ds)  # a queue too large for the tiles, or weights to download, would raise


def test_command_line_values_are_read_as_sweeps_read_one():
    read = notebooks.parse_parameters
    assert read([("seed", "1"), ("sigma_max", "0.5"), ("tile", "none"), ("dataset", "folder")]) == {
        "seed": 1, "sigma_max": 0.5, "tile": None, "dataset": "folder"}  # fmt: skip
    assert read([("methods", '["n2n", "rcl-emd"]'), ("proxy", '{"trials": 3}'), ("data_dir", '"a,b"')]) == {
        "methods": ["n2n", "rcl-emd"], "proxy": {"trials": 3}, "data_dir": "a,b"}  # fmt: skip
    assert read([("x", '[{"tau": 0.1}, {"tau": 1}]')]) == {"x": [{"tau": 0.1}, {"tau": 1}]}  # one list of dicts
    assert read([("x", '[{"tau": 0.1}]')]) == {"x": [{"tau": 0.1}]}
    for pairs, match in [([("seeds", "0,1")], r"one value per parameter.*'\[0, 1\]'"),
                         ([("a", "1"), ("a", "2")], "given twice"), ([("profile", "gpu")], "--profile"),
                         ([("proxy", "{trials: 3}")], "-p proxy: cannot read")]:  # fmt: skip
        with pytest.raises(ValueError, match=match):
            read(pairs)


def test_each_notebook_gets_the_parameters_it_defines_and_unknown_ones_are_refused():
    shares = notebooks.parameters_for(SOURCES, {"seed": 1, "runs_dir": "/r", "task2": "jdd"})
    for source, share in zip(SOURCES, shares):
        assert set(share) == {"seed", "runs_dir", "task2"} & set(sweep_plan.notebook_parameters(source))
    assert shares[0] == {"seed": 1} and shares[5] == {"runs_dir": "/r", "task2": "jdd"}
    with pytest.raises(ValueError, match=rf"no parameter 'sed' in the parameters cell of any of the {len(SOURCES)} "
                       r"notebooks; valid: profile, dataset, data_dir, seed, "):  # fmt: skip
        notebooks.parameters_for(SOURCES, {"sed": 1})
    with pytest.raises(ValueError, match="of 06_sensitivity.ipynb; valid: profile, dataset, results_dir, runs_dir"):
        notebooks.execute_all("smoke", "unused", {"seed": 1}, [SOURCES[5]])


def test_the_at_scale_page_is_executed_again_when_its_results_files_change(tmp_path):
    """Notebook 08 shows committed files, not saved results: their names and contents are in its fingerprint."""
    from rcl import notebooks

    source = tmp_path / "08_at_scale.ipynb"
    source.write_text("{}")
    folder = tmp_path / "at_scale"
    folder.mkdir()
    params = {"at_scale_dir": str(folder)}
    empty = notebooks._studies(source, params)
    (folder / "a.json").write_text("{}")
    one = notebooks._studies(source, params)
    (folder / "a.json").write_text('{"schema": 1}')
    assert len({empty, one, notebooks._studies(source, params)}) == 3


def test_a_notebook_on_a_folder_of_images_is_executed_again_when_the_images_change(tmp_path):
    from rcl import notebooks

    source = tmp_path / "04_proxy_evaluation.ipynb"
    source.write_text("{}")
    photos = tmp_path / "photos"
    photos.mkdir()
    (photos / "a.png").write_bytes(b"one")
    before = notebooks._studies(source, {"data_dir": "photos"})  # relative to the notebook, where it runs
    (photos / "b.png").write_bytes(b"two")
    assert notebooks._studies(source, {"data_dir": "photos"}) != before
    assert notebooks._studies(source, {}) == ""


@pytest.mark.slow
def test_the_sensitivity_page_shows_a_published_study_where_this_build_computed_none(smoke_dir, tmp_path):
    """``python -m rcl sensitivity --publish`` copies the study into a studies folder; notebook 06, given a results
    folder without a study, shows the published copy and says where it came from."""
    from rcl import cli

    given = json.loads((smoke_dir / "06_sensitivity.ipynb").read_text())["metadata"]["papermill"]["parameters"]
    runs, res = (str(p if p.is_absolute() else ROOT / "notebooks" / p)
                 for p in (Path(given["runs_dir"]), Path(given["results_dir"])))  # fmt: skip
    studies = tmp_path / "studies"
    assert cli.main(["sensitivity", "--profile", "smoke", "--quiet", "--runs-dir", runs, "--results-dir", res,
                     "--publish", "--studies-dir", str(studies)]) == 0  # fmt: skip
    assert len(list(studies.glob("sensitivity-builtin-smoke-*.csv"))) == 1
    params = {"profile": "smoke", "results_dir": str(tmp_path / "empty"), "runs_dir": runs, "studies_dir": str(studies)}
    out = notebooks.execute(SOURCES[5], tmp_path / "out", params, progress=False)
    shown = "".join("".join(o.get("data", {}).get("text/markdown", "")) for c in json.loads(out.read_text())["cells"]
                    if c["cell_type"] == "code" for o in c.get("outputs", []))  # fmt: skip
    assert "the **published** study `sensitivity-builtin-smoke-" in shown and "not recomputed by this build" in shown
    assert "- **Controls:**" in shown and "No sensitivity study" not in shown


def test_every_figure_has_alt_text(smoke_dir):
    """Each cell that draws a figure in the executed notebooks gives it alt text (cell metadata
    ``mystnb.image.alt``, which the book's HTML carries), so a screen reader does not read a file name."""
    missing = []
    for path in sorted(smoke_dir.glob("*.ipynb")):
        for cell in json.loads(path.read_text())["cells"]:
            if any("image/png" in o.get("data", {}) for o in cell.get("outputs", [])):
                alt = cell["metadata"].get("mystnb", {}).get("image", {}).get("alt", "")
                if len(alt.split()) < 5:
                    missing.append(f"{path.name}: {cell.get('id')}")
    assert not missing, missing


def test_the_sensitivity_page_at_the_gpu_profile_says_why_it_has_no_study(tmp_path):
    """The study does not run at gpu (rcl.profiles.STUDY_WHY): notebook 06 executes there all the same, saying
    why, so `make book PROFILE=gpu` goes on to the pages after it."""
    from rcl import profiles

    (page,) = [s for s in SOURCES if s.name.startswith("06_")]
    empty = {"results_dir": str(tmp_path / "results"), "studies_dir": str(tmp_path / "studies")}
    out = notebooks.execute(page, tmp_path / "out", {"profile": "gpu", **empty}, progress=False)
    text = out.read_text()
    assert profiles.STUDY_WHY in text and "No sensitivity study has been saved" in text
