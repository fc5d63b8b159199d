"""Sweeps: value parsing, the grid, file names, execution in parallel with resume, failures, collecting."""

import json
import re
from pathlib import Path

import nbformat
import pandas as pd
import pytest

from rcl import cli, sweep

ROOT = Path(__file__).resolve().parent.parent

TOY_CODE = """\
import pandas as pd
from rcl.results import cached

if a == 3:
    raise ValueError(f"a={a} is not allowed\\nsecond line")
if save:
    frame, path, reused = cached(
        "toy", {"profile": profile, "a": a, "b": b, "extra": extra}, results_dir,
        lambda: pd.DataFrame({"task": "denoise", "method": ["m1", "m2"], "psnr": [a + 0.5, a + 1.5], "b": b}),
    )
"""


@pytest.fixture
def toy(tmp_path) -> Path:
    """A notebook that saves one small table through rcl.results (or fails for a=3) in a few seconds."""
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell(
        f'profile = "cpu"\na = 1\nb = "x"\nextra = {{}}\nsave = True\nresults_dir = {str(tmp_path / "results")!r}'
    )
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, nbformat.v4.new_code_cell(TOY_CODE)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path = tmp_path / "toy.ipynb"
    nbformat.write(nb, path)
    return path


def test_parse_values_commas_literals_and_plain_values():
    p = sweep.parse_values
    assert p("0,1,2") == [0, 1, 2]
    assert p("rcl-emd, n2n") == ["rcl-emd", "n2n"]
    assert p("0.5,true,None,abc") == [0.5, True, None, "abc"]
    assert p('{"tau": 0.1, "alpha": [1, 2]}') == [{"tau": 0.1, "alpha": [1, 2]}]  # one dict: fixed
    assert p("{'tau': 0.1}") == [{"tau": 0.1}]  # Python literals too
    assert p('[{"tau":0.1},{"tau":1.0}]') == [{"tau": 0.1}, {"tau": 1.0}]  # a list of dicts is swept
    assert p('{"tau":0.1},{"tau":1.0}') == [{"tau": 0.1}, {"tau": 1.0}]
    assert p('["n2n"]') == [["n2n"]]  # one list: fixed
    assert p('["n2n"],["n2n","rcl-emd"]') == [["n2n"], ["n2n", "rcl-emd"]]
    assert p('"a,b",c') == ["a,b", "c"]
    for bad, match in (("1,,2", "empty"), ("{tau: 0.1}", "cannot read"), ("1,2,1", "twice")):
        with pytest.raises(ValueError, match=match):
            p(bad)
    assert cli._parse_value("1") == 1  # the notebooks command parses single values the same way


def test_grid_is_the_cartesian_product_in_a_stable_order():
    assert sweep.grid({"a": [1, 2], "b": ["x", "y"]}) == [
        {"a": 1, "b": "x"},
        {"a": 1, "b": "y"},
        {"a": 2, "b": "x"},
        {"a": 2, "b": "y"},
    ]
    assert sweep.grid({}) == [{}]
    with pytest.raises(ValueError, match="parameter a"):
        sweep.grid({"a": "12"})


def test_execution_names_are_safe_and_distinct():
    combos = [
        {"seed": 0, "tau": 0.1, "method": "rcl-emd"},
        {"seed": -1, "tau": 1e-5, "method": None},
        {"seed": 0, "tau": 0.1, "method": "a/b c"},
        {"seed": 0, "tau": 0.1, "method": "x" * 100},
        {"seed": 0, "tau": {"tau": 0.1}, "method": ["n2n"]},
        {"seed": 0, "tau": {"tau": 0.2}, "method": ["n2n"]},
    ]
    names = [sweep.execution_name("04_proxy", c) for c in combos]
    assert names[0] == "04_proxy--seed=0--tau=0.1--method=rcl-emd"
    assert names[1] == "04_proxy--seed=-1--tau=1e-05--method=None"
    assert len(set(names)) == len(names)
    assert all(re.fullmatch(r"[A-Za-z0-9._+=-]+", n) and len(n) < 120 for n in names)
    assert names[4].startswith("04_proxy--seed=0--tau=tau_0.1-")  # readable part, then a hash


def test_bad_parameter_name_lists_the_valid_ones(toy, capsys):
    assert sweep.notebook_parameters(toy)["b"] == "x"
    with pytest.raises(sweep.SweepError, match=r"no parameter 'c'.*a=1, b='x'"):
        sweep.check_names(toy, ["a", "c"])
    assert cli.main(["sweep", str(toy), "-p", "c", "1,2"]) == 2
    assert "no parameter 'c'" in capsys.readouterr().err
    with pytest.raises(sweep.SweepError, match="does not exist"):
        sweep.check_names(toy.with_name("nope.ipynb"), [])


def test_cli_rejects_bad_input_before_running(toy, tmp_path, capsys):
    out = tmp_path / "out"
    cases = [
        (["-p", "profile", "smoke"], "--profile"),
        (["-p", "a", "1", "-p", "a", "2"], "given twice"),
        (["-p", "extra", "{tau: 1}"], "-p extra: cannot read"),
        (["--jobs", "0"], "--jobs 0"),
    ]
    for extra, message in cases:
        assert cli.main(["sweep", str(toy), "--out", str(out), *extra]) == 2
        assert message in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main(["sweep", str(toy), "--profile", "huge"])
    assert "invalid choice" in capsys.readouterr().err
    assert cli.main(["sweep", str(toy), "-p", "a", "1,2", "--out", str(out), "--dry-run"]) == 0
    assert "would run: toy--a=2.ipynb" in capsys.readouterr().out and not out.exists()


def test_run_collects_results_and_resumes(toy, tmp_path, capsys, monkeypatch):
    out = tmp_path / "sweep"
    combos = [{"a": 1, "extra": {"k": 1}}, {"a": 2, "extra": {"k": 2}}]  # any list of combinations, not only a grid
    manifest = sweep.run(toy, combos, out, profile="smoke", jobs=2, fixed={"b": "y"}, progress=False)
    names = [e["name"] for e in manifest["executions"]]
    assert names[0].startswith("toy--a=1--extra=k_1-") and names[1].startswith("toy--a=2--extra=k_2-")
    assert all(e["status"] == "done" and not e["skipped"] and e["seconds"] > 0 for e in manifest["executions"])
    on_disk = json.loads((out / "sweep.json").read_text())
    assert on_disk["fixed"] == {"b": "y"} and on_disk["swept"] == ["a", "extra"] and on_disk["grid"] == combos
    assert sorted(p.stem for p in out.glob("toy--*.ipynb")) == names and not (out / ".work").exists()
    assert capsys.readouterr().out.count("done   toy--") == 2

    table = sweep.collect(out)
    assert len(table) == 4 and (out / "results.csv").exists()
    assert list(table.columns[:7]) == ["a", "extra", "extra.k", "profile", "notebook", "execution", "kind"]
    assert set(table.a) == {1, 2} and set(table["extra.k"]) == {1, 2} and set(table.kind) == {"toy"}
    assert (table.psnr - table.a).isin([0.5, 1.5]).all() and set(table.b) == {"y"}
    pd.testing.assert_frame_equal(pd.read_csv(out / "results.csv"), table, check_dtype=False)
    text = sweep.summary(table, ["a", "extra"])
    assert "± 0.00" not in text and "psnr (dB)" in text and len(text.splitlines()) == 1 + 4

    monkeypatch.setattr(sweep, "code_version", lambda: "changed")
    assert len(sweep.collect(out)) == 4 and "older version of the library" in capsys.readouterr().out

    again = sweep.run(toy, combos, out, profile="smoke", jobs=2, fixed={"b": "y"}, progress=False)
    assert all(e["skipped"] for e in again["executions"]) and "0 to run" in capsys.readouterr().out
    nb = nbformat.read(toy, as_version=4)  # the notebook changes: its finished executions are not current any more
    nb.cells.append(nbformat.v4.new_code_cell("changed = True"))
    nbformat.write(nb, toy)
    third = sweep.run(toy, combos, out, profile="smoke", jobs=2, fixed={"b": "y"}, progress=False)
    assert not any(e["skipped"] or e["status"] != "done" for e in third["executions"])
    assert "2 to run (2 of them again" in capsys.readouterr().out
    with pytest.raises(sweep.SweepError, match="other settings"):
        sweep.run(toy, combos, out, profile="smoke", fixed={"b": "z"}, progress=False)


def test_cli_reports_failures_and_recollects(toy, tmp_path, capsys):
    out = tmp_path / "sweep"
    args = ["sweep", str(toy), "-p", "a", "1,3", "-p", "save", "true", "--profile", "smoke", "--out", str(out)]
    assert cli.main([*args, "--jobs", "2", "--quiet"]) == 1
    printed = capsys.readouterr().out
    assert "failed toy--a=3" in printed and "ValueError: a=3 is not allowed" in printed
    assert "second line" not in printed and "1 of 2 execution(s) failed" in printed
    assert (out / "toy--a=1.ipynb").exists() and (out / "toy--a=3.failed.ipynb").exists()
    assert not (out / "toy--a=3.ipynb").exists()
    manifest = sweep.read_manifest(out)
    assert [e["status"] for e in manifest["executions"]] == ["done", "failed"]
    assert manifest["executions"][1]["error"] == "ValueError: a=3 is not allowed"
    assert "psnr (dB)" in printed and "2.50 ± 0.00" not in printed  # the summary of the collected table

    assert cli.main(["sweep", "--collect", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "toy--a=3: not finished (failed)" in printed and "collected 2 row(s)" in printed
    assert cli.main(["sweep", "--collect", str(tmp_path)]) == 2
    assert "no sweep.json" in capsys.readouterr().err


def test_collect_names_executions_that_saved_nothing(toy, tmp_path, capsys):
    out = tmp_path / "sweep"
    sweep.run(toy, [{"a": 1}], out, profile="smoke", jobs=1, fixed={"save": False}, progress=False)
    table = sweep.collect(out)
    assert table.empty and "toy--a=1.ipynb saved no results" in capsys.readouterr().out


@pytest.mark.slow
def test_sweep_of_notebook_04_collects_both_seeds(tmp_path):
    """Two smoke executions of the proxy evaluation; needs notebook 04 to save its table with rcl.results."""
    out = tmp_path / "sweep"
    args = [
        "sweep",
        str(ROOT / "notebooks" / "04_proxy_evaluation.ipynb"),
        "--profile",
        "smoke",
        "--out",
        str(out),
        "-p",
        "methods",
        '["n2n"]',
        "-p",
        "seed",
        "0,1",
        "--quiet",
        "-p",
        "runs_dir",
        str(tmp_path / "runs"),
        "-p",
        "results_dir",
        str(tmp_path / "results"),
    ]
    assert cli.main(args) == 0
    table = sweep.collect(out)
    assert set(table.seed) == {0, 1} and {"psnr", "method", "task"} <= set(table.columns)


def test_summary_averages_the_papers_cases_not_every_noise_level():
    """σ = 0 scores the noisy input at the 100 dB cap: averaged in, it would outrank every method."""
    rows = [{"task": "denoise", "method": m, "condition": c, "psnr": v}
            for m, at0, mixed in (("noisy input", 100.0, 25.0), ("n2n", 45.0, 30.0))
            for c, v in (("σ=0", at0), ("σ~U[0,20]", mixed))]  # fmt: skip
    rows.append({"task": "denoise", "method": "sl", "condition": None, "psnr": 27.0})  # a result without conditions
    text = sweep.summary(pd.DataFrame(rows), [])
    assert "25.00" in text and "30.00" in text and "27.00" in text and "100" not in text and "62.50" not in text


def test_a_corrupt_manifest_is_named(tmp_path):
    """A sweep.json cut short is refused naming the file, not with a bare JSON error."""
    (tmp_path / "sweep.json").write_text('{"parameters": [')
    with pytest.raises(ValueError, match=r"sweep\.json: not a readable sweep manifest"):
        sweep.read_manifest(tmp_path)
