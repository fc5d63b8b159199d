import os

import pytest
import torch

from rcl import noise


@pytest.fixture
def rng() -> torch.Generator:
    """A seeded generator: every test is reproducible."""
    return noise.make_generator(1234)


@pytest.fixture(params=["cpu", *(["cuda"] if torch.cuda.is_available() else [])])
def device(request) -> torch.device:
    return torch.device(request.param)


def pytest_report_header(config):
    return f"torch {torch.__version__}, cuda available: {torch.cuda.is_available()}, cpus: {os.cpu_count()}"
