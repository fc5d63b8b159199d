"""One home for everything the project caches: keys, code versions, atomic writes, locks.

Layer: ground floor — imports nothing of ``rcl`` (only the standard library, ``filelock`` and, lazily,
``torch`` for tensor files), so every other module may use it.

Every cached artefact — pre-training runs, proxy and reference evaluations, label-efficiency tables, saved
result tables, self-supervised encoders, executed notebooks — is found by a key made of

* its **settings** (:func:`key`: canonical JSON, keys sorted, so equal settings give equal keys),
* the **code that computes it** (:func:`code_version` of the modules listed in :data:`CODE`: a changed
  module never serves a table it computed before), and
* the **contents of the folders it reads** (:func:`folder_identity`: relative names, sizes and modification
  times — the same folder by a relative or an absolute path is the same data; replacing an image is not).

Writes are atomic (:func:`atomic_write`: a temporary file of this process and thread beside the target,
then a rename; the temporary never survives a failure), concurrent computations of the same artefact are
serialised by a file lock (:func:`lock`, ``filelock``), and :func:`load_or_compute` puts the three together.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import shutil
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import IO, Any, TypeVar

__all__ = [
    "CODE",
    "atomic_write",
    "atomic_write_bytes",
    "atomic_write_json",
    "atomic_write_text",
    "canonical",
    "check_writable",
    "code_version",
    "file_digest",
    "folder_identity",
    "json_cache",
    "key",
    "load_or_compute",
    "lock",
    "read_json",
    "save_tensors",
]

T = TypeVar("T")

#: The package's root folder (module paths in :data:`CODE` are relative to it).
ROOT = Path(__file__).resolve().parent

_TRAINING = (
    "cache.py",
    "rng.py",
    "noise.py",
    "imagefile.py",
    "data.py",
    "tasks.py",  # the supervised baseline degrades its crops with the downstream tasks
    "models.py",
    "distances.py",
    "encoders.py",
    "losses.py",
    "methods/__init__.py",
    "methods/base.py",
    "methods/core.py",
    "methods/dense.py",
    "train.py",
    "runs.py",
)
_EVALUATION = (*_TRAINING, "datasets/__init__.py", "datasets/archives.py", "datasets/fetch.py", "datasets/registry.py",
               "datasets/sources.py", "metrics.py", "evaluate.py", "labels.py", "stats.py",
               "config.py")  # its autocast decides the precision of label-efficiency fine-tuning

#: Which modules compute each kind of artefact: a change to any of them gives the artefact a new key.
#: ``"*"`` is every module of the package (an executed notebook may show anything the library computes).
CODE: dict[str, tuple[str, ...]] = {
    "training": _TRAINING,  # pre-training runs and their encoders
    "evaluation": _EVALUATION,  # proxy, reference and label-efficiency evaluations
    # saved result tables; a table's settings name a profile, not its values, so the profile table counts
    "results": (*_EVALUATION, "profiles.py", "analysis.py", "backbones.py", "sensitivity.py"),
    "notebooks": ("*",),
}


def _modules(names: Iterable[str]) -> list[Path]:
    names = list(names)
    if "*" in names:
        return sorted(ROOT.rglob("*.py"))
    return [ROOT / n for n in names]


def code_version(kind: str = "results") -> str:
    """A 12-hex-digit hash of the source of the modules that compute ``kind`` (a key of :data:`CODE`)."""
    if kind not in CODE:
        raise ValueError(f"unknown code kind {kind!r}; valid: {sorted(CODE)}")
    h = hashlib.sha256()
    for p in _modules(CODE[kind]):
        if p.exists():
            h.update(p.relative_to(ROOT).as_posix().encode())
            h.update(p.read_bytes())
    return h.hexdigest()[:12]


def canonical(settings: Any) -> Any:
    """``settings`` (a mapping or a dataclass) as plain JSON data: tuples become lists, keys are sorted,
    anything else is its ``str``."""
    if is_dataclass(settings) and not isinstance(settings, type):
        settings = asdict(settings)
    return json.loads(json.dumps(settings, sort_keys=True, default=str))


def key(settings: Any, code: str | None = None, folders: Iterable[str | os.PathLike | None] = (),
        length: int = 12) -> str:
    """The hash of ``settings``, of the code version ``code`` (a kind of :data:`CODE`, or None) and of the
    contents of ``folders`` (:func:`folder_identity`)."""
    payload = {"settings": canonical(settings)}
    if code is not None:
        payload["code"] = code_version(code)
    folders = list(folders)
    if folders:
        payload["folders"] = [folder_identity(f) for f in folders]
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:length]


def folder_identity(folder: str | os.PathLike | None) -> list:
    """What identifies a folder of data: every file's path relative to it, size and modification time
    (not the folder's own path). ``[]`` for None or a missing folder. Symbolic links to folders are followed
    (every route to a folder is listed, except a link back to a folder it is inside, which would loop)."""
    if folder is None or not Path(folder).is_dir():
        return []
    root = Path(folder)
    out = []
    for here, dirs, files in os.walk(root, followlinks=True):
        rel = Path(here).relative_to(root)
        above = {os.path.realpath(root.joinpath(*rel.parts[:k])) for k in range(len(rel.parts))}
        if os.path.realpath(here) in above:  # a link back to a folder this one is inside: a loop, not data
            dirs[:] = []
            continue
        for name in files:
            p = Path(here, name)
            if p.is_file():
                st = p.stat()
                out.append([p.relative_to(root).as_posix(), st.st_size, st.st_mtime_ns])
    return sorted(out)


def file_digest(path: str | os.PathLike, what: str = "file", length: int = 16) -> str:
    """The sha256 (``length`` hex digits) of a file's bytes; a missing file raises naming ``what`` it should be."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"{what}={str(path)!r}: no such file")
    h = hashlib.sha256()
    with p.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:length]


def check_writable(path: str | os.PathLike, what: str = "output") -> Path:
    """``path`` as a :class:`Path` if a file can be written there; else an ``OSError`` naming it: a folder is
    in its place, or a file is where one of its folders would be. Checked before long work, so that the work
    is not lost to a bad output path at the end."""
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(errno.EISDIR, f"a folder, not a file: give the {what} a file name", str(path))
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise NotADirectoryError(errno.ENOTDIR, f"a file, where the {what}'s folder would be",
                                         str(parent))
            break
    return path


def atomic_write(path: str | os.PathLike, write: Callable[[IO[bytes]], None]) -> Path:
    """Write ``path`` through ``write(file)`` atomically: a temporary file of this process and thread beside
    it, then a rename. Readers see the old file or the new one, never a part; a failure (a full disk, an
    exception in ``write``) leaves no temporary behind. A bad ``path`` is refused by :func:`check_writable`."""
    path = check_writable(path, "file")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        with open(tmp, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except (OSError, RuntimeError) as err:
        if _disk_full(err, path.parent):
            raise OSError(errno.ENOSPC, f"{path}: the disk is full (no space left to write it; nothing was "
                                        "written — free some space and run again)") from err
        raise
    finally:
        tmp.unlink(missing_ok=True)
    return path


def _disk_full(err: BaseException, folder: Path) -> bool:
    """Whether a failed write ran out of space: ``ENOSPC``/``EDQUOT``, or a library's own write error (torch's
    "file write failed") on a disk with (almost) nothing free."""
    if isinstance(err, OSError) and err.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    try:
        return "write" in str(err).lower() and shutil.disk_usage(folder).free < 1 << 20
    except OSError:
        return False


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    return atomic_write(path, lambda f: f.write(data))


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write_bytes(path, text.encode())


def atomic_write_json(path: str | os.PathLike, obj: Any, indent: int | None = 1) -> Path:
    return atomic_write_text(path, json.dumps(obj, indent=indent, default=str))


def save_tensors(obj: Any, path: str | os.PathLike) -> Path:
    """``torch.save`` atomically (checkpoints, models, encoder weights)."""
    import torch

    return atomic_write(path, lambda f: torch.save(obj, f))


@contextlib.contextmanager
def lock(path: str | os.PathLike, what: str | None = None) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (a lock file) for the block; a second process asking for the same
    lock says on stderr that it waits (naming ``what``), then waits."""
    from filelock import FileLock, Timeout

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    flock = FileLock(str(path))
    try:
        flock.acquire(timeout=0)
    except Timeout:
        print(f"{what or path.parent}: another process is computing this; waiting for it to finish",
              file=sys.stderr, flush=True)
        flock.acquire()
    try:
        yield
    finally:
        flock.release()


def load_or_compute(path: str | os.PathLike, compute: Callable[[], T], save: Callable[[T, Path], Any],
                    load: Callable[[Path], T], enabled: bool = True) -> tuple[T, bool]:
    """The artefact at ``path`` (``load(path)``) if it exists; otherwise ``compute()`` it, ``save(value,
    path)`` it (atomically, through this module's writers) and return it. Concurrent callers for the same
    path compute it once: the rest wait on its lock, then load. Returns ``(value, reused)``. With
    ``enabled=False`` it computes and neither reads nor writes."""
    path = Path(path)
    if not enabled:
        return compute(), False
    if path.exists():
        return load(path), True
    with lock(path.with_name(f".{path.name}.lock"), what=str(path)):
        if path.exists():
            return load(path), True
        value = compute()
        save(value, path)
        return value, False


def read_json(path: Path) -> Any:
    return json.loads(Path(path).read_text())


def json_cache(path: str | os.PathLike, compute: Callable[[], T], enabled: bool = True) -> tuple[T, bool]:
    """:func:`load_or_compute` for JSON data."""
    return load_or_compute(path, compute, lambda v, p: atomic_write_json(p, v, indent=None), read_json, enabled)
