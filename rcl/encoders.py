"""A self-supervised ``g_e`` for the consistency loss: SimCLR on the unlabeled noisy images.

Paper §3.5 allows ``g_e`` to be "pre-trained in a self-supervised fashion using the unlabeled noisy
inputs" instead of on ImageNet. :func:`train_simclr_encoder` does that with SimCLR (Chen et al. 2020):
two augmented views of random crops (random resized crop, flip, colour jitter, grayscale), a
two-layer projection head, and the NT-Xent loss. It is deliberately small (ResNet-18 by default, a few
hundred steps), and :func:`cached_simclr_encoder` stores the weights atomically under a key made from
the configuration and the images, so a finished encoder is reused, not retrained.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rcl.config import default_device, progress_disabled

__all__ = ["cached_simclr_encoder", "nt_xent", "train_simclr_encoder"]


def nt_xent(z1: Tensor, z2: Tensor, tau: float = 0.5) -> Tensor:
    """SimCLR's normalised-temperature cross entropy over ``2B`` views (mean over anchors)."""
    z = F.normalize(torch.cat([z1, z2]).float(), dim=1)
    sim = z @ z.T / tau
    n = z1.shape[0]
    sim.fill_diagonal_(float("-inf"))
    target = torch.cat([torch.arange(n, 2 * n), torch.arange(n)]).to(z.device)
    return F.cross_entropy(sim, target)


def _augment(crop: int):
    from torchvision.transforms import v2

    return v2.Compose(
        [
            v2.RandomResizedCrop(crop, scale=(0.2, 1.0), antialias=True),
            v2.RandomHorizontalFlip(),
            v2.RandomApply([v2.ColorJitter(0.4, 0.4, 0.4, 0.1)], p=0.8),
            v2.RandomGrayscale(p=0.2),
        ]
    )


def train_simclr_encoder(
    images: Sequence[Tensor],
    arch: str = "resnet18",
    steps: int = 300,
    batch_size: int = 32,
    crop: int = 64,
    tau: float = 0.5,
    lr: float = 1e-3,
    seed: int = 0,
    device: torch.device | str | None = None,
    progress: bool = True,
) -> dict[str, Tensor]:
    """Train a ResNet with SimCLR on noisy ``3×H×W`` images; returns its state dict (on the CPU)."""
    from tqdm.auto import tqdm

    from rcl.losses import _resnet

    if not images:
        raise ValueError("train_simclr_encoder needs at least one image")
    small = [i for i, im in enumerate(images) if min(im.shape[-2:]) < crop]
    if small:
        raise ValueError(f"image {small[0]} is smaller than the SimCLR crop of {crop} px")
    device = torch.device(device) if device is not None else default_device()
    builder, _ = _resnet(arch)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = builder(weights=None)
        width = model.fc.in_features
        model.fc = nn.Identity()
        head = nn.Sequential(nn.Linear(width, 512), nn.ReLU(inplace=True), nn.Linear(512, 128))
        model, head = model.to(device), head.to(device)
        opt = torch.optim.Adam([*model.parameters(), *head.parameters()], lr=lr)
        aug = _augment(crop)
        bar = tqdm(range(steps), desc=f"SimCLR {arch}", disable=progress_disabled(progress))
        for _ in bar:
            idx = torch.randint(len(images), (batch_size,))
            v1 = torch.stack([aug(images[i]) for i in idx.tolist()]).to(device)
            v2 = torch.stack([aug(images[i]) for i in idx.tolist()]).to(device)
            loss = nt_xent(head(model(v1)), head(model(v2)), tau)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            bar.set_postfix(loss=f"{loss.item():.3f}")
    return {k: v.detach().cpu() for k, v in model.state_dict().items()}


def _fingerprint(images: Sequence[Tensor], config: dict) -> str:
    h = hashlib.sha256(json.dumps(config, sort_keys=True).encode())
    for im in images:
        h.update(str(tuple(im.shape)).encode())
        h.update(im.detach().cpu().float().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def cached_simclr_encoder(
    images: Sequence[Tensor], cache_dir: str | os.PathLike, **config
) -> tuple[dict[str, Tensor], Path]:
    """:func:`train_simclr_encoder`, reusing weights stored in ``cache_dir`` for the same images and config."""
    progress = config.pop("progress", True)
    device = config.pop("device", None)
    key = _fingerprint(images, config)
    path = Path(cache_dir) / f"simclr-{config.get('arch', 'resnet18')}-{key}.pt"
    if path.exists():
        return torch.load(path, map_location="cpu", weights_only=True), path
    state = train_simclr_encoder(images, device=device, progress=progress, **config)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)
    return state, path
