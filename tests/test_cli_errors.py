"""Errors of the user's input: one line, ``rcl: error: …``, status 2; ``--debug`` (or ``RCL_DEBUG=1``) shows
the traceback, and a bug always does."""

import argparse
import os
import subprocess
import sys

import nbformat
import pytest

from rcl import cli

#: Representative errors of the input, one per kind: a bad --set value, a missing run directory, an unknown
#: method, an unknown profile, a -p name no notebook defines, and what the one line must name.
CASES = {
    "bad --set value": (["pretrain", "--profile", "smoke", "--set", "tile=big", "--print-config"], "tile='big'"),
    "--set without =": (["pretrain", "--profile", "smoke", "--set", "tile", "--print-config"], "KEY=VALUE"),
    "unknown --set key": (["pretrain", "--profile", "smoke", "--set", "nonsense=1", "--print-config"], "valid keys"),
    "missing run": (["evaluate", "no/such/run"], "no/such/run: not a run directory"),
    "unknown method": (["pretrain", "--method", "nope", "--print-config"], "unknown method 'nope'; valid"),
    "unknown profile": (["pretrain", "--profile", "huge"], "invalid choice: 'huge'"),
    "unknown dataset": (["datasets", "download", "nope"], "valid names"),
    "missing image folder": (["pretrain", "--profile", "smoke", "--set", "dataset=folder", "--set",
                              "data_dir=no/such/photos", "--set", "runs_dir=no/such/runs"], "no/such/photos"),
    "unknown -p name": (["notebooks", "-p", "nonsense", "1"], "no parameter 'nonsense'"),
    "a device not here": (["pretrain", "--profile", "smoke", "--set", "device=nonesuch", "--print-config"],
                          "device='nonesuch': not a device name; valid here: cpu"),
    "tile=0": (["pretrain", "--profile", "smoke", "--set", "tile=0", "--print-config"], "tile=0 must be > 0"),
    "two values to one -p": (["notebooks", "-p", "seeds", "0,1"], "'[0, 1]'"),
    # found by an audit of the commands: each escaped as a traceback, or failed only after the work
    "--set method=": (["pretrain", "--profile", "smoke", "--set", "method=n2n"], "give the method as --method n2n"),
    "an infinite setting": (["pretrain", "--profile", "smoke", "--set", "sigma_max=inf", "--print-config"],
                            "sigma_max=inf must be a finite number"),
    "too deep a U-Net": (["pretrain", "--profile", "smoke", "--set", "depth=10", "--print-config"],
                         "2**depth=1024 must be <= crop=32"),
    "which step setting": (["pretrain", "--profile", "smoke", "--set", "steps=-1", "--print-config"],
                           "steps=-1 must be >= 1"),
    "a file as the image folder": (["pretrain", "--profile", "smoke", "--set", "dataset=folder", "--set",
                                    f"data_dir={__file__}", "--set", "runs_dir=runs"],
                                   "a file, not a folder of images"),
    "at-scale --set method=": (["at-scale", "--profile", "smoke", "--set", "method=n2n", "--out", "r.json"],
                               "the methods are chosen by methods"),
    "at-scale --set seed=": (["at-scale", "--profile", "smoke", "--set", "seed=3", "--out", "r.json"],
                             "the seeds are chosen by seeds"),
    "at-scale --out under a file": (["at-scale", "--profile", "smoke", "--out", f"{__file__}/r.json"],
                                    "a file, where the results file's folder would be"),
    "a notebook that is not one": (["notebooks", "--out", "nb", __file__], "not a readable notebook"),
    "--test-dataset without --test-dir": (["evaluate", "no/such/run", "--test-dataset", "bsds500"],
                                          "--test-dataset bsds500 needs --test-dir"),
    "at-scale --test-dataset without --test-dir": (["at-scale", "--profile", "smoke", "--test-dataset", "folder",
                                                   "--out", "r.json"], "--test-dataset folder needs --test-dir"),
    "a file as runs_dir": (["pretrain", "--profile", "smoke", "--set", f"runs_dir={__file__}/runs"],
                           f"{__file__}: a file, where --set runs_dir would be a folder"),
    "a file as --results-dir": (["backbones", "--profile", "smoke", "--results-dir", __file__],
                                f"{__file__}: a file, where --results-dir would be a folder"),
}


def _status(argv):
    """What ``main(argv)`` returns, or the status it exits with (argparse exits)."""
    try:
        return cli.main(argv)
    except SystemExit as exit_:
        return exit_.code


@pytest.mark.parametrize("argv, text", CASES.values(), ids=CASES)
def test_an_error_of_the_input_is_one_line_and_status_2(argv, text, capsys, monkeypatch, tmp_path):
    monkeypatch.delenv("RCL_DEBUG", raising=False)
    monkeypatch.chdir(tmp_path)  # whatever a command creates before it fails stays out of the repository
    assert _status(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("rcl: error: ") and err.count("\n") == 1 and text in err, err


@pytest.mark.parametrize("argv, text", [CASES["bad --set value"], CASES["unknown method"], CASES["missing run"]])
def test_debug_shows_the_exception_instead(argv, text, monkeypatch):
    monkeypatch.delenv("RCL_DEBUG", raising=False)
    with pytest.raises(ValueError, match="."):
        cli.main([*argv, "--debug"])  # after the command
    with pytest.raises(ValueError):
        cli.main(["--debug", *argv])  # before it
    monkeypatch.setenv("RCL_DEBUG", "1")
    with pytest.raises(ValueError):
        cli.main(argv)
    monkeypatch.setenv("RCL_DEBUG", "0")
    assert cli.main(argv) == 2


def test_from_the_shell_one_line_and_with_debug_a_traceback():
    argv = [sys.executable, "-m", "rcl", "pretrain", "--method", "nope", "--print-config"]
    env = {k: v for k, v in os.environ.items() if k != "RCL_DEBUG"}
    plain = subprocess.run(argv, capture_output=True, text=True, timeout=300, env=env)
    assert plain.returncode == 2 and plain.stdout == ""
    assert plain.stderr.startswith("rcl: error: unknown method 'nope'") and plain.stderr.count("\n") == 1
    for extra, more_env in (["--debug"], {}), ([], {"RCL_DEBUG": "1"}):
        debug = subprocess.run(argv + extra, capture_output=True, text=True, timeout=300, env={**env, **more_env})
        assert debug.returncode == 1 and "Traceback" in debug.stderr and "unknown method 'nope'" in debug.stderr


@pytest.mark.parametrize("bug", [KeyError("dataset"), RuntimeError("shapes differ"), TypeError("x"),
                                 OSError("no space left")])  # fmt: skip
def test_a_bug_still_shows_its_traceback(bug, monkeypatch):
    monkeypatch.delenv("RCL_DEBUG", raising=False)

    def broken(args: argparse.Namespace) -> int:
        raise bug

    monkeypatch.setattr(cli, "_cmd_datasets", broken)
    with pytest.raises(type(bug)):
        cli.main(["datasets", "list"])


def test_an_interrupt_is_one_line_naming_the_command_that_resumes(monkeypatch, capsys):
    """Ctrl-C: no traceback, status 130, and the command that resumes (with --debug, the interrupt itself)."""
    monkeypatch.delenv("RCL_DEBUG", raising=False)

    def interrupted(args: argparse.Namespace) -> int:
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "_cmd_datasets", interrupted)
    assert cli.main(["datasets", "list"]) == 130
    err = capsys.readouterr().err
    assert err.startswith("rcl: interrupted;") and err.count("\n") == 1
    assert err.endswith("python -m rcl datasets list\n")
    with pytest.raises(KeyboardInterrupt):
        cli.main(["datasets", "list", "--debug"])


def test_which_exceptions_are_the_users_input():
    assert cli.user_error(FileNotFoundError(2, "No such file or directory", "a/b.png")) == (
        "a/b.png: No such file or directory"
    )
    assert cli.user_error(IsADirectoryError(21, "Is a directory", "x")) == "x: Is a directory"
    missing = FileNotFoundError("photos: no such folder of images")  # rcl.data's, naming no filename attribute
    assert cli.user_error(missing) == "photos: no such folder of images"
    assert cli.user_error(ValueError("first line\n  second line")) == "first line second line"  # one line
    for bug in (KeyError("k"), RuntimeError("r"), OSError("no file named"), AttributeError("a")):
        assert cli.user_error(bug) is None
    from rcl import datasets

    refused = datasets.UnverifiedDownloadError("kodak24: no published checksum; pass --allow-unverified")
    assert cli.user_error(refused) == str(refused)
    failed = datasets.DownloadError("bsds500: cannot download https://example.org/a.tgz (HTTPError: 404)")
    assert cli.user_error(failed) == str(failed)
    from rcl import sensitivity

    partial = sensitivity.StudyIncomplete("2 setting(s) of the sensitivity study failed (the others are cached; run "
                                          "it again to retry): tau=1: loss is nan")
    assert cli.user_error(partial) == str(partial) and isinstance(partial, RuntimeError)


def _tiny_notebook(path, body="print(x)"):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell('profile = "cpu"\nx = 1', metadata={"tags": ["parameters"]}),
                nbformat.v4.new_code_cell(body)]  # fmt: skip
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)
    return path


def test_notebooks_refuse_a_parameter_no_notebook_defines_before_running(tmp_path, capsys):
    nb = _tiny_notebook(tmp_path / "01_tiny.ipynb")
    out = tmp_path / "out"
    assert cli.main(["notebooks", "--profile", "smoke", "--out", str(out), "-p", "y", "2", str(nb)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no parameter 'y'" in err and "01_tiny.ipynb" in err and "valid: profile, x" in err
    assert not out.exists()  # nothing ran
    for argv, text in ((["-p", "x", "1", "-p", "x", "2"], "given twice"), (["-p", "profile", "gpu"], "--profile"),
                       (["-p", "x", "[1"], "-p x: cannot read")):  # fmt: skip
        assert cli.main(["notebooks", "--out", str(out), *argv, str(nb)]) == 2
        assert text in capsys.readouterr().err
    assert not out.exists()


@pytest.mark.slow
def test_a_notebook_stopped_by_its_input_is_one_line_naming_its_failed_copy(tmp_path, capsys):
    nb = _tiny_notebook(tmp_path / "01_tiny.ipynb", "if x > 1:\n    raise ValueError(f'x={x} is too large')")
    out = tmp_path / "out"
    assert cli.main(["notebooks", "--profile", "smoke", "--quiet", "--out", str(out), "-p", "x", "2", str(nb)]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("rcl: error: 01_tiny.ipynb stopped at cell") and "ValueError: x=2 is too large" in err
    assert str(out / "01_tiny.failed.ipynb") in err


@pytest.mark.parametrize("flag, value, text", [("--tile", "0", "--tile=0"), ("--overlap", "-8", "--overlap=-8")])
def test_apply_refuses_bad_tile_sizes_before_loading_the_run(flag, value, text, capsys, monkeypatch, tmp_path):
    """The run does not exist: a size checked after loading it would report the missing run instead."""
    import numpy as np
    from PIL import Image

    monkeypatch.delenv("RCL_DEBUG", raising=False)
    (tmp_path / "in").mkdir()
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "in" / "a.png")
    argv = ["apply", str(tmp_path / "no-run"), str(tmp_path / "in"), str(tmp_path / "out"), flag, value]
    assert _status(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("rcl: error: ") and text in err and "no-run" not in err, err


def test_a_proxy_setting_of_the_wrong_kind_names_what_is_expected():
    """``--set``/``--proxy`` values of the proxy protocol: the key, the value and what would be valid, in words."""
    for item, text in [("n_labels=abc", "n_labels='abc': expected a whole number"),
                       ("sigma_grid=a,b", "expected comma-separated numbers"),
                       ("test_crop=x", "expected a whole number of pixels or none")]:  # fmt: skip
        with pytest.raises(ValueError, match=text):
            cli._proxy_sets([item], "--proxy", "why")
    parsed = cli._proxy_sets(["trials=3", "sigma_grid=0,10"], "--proxy", "why")
    assert parsed == {"trials": 3, "sigma_grid": (0.0, 10.0)}
