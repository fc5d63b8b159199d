"""Reading one image file: any of the supported formats as a ``3×H×W`` float32 tensor in [0, 1], as a
viewer shows it, without letting a crafted file run away with memory.

Pillow decodes most formats (under its decompression-bomb limit, its EXIF orientation applied, CMYK turned
into RGB); pypng decodes 16-bit PNGs exactly, tifffile TIFFs, and NumPy PPM/PGM files with more than 8 bits,
binary or plain text (a raw converter's 16-bit output, which Pillow reduces to 8 bits) — each after its
header's size has been checked against Pillow's limit. Content of none of the supported formats never reaches a decoder.

Layer: ground floor (imports no other module of rcl).
"""

from __future__ import annotations

import math
import os
import re
import struct
import warnings
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import torch
from PIL import Image as _PILImage
from torch import Tensor

__all__ = ["FORMATS", "load_image"]


def _to_float_rgb(arr: np.ndarray, source: str) -> Tensor:
    """Any decoded image array -> 3×H×W float32 in [0, 1]."""
    if arr.ndim >= 2 and 0 in arr.shape[:2]:
        raise ValueError(f"{source}: an image of {arr.shape[1]}×{arr.shape[0]} px (width × height) has no pixels")
    if arr.dtype == bool:
        arr = arr.astype(np.uint8) * 255
    if np.issubdtype(arr.dtype, np.integer):
        info = np.iinfo(arr.dtype)
        if info.min < 0:
            raise ValueError(f"{source}: signed integer pixels ({arr.dtype}) are not a supported image format")
        # 16-bit files decoded into wider containers still use the 16-bit range.
        scale = 65535.0 if info.max > 65535 and arr.max() <= 65535 else float(info.max)
        arr = arr.astype(np.float32) / scale
    elif np.issubdtype(arr.dtype, np.floating):
        arr = arr.astype(np.float32)
        lo, hi = float(np.nanmin(arr)), float(np.nanmax(arr))
        if not np.isfinite(arr).all() or lo < 0.0 or hi > 1.0:
            raise ValueError(f"{source}: floating-point pixels must be finite and in [0, 1], got [{lo}, {hi}]")
    else:
        raise ValueError(f"{source}: unsupported pixel type {arr.dtype}")
    if arr.ndim == 2:
        arr = np.repeat(arr[:, :, None], 3, axis=2)
    elif arr.ndim == 3 and arr.shape[2] in (1, 2, 3, 4):
        c = arr.shape[2]
        if c in (2, 4):  # gray+alpha or RGBA: composite over white, as a viewer shows it
            alpha = arr[:, :, -1:]
            arr = arr[:, :, :-1] * alpha + (1.0 - alpha)
            c -= 1
        if c == 1:
            arr = np.repeat(arr, 3, axis=2)
    else:
        raise ValueError(f"{source}: expected an H×W or H×W×{{1,2,3,4}} image, got shape {arr.shape}")
    return torch.from_numpy(np.ascontiguousarray(arr.transpose(2, 0, 1)))


_TIFF = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")
#: What files of the supported formats start with (and WebP: "RIFF", 4 bytes, "WEBP").
_PNM = (b"P2", b"P3", b"P5", b"P6")  # the Netpbm formats with a maxval: grayscale and colour, plain and binary
_SIGNATURES = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", *_TIFF, b"BM", *(b"P%d" % i for i in range(1, 8)))
FORMATS = "PNG, JPEG, TIFF, BMP, PPM/PGM/PBM or WebP"


def _is_png16(head: bytes) -> bool:
    """Whether a file's first 25 bytes are those of a PNG with 16 bits per sample (Pillow would
    silently truncate its colour to 8 bits)."""
    return head[:8] == _SIGNATURES[0] and head[12:16] == b"IHDR" and head[24:25] == b"\x10"


def _pnm16_header(path: Path) -> tuple[int, int, int, int, int, bool] | None:
    """``(width, height, channels, maxval, offset of the pixels, plain)`` of a PPM (P6, or P3 in plain text) or
    PGM (P5, P2) whose maxval exceeds 255 (two big-endian bytes a sample, or decimal numbers when ``plain``);
    None for any other file, which Pillow reads (and names when it cannot). Netpbm's header: the magic, then
    whitespace-separated width, height and maxval, comments from "#" through the next CR or LF anywhere before
    the single whitespace byte that ends it."""
    with open(path, "rb") as f:
        head = f.read(4096)
    if head[:2] not in _PNM or not head[2:3].isspace() and head[2:3] != b"#":
        return None
    tokens, i, n = [], 2, len(head)

    def skip_comment(i: int) -> int:
        ends = [j for j in (head.find(b"\n", i), head.find(b"\r", i)) if j >= 0]
        return min(ends) + 1 if ends else n

    while len(tokens) < 3 and i < n:  # width, height, maxval
        if head[i : i + 1] == b"#":
            i = skip_comment(i)
        elif head[i : i + 1].isspace():
            i += 1
        else:
            j = i
            while j < n and not head[j : j + 1].isspace() and head[j : j + 1] != b"#":
                j += 1
            tokens.append(head[i:j])
            i = j
    while i < n and head[i : i + 1] == b"#":  # comments between the maxval and its one whitespace byte
        i = skip_comment(i)
    if (len(tokens) < 3 or i >= n) and n == 4096:  # long comments: Pillow would read it in 8 bits, or misread it
        raise ValueError(f"{path}: a PPM/PGM header longer than 4096 bytes is not read")
    if len(tokens) < 3 or i >= n:
        return None
    if not all(t.isdigit() and len(t) <= 10 for t in tokens) or not head[i : i + 1].isspace():
        return None  # not a header Pillow reads either: its error names the file
    width, height, maxval = (int(t) for t in tokens)
    channels, plain = (3 if head[:2] in (b"P6", b"P3") else 1), head[:2] in (b"P2", b"P3")
    return (width, height, channels, maxval, i + 1, plain) if maxval > 255 else None


def _read_pnm16(path: Path, width: int, height: int, channels: int, maxval: int, offset: int,
                plain: bool) -> np.ndarray:
    """A PPM/PGM with more than 8 bits (:func:`_pnm16_header`), binary or plain text, as float32 in [0, 1]: each
    sample over the maxval; check its size with :func:`_check_pixels` first."""
    if not 0 < maxval < 65536 or width < 1 or height < 1:
        raise ValueError(f"maxval {maxval} and size {width}×{height} are not those of a PPM/PGM (maxval 256–65535)")
    n, size = width * height * channels, path.stat().st_size - offset
    if plain:
        arr = _plain_samples(path, offset, n, size)
    elif size < 2 * n:  # before anything is allocated for the samples
        raise ValueError(f"truncated: {max(size, 0) // 2} of its {n} samples")
    else:
        arr = np.fromfile(path, dtype=">u2", count=n, offset=offset)
    if arr.max(initial=0) > maxval:
        raise ValueError(f"a sample exceeds its maxval {maxval}")
    return (arr.astype(np.float32) / np.float32(maxval)).reshape(height, width, channels)


#: The most bytes a plain-text PPM/PGM sample may take with its whitespace and comments: only that much of a file
#: is read (what follows its samples is ignored, as Pillow ignores it), so a crafted one cannot fill memory.
PLAIN_BYTES_PER_SAMPLE = 16


def _plain_samples(path: Path, offset: int, n: int, size: int) -> np.ndarray:
    """The first ``n`` decimal samples of a plain-text PPM/PGM after its header (``offset``; ``size`` bytes
    follow it), comments ("#" to the end of the line) skipped, reading at most :data:`PLAIN_BYTES_PER_SAMPLE`
    bytes a sample. Anything but digits and whitespace before the ``n``-th sample is an error."""
    if size < 2 * n - 1:  # a digit and a whitespace byte a sample at least: before reading anything
        raise ValueError(f"truncated: fewer than its {n} samples")
    limit = PLAIN_BYTES_PER_SAMPLE * n + 4096
    with open(path, "rb") as f:
        f.seek(offset)
        text = re.sub(rb"#[^\r\n]*", b" ", f.read(limit))
    bad = re.search(rb"[^0-9 \t\n\r\v\f]", text)  # trailing data (another image, say) may follow the samples
    body = text[: bad.start()].rstrip(b"0123456789") if bad else text  # a number the bad byte ends is not one
    arr = np.fromstring(body, dtype=np.int64, sep=" ")  # " ": any run of whitespace
    if arr.size >= n:
        return arr[:n]
    if bad:
        raise ValueError("its plain-text samples hold something other than decimal numbers and comments")
    if size > limit:
        raise ValueError(f"its plain-text samples take more than {PLAIN_BYTES_PER_SAMPLE} bytes each: not read")
    raise ValueError(f"truncated: {arr.size} of its {n} samples")


def _size_to_check(path: Path, head: bytes) -> tuple[int, int] | None:
    """``(width, height)`` from the header of a file whose decoder has no pixel limit: a 16-bit PNG
    (pypng) or a TIFF (tifffile; every page counts, as every page is decoded); None for the rest, which
    Pillow decodes under its own limit."""
    if _is_png16(head):
        return struct.unpack(">II", head[16:24])
    if not head.startswith(_TIFF):
        return None
    try:
        shape = tuple(int(d) for d in iio.improps(path).shape)  # read from the header only
    except Exception:  # an unreadable header: the decoder will say why
        return None
    channels = shape[-1] if len(shape) >= 3 and shape[-1] <= 4 else 1
    width = max(shape[-2] if channels > 1 else shape[-1], 1)
    return width, math.prod(shape) // channels // width  # the height, times the number of pages


def _check_pixels(path: Path, width: int, height: int) -> None:
    """Pillow's decompression-bomb rule, for decoders that lack it: more than twice
    ``PIL.Image.MAX_IMAGE_PIXELS`` pixels is an error, more than that limit a warning."""
    limit, n = _PILImage.MAX_IMAGE_PIXELS, width * height
    what = f"{path}: {width}×{height} = {n} pixels is more than"
    if limit is not None and n > 2 * limit:
        raise ValueError(f"{what} twice PIL.Image.MAX_IMAGE_PIXELS ({limit}), a possible decompression bomb; "
                         "raise that limit to read it")  # fmt: skip
    if limit is not None and n > limit:  # stacklevel: the caller of load_image
        warnings.warn(f"{what} PIL.Image.MAX_IMAGE_PIXELS ({limit})", _PILImage.DecompressionBombWarning, 3)


def _read_png16(path: Path) -> np.ndarray:
    """A 16-bit colour PNG, decoded exactly (pypng); check its size with :func:`_check_pixels` first."""
    import png  # pypng: only 16-bit PNGs need it

    with open(path, "rb") as f:  # pypng leaves a file it opened itself open when decoding fails
        width, height, rows, info = png.Reader(file=f).asDirect()
        arr = np.vstack([np.asarray(row, dtype=np.uint16) for row in rows])
    if info["bitdepth"] != 16:  # an sBIT chunk: pypng gives the significant bits, rescale them to 16
        arr = np.round(arr * (65535.0 / (2 ** info["bitdepth"] - 1))).astype(np.uint16)
    return arr.reshape(height, width, info["planes"])


#: EXIF orientation -> the array operation that turns the stored pixels upright (Pillow's ``exif_transpose``).
_UPRIGHT = {2: lambda a: a[:, ::-1], 3: lambda a: a[::-1, ::-1], 4: lambda a: a[::-1],
            5: lambda a: a.swapaxes(0, 1), 6: lambda a: np.rot90(a, -1),
            7: lambda a: np.rot90(a.swapaxes(0, 1), 2), 8: lambda a: np.rot90(a, 1)}  # fmt: skip


def _upright(path: Path, arr: np.ndarray) -> np.ndarray:
    """``arr`` (``H×W[×C]``, decoded by pypng or tifffile) turned by the file's EXIF orientation, as Pillow
    turns what it decodes itself; unchanged where Pillow reads no orientation from the file."""
    try:
        with warnings.catch_warnings():  # the size was checked already
            warnings.simplefilter("ignore", _PILImage.DecompressionBombWarning)
            with _PILImage.open(path) as im:
                orientation = im.getexif().get(0x0112, 1)
    except Exception:  # a header Pillow cannot parse carries no orientation it can read
        return arr
    return np.ascontiguousarray(_UPRIGHT[orientation](arr)) if orientation in _UPRIGHT else arr


def _read_pillow(path: Path) -> np.ndarray:
    """An image Pillow decodes, turned upright by its EXIF orientation (as a viewer shows it) and with CMYK
    converted to RGB (four CMYK channels are not RGBA). Should Pillow decode a 16-bit grayscale file (PPM/PGM
    with more than 8 bits are :func:`_read_pnm16`'s) into 32-bit integers scaled to 0–65535, they are returned
    as 16-bit values."""
    with _PILImage.open(path) as im:
        mode = im.mode
    arr = iio.imread(path, rotate=True, **({"mode": "RGB"} if mode == "CMYK" else {}))
    if mode == "I" and arr.dtype.kind == "i" and (arr.size == 0 or (arr.min() >= 0 and arr.max() <= 65535)):
        arr = arr.astype(np.uint16)
    return arr


def load_image(path: str | os.PathLike) -> Tensor:
    """Read one image file as a ``3×H×W`` float32 tensor in [0, 1].

    Grayscale is replicated to three channels, alpha is composited over white, palette images are
    expanded, CMYK is converted to RGB, an EXIF orientation is applied (a portrait photograph loads upright),
    and 8- and 16-bit files are scaled by their bit depth (a 16-bit PNG's significant bits, where its sBIT
    chunk gives fewer; a PPM/PGM's maxval). Pillow's decompression-bomb limit
    (``PIL.Image.MAX_IMAGE_PIXELS``) applies to every format, 16-bit PNGs and TIFFs included. Errors are
    one line naming the file; content of none of the supported formats never reaches a decoder.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such image file")
    with open(path, "rb") as f:
        head = f.read(25)
    if not (head.startswith(_SIGNATURES) or (head[:4] == b"RIFF" and head[8:12] == b"WEBP")):
        # decided here, not by imageio, whose message for such content suggests installing video plugins
        raise ValueError(f"{path}: not a readable image: its content is not {FORMATS}")
    pnm16 = _pnm16_header(path) if head[:2] in _PNM else None
    size = pnm16[:2] if pnm16 else _size_to_check(path, head)
    if size is not None:  # pypng, tifffile and NumPy have no pixel limit of their own: check before decoding
        _check_pixels(path, *size)
    png16, tiff = _is_png16(head), head.startswith(_TIFF)
    try:
        arr = (_read_pnm16(path, *pnm16) if pnm16 else _read_png16(path) if png16 else iio.imread(path) if tiff
               else _read_pillow(path))
    except Exception as err:  # imageio raises many types; all mean "not a readable image"
        reason = f"{type(err).__name__}: {(str(err).strip().splitlines() or [''])[0]}"
        raise ValueError(f"{path}: not a readable image ({reason}); supported: {FORMATS}") from err
    if arr.ndim == 3 and arr.shape[0] <= 4 < arr.shape[2] and path.suffix.lower() in (".tif", ".tiff"):
        arr = arr.transpose(1, 2, 0)  # channel-first TIFF
    if arr.ndim == 4:  # animated/multipage: first frame
        arr = arr[0]
    if png16 or tiff:  # Pillow turned the others already
        arr = _upright(path, arr)
    return _to_float_rgb(np.asarray(arr), str(path))
