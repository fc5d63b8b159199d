"""Extracting downloaded archives and arranging their images into ``train/`` and ``test/`` folders.

Each registered dataset has a :class:`Recipe` (:data:`RECIPES`): how to extract what was downloaded
(zip and tar archives, encrypted zips included, through :func:`safe_extract`; a split zip joined by
Info-ZIP's ``zip`` first) and how to arrange the extracted images into a :data:`Plan` (split name →
image files and their names there). :func:`materialise` builds the split folders from a plan. Every step
works under a temporary name and renames when done, so an interrupted one is redone, never mistaken for a
complete result.

Archives are not trusted: :func:`safe_extract` refuses one with any member that could land outside its
folder (absolute path, ``..``, link, device file), on every Python version, and the search for images
never follows a link (so never leaves the extracted folder).

Layer: evaluation (imports :mod:`rcl.cache`, :mod:`rcl.datasets.registry` and :mod:`rcl.datasets.sources`).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
import tarfile
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from rcl import cache
from rcl.datasets.registry import DatasetInfo
from rcl.datasets.sources import MCMASTER_PASSWORD, TASKONOMY_TINY

__all__ = ["IMAGE_SUFFIXES", "RECIPES", "Plan", "Recipe", "UnsafeArchiveError", "materialise", "safe_extract"]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")

#: A layout plan: split name -> list of (image file, name of its link in the split folder).
Plan = dict[str, list[tuple[Path, str]]]


def _archive_kind(fname: str) -> str:
    lower = fname.lower()
    if lower.endswith(".zip"):
        return "zip"
    if lower.endswith((".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz")):
        return "tar"
    return "file"


def _stem(fname: str) -> str:
    for suffix in (".tar.gz", ".tar.bz2", ".tar.xz", ".tgz", ".tar", ".zip"):
        if fname.lower().endswith(suffix):
            return fname[: -len(suffix)]
    return Path(fname).stem


class UnsafeArchiveError(ValueError):
    """An archive holds a member that could land outside its extraction folder: an absolute path, a
    ``..`` component, a link, or a device or other special file. Nothing of the archive is extracted."""


def _unsafe_name(name: str) -> str | None:
    """Why the member name ``name`` cannot be extracted safely, or None if it can."""
    if name.startswith(("/", "\\")) or re.match(r"[A-Za-z]:[/\\]", name):
        return "an absolute path"
    if ".." in re.split(r"[/\\]", name):
        return "a path with '..'"
    return None


def _refuse(archive: Path, name: str, reason: str) -> UnsafeArchiveError:
    return UnsafeArchiveError(
        f"{archive}: member {name!r} is {reason}; refusing to extract this archive (only plain files and "
        "folders with relative paths inside it are accepted)"
    )


def _checked_tar_members(archive: Path, tf: tarfile.TarFile) -> list[tarfile.TarInfo]:
    """Every member of ``tf``, after checking that each is a plain file or folder with a safe name."""
    members = tf.getmembers()
    for m in members:
        reason = _unsafe_name(m.name)
        if reason is None and not (m.isreg() or m.isdir()):
            reason = "a link" if m.issym() or m.islnk() else "a device or other special file"
        if reason is not None:
            raise _refuse(archive, m.name, reason)
    return members


def _check_zip_members(archive: Path, zf: zipfile.ZipFile) -> None:
    """Check that every member of ``zf`` is a plain file or folder with a safe name."""
    for info in zf.infolist():
        reason = _unsafe_name(info.filename)
        kind = stat.S_IFMT(info.external_attr >> 16)  # Unix file type, 0 where the zip records none
        if reason is None and kind and kind not in (stat.S_IFREG, stat.S_IFDIR):
            reason = "a link" if kind == stat.S_IFLNK else "a device or other special file"
        if reason is not None:
            raise _refuse(archive, info.filename, reason)


def safe_extract(archive: Path, dest: Path, password: bytes | None = None) -> Path:
    """Extract a zip or tar ``archive`` into ``dest``, through a temporary folder.

    Every member is checked before anything is written: an absolute path, a ``..`` component, a link
    or a device file raises :class:`UnsafeArchiveError`, whatever the Python version (tarfile's own
    ``data`` filter, applied as well where it exists, is not relied on). ``dest`` appears (by rename)
    only once extraction has finished, so its existence means the extraction is complete; an existing
    ``dest`` is reused as is. ``password`` (zip only) opens a ZipCrypto-encrypted archive.
    """
    if dest.is_dir():
        return dest
    kind = _archive_kind(archive.name)
    if kind == "file":
        raise ValueError(f"{archive}: not a zip or tar archive")
    if password is not None and kind != "zip":
        raise ValueError(f"{archive}: a password is only supported for zip archives")
    tmp = dest.with_name(dest.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    if kind == "zip":
        with zipfile.ZipFile(archive) as zf:
            _check_zip_members(archive, zf)
            try:
                zf.extractall(tmp, pwd=password)
            except RuntimeError as err:  # zipfile's "Bad password for file ..."
                shutil.rmtree(tmp, ignore_errors=True)
                raise RuntimeError(f"{archive}: cannot decrypt with the registered password ({err})") from err
    else:
        with tarfile.open(archive) as tf:
            members = _checked_tar_members(archive, tf)
            data_filter = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
            tf.extractall(tmp, members=members, **data_filter)
    os.replace(tmp, dest)
    return dest


def _extract_each(files: Sequence[Path], raw: Path, password: bytes | None = None) -> list[Path]:
    """Extract every archive into ``raw/<archive stem>``; plain files are passed through."""
    return [
        f if _archive_kind(f.name) == "file" else safe_extract(f, raw / _stem(f.name), password)
        for f in files
    ]


def _extract_mcmaster(files: Sequence[Path], raw: Path) -> list[Path]:
    """McM.zip is encrypted; its password is the one published on the dataset page."""
    return _extract_each(files, raw, password=MCMASTER_PASSWORD)


def _extract_split_zip(files: Sequence[Path], raw: Path) -> list[Path]:
    """Join a split zip (``x.z01 ... x.zNN`` + ``x.zip``) with Info-ZIP and extract the result."""
    last = [f for f in files if f.suffix.lower() == ".zip"]
    if len(last) != 1:
        raise ValueError(f"a split zip needs exactly one .zip segment, got {[f.name for f in last]}")
    last_segment = last[0]
    dest = raw / _stem(last_segment.name)
    if dest.is_dir():
        return [dest]
    zip_exe = shutil.which("zip")
    if zip_exe is None:
        raise RuntimeError(
            f"{last_segment.parent}: joining the {len(files)}-part split zip needs the Info-ZIP "
            "'zip' program on PATH (e.g. 'apt-get install zip'); the downloaded parts are kept, so "
            "re-running download() after installing it does not fetch them again."
        )
    joined = last_segment.with_name(_stem(last_segment.name) + ".joined.zip")
    tmp = joined.with_name(_stem(last_segment.name) + ".joined.partial.zip")
    tmp.unlink(missing_ok=True)
    if not joined.is_file():
        subprocess.run(
            [zip_exe, "-q", "-s", "0", str(last_segment), "--out", str(tmp)],
            check=True,
            stdin=subprocess.DEVNULL,
        )
        os.replace(tmp, joined)
    safe_extract(joined, dest)
    joined.unlink()
    return [dest]


def _images_under(folder: Path, recursive: bool = True) -> list[Path]:
    """Image files under ``folder`` (recursively by default), sorted; links are never followed, and
    a file that resolves outside ``folder`` (through a linked parent) is left out."""
    pattern = "**/*" if recursive else "*"
    base = folder.resolve()
    return sorted(
        p
        for p in folder.glob(pattern)
        if p.suffix.lower() in IMAGE_SUFFIXES
        and not p.is_symlink()
        and p.is_file()
        and p.resolve().is_relative_to(base)
    )


def _flat_name(path: Path, base: Path, prefix: str = "") -> str:
    return prefix + "__".join(path.relative_to(base).parts)


def _find_dir(outputs: Sequence[Path], pattern: str) -> Path:
    """The shallowest directory matching ``pattern`` under any of ``outputs`` (never a link)."""
    found = (p for out in outputs for p in out.glob(pattern) if p.is_dir() and not p.is_symlink())
    hits = sorted(found, key=lambda p: (len(p.parts), p))
    if not hits:
        raise RuntimeError(f"no folder matching {pattern!r} in {[str(o) for o in outputs]}")
    return hits[0]


def _arrange_bsds500(outputs: Sequence[Path]) -> Plan:
    images = _find_dir(outputs, "**/BSDS500/data/images")
    split = {s: _images_under(images / s, recursive=False) for s in ("train", "val", "test")}
    return {
        "train": [(p, p.name) for p in split["train"] + split["val"]],
        "test": [(p, p.name) for p in split["test"]],
    }


def _arrange_div2k(outputs: Sequence[Path]) -> Plan:
    plan: Plan = {}
    for split, folder in (("train", "DIV2K_train_HR"), ("test", "DIV2K_valid_HR")):
        plan[split] = [(p, p.name) for p in _images_under(_find_dir(outputs, f"**/{folder}"))]
    return plan


def _arrange_kodak24(outputs: Sequence[Path]) -> Plan:
    return {"test": [(p, p.name) for p in sorted(outputs)]}


def _arrange_voc2012(outputs: Sequence[Path]) -> Plan:
    voc = _find_dir(outputs, "**/VOC2012")
    plan: Plan = {}
    for split, listing in (("train", "train.txt"), ("test", "val.txt")):
        ids = (voc / "ImageSets" / "Main" / listing).read_text().split()
        odd = [i for i in ids if not re.fullmatch(r"\w[\w.-]*", i)]
        if odd:  # an id is a file name in JPEGImages/, never a path
            raise UnsafeArchiveError(f"{voc / 'ImageSets' / 'Main' / listing}: {odd[0]!r} is not an image id")
        files = [voc / "JPEGImages" / f"{i}.jpg" for i in ids]
        missing = [f.name for f in files if not f.is_file()]
        if missing:
            raise RuntimeError(
                f"{voc}: {len(missing)} images listed in {listing} are missing, e.g. {missing[:3]}"
            )
        plan[split] = [(f, f.name) for f in files]
    return plan


def _arrange_mit_demosaic(outputs: Sequence[Path]) -> Plan:
    plan: Plan = {}
    for split in ("train", "val", "test"):
        folder = _find_dir(outputs, f"**/{split}")
        plan[split] = [(p, _flat_name(p, folder)) for p in _images_under(folder)]
    return plan


def _arrange_taskonomy(outputs: Sequence[Path]) -> Plan:
    split_of = {b: s for s, buildings in TASKONOMY_TINY.items() for b in buildings}
    plan: Plan = {s: [] for s in TASKONOMY_TINY}
    for out in sorted(outputs):
        building = out.name.rsplit("_rgb", 1)[0]
        if building not in split_of:
            raise RuntimeError(f"{out}: building {building!r} is not in the Taskonomy tiny split")
        base = out / "rgb" if (out / "rgb").is_dir() else out
        plan[split_of[building]] += [(p, _flat_name(p, base, f"{building}__")) for p in _images_under(base)]
    return {s: items for s, items in plan.items() if items}


def _arrange_test_only(outputs: Sequence[Path], pattern: str | None = None, recursive: bool = True) -> Plan:
    """Every image (under the folder matching ``pattern``, if given) goes to test/, by file name."""
    folders = [_find_dir(outputs, pattern)] if pattern is not None else list(outputs)
    return {"test": [(p, p.name) for folder in folders for p in _images_under(folder, recursive)]}


def _arrange_cbsd68(outputs: Sequence[Path]) -> Plan:
    return _arrange_test_only(outputs)


def _arrange_mcmaster(outputs: Sequence[Path]) -> Plan:
    return _arrange_test_only(outputs, "**/McM", recursive=False)


def _arrange_set14(outputs: Sequence[Path]) -> Plan:
    return _arrange_test_only(outputs, "**/Set14/HR", recursive=False)


def _arrange_urban100(outputs: Sequence[Path]) -> Plan:
    return _arrange_test_only(outputs, "**/Urban100/HR", recursive=False)


@dataclass(frozen=True)
class Recipe:
    """How one dataset's downloads become its split folders."""

    extract: Callable[[Sequence[Path], Path], list[Path]]
    arrange: Callable[[Sequence[Path]], Plan]


RECIPES: dict[str, Recipe] = {
    "bsds500": Recipe(_extract_each, _arrange_bsds500),
    "div2k": Recipe(_extract_each, _arrange_div2k),
    "kodak24": Recipe(_extract_each, _arrange_kodak24),
    "voc2012": Recipe(_extract_each, _arrange_voc2012),
    "mit-demosaic": Recipe(_extract_split_zip, _arrange_mit_demosaic),
    "taskonomy": Recipe(_extract_each, _arrange_taskonomy),
    "cbsd68": Recipe(_extract_each, _arrange_cbsd68),
    "mcmaster": Recipe(_extract_mcmaster, _arrange_mcmaster),
    "set14": Recipe(_extract_each, _arrange_set14),
    "urban100": Recipe(_extract_each, _arrange_urban100),
}


def _link(src: Path, dst: Path) -> None:
    """Make ``dst`` point at ``src``: relative symlink, else hard link, else copy."""
    try:
        os.symlink(os.path.relpath(src, dst.parent), dst)
    except (OSError, NotImplementedError):
        try:
            os.link(src, dst)
        except OSError:
            shutil.copy2(src, dst)


def materialise(info: DatasetInfo, plan: Plan, final: Path) -> None:
    """Build the split folders under a temporary name, then rename it to ``final``."""
    for split, items in plan.items():
        if not items:
            raise RuntimeError(f"{info.name}: no images found for split {split!r}; unexpected archive layout")
    for stale in final.parent.glob(final.name + ".partial-*"):
        shutil.rmtree(stale, ignore_errors=True)
    tmp = final.with_name(f"{final.name}.partial-{os.getpid()}")
    for split, items in plan.items():
        folder = tmp / split
        folder.mkdir(parents=True)
        names = [link_name for _, link_name in items]
        if len(set(names)) != len(names):
            raise RuntimeError(f"{info.name}: two images would share a name in {split}/")
        for src, link_name in items:
            _link(src, folder / link_name)
    summary = {"name": info.name, "title": info.title, "splits": {s: len(v) for s, v in plan.items()},
               "layout": info.layout}  # fmt: skip
    cache.atomic_write_text(tmp / "layout.json", json.dumps(summary, indent=2) + "\n")
    try:
        os.replace(tmp, final)
    except OSError:
        if not final.is_dir():
            raise
        shutil.rmtree(tmp, ignore_errors=True)  # another process finished first
