"""Hostile input for the data path: crafted archives, links out of a dataset, decompression bombs,
files that are not images, and a download without a network. Nothing here touches the network or
allocates more than a few megabytes."""

from __future__ import annotations

import dataclasses
import io
import os
import shutil
import stat
import struct
import tarfile
import warnings
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
import requests
from PIL import Image

from rcl import data, datasets
from rcl.datasets import archives

# ----------------------------------------------------------------------------------------------
# Crafted archives
# ----------------------------------------------------------------------------------------------


def _png(seed: int = 0) -> bytes:
    arr = np.random.default_rng(seed).integers(0, 256, size=(8, 8, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def _tar(path: Path, members: list[tarfile.TarInfo | tuple[str, bytes]]) -> Path:
    """A tar of regular files ``(name, bytes)`` and hand-made headers (links, devices) as given."""
    with tarfile.open(path, "w") as tf:
        for m in members:
            if isinstance(m, tarfile.TarInfo):
                tf.addfile(m)
            else:
                info = tarfile.TarInfo(m[0])
                info.size = len(m[1])
                tf.addfile(info, io.BytesIO(m[1]))
    return path


def _special(name: str, kind: bytes, linkname: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, linkname
    return info


def _zip(path: Path, members: dict[str, bytes], modes: dict[str, int] | None = None) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, payload in members.items():
            info = zipfile.ZipInfo(name)
            if modes and name in modes:
                info.create_system, info.external_attr = 3, modes[name] << 16
            zf.writestr(info, payload)
    return path


@pytest.fixture(params=["this Python", "no tarfile filters"])
def any_python(request, monkeypatch):
    """Run once as is and once as on a Python without tarfile's extraction filters (before 3.10.12/3.11.4)."""
    if request.param == "no tarfile filters" and hasattr(tarfile, "data_filter"):
        monkeypatch.delattr(tarfile, "data_filter")
    return request.param


HOSTILE_TARS = {
    "parent path": lambda outside: [("ok/a.png", _png()), (f"../{outside.name}/escaped.png", _png(1))],
    "absolute path": lambda outside: [("ok/a.png", _png()), (str(outside / "escaped.png"), _png(1))],
    "symlink": lambda outside: [("ok/a.png", _png()), _special("ok/passwd.png", tarfile.SYMTYPE, "/etc/passwd")],
    "hard link": lambda outside: [("ok/a.png", _png()), _special("ok/b.png", tarfile.LNKTYPE, "/etc/passwd")],
    "device file": lambda outside: [("ok/a.png", _png()), _special("ok/zero.png", tarfile.CHRTYPE)],
    "fifo": lambda outside: [("ok/a.png", _png()), _special("ok/pipe.png", tarfile.FIFOTYPE)],
}


@pytest.mark.parametrize("case", sorted(HOSTILE_TARS))
def test_hostile_tar_is_refused_and_writes_nothing(tmp_path, any_python, case):
    outside = tmp_path / "outside"
    outside.mkdir()
    archive = _tar(tmp_path / "evil.tar", HOSTILE_TARS[case](outside))
    dest = tmp_path / "work" / "raw" / "evil"
    dest.parent.mkdir(parents=True)
    with pytest.raises(datasets.UnsafeArchiveError, match="evil.tar: member") as err:
        datasets.safe_extract(archive, dest)
    assert "\n" not in str(err.value)
    assert list(outside.iterdir()) == []  # nothing landed outside the target
    assert not dest.exists() and not (dest.parent / "evil.partial").exists()  # nothing inside either


@pytest.mark.parametrize(
    "members, modes",
    [
        ({"ok/a.png": b"x", "../escaped.png": b"y"}, None),
        ({"ok/a.png": b"x", "/escaped.png": b"y"}, None),
        ({"ok/a.png": b"x", "ok\\..\\..\\escaped.png": b"y"}, None),
        ({"ok/a.png": b"x", "C:/escaped.png": b"y"}, None),
        ({"ok/a.png": b"x", "ok/link.png": b"/etc/passwd"}, {"ok/link.png": stat.S_IFLNK | 0o777}),
        ({"ok/a.png": b"x", "ok/dev.png": b""}, {"ok/dev.png": stat.S_IFCHR | 0o666}),
    ],
    ids=["parent", "absolute", "backslash-parent", "drive", "symlink", "device"],
)
def test_hostile_zip_is_refused(tmp_path, members, modes):
    archive = _zip(tmp_path / "evil.zip", members, modes)
    with pytest.raises(datasets.UnsafeArchiveError, match="evil.zip: member"):
        datasets.safe_extract(archive, tmp_path / "raw" / "evil")
    assert not (tmp_path / "raw" / "evil").exists()


def test_plain_archives_still_extract(tmp_path, any_python):
    members = [("d/a.png", _png(0)), ("d/sub/b.png", _png(1))]
    tar = _tar(tmp_path / "ok.tar", members)
    zipped = _zip(tmp_path / "ok.zip", dict(members), {"d/a.png": stat.S_IFREG | 0o644})
    for archive in (tar, zipped):
        out = datasets.safe_extract(archive, tmp_path / "raw" / archive.stem)
        assert (out / "d" / "sub" / "b.png").read_bytes() == _png(1)


def _swap_bsds(monkeypatch, archive: Path) -> dict:
    info = datasets.REGISTRY["bsds500"]
    urls = ((f"https://example.invalid/{archive.name}", None),)
    monkeypatch.setitem(datasets.REGISTRY, "bsds500", dataclasses.replace(info, urls=urls))

    def copy(url, output_file, pooch_instance):
        shutil.copyfile(archive, output_file)

    return {"downloader": copy, "progress": False, "allow_unverified": True}


def test_download_refuses_a_tar_with_a_link_to_a_system_file(tmp_path, monkeypatch, any_python):
    base = "BSDS500-master/BSDS500/data/images"
    members = [(f"{base}/train/1.png", _png()), (f"{base}/test/2.png", _png(1)),
               _special(f"{base}/test/secret.jpg", tarfile.SYMTYPE, "/etc/passwd")]  # fmt: skip
    archive = _tar(tmp_path / "master.tar", members)
    root = tmp_path / "d"
    with pytest.raises(datasets.UnsafeArchiveError, match="secret.jpg"):
        datasets.download("bsds500", root, **_swap_bsds(monkeypatch, archive))
    assert not datasets.is_downloaded("bsds500", root)
    assert not any(p.is_symlink() for p in (root / "bsds500").rglob("*"))


def test_image_search_in_archives_never_follows_links(tmp_path):
    folder = tmp_path / "raw" / "x"
    (folder / "sub").mkdir(parents=True)
    (folder / "real.png").write_bytes(_png())
    secret = tmp_path / "secret"
    secret.mkdir()
    (secret / "private.png").write_bytes(_png(1))
    os.symlink(secret / "private.png", folder / "link.png")
    os.symlink(secret, folder / "sub" / "linked_dir")
    assert archives._images_under(folder) == [folder / "real.png"]  # neither the link nor the linked folder
    with pytest.raises(RuntimeError, match="no folder matching"):
        archives._find_dir([folder], "**/linked_dir")


def test_voc_split_list_cannot_name_a_path(tmp_path):
    voc = tmp_path / "VOCdevkit" / "VOC2012"
    (voc / "ImageSets" / "Main").mkdir(parents=True)
    (voc / "JPEGImages").mkdir()
    (tmp_path / "secret.jpg").write_bytes(_png())  # what JPEGImages/../../../secret.jpg names
    (voc / "ImageSets" / "Main" / "train.txt").write_text("../../../secret\n")
    (voc / "ImageSets" / "Main" / "val.txt").write_text("")
    with pytest.raises(datasets.UnsafeArchiveError, match="not an image id"):
        archives._arrange_voc2012([tmp_path])


def _fake_download(root: Path, name: str = "kodak24") -> Path:
    """A registered dataset's folder as download() leaves it: images/test/ linking into downloads/."""
    downloads = root / name / "downloads"
    downloads.mkdir(parents=True)
    (downloads / "kodim01.png").write_bytes(_png())
    test = root / name / "images" / "test"
    test.mkdir(parents=True)
    os.symlink(os.path.relpath(downloads / "kodim01.png", test), test / "kodim01.png")
    return test


def test_registered_dataset_never_reads_through_a_link_out_of_its_folder(tmp_path):
    test = _fake_download(tmp_path / "data")
    assert list(data.load_images("kodak24", "test", tmp_path / "data")) == ["test/kodim01.png"]
    secret = tmp_path / "secret.png"
    secret.write_bytes(_png(1))
    os.symlink(secret, test / "kodim02.png")
    with pytest.raises(ValueError, match="kodim02.png: links to .*outside the dataset folder"):
        data.load_images("kodak24", "test", tmp_path / "data")
    # A folder of one's own may link anywhere (here: to a registered dataset's split folder).
    assert len(data.load_images("folder", "test", test.parent)) == 2


# ----------------------------------------------------------------------------------------------
# 16-bit PNGs and the decompression-bomb limit
# ----------------------------------------------------------------------------------------------


def _chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def _png16(path: Path, width: int, height: int, rows: int | None = None) -> Path:
    """A 16-bit RGB PNG whose header says ``width×height``; only ``rows`` rows of pixel data follow."""
    row = b"\x00" + bytes(6 * width)
    raw = row * (height if rows is None else rows)
    header = struct.pack(">IIBBBBB", width, height, 16, 2, 0, 0, 0)
    sig = b"\x89PNG\r\n\x1a\n"
    path.write_bytes(sig + _chunk(b"IHDR", header) + _chunk(b"IDAT", zlib.compress(raw)) + _chunk(b"IEND", b""))
    return path


def test_16bit_png_header_over_the_pixel_limit_is_refused_before_decoding(tmp_path):
    bomb = _png16(tmp_path / "bomb.png", 14000, 14000, rows=2)  # 196 Mpx claimed, a few kB on disk
    assert bomb.stat().st_size < 10_000
    with pytest.raises(ValueError, match=r"bomb.png: 14000×14000 = 196000000 pixels .*MAX_IMAGE_PIXELS"):
        data.load_image(bomb)


def test_16bit_png_follows_pillows_limit(tmp_path, monkeypatch):
    small = _png16(tmp_path / "small.png", 8, 8)  # 64 pixels
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 31)  # 64 > 2 × 31: an error, as in Pillow
    with pytest.raises(ValueError, match="small.png: 8×8 = 64 pixels is more than twice"):
        data.load_image(small)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 40)  # 40 < 64 <= 80: a warning, and the image
    with pytest.warns(Image.DecompressionBombWarning, match="small.png"):
        assert tuple(data.load_image(small).shape) == (3, 8, 8)
    for limit in (64, None):  # at the limit, or no limit: silent
        monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", limit)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            assert tuple(data.load_image(small).shape) == (3, 8, 8)


def test_16bit_ppm_header_over_the_pixel_limit_is_refused_before_decoding(tmp_path):
    bomb = tmp_path / "bomb.ppm"  # 196 Mpx claimed in a few bytes: refused from the header, nothing allocated
    bomb.write_bytes(b"P6\n14000 14000\n65535\n" + bytes(12))
    with pytest.raises(ValueError, match=r"bomb.ppm: 14000×14000 = 196000000 pixels .*MAX_IMAGE_PIXELS"):
        data.load_image(bomb)


def test_tiff_follows_pillows_limit(tmp_path, monkeypatch):
    tif = tmp_path / "small.tif"
    Image.fromarray(np.zeros((8, 8, 3), dtype=np.uint8)).save(tif)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 31)
    with pytest.raises(ValueError, match="small.tif: 8×8 = 64 pixels is more than twice"):
        data.load_image(tif)


def test_tiff_header_over_the_pixel_limit_is_refused_before_decoding(tmp_path):
    tifffile = pytest.importorskip("tifffile")  # the TIFF decoder imageio prefers; it has no pixel limit
    bomb = tmp_path / "bomb.tif"
    tifffile.imwrite(bomb, np.zeros((4, 4, 3), np.uint16), photometric="rgb")
    raw = bytearray(bomb.read_bytes())
    with tifffile.TiffFile(bomb) as tf:
        tags = [t for t in tf.pages[0].tags.values() if t.name in ("ImageWidth", "ImageLength", "RowsPerStrip")]
        for tag in tags:  # claim 40000×40000 (9 GiB decoded) in a file of a few hundred bytes
            struct.pack_into("<I" if tag.dtype == 4 else "<H", raw, tag.valueoffset, 40000)
    bomb.write_bytes(bytes(raw))
    with pytest.raises(ValueError, match="bomb.tif: 40000×40000 = 1600000000 pixels .*MAX_IMAGE_PIXELS"):
        data.load_image(bomb)


# ----------------------------------------------------------------------------------------------
# Files that are not images
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fname", ["letter.jpg", "letter.png", "letter.tif", "letter.webp"])
def test_text_file_with_an_image_name_is_named_without_a_plugin_hint(tmp_path, fname):
    path = tmp_path / fname
    path.write_text("Dear reader,\nthis is a letter, not a photograph.\n")
    with pytest.raises(ValueError) as err:
        data.load_image(path)
    message = str(err.value)
    assert message.startswith(f"{path}: not a readable image")
    assert "PNG, JPEG, TIFF" in message
    assert "\n" not in message and "pip install" not in message and "backend" not in message


def test_truncated_png_keeps_the_decoders_reason_on_one_line(tmp_path):
    path = tmp_path / "cut.png"
    path.write_bytes(_png()[:60])
    with pytest.raises(ValueError, match=r"cut.png: not a readable image \(") as err:
        data.load_image(path)
    assert "\n" not in str(err.value)


# ----------------------------------------------------------------------------------------------
# A dataset that is not there, and no network
# ----------------------------------------------------------------------------------------------


def test_registered_dataset_not_downloaded_names_the_command(tmp_path):
    with pytest.raises(FileNotFoundError) as err:
        data.load_images("bsds500", "train", tmp_path / "data")
    assert str(err.value).endswith(f"run `python -m rcl datasets download bsds500 --root {tmp_path / 'data'}` first")
    with pytest.raises(FileNotFoundError, match="--allow-unverified"):  # cbsd68 has no published checksum
        data.load_images("cbsd68", "test", tmp_path / "data")


def test_offline_download_is_one_line_download_error(tmp_path, monkeypatch):
    def offline(*args, **kwargs):
        raise requests.exceptions.ConnectionError(
            "HTTPSConnectionPool(host='github.com', port=443): Max retries exceeded\n"
            "(Caused by NameResolutionError: Failed to resolve 'github.com')"
        )

    monkeypatch.setattr(requests, "get", offline)  # what pooch's HTTP downloader calls
    root = tmp_path / "data"
    with pytest.raises(datasets.DownloadError) as err:
        datasets.download("bsds500", root, progress=False)
    message = str(err.value)
    assert isinstance(err.value, OSError) and "\n" not in message
    url = datasets.REGISTRY["bsds500"].urls[0][0]
    assert message.startswith(f"bsds500: cannot download {url} (ConnectionError: ")
    assert "Failed to resolve 'github.com'" in message
    assert f"`python -m rcl datasets download bsds500 --root {root}`" in message
    assert not datasets.is_downloaded("bsds500", root)
