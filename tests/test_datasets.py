"""Tests for rcl.datasets: the real download/extract/arrange code, run on local fixture archives.

No test touches the network: registry entries are swapped for fixture URLs whose hashes are computed
here, and a ``downloader`` hook (the one pooch.retrieve accepts) copies local files instead of
fetching them.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import os
import shutil
import subprocess
import tarfile
import zipfile
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from rcl import datasets

REQUIRED = ("bsds500", "div2k", "kodak24", "voc2012", "mit-demosaic", "taskonomy")
#: The image-restoration test sets: every image goes to test/, none to train/.
TEST_SETS = ("kodak24", "cbsd68", "mcmaster", "set14", "urban100")


# ----------------------------------------------------------------------------------------------
# Fixtures and helpers
# ----------------------------------------------------------------------------------------------


def _png_bytes(seed: int, size: int = 8, fmt: str = "PNG") -> bytes:
    rng = np.random.default_rng(seed)
    arr = rng.integers(0, 256, size=(size, size, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format=fmt)
    return buf.getvalue()


def _sha256(path: Path) -> str:
    return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()


def _make_zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for arcname, data in members.items():
            zf.writestr(arcname, data)
    return path


def _make_tar(path: Path, members: dict[str, bytes], mode: str = "w") -> Path:
    src = path.parent / (path.name + ".src")
    for arcname, data in members.items():
        (src / arcname).parent.mkdir(parents=True, exist_ok=True)
        (src / arcname).write_bytes(data)
    with tarfile.open(path, mode) as tf:
        for arcname in members:
            tf.add(src / arcname, arcname=arcname)
    shutil.rmtree(src)
    return path


class LocalDownloader:
    """A pooch downloader hook that copies ``files[basename(url)]`` and records every call."""

    def __init__(self, files: dict[str, Path]):
        self.files = files
        self.calls: list[str] = []

    def __call__(self, url: str, output_file, pooch_instance) -> None:
        self.calls.append(url)
        src = self.files[url.rsplit("/", 1)[-1]]
        if isinstance(output_file, (str, os.PathLike)):
            shutil.copyfile(src, output_file)
        else:
            output_file.write(src.read_bytes())


def _swap(monkeypatch: pytest.MonkeyPatch, name: str, archives: Iterable[Path], bad: bool = False) -> None:
    """Point registry entry ``name`` at fixture archives (URL basename = file name)."""
    urls = []
    for p in archives:
        h = _sha256(p)
        if bad:
            h = "sha256:" + "0" * 64
        urls.append((f"https://example.invalid/{name}/{p.name}", h))
    monkeypatch.setitem(
        datasets.REGISTRY, name, dataclasses.replace(datasets.REGISTRY[name], urls=tuple(urls))
    )


def _names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def _bsds_archive(tmp_path: Path) -> Path:
    base = "BSDS500-master/BSDS500/data"
    members = {
        f"{base}/images/train/1001.jpg": _png_bytes(1, fmt="JPEG"),
        f"{base}/images/train/1002.jpg": _png_bytes(2, fmt="JPEG"),
        f"{base}/images/val/2001.jpg": _png_bytes(3, fmt="JPEG"),
        f"{base}/images/test/3001.jpg": _png_bytes(4, fmt="JPEG"),
        f"{base}/images/test/Thumbs.db": b"not an image",
        f"{base}/groundTruth/train/1001.mat": b"annotation",
    }
    return _make_zip(tmp_path / "master.zip", members)


# ----------------------------------------------------------------------------------------------
# Registry
# ----------------------------------------------------------------------------------------------


def test_registry_has_required_entries():
    assert set(REQUIRED) <= set(datasets.REGISTRY)
    for key, info in datasets.REGISTRY.items():
        assert info.name == key


@pytest.mark.parametrize("name", sorted(datasets.REGISTRY))
def test_registry_entry_is_complete(name):
    info = datasets.REGISTRY[name]
    for field in ("title", "size", "licence", "citation", "description", "layout"):
        assert getattr(info, field).strip(), f"{name}: empty {field}"
    assert info.urls
    for url, known_hash in info.urls:
        assert url.startswith("https://"), url
        assert known_hash is None or known_hash.split(":", 1)[0] in ("md5", "sha256")
        if known_hash is not None:
            algo, digest = known_hash.split(":", 1)
            assert len(digest) == {"md5": 32, "sha256": 64}[algo]
            int(digest, 16)
    if not info.verified:
        assert "UNVERIFIED" in info.description and "allow_unverified" in info.description


def test_dataset_info_is_frozen():
    info = datasets.REGISTRY["kodak24"]
    with pytest.raises(dataclasses.FrozenInstanceError):
        info.name = "other"  # type: ignore[misc]


def test_registry_sizes_match_sources():
    assert len(datasets.REGISTRY["kodak24"].urls) == 24
    assert len({h for _, h in datasets.REGISTRY["kodak24"].urls}) == 24
    mit = datasets.REGISTRY["mit-demosaic"].urls
    assert len(mit) == 334 and mit[0][0].endswith("datasets.z01") and mit[-1][0].endswith("datasets.zip")
    tiny = datasets.TASKONOMY_TINY
    assert (len(tiny["train"]), len(tiny["val"]), len(tiny["test"])) == (24, 5, 5)
    assert len(datasets.REGISTRY["taskonomy"].urls) == 34


def test_branch_archives_are_pinned_by_a_checksum():
    """A GitHub branch archive's bytes can change under the same URL: such an entry must carry a hash, so
    that changed bytes fail the check instead of being used."""
    branch_urls = [(name, url, h) for name, info in datasets.REGISTRY.items() for url, h in info.urls
                   if "/archive/refs/heads/" in url]  # fmt: skip
    assert branch_urls, "bsds500 is fetched as GitHub's archive of a branch"
    for name, url, known_hash in branch_urls:
        assert known_hash is not None, f"{name}: {url} names a branch and has no checksum"


def test_voc2012_matches_torchvision():
    voc = pytest.importorskip("torchvision.datasets.voc")
    year = voc.DATASET_YEAR_DICT["2012"]
    assert datasets.REGISTRY["voc2012"].urls == ((year["url"], f"md5:{year['md5']}"),)


def test_describe_lists_every_dataset():
    table = datasets.describe()
    lines = table.splitlines()
    assert lines[0].startswith("| name | title | size | licence")
    assert len(lines) == 2 + len(datasets.REGISTRY)
    for name in datasets.REGISTRY:
        assert f"| {name} |" in table
    records = datasets.describe_records()
    assert [r["name"] for r in records] == list(datasets.REGISTRY)
    assert all(r["licence"] and r["size"] for r in records)


def test_unknown_name_lists_valid_names(tmp_path):
    with pytest.raises(ValueError, match="valid names") as err:
        datasets.download("imagenet", tmp_path)
    for name in REQUIRED + TEST_SETS:
        assert name in str(err.value)
    with pytest.raises(ValueError, match="bsds500"):
        datasets.local_path("nope", tmp_path)


# ----------------------------------------------------------------------------------------------
# Download end to end (pooch hash check + extraction + layout)
# ----------------------------------------------------------------------------------------------


def test_download_zip_layout_and_idempotence(tmp_path, monkeypatch):
    archive = _bsds_archive(tmp_path)
    _swap(monkeypatch, "bsds500", [archive])
    fake = LocalDownloader({"master.zip": archive})
    root = tmp_path / "data"

    out = datasets.download("bsds500", root, downloader=fake, progress=False)

    assert out == datasets.local_path("bsds500", root) == root / "bsds500" / "images"
    assert datasets.is_downloaded("bsds500", root)
    assert _names(out / "train") == ["1001.jpg", "1002.jpg", "2001.jpg"]
    assert _names(out / "test") == ["3001.jpg"]
    img = Image.open(out / "train" / "1001.jpg")
    assert img.size == (8, 8)
    link = out / "train" / "1001.jpg"
    if link.is_symlink():  # relative links survive the final rename and moving the root
        assert not os.path.isabs(os.readlink(link))
        assert link.resolve() == (root / "bsds500" / "raw" / "master").resolve() / (
            "BSDS500-master/BSDS500/data/images/train/1001.jpg"
        )
    layout = json.loads((out / "layout.json").read_text())
    assert layout["splits"] == {"train": 3, "test": 1}
    assert len(fake.calls) == 1
    assert not list((root / "bsds500").glob("*.partial*"))

    again = datasets.download("bsds500", root, downloader=fake, progress=False)
    assert again == out
    assert len(fake.calls) == 1  # nothing fetched the second time


def test_rebuild_from_kept_archive_without_fetching(tmp_path, monkeypatch):
    archive = _bsds_archive(tmp_path)
    _swap(monkeypatch, "bsds500", [archive])
    fake = LocalDownloader({"master.zip": archive})
    out = datasets.download("bsds500", tmp_path / "d", downloader=fake, progress=False)
    shutil.rmtree(out)
    out2 = datasets.download("bsds500", tmp_path / "d", downloader=fake, progress=False)
    assert _names(out2 / "test") == ["3001.jpg"]
    assert len(fake.calls) == 1  # pooch found the archive with the right hash


def test_wrong_hash_raises_and_leaves_nothing_complete(tmp_path, monkeypatch):
    archive = _bsds_archive(tmp_path)
    _swap(monkeypatch, "bsds500", [archive], bad=True)
    fake = LocalDownloader({"master.zip": archive})
    root = tmp_path / "data"

    with pytest.raises(ValueError, match="(?i)hash"):
        datasets.download("bsds500", root, downloader=fake, progress=False)

    assert not datasets.is_downloaded("bsds500", root)
    assert not (root / "bsds500" / "images").exists()
    assert not (root / "bsds500" / "raw").exists()
    downloads = root / "bsds500" / "downloads"
    assert not downloads.exists() or list(downloads.iterdir()) == []


def test_two_archives_div2k_keep_archives_false(tmp_path, monkeypatch):
    train = _make_zip(
        tmp_path / "DIV2K_train_HR.zip",
        {"DIV2K_train_HR/0001.png": _png_bytes(1), "DIV2K_train_HR/0002.png": _png_bytes(2)},
    )
    valid = _make_zip(tmp_path / "DIV2K_valid_HR.zip", {"DIV2K_valid_HR/0801.png": _png_bytes(3)})
    _swap(monkeypatch, "div2k", [train, valid])
    fake = LocalDownloader({p.name: p for p in (train, valid)})
    out = datasets.download("div2k", tmp_path / "d", downloader=fake, progress=False, keep_archives=False)
    assert _names(out / "train") == ["0001.png", "0002.png"]
    assert _names(out / "test") == ["0801.png"]
    assert not list((tmp_path / "d" / "div2k" / "downloads").glob("*.zip"))
    assert np.asarray(Image.open(out / "test" / "0801.png")).shape == (8, 8, 3)


def test_plain_files_kodak24_go_to_test_only(tmp_path, monkeypatch):
    files = []
    for i in (1, 2, 3):
        p = tmp_path / f"kodim{i:02d}.png"
        p.write_bytes(_png_bytes(i))
        files.append(p)
    _swap(monkeypatch, "kodak24", files)
    fake = LocalDownloader({p.name: p for p in files})
    out = datasets.download("kodak24", tmp_path / "d", downloader=fake, progress=False, keep_archives=False)
    assert _names(out / "test") == ["kodim01.png", "kodim02.png", "kodim03.png"]
    assert not (out / "train").exists()
    assert Image.open(out / "test" / "kodim02.png").size == (8, 8)  # images survive keep_archives=False


def test_voc2012_uses_split_lists(tmp_path, monkeypatch):
    voc = "VOCdevkit/VOC2012"
    members = {
        f"{voc}/JPEGImages/2008_000001.jpg": _png_bytes(1, fmt="JPEG"),
        f"{voc}/JPEGImages/2008_000002.jpg": _png_bytes(2, fmt="JPEG"),
        f"{voc}/JPEGImages/2008_000003.jpg": _png_bytes(3, fmt="JPEG"),
        f"{voc}/ImageSets/Main/train.txt": b"2008_000001\n2008_000003\n",
        f"{voc}/ImageSets/Main/val.txt": b"2008_000002\n",
    }
    archive = _make_tar(tmp_path / "VOCtrainval_11-May-2012.tar", members)
    _swap(monkeypatch, "voc2012", [archive])
    out = datasets.download(
        "voc2012", tmp_path / "d", downloader=LocalDownloader({archive.name: archive}), progress=False
    )
    assert _names(out / "train") == ["2008_000001.jpg", "2008_000003.jpg"]
    assert _names(out / "test") == ["2008_000002.jpg"]


def test_taskonomy_refuses_without_allow_unverified(tmp_path):
    assert not datasets.REGISTRY["taskonomy"].verified
    fake = LocalDownloader({})
    with pytest.raises(datasets.UnverifiedDownloadError, match="allow_unverified=True"):
        datasets.download("taskonomy", tmp_path, downloader=fake, progress=False)
    assert fake.calls == []
    assert not (tmp_path / "taskonomy").exists()


def test_taskonomy_unverified_download_with_opt_in(tmp_path, monkeypatch):
    rgb = "rgb/point_0_view_0_domain_rgb.png"
    tars = {
        b: _make_tar(tmp_path / f"{b}_rgb.tar", {rgb: _png_bytes(i)})
        for i, b in enumerate(("allensville", "beechwood", "corozal", "ihlen"))
    }
    urls = tuple((f"https://datasets.epfl.ch/taskonomy/{p.name}", None) for p in tars.values())
    monkeypatch.setitem(
        datasets.REGISTRY, "taskonomy", dataclasses.replace(datasets.REGISTRY["taskonomy"], urls=urls)
    )
    fake = LocalDownloader({p.name: p for p in tars.values()})
    out = datasets.download(
        "taskonomy", tmp_path / "d", downloader=fake, progress=False, allow_unverified=True
    )
    name = "point_0_view_0_domain_rgb.png"
    assert _names(out / "train") == [f"allensville__{name}", f"beechwood__{name}"]
    assert _names(out / "val") == [f"corozal__{name}"]
    assert _names(out / "test") == [f"ihlen__{name}"]


def test_unverified_entry_refuses_even_when_mixed(tmp_path, monkeypatch):
    archive = _bsds_archive(tmp_path)
    info = datasets.REGISTRY["bsds500"]
    urls = ((f"https://example.invalid/{archive.name}", None),)
    monkeypatch.setitem(datasets.REGISTRY, "bsds500", dataclasses.replace(info, urls=urls))
    fake = LocalDownloader({archive.name: archive})
    with pytest.raises(datasets.UnverifiedDownloadError):
        datasets.download("bsds500", tmp_path / "d", downloader=fake, progress=False)
    assert fake.calls == []
    out = datasets.download("bsds500", tmp_path / "d", downloader=fake, progress=False, allow_unverified=True)
    assert _names(out / "test") == ["3001.jpg"]


def test_unexpected_archive_layout_is_an_error(tmp_path, monkeypatch):
    archive = _make_zip(tmp_path / "master.zip", {"something/else.jpg": _png_bytes(1, fmt="JPEG")})
    _swap(monkeypatch, "bsds500", [archive])
    with pytest.raises(RuntimeError, match="BSDS500"):
        datasets.download(
            "bsds500", tmp_path / "d", downloader=LocalDownloader({archive.name: archive}), progress=False
        )
    assert not datasets.is_downloaded("bsds500", tmp_path / "d")


def test_interrupted_extraction_is_redone(tmp_path, monkeypatch):
    archive = _bsds_archive(tmp_path)
    _swap(monkeypatch, "bsds500", [archive])
    fake = LocalDownloader({archive.name: archive})
    root = tmp_path / "d"
    # Simulate a crash mid-extraction and mid-arrangement from an earlier run.
    partial = root / "bsds500" / "raw" / "master.partial"
    partial.mkdir(parents=True)
    (partial / "junk.jpg").write_bytes(b"half")
    stale = root / "bsds500" / "images.partial-999999"
    (stale / "train").mkdir(parents=True)
    out = datasets.download("bsds500", root, downloader=fake, progress=False)
    assert _names(out / "train") == ["1001.jpg", "1002.jpg", "2001.jpg"]
    assert not partial.exists() and not stale.exists()


@pytest.mark.skipif(shutil.which("zip") is None, reason="Info-ZIP 'zip' is needed to make/join split zips")
def test_mit_demosaic_split_zip(tmp_path, monkeypatch):
    src = tmp_path / "src"
    for split, n in (("train", 3), ("val", 1), ("test", 2)):
        for i in range(n):
            p = src / "images" / split / f"set{i % 2}" / f"{i:06d}.png"
            p.parent.mkdir(parents=True, exist_ok=True)
            # Incompressible payload so that the archive really spans several parts.
            p.write_bytes(_png_bytes(i, size=64) + np.random.default_rng(i).bytes(40_000))
        (src / "images" / split / "filelist.txt").write_text("listing\n")
    parts_dir = tmp_path / "parts"
    parts_dir.mkdir()
    subprocess.run(
        ["zip", "-q", "-r", "-0", "-s", "64k", str(parts_dir / "datasets.zip"), "images"],
        cwd=src,
        check=True,
    )
    parts = sorted(parts_dir.iterdir(), key=lambda p: (p.suffix == ".zip", p.suffix))
    assert len(parts) >= 3 and parts[-1].name == "datasets.zip"
    _swap(monkeypatch, "mit-demosaic", parts)
    fake = LocalDownloader({p.name: p for p in parts})
    out = datasets.download("mit-demosaic", tmp_path / "d", downloader=fake, progress=False)
    assert _names(out / "train") == ["set0__000000.png", "set0__000002.png", "set1__000001.png"]
    assert _names(out / "val") == ["set0__000000.png"]
    assert _names(out / "test") == ["set0__000000.png", "set1__000001.png"]
    assert not list((tmp_path / "d" / "mit-demosaic" / "downloads").glob("*joined*"))
    assert len(fake.calls) == len(parts)


def test_mit_demosaic_without_zip_program(tmp_path, monkeypatch):
    parts = [tmp_path / "datasets.z01", tmp_path / "datasets.zip"]
    for p in parts:
        p.write_bytes(b"part " + p.name.encode())
    _swap(monkeypatch, "mit-demosaic", parts)
    monkeypatch.setattr(shutil, "which", lambda _: None)
    with pytest.raises(RuntimeError, match="'zip' program"):
        datasets.download(
            "mit-demosaic",
            tmp_path / "d",
            downloader=LocalDownloader({p.name: p for p in parts}),
            progress=False,
        )
    # The verified parts stay for the next attempt.
    assert sorted(p.name for p in (tmp_path / "d" / "mit-demosaic" / "downloads").iterdir()) == [
        "datasets.z01",
        "datasets.zip",
    ]


# ----------------------------------------------------------------------------------------------
# Image-restoration test sets (CBSD68, McMaster, Set14, Urban100): registry and download paths
# ----------------------------------------------------------------------------------------------

EDSR_BENCHMARK_URL = "https://cv.snu.ac.kr/research/EDSR/benchmark.tar"
#: md5 of benchmark.tar as published by torchSR (torchsr/datasets/benchmarks.py).
EDSR_BENCHMARK_MD5 = "md5:4ace41d33c2384b97e6b320cd0afd6ba"


def _md5(path: Path) -> str:
    return "md5:" + hashlib.md5(path.read_bytes()).hexdigest()


def _with_hash(monkeypatch: pytest.MonkeyPatch, name: str, known_hash: str | None) -> None:
    """Keep entry ``name``'s real URL but replace its hash by that of a local fixture."""
    info = datasets.REGISTRY[name]
    urls = tuple((url, known_hash) for url, _ in info.urls)
    monkeypatch.setitem(datasets.REGISTRY, name, dataclasses.replace(info, urls=urls))


def _edsr_benchmark_tar(tmp_path: Path) -> Path:
    """A small stand-in for the EDSR benchmark.tar: four sets, HR and bicubic LR folders."""
    b = "benchmark"
    members = {
        f"{b}/Set5/HR/baby.png": _png_bytes(1),
        f"{b}/Set5/LR_bicubic/X2/babyx2.png": _png_bytes(2, size=4),
        f"{b}/Set14/HR/baboon.png": _png_bytes(3),
        f"{b}/Set14/HR/comic.png": _png_bytes(4),
        f"{b}/Set14/LR_bicubic/X2/baboonx2.png": _png_bytes(5, size=4),
        f"{b}/Set14/LR_bicubic/X4/comicx4.png": _png_bytes(6, size=2),
        f"{b}/B100/HR/3096.png": _png_bytes(7),
        f"{b}/Urban100/HR/img001.png": _png_bytes(8),
        f"{b}/Urban100/HR/img002.png": _png_bytes(9),
        f"{b}/Urban100/HR/img003.png": _png_bytes(10),
        f"{b}/Urban100/LR_bicubic/X4/img001x4.png": _png_bytes(11, size=2),
    }
    return _make_tar(tmp_path / "benchmark.tar", members)


def test_test_sets_are_registered_as_test_only():
    for name in TEST_SETS:
        info = datasets.REGISTRY[name]
        assert "test/" in info.layout and "no train/ folder" in info.layout, name
        for field in ("size", "licence", "citation", "homepage"):
            assert getattr(info, field).strip(), f"{name}: empty {field}"
        assert info.homepage.startswith("https://"), name


def test_test_set_sources_and_checksums():
    reg = datasets.REGISTRY
    # Set14 and Urban100: the EDSR authors' benchmark.tar with torchSR's md5.
    for name in ("set14", "urban100"):
        assert reg[name].urls == ((EDSR_BENCHMARK_URL, EDSR_BENCHMARK_MD5),)
        assert reg[name].verified
    # CBSD68 and McMaster: no published archive checksum, so unverified.
    (cbsd_url, cbsd_hash), = reg["cbsd68"].urls
    assert cbsd_hash is None and not reg["cbsd68"].verified
    assert cbsd_url.startswith("https://huggingface.co/datasets/deepinv/CBSD68/resolve/")
    revision = cbsd_url.split("/resolve/", 1)[1].split("/", 1)[0]
    assert len(revision) == 40 and int(revision, 16) >= 0  # pinned to a commit, not a branch
    assert cbsd_url.endswith("/CBSD68.tar.gz")
    assert reg["mcmaster"].urls == (("https://www4.comp.polyu.edu.hk/~cslzhang/DATA/McM.zip", None),)
    assert not reg["mcmaster"].verified
    records = {r["name"]: r for r in datasets.describe_records()}
    assert records["set14"]["checksums"] == records["urban100"]["checksums"] == "all files"
    assert records["cbsd68"]["checksums"] == records["mcmaster"]["checksums"] == "none for 1 of 1 files"


def test_registry_image_counts_and_sizes_documented():
    expect = {
        "cbsd68": ("68", "481x321"),
        "mcmaster": ("18", "500x500"),
        "set14": ("14", "512x768"),
        "urban100": ("100", "1024"),
    }
    for name, (count, size) in expect.items():
        info = datasets.REGISTRY[name]
        text = info.description + " " + info.size
        assert text.startswith(count + " ") or f" {count} " in text, name
        assert size in text, name


@pytest.mark.parametrize(
    "name, expected",
    [("set14", ["baboon.png", "comic.png"]), ("urban100", ["img001.png", "img002.png", "img003.png"])],
)
def test_edsr_benchmark_sets_go_to_test_only(tmp_path, monkeypatch, name, expected):
    archive = _edsr_benchmark_tar(tmp_path)
    _with_hash(monkeypatch, name, _md5(archive))  # real URL, md5 form as in the registry
    fake = LocalDownloader({"benchmark.tar": archive})
    out = datasets.download(name, tmp_path / "d", downloader=fake, progress=False)
    assert fake.calls == [EDSR_BENCHMARK_URL]
    assert _names(out / "test") == expected  # HR only: no LR images, no other set
    assert not (out / "train").exists()
    assert json.loads((out / "layout.json").read_text())["splits"] == {"test": len(expected)}
    assert Image.open(out / "test" / expected[0]).size == (8, 8)


def test_edsr_benchmark_wrong_md5_is_refused(tmp_path, monkeypatch):
    archive = _edsr_benchmark_tar(tmp_path)  # the real md5 in the registry cannot match this fixture
    fake = LocalDownloader({"benchmark.tar": archive})
    with pytest.raises(ValueError, match="(?i)hash"):
        datasets.download("set14", tmp_path / "d", downloader=fake, progress=False)
    assert not datasets.is_downloaded("set14", tmp_path / "d")


def test_cbsd68_refuses_without_allow_unverified(tmp_path):
    fake = LocalDownloader({})
    with pytest.raises(datasets.UnverifiedDownloadError, match="allow_unverified=True"):
        datasets.download("cbsd68", tmp_path, downloader=fake, progress=False)
    assert fake.calls == [] and not (tmp_path / "cbsd68").exists()


def test_cbsd68_unverified_download_with_opt_in(tmp_path):
    members = {f"CBSD68/0/{i:04d}.png": _png_bytes(i) for i in range(3)}
    members["CBSD68/0/0000.json"] = b"{}"  # WebDataset sidecars are not images
    archive = _make_tar(tmp_path / "CBSD68.tar.gz", members, mode="w:gz")
    fake = LocalDownloader({"CBSD68.tar.gz": archive})  # the registry's real (pinned) URL
    out = datasets.download(
        "cbsd68", tmp_path / "d", downloader=fake, progress=False, allow_unverified=True, keep_archives=False
    )
    assert fake.calls == [datasets.REGISTRY["cbsd68"].urls[0][0]]
    assert _names(out / "test") == ["0000.png", "0001.png", "0002.png"]
    assert not (out / "train").exists()
    assert not (tmp_path / "d" / "cbsd68" / "downloads" / "CBSD68.tar.gz").exists()
    assert Image.open(out / "test" / "0001.png").size == (8, 8)


def _mcmaster_tree(tmp_path: Path) -> tuple[Path, dict[str, bytes]]:
    """Files as in McM.zip: McM/<n>.tif, plus a non-image."""
    src = tmp_path / "mcm-src"
    tifs = {f"{i}.tif": _png_bytes(i, fmt="TIFF") for i in (1, 2, 18)}
    for fname, data in tifs.items():
        (src / "McM").mkdir(parents=True, exist_ok=True)
        (src / "McM" / fname).write_bytes(data)
    (src / "McM" / "Thumbs.db").write_bytes(b"not an image")
    return src, tifs


def _zip_with_password(src: Path, dest: Path, password: str) -> Path:
    subprocess.run(["zip", "-q", "-r", "-P", password, str(dest), "McM"], cwd=src, check=True)
    return dest


def test_mcmaster_refuses_without_allow_unverified(tmp_path):
    fake = LocalDownloader({})
    with pytest.raises(datasets.UnverifiedDownloadError, match="allow_unverified=True"):
        datasets.download("mcmaster", tmp_path, downloader=fake, progress=False)
    assert fake.calls == []


def test_mcmaster_plain_zip_with_opt_in(tmp_path):
    src, tifs = _mcmaster_tree(tmp_path)
    archive = _make_zip(tmp_path / "McM.zip", {f"McM/{k}": v for k, v in tifs.items()})
    out = datasets.download(
        "mcmaster",
        tmp_path / "d",
        downloader=LocalDownloader({"McM.zip": archive}),
        progress=False,
        allow_unverified=True,
    )
    assert _names(out / "test") == ["1.tif", "18.tif", "2.tif"]
    assert not (out / "train").exists()
    from rcl.data import load_folder  # the project's loader reads the TIFFs

    images = load_folder(out / "test")
    assert sorted(images) == ["1.tif", "18.tif", "2.tif"]
    assert tuple(images["2.tif"].shape) == (3, 8, 8)


@pytest.mark.skipif(shutil.which("zip") is None, reason="Info-ZIP 'zip' is needed to make an encrypted zip")
def test_mcmaster_encrypted_zip_uses_published_password(tmp_path):
    src, tifs = _mcmaster_tree(tmp_path)
    archive = _zip_with_password(src, tmp_path / "McM.zip", "McM_CDM")
    with zipfile.ZipFile(archive) as zf:  # really encrypted: unreadable without the password
        with pytest.raises(RuntimeError, match="(?i)password"):
            zf.read("McM/1.tif")
    out = datasets.download(
        "mcmaster",
        tmp_path / "d",
        downloader=LocalDownloader({"McM.zip": archive}),
        progress=False,
        allow_unverified=True,
    )
    assert _names(out / "test") == ["1.tif", "18.tif", "2.tif"]  # Thumbs.db left out
    for fname, data in tifs.items():
        assert (out / "test" / fname).read_bytes() == data


@pytest.mark.skipif(shutil.which("zip") is None, reason="Info-ZIP 'zip' is needed to make an encrypted zip")
def test_mcmaster_wrong_password_leaves_nothing_complete(tmp_path):
    src, _ = _mcmaster_tree(tmp_path)
    archive = _zip_with_password(src, tmp_path / "McM.zip", "another password")
    root = tmp_path / "d"
    with pytest.raises(RuntimeError, match="password"):
        datasets.download(
            "mcmaster", root, downloader=LocalDownloader({"McM.zip": archive}), progress=False,
            allow_unverified=True,
        )  # fmt: skip
    assert not datasets.is_downloaded("mcmaster", root)
    assert not (root / "mcmaster" / "raw" / "McM").exists()


def test_cli_lists_the_test_sets(capsys):
    from rcl import cli

    assert cli.main(["datasets", "list"]) == 0
    table = capsys.readouterr().out
    for name in TEST_SETS:
        assert f"| {name} |" in table
