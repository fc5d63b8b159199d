import argparse
import os
import subprocess
import sys
from pathlib import Path

import pytest
from paths import ROOT

from rcl import cli, config


def run(*args):
    return subprocess.run([sys.executable, "-m", "rcl", *args], capture_output=True, text=True, timeout=120)


def test_help_lists_commands_and_profiles():
    out = run("--help")
    assert out.returncode == 0
    for word in ("notebooks", "datasets", "sweep", *config.PROFILES):
        assert word in out.stdout


def test_sweep_help_explains_values_with_examples():
    out = run("sweep", "--help")
    assert out.returncode == 0
    for text in ("-p seeds '[0]','[1]','[2]'", "-p overrides '{\"tau\": 0.1}'", "--collect", "--jobs", "results.csv"):
        assert text in out.stdout


def test_unknown_profile_lists_valid():
    out = run("notebooks", "--profile", "huge")
    assert out.returncode != 0 and "smoke" in out.stderr and "gpu" in out.stderr


def test_parameter_values_parsed():
    assert [cli._parse_value(v) for v in ("1", "0.5", "None", "true", "abc")] == [1, 0.5, None, True, "abc"]


def test_settings_reject_unknown_keys_and_profiles():
    with pytest.raises(ValueError, match="valid"):
        config.settings("noise", "cpu", nonsense=1)
    with pytest.raises(ValueError, match="smoke"):
        config.settings("noise", "laptop")
    assert config.settings("noise", "smoke", tile=99)["tile"] == 99
    with pytest.raises(ValueError, match="tile='big' must be int"):
        config.settings("noise", "smoke", tile="big")


def test_all_methods_list_matches_registry():
    from rcl import methods

    assert sorted(config.ALL_METHODS) == sorted(methods.METHODS)


def test_all_tasks_list_matches_tasks():
    from rcl import tasks

    assert config.ALL_TASKS == list(tasks.TASKS)


def _help(capsys, *args):
    with pytest.raises(SystemExit) as exit_:
        cli.main([*args, "--help"])
    assert exit_.value.code == 0
    return capsys.readouterr().out


def test_pretrain_help_lists_methods_named_configurations_and_profile_values(capsys):
    from rcl import methods, profiles

    out = _help(capsys, "pretrain")
    for name, named in methods.NAMED_CONFIGS.items():
        assert f"named configuration {name}: {named.method} with {named.overrides}" in out
    for profile, values in profiles.TABLE["pretrain"].items():
        assert f"  {profile}: " + ", ".join(f"{k}={v}" for k, v in values.items()) in out
    assert "keys for --set (" in out and all(m in out for m in methods.METHODS)


def test_pretrain_help_says_what_every_set_key_means_and_its_default(capsys):
    from dataclasses import fields

    from rcl import train

    assert set(cli.SET_KEYS) == set(train.config_keys())  # a new key needs its line of help
    out = _help(capsys, "pretrain")
    for f in fields(train.PretrainConfig):
        assert f"  {f.name} ({f.default}): {cli.SET_KEYS[f.name]}" in out


def test_every_command_has_its_options():
    parser = cli.build_parser()
    expected = {
        "pretrain": ["--method", "--profile", "--set", "--print-config"],
        "evaluate": ["run", "--task", "--test-dir", "--test-dataset", "--set", "--seed", "--device", "--out"],
        "notebooks": ["--profile", "--out", "--parameter", "--quiet", "--force", "notebook"],
        "datasets": ["action", "name", "--root", "--allow-unverified"],
        "sweep": ["notebook", "--parameter", "--profile", "--out", "--jobs", "--dry-run", "--collect", "--quiet"],
        "sensitivity": ["--profile", "--seeds", "--jobs", "--runs-dir", "--results-dir", "--plan", "--quiet"],
        "backbones": ["--profile", "--seed", "--runs-dir", "--results-dir", "--quiet"],
        "apply": ["run", "input", "output", "--tile", "--overlap", "--bits", "--device", "--quiet"],
        "at-scale": ["--profile", "--set", "--proxy", "--test-dir", "--test-dataset", "--methods", "--tasks",
                     "--seeds", "--out", "--quiet"],
    }
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices
    assert list(commands) == list(expected)
    for command, options in expected.items():
        have = {s for a in commands[command]._actions for s in (a.option_strings or [a.dest])}
        assert set(options) <= have, (command, set(options) - have)
    assert "--out-root" not in {s for a in commands["sensitivity"]._actions for s in a.option_strings}


def test_sensitivity_plan_and_argument_errors(capsys):
    assert cli.main(["sensitivity", "--profile", "smoke", "--plan"]) == 0
    assert "Oracle" in capsys.readouterr().out
    for args, text in [(["--seeds", "0,x"], "--seeds"), (["--jobs", "0"], "--jobs 0")]:
        assert cli.main(["sensitivity", "--profile", "smoke", *args]) == 2
        err = capsys.readouterr().err
        assert err.startswith("rcl: error: ") and text in err and err.count("\n") == 1
    for study in ("sensitivity", "backbones"):  # the bundled photographs cannot fill the gpu profile's batch
        with pytest.raises(SystemExit) as stop:
            cli.main([study, "--profile", "gpu"])
        assert stop.value.code == 2 and "invalid choice: 'gpu'" in capsys.readouterr().err


def test_study_profiles_have_one_home():
    """The library refuses what the CLI does not offer, with the reason, from rcl.profiles alone."""
    from rcl import backbones, profiles, sensitivity

    for call in (lambda: sensitivity.plan("gpu"), lambda: sensitivity.seeds_of("gpu"),
                 lambda: backbones.settings("gpu")):  # fmt: skip
        with pytest.raises(ValueError, match=r"profile='gpu' is not valid for a study.*bundled photographs"):
            call()
    assert backbones.settings("gpu", dataset="folder", data_dir="photos")["profile"] == "gpu"  # a folder can fill it
    assert set(profiles.TABLE["sensitivity"]) == set(profiles.STUDY_PROFILES)
    with pytest.raises(ValueError, match=r"profile='gpu' is not valid for section 'sensitivity'"):
        profiles.values("sensitivity", "gpu")


def test_version_comes_from_one_place():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+

    import rcl

    out = run("--version")
    assert out.returncode == 0 and out.stdout.strip() == f"rcl {rcl.__version__}"
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "version" not in project["project"] and "version" in project["project"]["dynamic"]
    assert project["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "rcl.__version__"}
    assert (ROOT / "rcl" / "py.typed").is_file()


@pytest.mark.slow
def test_an_installed_wheel_has_its_version_and_types_and_says_where_the_notebooks_are(tmp_path):
    """Built and unpacked outside the repository, the package reports its version, ships ``py.typed``, and
    ``rcl notebooks`` says in one line where it looked and how to get the notebooks."""
    import email
    import shutil
    import zipfile

    import rcl

    src = tmp_path / "src"
    shutil.copytree(ROOT / "rcl", src / "rcl", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    pip = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-qw", str(tmp_path / "dist")]
    build = subprocess.run([*pip, str(src)], capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, build.stderr[-2000:]
    (wheel,) = (tmp_path / "dist").glob("rcl-*.whl")
    site = tmp_path / "site"
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
        meta = email.message_from_bytes(z.read(next(n for n in names if n.endswith(".dist-info/METADATA"))))
        z.extractall(site)
    assert meta["Version"] == rcl.__version__ and "rcl/py.typed" in names
    assert not any(n.endswith(".ipynb") for n in names)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {**os.environ, "PYTHONPATH": str(site)}
    env.pop("RCL_DEBUG", None)
    rcl_ = lambda *args: subprocess.run([sys.executable, "-m", "rcl", *args], capture_output=True, text=True,  # noqa: E731
                                        cwd=elsewhere, env=env, timeout=300)  # fmt: skip
    assert rcl_("--version").stdout.strip() == f"rcl {rcl.__version__}"
    out = rcl_("notebooks", "--profile", "smoke")
    assert out.returncode == 2 and out.stderr.count("\n") == 1, out.stderr[-2000:]
    assert out.stderr.startswith(f"rcl: error: {elsewhere.resolve()}: ") and str(site.resolve()) in out.stderr
    assert "clone the project's repository" in out.stderr


def _documented_commands() -> list[tuple[str, str, bool]]:
    """Every ``python -m rcl …`` (or ``torchrun … -m rcl …``) the README, the book's pages and the notebooks'
    text show: ``(where, arguments, complete)`` — complete for a fenced code block (a command to copy), not
    for an inline mention such as ``python -m rcl apply``, which may leave its arguments out."""
    import json
    import re

    texts = [(p, p.read_text()) for p in [ROOT / "README.md", *sorted((ROOT / "book").glob("*.md"))]]
    for p in sorted((ROOT / "notebooks").glob("*.ipynb")):
        cells = json.loads(p.read_text())["cells"]
        texts.append((p, "\n\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")))
    command = re.compile(r"(?:python3? -m rcl|torchrun .*?-m rcl)\s+([^`]*)")
    found = []
    for path, text in texts:
        for block in re.findall(r"```[^\n]*\n(.*?)```", text, re.S):
            for line in re.sub(r"\\\n\s*", " ", block).splitlines():
                m = command.search(line.split(" # ")[0])
                if m:
                    found.append((path.name, m.group(1).strip(), True))
        for span in re.findall(r"`([^`]+)`", re.sub(r"```.*?```", "", text, flags=re.S)):
            m = command.search(" ".join(span.split()))
            if m:
                found.append((path.name, m.group(1).strip(), False))
    return found


def test_documented_commands_parse(capsys):
    """The commands the documentation shows are ones the command line accepts: every option exists and takes
    the values shown (an inline mention may omit required arguments, a code block may not)."""
    import shlex

    commands = _documented_commands()
    assert len(commands) > 30 and any(c.startswith("apply") for _, c, _ in commands)
    bad = []
    for where, text, complete in commands:
        try:
            cli.build_parser().parse_args(shlex.split(text))
        except SystemExit as exit:
            err = capsys.readouterr().err
            if exit.code and (complete or "the following arguments are required" not in err):
                bad.append(f"{where}: python -m rcl {text}: {err.strip().splitlines()[-1]}")
        capsys.readouterr()
    assert not bad, "\n".join(bad)


def test_pretrain_on_ones_own_images_says_they_are_read_as_clean_and_get_simulated_noise(monkeypatch, capsys):
    """The premise of the command is a folder of the user's photographs: before training it says what is done to
    them (read as clean, downscaled, simulated noise added) and how to train on their own noise alone."""
    from rcl import train

    seen = []
    monkeypatch.setattr(train, "pretrain", lambda cfg: seen.append(cfg) or train.RunResult(Path("r"), cfg))
    assert cli.main(["pretrain", "--profile", "cpu", "--set", "dataset=folder", "--set", "data_dir=photos"]) == 0
    out = capsys.readouterr().out
    assert "reads every training image as clean, downscaled to at most 512 px" in out and "up to σ = 20" in out
    assert "--set sigma_max=0 adds none" in out and seen[0].data_dir == "photos"
    argv = ["pretrain", "--profile", "cpu", "--set", "dataset=folder", "--set", "data_dir=photos"]
    assert cli.main([*argv, "--set", "sigma_max=0", "--set", "max_side=none"]) == 0
    out = capsys.readouterr().out
    assert "sigma_max=0: no noise is added" in out and "up to σ" not in out and "downscaled" not in out
    for other in (["--profile", "smoke"], ["--profile", "smoke", "--set", "dataset=bsds500", "--set", "data_dir=d"]):
        assert cli.main(["pretrain", *other]) == 0  # the bundled photographs, a registered dataset: nothing to say
        assert "as clean" not in capsys.readouterr().out


def test_a_device_is_checked_against_the_machine(monkeypatch):
    """``cpu`` and ``cpu:0`` always; ``cuda`` and ``cuda:i`` only where that many CUDA devices are; one line naming
    what is valid here otherwise."""
    import torch

    assert config.device("cpu:0").type == "cpu" and config.device("") == config.default_device()
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match=r"device='cuda': this machine has 0 CUDA device\(s\); valid here: cpu$"):
        config.device("cuda")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert config.device("cuda:0") == torch.device("cuda", 0) and config.device("cuda") == torch.device("cuda")
    with pytest.raises(ValueError, match="device='cuda:1': this machine has 1 CUDA device.*valid here: cpu, cuda:0"):
        config.device("cuda:1")
    with pytest.raises(ValueError, match="device='gpu': not a device name"):
        config.device("gpu")


def test_at_scale_seeds_default_to_the_profiles_headline_seeds(monkeypatch, tmp_path, capsys):
    """Without --seeds, at-scale pre-trains the seeds notebook 04 does at that profile (one seed gives no verdicts);
    --seeds 0 is still the cheapest look."""
    from rcl import at_scale, profiles

    seen = []

    def run(profile, out, pretrain, proxy, methods, tasks, seeds, **kw):
        seen.append(list(seeds))
        return out

    monkeypatch.setattr(at_scale, "run", run)
    for extra, expected in (([], profiles.HEADLINE_SEEDS["cpu"]), (["--seeds", "0"], [0])):
        assert cli.main(["at-scale", "--profile", "cpu", "--out", str(tmp_path / "x.json"), "--quiet", *extra]) == 0
        assert seen[-1] == expected
