"""Image loading, splits, instances and positive-pair crops."""

import struct
import zlib

import imageio.v3 as iio
import numpy as np
import pytest
import torch

from rcl import data


def write_png16(path, arr: np.ndarray) -> None:
    """A minimal 16-bit RGB PNG writer (Pillow cannot write one)."""
    h, w, _ = arr.shape
    raw = b"".join(b"\x00" + arr[i].astype(">u2").tobytes() for i in range(h))

    def chunk(kind: bytes, payload: bytes) -> bytes:
        crc = zlib.crc32(kind + payload) & 0xFFFFFFFF
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")
    )


@pytest.fixture
def image_folder(tmp_path):
    rng = np.random.default_rng(0)
    iio.imwrite(tmp_path / "gray.png", rng.integers(0, 256, (40, 50), dtype=np.uint8))
    iio.imwrite(tmp_path / "rgba.png", rng.integers(0, 256, (33, 47, 4), dtype=np.uint8))
    write_png16(tmp_path / "deep16.png", rng.integers(0, 65536, (31, 37, 3), dtype=np.uint16))
    iio.imwrite(tmp_path / "odd.tif", rng.integers(0, 256, (29, 41, 3), dtype=np.uint8))
    iio.imwrite(tmp_path / "photo.jpg", rng.integers(0, 256, (48, 64, 3), dtype=np.uint8))
    (tmp_path / "notes.txt").write_text("not an image, and not an image extension either")
    return tmp_path


def test_loads_every_kind(image_folder):
    images = data.load_folder(image_folder)
    assert sorted(images) == ["deep16.png", "gray.png", "odd.tif", "photo.jpg", "rgba.png"]
    shapes = {k: tuple(v.shape) for k, v in images.items()}
    assert shapes["gray.png"] == (3, 40, 50)
    assert shapes["rgba.png"] == (3, 33, 47)
    assert shapes["odd.tif"] == (3, 29, 41)
    for img in images.values():
        assert img.dtype == torch.float32 and img.min() >= 0 and img.max() <= 1


def test_gray_replicated_and_16bit_scaled(tmp_path):
    gray = np.arange(256, dtype=np.uint8).reshape(16, 16)
    iio.imwrite(tmp_path / "g.png", gray)
    img = data.load_image(tmp_path / "g.png")
    assert torch.equal(img[0], img[1]) and torch.equal(img[1], img[2])
    assert img[0, 0, 1].item() == pytest.approx(1 / 255)
    deep = np.full((8, 8, 3), 65535, dtype=np.uint16)
    deep[0, 0] = (32768, 257, 1)  # values an 8-bit reader would lose
    write_png16(tmp_path / "d.png", deep)
    img = data.load_image(tmp_path / "d.png")
    assert img.max().item() == pytest.approx(1.0)
    assert img[:, 0, 0].tolist() == pytest.approx([32768 / 65535, 257 / 65535, 1 / 65535])
    gray16 = np.full((6, 6), 1000, dtype=np.uint16)
    iio.imwrite(tmp_path / "g16.png", gray16)
    assert data.load_image(tmp_path / "g16.png")[0, 0, 0].item() == pytest.approx(1000 / 65535)
    tif = np.full((5, 7, 3), 40000, dtype=np.uint16)
    iio.imwrite(tmp_path / "t16.tif", tif)
    assert data.load_image(tmp_path / "t16.tif")[1, 2, 3].item() == pytest.approx(40000 / 65535)


def test_16bit_pgm_is_scaled_by_its_maxval(tmp_path):
    """A 16-bit PGM (a camera's or a microscope's grayscale), at full range and at a 12-bit maxval: each value
    over its maxval, within one 16-bit step."""
    for maxval in (65535, 4095):
        values = np.linspace(0, maxval, 6 * 5).astype(">u2").reshape(5, 6)
        path = tmp_path / f"g{maxval}.pgm"
        path.write_bytes(b"P5\n# a comment\n6 5\n%d\n" % maxval + values.tobytes())
        img = data.load_image(path)
        assert img.shape == (3, 5, 6) and torch.equal(img[0], img[2])
        assert path.name in data.load_folder(tmp_path)  # a folder's .pgm files are images
        assert np.allclose(img[0].numpy(), values.astype(np.float64) / maxval, atol=1.5 / 65535)


def test_16bit_ppm_keeps_its_16_bits_and_bad_ones_are_named(tmp_path):
    """A 16-bit binary PPM (a raw converter's output, e.g. ``dcraw -4``), which Pillow would reduce to 8 bits:
    each sample over its maxval exactly, at full range and at a 12-bit maxval, header comments skipped. A
    truncated file, or a sample above its maxval, is a one-line error naming the file."""
    rng = np.random.default_rng(0)
    for maxval in (65535, 4095):
        values = rng.integers(0, maxval + 1, size=(5, 6, 3)).astype(">u2")
        path = tmp_path / f"c{maxval}.ppm"
        path.write_bytes(b"P6 # from a raw converter\n6 5 # width height\n%d\n" % maxval + values.tobytes())
        img = data.load_image(path)
        assert img.shape == (3, 5, 6) and img.dtype == torch.float32
        assert torch.equal(img, torch.from_numpy((values.astype(np.float32) / np.float32(maxval)).transpose(2, 0, 1)))
    short = tmp_path / "short.ppm"
    short.write_bytes(b"P6\n6 5\n65535\n" + values.tobytes()[:-2])
    with pytest.raises(ValueError, match=r"short\.ppm: .*truncated"):
        data.load_image(short)
    over = tmp_path / "over.ppm"
    over.write_bytes(b"P6\n1 1\n4095\n" + np.array([4096, 0, 0], dtype=">u2").tobytes())
    with pytest.raises(ValueError, match=r"over\.ppm: .*exceeds its maxval 4095"):
        data.load_image(over)
    long = tmp_path / "long.ppm"  # comments beyond the first 4096 bytes: refused, not read in 8 bits
    long.write_bytes(b"P6\n" + b"# a comment\n" * 400 + b"1 1\n65535\n" + bytes(6))
    with pytest.raises(ValueError, match=r"long\.ppm: a PPM/PGM header longer than 4096 bytes"):
        data.load_image(long)


def test_plain_text_ppm_and_pgm_keep_their_bits_and_bad_ones_are_named(tmp_path):
    """A plain-text PPM (P3) or PGM (P2) with a maxval above 255, which Pillow would reduce to 8 bits: each
    sample over its maxval exactly, whatever whitespace and comments separate them, whatever follows them.
    Letters, signs, fractions, too few samples, samples padded beyond what is read (a crafted file cannot fill
    memory) or one above the maxval are one-line errors naming the file."""
    rng = np.random.default_rng(1)
    for magic, channels in ((b"P3", 3), (b"P2", 1)):
        for maxval in (65535, 4095):
            values = rng.integers(0, maxval + 1, size=(5, 6, channels))
            body = b"\n".join(b" \t".join(b"%d" % v for v in row.ravel()) for row in values) + b"\n\n"
            path = tmp_path / f"p{channels}-{maxval}.pnm"
            path.write_bytes(magic + b"\n# plain\n6 5\n%d\n" % maxval + b"# a comment among the samples\n" + body
                             + magic + b"\n1 1\n255\n0 0 0\n")  # another image after it: ignored, as Pillow does
            img = data.load_image(path)
            want = torch.from_numpy((values.astype(np.float32) / np.float32(maxval)).transpose(2, 0, 1))
            assert torch.equal(img, want.expand(3, -1, -1))
    for name, samples, reason in [("letter", b"4095 0 x", "other than decimal numbers"),
                                  ("sign", b"4095 0 -1", "other than decimal numbers"),
                                  ("fraction", b"4095 0 1.5", "other than decimal numbers"),
                                  ("short", b"4095 0", "truncated: 2 of its 3 samples"),
                                  ("padded", b"4095 0" + b" " * 5000 + b"1", "more than 16 bytes each: not read"),
                                  ("over", b"4095 0 4096", "exceeds its maxval 4095"),
                                  ("huge", b"4095 0 99999999999999999999999", "exceeds its maxval 4095")]:
        path = tmp_path / f"{name}.ppm"
        path.write_bytes(b"P3\n1 1\n4095\n" + samples + b"\n")
        with pytest.raises(ValueError, match=rf"{name}\.ppm: .*{reason}"):
            data.load_image(path)


@pytest.mark.parametrize("header", [
    b"P6\n1 1\n65535#comment\n\n",  # a comment between the maxval and its whitespace byte
    b"P6\r# made on an old Mac\r1 1\r65535\r",  # CR ends lines and comments
    b"P6#c\n1#c\n1\n65535\n",  # a comment right after the magic and a number
])
def test_16bit_ppm_headers_as_netpbm_writes_them(tmp_path, header):
    """Netpbm's header grammar: comments anywhere before the single whitespace byte that ends the header, ended by
    CR or LF. The samples that follow are read at their 16 bits, not misaligned."""
    values = np.array([1000, 2000, 3000], dtype=">u2")
    path = tmp_path / "h.ppm"
    path.write_bytes(header + values.tobytes())
    assert torch.equal(data.load_image(path)[:, 0, 0], torch.tensor([1000, 2000, 3000]) / torch.tensor(65535.0))


def test_rgba_composited_over_white(tmp_path):
    rgba = np.zeros((4, 4, 4), dtype=np.uint8)  # black, fully transparent
    iio.imwrite(tmp_path / "t.png", rgba)
    assert torch.allclose(data.load_image(tmp_path / "t.png"), torch.ones(3, 4, 4))


def test_corrupt_and_non_image_files_named(tmp_path):
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 10)
    with pytest.raises(ValueError, match="broken.png"):
        data.load_image(bad)
    txt = tmp_path / "letter.jpg"
    txt.write_text("Dear reader, this is text.")
    with pytest.raises(ValueError, match="letter.jpg"):
        data.load_image(txt)
    with pytest.raises(FileNotFoundError, match="missing.png"):
        data.load_image(tmp_path / "missing.png")


def test_empty_and_missing_folder_named(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="empty"):
        data.load_folder(tmp_path / "empty")
    with pytest.raises(FileNotFoundError, match="nowhere"):
        data.load_folder(tmp_path / "nowhere")
    with pytest.raises(ValueError, match="no image files"):
        data.load_images("folder", "train", tmp_path / "empty")


def test_folder_split_by_subfolders_or_every_kth(image_folder, tmp_path):
    train = data.load_images("folder", "train", image_folder, test_every=5)
    test = data.load_images("folder", "test", image_folder, test_every=5)
    assert len(train) == 4 and len(test) == 1 and not set(train) & set(test)
    root = tmp_path / "split"
    for part in ("train", "test"):
        (root / part).mkdir(parents=True)
        iio.imwrite(root / part / f"{part}.png", np.zeros((8, 8, 3), np.uint8))
    assert list(data.load_images("folder", "test", root)) == ["test/test.png"]
    assert list(data.load_images("folder", "train", root)) == ["train/train.png"]


def test_builtin_split_fixed_and_disjoint():
    train = data.load_images("builtin", "train")
    test = data.load_images("builtin", "test")
    assert set(train) == set(data.BUILTIN_TRAIN) and set(test) == set(data.BUILTIN_TEST)
    assert not set(train) & set(test)
    for img in [*train.values(), *test.values()]:
        assert img.shape[0] == 3 and min(img.shape[1:]) >= 256


def test_unknown_dataset_lists_valid():
    with pytest.raises(ValueError, match="builtin"):
        data.load_images("imagenet-please", "train", "somewhere")
    with pytest.raises(ValueError, match="data_dir"):
        data.load_images("folder", "train")


def test_crop_pairs_overlap_and_inside(rng):
    n, crop = 500, 32
    sizes = torch.tensor([[96, 120]] * n)
    lo, hi = 0.3, 0.8
    c = data.sample_crop_pairs(sizes, crop, overlap=(lo, hi), generator=rng)
    top1, left1, top2, left2 = c.T
    for t, lft in ((top1, left1), (top2, left2)):
        assert (t >= 0).all() and (lft >= 0).all()
        assert (t + crop <= 96).all() and (lft + crop <= 120).all()
    ov = (crop - (top1 - top2).abs()).clamp_min(0) * (crop - (left1 - left2).abs()).clamp_min(0) / crop**2
    tol = 2 / crop  # each offset is rounded to a whole pixel
    assert (ov >= lo - tol).all() and (ov <= hi + tol).all()
    assert ov.min() < lo + 0.1 and ov.max() > hi - 0.1  # the range is used, not a corner of it
    # both directions occur
    assert (top2 > top1).any() and (top2 < top1).any()


def test_crop_pairs_shrink_offset_on_small_images(rng):
    c = data.sample_crop_pairs([(40, 40)] * 100, 32, overlap=(0.1, 0.2), generator=rng)
    assert (c >= 0).all() and (c[:, [0, 2]] + 32 <= 40).all() and (c[:, [1, 3]] + 32 <= 40).all()


def test_image_smaller_than_crop_named(rng):
    with pytest.raises(ValueError, match="image 1 is 20×100"):
        data.sample_crop_pairs([(64, 64), (20, 100)], 32, generator=rng)
    with pytest.raises(ValueError, match="tiny.png"):
        data.tile_images({"ok.png": torch.rand(3, 64, 64), "tiny.png": torch.rand(3, 10, 64)}, 32)
    with pytest.raises(ValueError, match=r"tiny.png: .*\(crop=24: lower it, or use larger images\)"):
        data.tile_images({"tiny.png": torch.rand(3, 10, 64)}, 32, min_size=24, parameter="crop")


def test_crop_pairs_extract_matching_content(rng):
    img = torch.arange(3 * 50 * 60, dtype=torch.float32).reshape(3, 50, 60)
    corners = data.sample_crop_pairs([(50, 60)] * 4, 16, generator=rng)
    a, b = data.crop_pairs([img] * 4, corners, 16)
    assert a.shape == b.shape == (4, 3, 16, 16)
    for k in range(4):
        t1, l1, t2, l2 = corners[k].tolist()
        assert torch.equal(a[k], img[:, t1 : t1 + 16, l1 : l1 + 16])
        assert torch.equal(b[k], img[:, t2 : t2 + 16, l2 : l2 + 16])


def test_tiles_cover_and_are_disjoint():
    img = torch.arange(3 * 70 * 100, dtype=torch.float32).reshape(3, 70, 100)
    tiles = data.tile_images({"a": img}, 32)
    assert len(tiles) == 2 * 3
    values = torch.cat([t.flatten() for t in tiles.values()])
    assert values.unique().numel() == values.numel()


def test_noisy_images_seeded():
    images = {"a": torch.rand(3, 16, 16), "b": torch.rand(3, 20, 24)}
    d1, d2 = data.NoisyImages.build(images, seed=3), data.NoisyImages.build(images, seed=3)
    assert all(torch.equal(x, y) for x, y in zip(d1.noisy, d2.noisy))
    assert all(not torch.equal(x, y) for x, y in zip(d1.noisy, d1.noisy2))
    assert d1.params.lambda_read[0] != d1.params.lambda_read[1]
    assert all(x.min() >= 0 and x.max() <= 1 for x in d1.noisy)


def test_resize_max_side():
    out = data.resize_max_side({"a": torch.rand(3, 100, 50), "b": torch.rand(3, 20, 20)}, 40)
    assert tuple(out["a"].shape) == (3, 40, 20) and tuple(out["b"].shape) == (3, 20, 20)


def test_crop_pairs_are_never_one_crop_twice(rng):
    """Overlaps near 1 round to a zero offset: such a positive pair would be matched by any network."""
    c = data.sample_crop_pairs([(64, 64), (64, 48), (48, 64)] * 2000, 48, overlap=(0.9, 1.0), generator=rng)
    assert not (c[:, :2] == c[:, 2:]).all(1).any()
    same = data.sample_crop_pairs([(48, 48)] * 10, 48, generator=rng)  # no room: the only pair there is
    assert (same[:, :2] == same[:, 2:]).all()


def test_photographs_load_as_a_viewer_shows_them(tmp_path):
    """EXIF orientation is applied, CMYK is not taken for RGBA, and a 16-bit PNG with 12 significant bits
    (sBIT) is scaled by those bits."""
    import png
    from PIL import Image

    arr = np.zeros((20, 40, 3), np.uint8)
    arr[:, :10] = 255
    im = Image.fromarray(arr)
    exif = im.getexif()
    exif[0x0112] = 6  # rotate 90° clockwise to view
    im.save(tmp_path / "portrait.jpg", exif=exif)
    upright = data.load_image(tmp_path / "portrait.jpg")
    assert upright.shape == (3, 40, 20) and upright[:, :10].mean() > 0.9 and upright[:, 30:].mean() < 0.1
    Image.new("CMYK", (8, 8), (255, 0, 0, 0)).save(tmp_path / "cyan.jpg")  # pure cyan ink
    torch.testing.assert_close(data.load_image(tmp_path / "cyan.jpg")[:, 0, 0], torch.tensor([0.0, 1.0, 1.0]),
                               atol=0.02, rtol=0)  # fmt: skip
    Image.fromarray(arr).save(tmp_path / "portrait.tif", exif=exif)  # decoded by tifffile
    wide16 = arr.astype(np.uint16) * 257
    with open(tmp_path / "portrait16.png", "wb") as f:  # decoded by pypng; an eXIf chunk after IHDR
        png.Writer(40, 20, greyscale=False, bitdepth=16).write(f, wide16.reshape(20, -1).tolist())
    raw = (tmp_path / "portrait16.png").read_bytes()
    body = exif.tobytes().removeprefix(b"Exif\x00\x00")
    chunk = struct.pack(">I", len(body)) + b"eXIf" + body + struct.pack(">I", zlib.crc32(b"eXIf" + body))
    (tmp_path / "portrait16.png").write_bytes(raw[:33] + chunk + raw[33:])
    for name in ("portrait.tif", "portrait16.png"):
        got = data.load_image(tmp_path / name)
        assert got.shape == (3, 40, 20) and got[:, :10].mean() > 0.9 and got[:, 30:].mean() < 0.1, name
    with open(tmp_path / "twelve.png", "wb") as f:  # written as 16 bits with an sBIT chunk of 12
        png.Writer(4, 2, greyscale=False, bitdepth=12).write(f, np.full((2, 12), 4095).tolist())
    assert data.load_image(tmp_path / "twelve.png").min() == 1.0


def test_the_differences_page_states_the_data_as_the_code_has_it():
    """book/differences.md quotes counts the code decides — the cpu profile's training tiles, the same-photograph
    share of negative pairs, the dense queues, the share of labelled pixels the proxy head is fitted on: a change
    of the code that moves one must move the page too."""
    from collections import Counter

    from paths import ROOT

    from rcl import evaluate, profiles, train

    page = (ROOT / "book" / "differences.md").read_text()
    cfg = train.make_config("rcl-emd", "cpu", progress=False)
    imgs = data.tile_images(data.resize_max_side(data.builtin_images(data.BUILTIN_TRAIN), cfg.max_side), cfg.tile)
    n, per_photo = len(imgs), Counter(k.split("[")[0] for k in imgs)
    assert n == len(train.build_data(cfg))  # the instances pre-training draws from
    assert "four for training" in page and len(data.BUILTIN_TRAIN) == 4 and f"{n} tiles at `cpu`" in page
    same = sum(k * (k - 1) for k in per_photo.values()) / (n * (n - 1))
    assert 0.2 <= same < 0.3 and "about a quarter of a batch's negative pairs" in page
    queue = {p: profiles.TABLE["pretrain"][p]["queue_size"] for p in ("cpu", "gpu")}
    assert f"({queue['cpu']} at `cpu`, {queue['gpu']} at `gpu`;" in page
    proxy = profiles.TABLE["proxy"]
    share = {p: evaluate.ProxyConfig().pixels / (proxy[p]["n_labels"] * proxy[p]["label_size"] ** 2) for p in proxy}
    assert f"({round(100 * share['cpu'])}% of them at `cpu`, about {round(100 * share['gpu'])}% at `gpu`" in page


@pytest.mark.parametrize("profile", ["smoke", "cpu", "gpu"])
def test_notebooks_02_and_03_measure_at_the_pre_training_crop(profile):
    """rcl.profiles.CROP is the crop of pre-training, of notebook 02's premise and loss (one of the crop sizes it
    compares, so its per-σ panel has rows) and of notebook 03's EMD gap; two crops of it fit in a tile."""
    from rcl import profiles, train

    crop = profiles.CROP[profile]
    residuals = profiles.values("residuals", profile)
    assert train.make_config("rcl-emd", profile, progress=False).crop == crop == residuals["crop"]
    assert crop in residuals["crop_sizes"] and 2 * max(residuals["crop_sizes"]) <= residuals["tile"]
    assert profiles.values("pretraining", profile)["gap_crop"] == crop
