"""Downloading a registered dataset with its checksums, then extracting and arranging it.

:func:`download` fetches every file of a :data:`rcl.datasets.REGISTRY` entry with :func:`pooch.retrieve`,
which streams it to a temporary name, checks its published md5 or sha256 in full and only then moves it
into place; it then extracts and arranges the files (:mod:`rcl.datasets.archives`). A file without a
published checksum is fetched only with ``allow_unverified=True``.

Layer: evaluation (imports :mod:`rcl.datasets.registry` and :mod:`rcl.datasets.archives`; the only module
of the package that reaches the network).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pooch
import requests

from rcl.datasets.archives import IMAGE_SUFFIXES, RECIPES, materialise
from rcl.datasets.registry import get_info

__all__ = [
    "DownloadError",
    "Downloader",
    "UnverifiedDownloadError",
    "download",
    "download_command",
    "is_downloaded",
    "local_path",
]

#: Type of the ``downloader`` hook accepted by :func:`pooch.retrieve`:
#: ``downloader(url, output_file, pooch_instance)``.
Downloader = Callable[[str, Any, Any], Any]


class UnverifiedDownloadError(RuntimeError):
    """Raised when a dataset has files without a published checksum and the caller did not opt in."""


class DownloadError(OSError):
    """A file of a dataset could not be fetched (no network, server error); the one-line message names
    the dataset, the URL, the reason and the command that retries."""


def download_command(name: str, root: str | os.PathLike) -> str:
    """The shell command that downloads dataset ``name`` under ``root``."""
    unverified = "" if get_info(name).verified else " --allow-unverified"
    return f"python -m rcl datasets download {name} --root {root}{unverified}"


def _one_line(err: BaseException, limit: int = 300) -> str:
    text = " ".join(str(err).split()) or type(err).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def local_path(name: str, root: str | os.PathLike) -> Path:
    """The folder :func:`download` returns for ``name`` under ``root`` (it may not exist yet)."""
    get_info(name)
    return Path(root) / name / "images"


def is_downloaded(name: str, root: str | os.PathLike) -> bool:
    """Whether ``download(name, root)`` has completed (its returned folder exists)."""
    return local_path(name, root).is_dir()


def _fetch(
    url: str, known_hash: str | None, folder: Path, downloader: Downloader | None, progress: bool
) -> Path:
    """Fetch one file into ``folder`` with :func:`pooch.retrieve` (hash-checked, atomic)."""
    fname = url.rstrip("/").rsplit("/", 1)[-1]
    path = pooch.retrieve(
        url,
        known_hash,
        fname=fname,
        path=folder,
        downloader=downloader,
        progressbar=progress,
    )
    return Path(path)


def download(
    name: str,
    root: str | os.PathLike,
    *,
    allow_unverified: bool = False,
    progress: bool = True,
    downloader: Downloader | None = None,
    keep_archives: bool = True,
) -> Path:
    """Download dataset ``name`` under ``root`` and return its folder of ``train/`` and ``test/`` images.

    Files go to ``root/<name>/downloads`` via :func:`pooch.retrieve` (each checked against its
    known hash before it is moved into place; pooch raises ``ValueError`` on a mismatch), archives
    are extracted to ``root/<name>/raw``, and the returned ``root/<name>/images`` holds ``train/``,
    ``test/`` (and ``val/`` where the dataset has one) of links to the image files; see each
    entry's ``layout``. The call is idempotent: if the returned folder already exists nothing is
    fetched. Every step writes under a temporary name and renames when done.

    Args:
        name: a key of :data:`REGISTRY`.
        root: folder that holds all datasets.
        allow_unverified: fetch files that have no published checksum (their hash is then only
            logged by pooch). Without it such datasets raise :class:`UnverifiedDownloadError`.
        progress: show pooch's progress bar (needs tqdm).
        downloader: passed to :func:`pooch.retrieve`; a callable ``(url, output_file, pooch)``
            that fetches ``url`` into ``output_file`` (tests use a local copy).
        keep_archives: keep the downloaded files after the folder is built (needed to rebuild it
            without fetching again).

    Raises:
        DownloadError: a file could not be fetched (no network, server error); files already fetched
            and verified are kept, so a later call fetches only the rest.
        UnverifiedDownloadError: files without a checksum and no ``allow_unverified``.
        rcl.datasets.UnsafeArchiveError: an archive member could land outside its folder.
        ValueError: a file does not match its checksum (raised by pooch, which deletes the file).
    """
    info = get_info(name)
    final = local_path(name, root)
    if final.is_dir():
        return final
    unverified = [url for url, known_hash in info.urls if known_hash is None]
    if unverified and not allow_unverified:
        raise UnverifiedDownloadError(
            f"{name}: {len(unverified)} of {len(info.urls)} files have no published checksum "
            f"(e.g. {unverified[0]}), so their integrity cannot be checked. Pass allow_unverified=True "
            "(on the command line: --allow-unverified) to fetch them anyway; pooch then logs each file's SHA256."
        )
    base = Path(root) / name
    files = []
    for url, known_hash in info.urls:
        try:
            files.append(_fetch(url, known_hash, base / "downloads", downloader, progress))
        except (requests.RequestException, ConnectionError, TimeoutError) as err:
            raise DownloadError(
                f"{name}: cannot download {url} ({type(err).__name__}: {_one_line(err)}); check the network "
                f"connection, then run `{download_command(name, root)}` again"
            ) from err
    recipe = RECIPES[name]
    outputs = recipe.extract(files, base / "raw")
    materialise(info, recipe.arrange(outputs), final)
    if not keep_archives:  # plain files (Kodak's PNGs) are the images themselves: keep those
        for f in files:
            if f.suffix.lower() not in IMAGE_SUFFIXES:
                f.unlink(missing_ok=True)
    return final
