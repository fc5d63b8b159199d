"""Paths the tests share: the repository root, and folders given through environment variables."""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def path_from_env(name: str) -> Path | None:
    """The path in environment variable ``name`` (relative ones from the repository root), or None."""
    given = os.environ.get(name)
    if not given:
        return None
    path = Path(given)
    return path if path.is_absolute() else ROOT / path
