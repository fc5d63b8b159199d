"""Image sources, instances and positive-pair crops.

Three sources give clean RGB images as ``3×H×W`` float tensors in [0, 1]:

* ``"builtin"`` (the default, offline): natural RGB photographs that ship inside installed packages —
  scikit-image's bundled data, matplotlib's sample data and scikit-learn's two sample photographs
  (``china.jpg`` and ``flower.jpg``, CC BY 2.0, Flickr): eight everyday photographs. Synthetic images
  (colour wheels, logos, chessboards) are left out, and so are grayscale ones (three identical channels would
  make the colour noise statistics unnatural), near-duplicates (the right view of the motorcycle stereo pair)
  and scientific images of other domains than the test photographs (scikit-image's microscopy slide, Hubble
  deep field and retinal fundus image: at the ``cpu`` profile they gave more than half of the training tiles).
  The split is fixed: :data:`BUILTIN_TEST` are held out for testing.
* ``"folder"``: any folder of PNG/JPEG/TIFF/BMP/PPM/WebP images (grayscale, RGBA, palette, CMYK and 16-bit handled,
  EXIF orientation applied: :mod:`rcl.imagefile` reads each file).
  If it has ``train/`` and ``test/`` subfolders they are the split; otherwise every
  ``test_every``-th file in sorted order is a test image.
* a name from :mod:`rcl.datasets` (``bsds500``, ``div2k``, ``kodak24``, ``voc2012``, …), downloaded with
  checksums into ``data_dir`` on request and then read as a folder.

Pre-training samples *instances*: an image (or, for large images, a tile of one — see
:func:`tile_images`) with its own NLF parameters. :func:`sample_crop_pairs` draws Algorithm 1's
positive pairs: two overlapping crops of the same instance.

Layer: core (imports :mod:`rcl.noise` and :mod:`rcl.imagefile`; :mod:`rcl.datasets` lazily, only when a
registered dataset is asked for; never the engine, the evaluation or the outer shell).
"""

from __future__ import annotations

import importlib.util
import itertools
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from rcl import noise as _noise
from rcl import rng as _rng
from rcl.imagefile import load_image

__all__ = [
    "BUILTIN_TEST",
    "BUILTIN_TRAIN",
    "IMAGE_EXTENSIONS",
    "NoisyImages",
    "builtin_images",
    "check_sizes",
    "crop",
    "crop_pairs",
    "image_files",
    "load_folder",
    "load_image",
    "load_images",
    "prefetch",
    "resize_max_side",
    "sample_crop_pairs",
    "tile_images",
]

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".ppm", ".pgm", ".webp")

# name -> (package, file inside the package's data folder)
_BUILTIN_FILES = {
    "astronaut": ("skimage", "astronaut.png"),
    "chelsea": ("skimage", "chelsea.png"),
    "coffee": ("skimage", "coffee.png"),
    "rocket": ("skimage", "rocket.jpg"),
    "motorcycle": ("skimage", "motorcycle_left.png"),
    "grace_hopper": ("matplotlib", "grace_hopper.jpg"),
    "china": ("sklearn", "china.jpg"),
    "flower": ("sklearn", "flower.jpg"),
}
#: Held-out built-in images: four everyday photographs of different content (a cup, a portrait, a
#: building, a flower). The training side is the other four: a portrait, a cat, a rocket on its launch pad,
#: a motorcycle.
BUILTIN_TEST = ("coffee", "grace_hopper", "china", "flower")
#: Built-in training images.
BUILTIN_TRAIN = tuple(n for n in _BUILTIN_FILES if n not in BUILTIN_TEST)


def _builtin_path(name: str) -> Path:
    package, fname = _BUILTIN_FILES[name]
    if package == "skimage":  # the packages that ship the images are imported only when one is asked for
        import skimage

        return Path(skimage.__file__).parent / "data" / fname
    if package == "sklearn":
        spec = importlib.util.find_spec("sklearn")  # the files only: importing sklearn itself is slow
        if spec is None or spec.origin is None:
            raise ModuleNotFoundError(f"built-in image {name!r} ships with scikit-learn: pip install scikit-learn")
        return Path(spec.origin).parent / "datasets" / "images" / fname
    import matplotlib

    return Path(matplotlib.get_data_path()) / "sample_data" / fname




def builtin_images(names: Sequence[str] | None = None) -> dict[str, Tensor]:
    """The built-in natural RGB images by name (all of them if ``names`` is None)."""
    names = list(_BUILTIN_FILES) if names is None else list(names)
    unknown = [n for n in names if n not in _BUILTIN_FILES]
    if unknown:
        raise ValueError(f"unknown built-in image(s) {unknown}; valid names: {sorted(_BUILTIN_FILES)}")
    return {n: load_image(_builtin_path(n)) for n in names}


def image_files(folder: Path, within: Path | None = None) -> list[Path]:
    """Image files in ``folder``, sorted; hidden files (a name starting with ``.``, such as macOS's ``._IMG.jpg``
    metadata beside each copied photograph) are not images. With ``within``, a file (or link) that resolves
    outside that folder is an error naming it: a dataset's images never lead out of the dataset's own folder."""
    files = sorted(p for p in folder.iterdir()
                   if p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith(".") and p.is_file())
    out = [p for p in files if within is not None and not p.resolve().is_relative_to(within.resolve())]
    if out:
        raise ValueError(f"{out[0]}: links to {out[0].resolve()}, outside the dataset folder {within}; not read "
                         "as an image (delete the dataset folder and download it again)")  # fmt: skip
    return files


def load_folder(
    folder: str | os.PathLike, limit: int | None = None, within: str | os.PathLike | None = None
) -> dict[str, Tensor]:
    """All images in ``folder`` (not recursive), by file name, in sorted order; at most ``limit``.

    Links are followed, but with ``within`` only to files inside that folder (a registered dataset's
    folder, where the split folders hold links to the extracted files).
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: " + ("a file, not a folder of images" if folder.exists() else
                                                 "no such folder of images"))
    files = image_files(folder, None if within is None else Path(within))
    if not files:
        raise ValueError(f"{folder}: no image files found (looked for {', '.join(IMAGE_EXTENSIONS)})")
    if limit is not None:
        files = files[: int(limit)]
    return {p.name: load_image(p) for p in files}


def load_images(
    dataset: str = "builtin",
    split: str = "train",
    data_dir: str | os.PathLike | None = None,
    limit: int | None = None,
    test_every: int = 5,
    download: bool = False,
) -> dict[str, Tensor]:
    """Clean images of one split of a dataset, as ``{name: 3×H×W tensor}``.

    ``dataset`` is ``"builtin"``, ``"folder"`` (then ``data_dir`` is the folder), or a registered
    dataset name from :mod:`rcl.datasets` (then ``data_dir`` is the download root and ``download=True``
    fetches it if absent). ``split`` is ``"train"``, ``"test"`` or ``"all"``. A registered dataset not
    downloaded yet raises ``FileNotFoundError`` naming the command that downloads it, and its images must
    resolve inside its own folder (``data_dir/<name>``); a ``"folder"``'s links are followed anywhere.
    """
    if split not in ("train", "test", "all"):
        raise ValueError(f"split must be 'train', 'test' or 'all', got {split!r}")
    if dataset == "builtin":
        names = {"train": BUILTIN_TRAIN, "test": BUILTIN_TEST, "all": tuple(_BUILTIN_FILES)}[split]
        images = builtin_images(names)
        return dict(list(images.items())[:limit]) if limit is not None else images
    within = None  # a folder of the user's own may link anywhere; a registered dataset's may not
    if dataset == "folder":
        if data_dir is None:
            raise ValueError("dataset='folder' needs data_dir, the folder that holds the images")
        root = Path(data_dir)
    else:
        root = _registered_root(dataset, data_dir, download)
        within = root.parent
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: " + ("a file, not a folder of images" if root.exists() else
                                                 "no such folder of images"))
    if (root / "train").is_dir() or (root / "test").is_dir():
        parts = ("train", "test") if split == "all" else (split,)
        out: dict[str, Tensor] = {}
        for part in parts:
            if not (root / part).is_dir():
                raise FileNotFoundError(f"{root / part}: this dataset has no {part!r} split folder")
            out.update({f"{part}/{k}": v for k, v in load_folder(root / part, within=within).items()})
        return dict(list(out.items())[:limit]) if limit is not None else out
    files = image_files(root, within)
    if not files:
        raise ValueError(f"{root}: no image files found (looked for {', '.join(IMAGE_EXTENSIONS)})")
    if test_every < 2:
        raise ValueError(f"test_every must be >= 2, got {test_every}")
    if split == "test":
        files = files[test_every - 1 :: test_every]
    elif split == "train":
        files = [f for i, f in enumerate(files) if (i + 1) % test_every != 0]
    if not files:
        raise ValueError(f"{root}: too few images for a {split!r} split with test_every={test_every}")
    files = files[:limit] if limit is not None else files
    return {p.name: load_image(p) for p in files}


def _registered_root(dataset: str, data_dir: str | os.PathLike | None, download: bool) -> Path:
    """The folder of a registered dataset's split folders, downloaded first if ``download``."""
    from rcl import datasets

    if dataset not in datasets.REGISTRY:
        raise ValueError(f"unknown dataset {dataset!r}; valid: 'builtin', 'folder', {sorted(datasets.REGISTRY)}")
    if data_dir is None:
        raise ValueError(f"dataset={dataset!r} needs data_dir, the folder to download it into")
    if download:
        return datasets.download(dataset, data_dir)
    root = datasets.local_path(dataset, data_dir)
    if not root.is_dir():
        raise FileNotFoundError(
            f"{dataset}: not downloaded under {data_dir} (no folder {root}); run "
            f"`{datasets.download_command(dataset, data_dir)}` first"
        )
    return root


def image_root(dataset: str | None, data_dir: str | os.PathLike | None) -> str | None:
    """The folder whose files are a dataset's images, for keys that identify data by content
    (:func:`rcl.cache.folder_identity`): ``data_dir`` itself for a folder, the dataset's own arranged folder
    under a download root (other downloads there change nothing), None for the built-in images (they ship
    with installed packages)."""
    if dataset in (None, "builtin") or data_dir is None:
        return None
    if dataset == "folder":
        return str(data_dir)
    from rcl import datasets

    return str(datasets.local_path(dataset, data_dir)) if dataset in datasets.REGISTRY else str(data_dir)


def resize_max_side(images: dict[str, Tensor], max_side: int | None) -> dict[str, Tensor]:
    """Downscale (antialiased bilinear) every image whose longer side exceeds ``max_side``."""
    if max_side is None:
        return dict(images)
    out = {}
    for name, img in images.items():
        h, w = img.shape[-2:]
        f = max_side / max(h, w)
        if f >= 1:
            out[name] = img
            continue
        size = (max(1, round(h * f)), max(1, round(w * f)))
        out[name] = torch.nn.functional.interpolate(
            img[None], size=size, mode="bilinear", antialias=True, align_corners=False
        )[0].clamp(0, 1)
    return out


def check_sizes(images: dict[str, Tensor], min_size: int, parameter: str | None = None) -> None:
    """Raise an error naming the first image smaller than ``min_size`` px high or wide (and ``parameter``)."""
    for name, img in images.items():
        h, w = img.shape[-2:]
        if min(h, w) < min_size:
            fix = f" ({parameter}={min_size}: lower it, or use larger images)" if parameter else ""
            raise ValueError(f"{name}: image of {w}×{h} px (width × height, as read and resized) is smaller than "
                             f"the required {min_size} px{fix}")


def tile_images(images: dict[str, Tensor], tile: int, min_size: int | None = None,
                parameter: str | None = None) -> dict[str, Tensor]:
    """Cut each image into non-overlapping ``tile×tile`` tiles (centred; borders dropped).

    Images smaller than ``tile`` in a dimension are kept whole if at least ``min_size`` (default
    ``tile``, asked for by ``parameter``) in both dimensions; smaller ones raise an error naming the image.
    """
    check_sizes(images, tile if min_size is None else min_size, parameter)
    out: dict[str, Tensor] = {}
    for name, img in images.items():
        h, w = img.shape[-2:]
        ny, nx = max(h // tile, 1), max(w // tile, 1)
        th, tw = min(tile, h), min(tile, w)
        oy, ox = (h - ny * th) // 2, (w - nx * tw) // 2
        for i in range(ny):
            for j in range(nx):
                key = f"{name}[{i},{j}]" if ny * nx > 1 else name
                out[key] = img[:, oy + i * th : oy + (i + 1) * th, ox + j * tw : ox + (j + 1) * tw]
    return out


def sample_crop_pairs(
    sizes: Tensor | Sequence[tuple[int, int]],
    crop_size: int,
    overlap: tuple[float, float] = (0.25, 1.0),
    generator: torch.Generator | None = None,
) -> Tensor:
    """Corners of two overlapping ``crop_size`` crops per image (Algorithm 1, line 2), vectorised.

    ``sizes`` holds each image's ``(H, W)``. The overlap — intersection area over crop area — is drawn
    uniformly in ``overlap`` and split between the axes; the second crop is shifted by the matching
    offset in a random direction, and the pair is placed uniformly where both fit. Where an image is too
    small for the drawn offset the offset shrinks (more overlap). The two crops are never at the same place
    where the image is larger than the crop (an offset that rounds to zero becomes one pixel). Returns an
    ``(N, 4)`` long tensor of ``(top1, left1, top2, left2)``. Errors name the offending image index.
    """
    sizes = torch.as_tensor(sizes, dtype=torch.long).reshape(-1, 2)
    lo, hi = (float(v) for v in overlap)
    if not 0.0 < lo <= hi <= 1.0:
        raise ValueError(f"overlap bounds must satisfy 0 < low <= high <= 1, got {overlap}")
    small = ((sizes[:, 0] < crop_size) | (sizes[:, 1] < crop_size)).nonzero().flatten()
    if len(small):
        i = int(small[0])
        raise ValueError(
            f"image {i} is {int(sizes[i, 0])}×{int(sizes[i, 1])} px, smaller than the crop size {crop_size}"
        )
    n = sizes.shape[0]
    g = generator

    def rand(*shape: int) -> Tensor:
        return torch.rand(*shape, generator=g, device=g.device if g is not None else "cpu").cpu()

    o = lo + (hi - lo) * rand(n)
    # Split o = a_y · a_x with a_y, a_x in [o, 1] via a uniform exponent in log space.
    t = rand(n)
    a_y = o**t
    a_x = o / a_y
    dy = torch.round(crop_size * (1.0 - a_y)).long()
    dx = torch.round(crop_size * (1.0 - a_x)).long()
    dy = torch.minimum(dy, sizes[:, 0] - crop_size)
    dx = torch.minimum(dx, sizes[:, 1] - crop_size)
    # Two crops at the same place are one crop twice, a positive pair any network matches: shift by a pixel
    # where the image leaves room (rounding gives this at overlaps near 1).
    same = (dy == 0) & (dx == 0)
    room_x = sizes[:, 1] > crop_size
    dx = torch.where(same & room_x, 1, dx)
    dy = torch.where(same & ~room_x & (sizes[:, 0] > crop_size), 1, dy)
    sy = torch.where(rand(n) < 0.5, -1, 1)
    sx = torch.where(rand(n) < 0.5, -1, 1)
    # Place the union box (crop + |offset|) uniformly inside the image.
    span_y = sizes[:, 0] - crop_size - dy + 1
    span_x = sizes[:, 1] - crop_size - dx + 1
    uy = torch.floor(rand(n) * span_y).long()
    ux = torch.floor(rand(n) * span_x).long()
    top1 = torch.where(sy > 0, uy, uy + dy)
    left1 = torch.where(sx > 0, ux, ux + dx)
    return torch.stack([top1, left1, top1 + sy * dy, left1 + sx * dx], dim=1)


def crop(img: Tensor, top: int, left: int, size: int) -> Tensor:
    """A ``size×size`` crop of a ``C×H×W`` (or ``B×C×H×W``) tensor at ``(top, left)``."""
    return img[..., top : top + size, left : left + size]


def crop_pairs(images: Sequence[Tensor], corners: Tensor, crop_size: int) -> tuple[Tensor, Tensor]:
    """Stack the two crops of each image: two ``N×C×crop×crop`` tensors (one loop over images)."""
    first = torch.stack([crop(im, int(c[0]), int(c[1]), crop_size) for im, c in zip(images, corners)])
    second = torch.stack([crop(im, int(c[2]), int(c[3]), crop_size) for im, c in zip(images, corners)])
    return first, second


@dataclass
class NoisyImages:
    """A fixed noisy dataset: each clean instance gets its own NLF parameters and noise draw.

    ``noisy[i]`` is what a self-supervised method may see; ``noisy2[i]`` is a second independent draw
    with the same parameters (for Noise2Noise); ``clean[i]`` is for supervised baselines and evaluation.
    Built from a seed, so the same seed gives the same dataset.
    """

    names: list[str]
    clean: list[Tensor]
    noisy: list[Tensor]
    noisy2: list[Tensor]
    params: _noise.NLFParams
    sigma: Tensor

    @classmethod
    def build(
        cls,
        images: dict[str, Tensor],
        seed: int = 0,
        sigma_range: tuple[float, float] = _noise.SIGMA_RANGE,
        shot_fraction_range: tuple[float, float] = (0.0, 1.0),
        clip: bool = True,
    ) -> NoisyImages:
        if not images:
            raise ValueError("no images given to build a noisy dataset from")
        g = _rng.generator(seed, "noise")
        names = list(images)
        clean = [images[n] for n in names]
        lam_s, lam_r, sig, noisy, noisy2 = [], [], [], [], []
        for y in clean:  # images differ in size: one small batch each
            p, s = _noise.sample_nlf(y[None], g, sigma_range, shot_fraction_range)
            x1, x2 = _noise.noisy_pair(y[None], p, g, clip=clip)
            lam_s.append(p.lambda_shot)
            lam_r.append(p.lambda_read)
            sig.append(s)
            noisy.append(x1[0])
            noisy2.append(x2[0])
        params = _noise.NLFParams(torch.cat(lam_s), torch.cat(lam_r))
        return cls(names, clean, noisy, noisy2, params, torch.cat(sig))

    def __len__(self) -> int:
        return len(self.names)

    def sizes(self) -> Tensor:
        return torch.tensor([t.shape[-2:] for t in self.clean])


def prefetch(build, steps, pin: bool, depth: int = 2, workers: int = 1):
    """Yield ``build(step)`` for each step in order, built ``depth`` steps ahead by ``workers`` threads
    (pinned with the batch's ``pin_memory()`` if ``pin``).

    Batches are built on the CPU (seeded by their step, so which thread builds them, and when, changes
    nothing); on CUDA the GPU would otherwise wait for them, and pinned memory lets their copy to the device
    run async. Building is mostly tensor copies, which release the GIL, so threads run it in parallel.
    """

    def job(step):
        return build(step).pin_memory() if pin else build(step)

    steps = iter(steps)
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="rcl-batches") as pool:
        queue = [pool.submit(job, s) for s in itertools.islice(steps, depth)]
        try:
            while queue:
                batch = queue.pop(0).result()
                queue.extend(pool.submit(job, s) for s in itertools.islice(steps, 1))
                yield batch
        finally:
            for fut in queue:
                fut.cancel()
