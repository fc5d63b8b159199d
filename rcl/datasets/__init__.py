"""Real image datasets with checksummed downloads (:func:`download`) and a registry (:data:`REGISTRY`).

Every dataset is fetched with :func:`pooch.retrieve`, which streams each file to a temporary name,
checks its hash and only then moves it into place; archives are checked member by member (no absolute
path, ``..``, link or device file: :class:`UnsafeArchiveError`) and extracted into a temporary folder
that is renamed when extraction is complete, and the train/test folder that :func:`download` returns
is likewise built under a temporary name and renamed last. An interrupted download therefore never
leaves behind anything that a later call mistakes for a complete dataset.

After ``download(name, root)`` the data sit under ``root/<name>/``::

    downloads/   the files as fetched (archives, or single images for Kodak24)
    raw/         archives extracted, one folder per archive
    images/      the returned folder: train/, test/ (and val/ where the dataset has one), holding
                 relative symlinks (hard links or copies where symlinks are unavailable) to the
                 image files in raw/ or downloads/, plus layout.json with per-split image counts

The package, one module per step:

* :mod:`rcl.datasets.sources` — where each file comes from: URLs, published checksums (and where they
  were found), split lists;
* :mod:`rcl.datasets.registry` — :data:`REGISTRY` of :class:`DatasetInfo` (size, licence, citation,
  layout), :func:`get_info`, :func:`describe`;
* :mod:`rcl.datasets.fetch` — :func:`download` (checksummed, through pooch), :func:`local_path`,
  :func:`is_downloaded`;
* :mod:`rcl.datasets.archives` — safe extraction (:func:`safe_extract`) and the arranging of images into
  split folders.

Errors a caller may want to report in one line: :class:`DownloadError` (an ``OSError``: the network or
the server failed), :class:`UnverifiedDownloadError`, :class:`UnsafeArchiveError` (a ``ValueError``), and
pooch's ``ValueError`` for a checksum mismatch; each message is a single line naming the dataset or file.

Everything a caller needs is importable from ``rcl.datasets`` itself.

Layer: evaluation (imports :mod:`rcl.cache` and pooch, no other module of rcl). :mod:`rcl.data` imports it
lazily, only when a registered dataset is asked for; :mod:`rcl.noise` and :mod:`rcl.distances` never reach it.
"""

from __future__ import annotations

from rcl.datasets.archives import IMAGE_SUFFIXES, UnsafeArchiveError, safe_extract
from rcl.datasets.fetch import (
    Downloader,
    DownloadError,
    UnverifiedDownloadError,
    download,
    download_command,
    is_downloaded,
    local_path,
)
from rcl.datasets.registry import REGISTRY, DatasetInfo, describe, describe_records, get_info
from rcl.datasets.sources import TASKONOMY_TINY

__all__ = [
    "IMAGE_SUFFIXES",
    "REGISTRY",
    "TASKONOMY_TINY",
    "DatasetInfo",
    "DownloadError",
    "Downloader",
    "UnsafeArchiveError",
    "UnverifiedDownloadError",
    "describe",
    "describe_records",
    "download",
    "download_command",
    "get_info",
    "is_downloaded",
    "local_path",
    "safe_extract",
]
