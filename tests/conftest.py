import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from paths import ROOT, path_from_env

from rcl import cli, noise, notebooks


@pytest.fixture
def rng() -> torch.Generator:
    """A seeded generator: every test is reproducible."""
    return noise.make_generator(1234)


@pytest.fixture(params=["cpu", *(["cuda"] if torch.cuda.is_available() else [])])
def device(request) -> torch.device:
    return torch.device(request.param)


def pytest_report_header(config):
    return f"torch {torch.__version__}, cuda available: {torch.cuda.is_available()}, cpus: {os.cpu_count()}"


@pytest.fixture(scope="session")
def smoke_dir(tmp_path_factory) -> Path:
    """The notebooks executed at the smoke profile: ``$RCL_SMOKE_NOTEBOOKS`` (``make test`` executes them
    there first), else executed here into a temporary folder."""
    sources = notebooks.notebook_paths()
    given = path_from_env("RCL_SMOKE_NOTEBOOKS")
    if given and all((given / p.name).exists() for p in sources):
        return given
    folder = tmp_path_factory.mktemp("smoke")
    params = {"runs_dir": str(folder / "runs"), "results_dir": str(folder / "results")}
    # As `make test`: notebook 06 shows a saved sensitivity study, so one is computed first.
    study = ["sensitivity", "--profile", "smoke", "--quiet", "--runs-dir", params["runs_dir"], "--results-dir",
             params["results_dir"]]
    assert cli.main(study) == 0
    notebooks.execute_all("smoke", folder, params, progress=False)
    return folder


@pytest.fixture(scope="session")
def smoke_book(smoke_dir, tmp_path_factory) -> Path:
    """The book of ``book/`` built from the smoke notebooks, as ``make book`` builds it (``-W -n``): its
    ``_build/html`` folder."""
    book = tmp_path_factory.mktemp("smoke-book") / "book"
    shutil.copytree(ROOT / "book", book, ignore=shutil.ignore_patterns("_build", "notebooks"))
    (book / "notebooks").mkdir()
    for p in notebooks.notebook_paths():
        shutil.copy(smoke_dir / p.name, book / "notebooks" / p.name)
    jb = Path(sys.executable).with_name("jupyter-book")
    proc = subprocess.run(
        [str(jb), "build", str(book), "-W", "-n", "--keep-going"], capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return book / "_build" / "html"
