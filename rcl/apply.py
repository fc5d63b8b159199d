"""A finished run's network applied to one's own photographs: tiled, in bounded memory, written as PNGs.

Layer: evaluation (imports :mod:`rcl.runs`, :mod:`rcl.data`, :mod:`rcl.cache`, :mod:`rcl.config`,
:mod:`rcl.models` and torch; :mod:`rcl.evaluate` where a proxy head is fitted, so that applying a run's own
head does not pay for the evaluation's imports).

:func:`apply_tiled` runs the fully convolutional U-Net over an image of any size, one tile at a time. Each
tile is responsible for a *core* of ``tile``×``tile`` pixels and sees ``overlap`` more pixels of context on
every side (the image's border aside); neighbouring tiles are blended by a linear ramp ``overlap/2`` pixels
wide centred on the boundary of their cores, so every pixel that carries weight has at least ``3/4·overlap``
pixels of context and no seam shows. Tiles start on multiples of ``2**depth``, so the network pools on the
same grid as on the whole image; with ``overlap`` at least :func:`exact_overlap` (the default) the context
covers the receptive field and the tiled output equals the untiled one up to float32 rounding (tested:
max abs difference below 1e-5). Memory is that of one ``(tile + 2·overlap)``² tile plus the image and its
output, whatever the image's size. It computes in float32 (bfloat16 autocast would miss that tolerance).

:func:`apply_folder` denoises every image of a folder (or one file) with a finished run's network and
writes ``<stem>.png`` (8 or 16 bits) into an output folder, atomically, refusing to overwrite an input.
Its ``head`` is either the run's own last layer (``"own"``: what pre-training left, a denoiser only for the
methods trained to denoise) or the one the proxy protocol fits on the frozen features (``"proxy"``: trial
``trial`` of :func:`rcl.evaluate.proxy_head` at a profile, whose score notebook 04 reports at that
profile). The proxy head needs clean labelled crops: by default those of the run's own training images, as
in the book; a run pre-trained on noisy photographs should take them from a few clean images instead
(``proxy=`` a :class:`rcl.evaluate.ProxyConfig` with ``dataset="folder"`` and their ``data_dir``, or
``dataset="builtin"``) — the head is fitted for the noise model the run was trained with.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import Tensor

from rcl import cache, data, runs
from rcl import config as _config
from rcl.models import memory_format

if TYPE_CHECKING:
    from rcl.evaluate import ProxyConfig

__all__ = ["HEADS", "WithHead", "apply_folder", "apply_tiled", "exact_overlap", "input_files", "load_network",
           "output_paths", "write_png"]

#: The heads :func:`apply_folder` can apply: the run's own, or the one the proxy protocol fits.
HEADS = ("own", "proxy")


class WithHead(torch.nn.Module):
    """``model`` with another last layer: ``model.output(model.features(x), x, head)`` (the proxy protocol's
    output), as a module :func:`apply_tiled` can run; the head is a 1×1 conv, so the receptive field is the
    model's."""

    def __init__(self, model: torch.nn.Module, head: torch.nn.Module) -> None:
        super().__init__()
        self.model, self.head, self.config = model, head, model.config

    def forward(self, x: Tensor) -> Tensor:
        return self.model.output(self.model.features(x), x, self.head)


def exact_overlap(model: torch.nn.Module) -> int:
    """The smallest ``overlap`` (a multiple of ``2**depth``) whose context covers the U-Net's receptive field.

    The receptive field's radius is at most ``8·(2**depth − 1) + 2`` pixels: two 3×3 convolutions per level
    at its scale on the way down and up, plus the pooling and the transposed convolutions; the blended pixels
    have ``3/4·overlap`` of context.
    """
    m = 2**model.config.depth
    radius = 8 * (m - 1) + 2
    return math.ceil(math.ceil(radius * 4 / 3) / m) * m


def _spans(length: int, core: int, overlap: int) -> list[tuple[int, int, Tensor]]:
    """Along one axis: ``(start, stop, weight)`` of each tile's input, the weights summing to 1 everywhere."""
    bounds = list(range(core, length, core))  # the boundaries between consecutive cores
    band = overlap / 2
    pos = torch.arange(length, dtype=torch.float32) + 0.5
    rises = [((pos - (b - band / 2)) / band).clamp(0, 1) if band else (pos >= b).float() for b in bounds]
    out = []
    for i, c in enumerate(range(0, length, core)):
        start, stop = max(0, c - overlap), min(length, c + core + overlap)
        weight = torch.ones(length)
        if i > 0:
            weight = weight * rises[i - 1]
        if i < len(bounds):
            weight = weight * (1 - rises[i])
        out.append((start, stop, weight[start:stop]))
    return out


@torch.no_grad()
def apply_tiled(model: torch.nn.Module, image: Tensor, tile: int = 512, overlap: int | None = None,
                device: str | torch.device | None = None, progress=None) -> Tensor:
    """``model(image)`` for a ``3×H×W`` (or ``1×3×H×W``) image, computed tile by tile (see the module's text).

    ``tile`` and ``overlap`` are rounded up to multiples of ``2**depth`` (and ``tile`` to at least
    ``overlap``); ``overlap=None`` is :func:`exact_overlap`. ``device`` runs the tiles there (default: the
    model's); the image and the returned float32 output (not clamped) stay on the CPU. ``progress``: a tqdm
    bar to advance per tile.
    """
    _config.check_positive("tile", tile, "pixels")
    m = 2**model.config.depth
    overlap = exact_overlap(model) if overlap is None else int(overlap)
    if overlap < 0:
        raise ValueError(f"overlap={overlap}: give 0 or more pixels")
    overlap = math.ceil(overlap / m) * m
    tile = max(math.ceil(tile / m) * m, overlap)  # cores at least as wide as the overlap: ramps never meet
    batched = image.dim() == 4
    img = image[0] if batched else image
    if img.dim() != 3:
        raise ValueError(f"image: expected 3×H×W or 1×3×H×W, got shape {tuple(image.shape)}")
    device = torch.device(device) if device is not None else next(model.parameters()).device
    model = model.to(device, memory_format=memory_format(device)).eval()
    _, h, w = img.shape
    # Padded once, as the network pads the whole image (to a multiple of 2**depth, by reflection or, where the
    # image is narrower than the padding, by replication): a tile padded on its own could choose the other mode.
    unet = getattr(model, "model", model)
    img = unet._pad(img[None])[0][0]
    rows, cols = _spans(img.shape[-2], tile, overlap), _spans(img.shape[-1], tile, overlap)
    if progress is not None:
        progress.reset(total=len(rows) * len(cols))
    out = torch.zeros(model.config.out_channels, *img.shape[-2:])
    for y0, y1, wy in rows:
        for x0, x1, wx in cols:
            x = img[:, y0:y1, x0:x1].to(device=device, dtype=torch.float32)[None]
            y = model(x)[0].float().cpu()
            out[:, y0:y1, x0:x1] += y * (wy[:, None] * wx[None, :])
            if progress is not None:
                progress.update()
    out = out[:, :h, :w]
    return out[None] if batched else out


def input_files(source: str | os.PathLike) -> list[Path]:
    """The images to apply a run to: ``source`` itself if it is a file, else the image files of the folder
    ``source`` (:func:`rcl.data.image_files`: not recursive, sorted, by the extensions of
    :data:`rcl.data.IMAGE_EXTENSIONS`, hidden files left out)."""
    source = Path(source)
    if source.is_file():
        return [source]
    if not source.is_dir():
        raise FileNotFoundError(f"{source}: no such image file or folder")
    files = data.image_files(source)
    if not files:
        hidden = [p.name for p in source.iterdir()
                  if p.name.startswith(".") and p.suffix.lower() in data.IMAGE_EXTENSIONS]
        skipped = f"; {len(hidden)} hidden file(s) such as {hidden[0]} are not images" if hidden else ""
        raise ValueError(f"{source}: no image files found (looked for {', '.join(data.IMAGE_EXTENSIONS)}){skipped}")
    return files


def write_png(path: str | os.PathLike, image: Tensor, bits: int = 8) -> Path:
    """Write a ``3×H×W`` image in [0, 1] (clamped) as an RGB PNG of 8 or 16 bits per sample, atomically."""
    _config.check_choice("bits", bits, (8, 16))
    arr = image.detach().float().clamp(0, 1).permute(1, 2, 0).cpu().numpy()
    h, w, c = arr.shape
    if bits == 16:
        import png

        rows = np.rint(arr * 65535).astype(np.uint16).reshape(h, w * c)
        return cache.atomic_write(path, lambda f: png.Writer(w, h, bitdepth=16, greyscale=c == 1).write(f, rows))
    from PIL import Image

    pixels = Image.fromarray(np.rint(arr * 255).astype(np.uint8))
    return cache.atomic_write(path, lambda f: pixels.save(f, format="PNG"))


def output_paths(source: str | os.PathLike, output_dir: str | os.PathLike) -> list[tuple[Path, Path]]:
    """``(input, output)`` for every image of ``source`` (a folder or one file): ``<stem>.png`` in
    ``output_dir``. A ``ValueError`` naming the file where an output would overwrite an input, or two inputs
    would share an output; checked before any network is loaded."""
    source, output_dir = Path(source), Path(output_dir)
    files = input_files(source)
    return list(zip(files, _outputs(files, output_dir, source)))


def _outputs(files: list[Path], output_dir: Path, source: Path) -> list[Path]:
    """``<stem>.png`` in ``output_dir`` for each input; refused where one would overwrite an input."""
    if output_dir.exists() and not output_dir.is_dir():
        raise ValueError(f"{output_dir}: a file, not a folder; OUTPUT must be a folder (made if missing)")
    if source.is_dir() and output_dir.resolve() == source.resolve():
        raise ValueError(f"{output_dir}: the output folder is the input folder; give another folder "
                         "(outputs never overwrite the inputs)")
    inputs = {p.resolve(): p for p in files}
    outs, seen = [], {}
    for p in files:
        out = output_dir / f"{p.stem}.png"
        if out.is_dir():
            raise ValueError(f"{out}: a folder is where the output of {p} would be written; move it or give another "
                             "output folder")
        if out.resolve() in inputs:
            raise ValueError(f"{p}: its output {out} would overwrite an input; give another output folder")
        if out in seen:
            raise ValueError(f"{p}: its output {out} is also that of {seen[out]}; rename one of them")
        seen[out] = p
        outs.append(out)
    return outs


def load_network(run: str | os.PathLike, head: str = "own", device: str | torch.device = "cpu",
                 proxy: ProxyConfig | None = None, trial: int = 0,
                 profile: str = "cpu") -> tuple[torch.nn.Module, dict]:
    """The network :func:`apply_folder` applies, on ``device``, and a description of its head: ``{"head":
    "own"}``, or for ``head="proxy"`` the labelled data it was fitted on and its final L1 loss. The proxy
    head is trial ``trial`` of the denoising protocol ``proxy``, by default :func:`rcl.evaluate.proxy_config`
    of ``run`` at ``profile`` — the run's data and noise range, the profile's labelled crops and fitting
    steps: the head whose score notebook 04 reports at that profile."""
    _config.check_choice("head", head, HEADS)
    device = torch.device(device)
    if head == "own":
        return runs.load_model(run, device), {"head": "own"}
    from rcl import evaluate

    cfg = proxy if proxy is not None else evaluate.proxy_config(run, profile=profile, task="denoise")
    if cfg.task != "denoise":
        raise ValueError(f"the proxy head for apply is the denoising task's; got a proxy config with task={cfg.task!r}")
    if not 0 <= trial < cfg.trials:
        raise ValueError(f"trial={trial} is not a trial of the protocol; valid: 0 to {cfg.trials - 1}")
    model = runs.load_model(run, device)
    fitted, curve = evaluate.proxy_head(model, cfg, trial, device)
    labels = cfg.data_dir if cfg.dataset == "folder" else cfg.dataset
    return WithHead(model, fitted.to(device)).eval(), {
        "head": "proxy", "task": cfg.task, "trial": trial, "labels": f"{cfg.n_labels} crops of {cfg.label_size} px "
        f"from {labels}", "steps": cfg.head_steps, "sigma_max": cfg.sigma_max, "fit_l1": curve[-1]}


def apply_folder(run: str | os.PathLike | torch.nn.Module, source: str | os.PathLike, output_dir: str | os.PathLike,
                 bits: int = 8, tile: int = 512, overlap: int | None = None,
                 device: str | torch.device | None = None, progress: bool = True, head: str = "own",
                 proxy: ProxyConfig | None = None, trial: int = 0, profile: str = "cpu") -> list[Path]:
    """Apply the finished run ``run``'s network — its own head, or the proxy protocol's (``head="proxy"``;
    see the module's text and :func:`load_network`) — to every image of ``source`` (a folder or one file).
    ``run`` may also be a network :func:`load_network` returned (``head``, ``proxy``, ``trial`` and
    ``profile`` are then unused).

    Writes ``<stem>.png`` per input into ``output_dir`` (8 or 16 bits per sample; an earlier output is
    replaced, an input never: that, and ``output_dir`` being the input folder, is a ``ValueError`` naming
    the file). Runs on ``device`` (default: the best available), tile by tile (:func:`apply_tiled`).
    Returns the written paths. An input that cannot be read does not stop the others: after the last one, a
    ``ValueError`` names every unreadable input and says how many were written.
    """
    from tqdm.auto import tqdm

    _config.check_choice("bits", bits, (8, 16))
    _config.check_choice("head", head, HEADS)
    pairs = output_paths(source, output_dir)
    # one input: read first, so that an unreadable one is named before any network is loaded (and read once)
    first = {pairs[0][0]: data.load_image(pairs[0][0])} if len(pairs) == 1 else {}
    device = _config.device(device)
    if isinstance(run, torch.nn.Module):
        model = run.to(device, memory_format=memory_format(device)).eval()
    else:
        model, _ = load_network(run, head, device, proxy, trial, profile)
    hidden = _config.progress_disabled(progress)
    images = tqdm(pairs, desc="apply", unit="image", disable=hidden)
    tiles = tqdm(desc="tiles", unit="tile", leave=False, disable=hidden, position=1)  # under the images' bar
    written, unreadable = [], []
    try:
        for path, out in images:
            try:
                image = first.pop(path) if path in first else data.load_image(path)
            except (ValueError, OSError) as err:  # one unreadable file does not stop the others
                unreadable.append(str(err))
                out.unlink(missing_ok=True)  # an earlier output of other content is not left beside it
                continue
            write_png(out, apply_tiled(model, image, tile, overlap, device, progress=tiles), bits)
            written.append(out)
    finally:
        tiles.close()
        images.close()
    if unreadable:
        raise ValueError(f"{len(unreadable)} of {len(pairs)} input(s) not read (and no output of theirs kept), the "
                         f"other {len(written)} written: " + "; ".join(unreadable))
    return written
