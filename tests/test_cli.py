import subprocess
import sys

import pytest

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
