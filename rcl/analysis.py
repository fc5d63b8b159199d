"""Testing the paper's premise (§3.3) before any training.

"The noise distributions associated with two image crops, extracted from the same image, have
detectably smaller divergence than noise distributions pertaining to crops extracted from different
images." With a perfect denoiser the residual ``x − f(x)`` *is* the noise, so the premise can be
measured directly: draw Algorithm 1's positive pairs of crops, take residuals, compute the pairwise
distance matrix ``D`` (positives on the diagonal, negatives off it) and ask how often a positive is
closer than a negative.

Separation is reported per anchor, as the contrastive loss sees it: for anchor ``j``, the fraction of
its negatives farther away than its positive (a per-anchor ROC-AUC; 0.5 is chance, 1 is perfect), and
whether its positive is the nearest of all (top-1 instance discrimination).

Layer: studies (imports data, distances, losses and rng; never the training engine or the evaluation).
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
import torch
import torch.nn.functional as F
from torch import Tensor

from rcl import data as _data
from rcl import distances as _distances
from rcl import losses as _losses
from rcl import rng as _rng

__all__ = [
    "RESIDUAL_KINDS",
    "anchor_auc",
    "cosine_matrix",
    "encoder_sensitivity",
    "loss_table",
    "premise_study",
    "residual_pairs",
    "residual_report",
    "residual_spectrum",
    "spectrum_reading",
    "top1_accuracy",
]

#: What ``f`` is assumed to be when forming residuals ``x − f(x)``.
RESIDUAL_KINDS = {
    "noise": "perfect denoiser, f(x) = y: the residual is the true noise",
    "identity": "f(x) = x: the residual is zero (the trivial solution)",
    "zero": "f(x) = 0: the residual is the image itself",
    "blur": "f = 5×5 Gaussian blur: the residual is noise plus image detail",
}


def _blur(x: Tensor, sigma: float = 1.0) -> Tensor:
    k = torch.arange(5, dtype=x.dtype, device=x.device) - 2
    k = torch.exp(-(k**2) / (2 * sigma**2))
    k = k / k.sum()
    c = x.shape[1]
    x = F.conv2d(F.pad(x, (2, 2, 0, 0), mode="reflect"), k.view(1, 1, 1, 5).expand(c, 1, 1, 5), groups=c)
    return F.conv2d(F.pad(x, (0, 0, 2, 2), mode="reflect"), k.view(1, 1, 5, 1).expand(c, 1, 5, 1), groups=c)


def residual_pairs(
    dataset: _data.NoisyImages,
    crop_size: int,
    kind: str = "noise",
    overlap: tuple[float, float] = (0.25, 1.0),
    generator: torch.Generator | None = None,
) -> tuple[Tensor, Tensor]:
    """Residuals of Algorithm 1's crop pairs, one pair per instance: two ``N×C×crop×crop`` tensors."""
    if kind not in RESIDUAL_KINDS:
        raise ValueError(f"unknown residual kind {kind!r}; valid: {sorted(RESIDUAL_KINDS)}")
    corners = _data.sample_crop_pairs(dataset.sizes(), crop_size, overlap, generator)
    x1, x2 = _data.crop_pairs(dataset.noisy, corners, crop_size)
    if kind == "noise":
        y1, y2 = _data.crop_pairs(dataset.clean, corners, crop_size)
        return x1 - y1, x2 - y2
    if kind == "identity":
        return torch.zeros_like(x1), torch.zeros_like(x2)
    if kind == "zero":
        return x1, x2
    return x1 - _blur(x1), x2 - _blur(x2)


def anchor_auc(D: Tensor, similarity: bool = False) -> Tensor:
    """Per-anchor AUC: fraction of row ``j``'s negatives ranked worse than its positive ``D[j, j]``.

    ``similarity=True`` when larger means closer (cosine). Ties count one half.
    """
    pos = D.diagonal()[:, None]
    off = ~torch.eye(D.shape[0], dtype=torch.bool, device=D.device)
    better = (D < pos) if similarity else (D > pos)
    ties = (D == pos) & off
    return ((better & off).float().sum(1) + 0.5 * ties.float().sum(1)) / off.sum(1)


def top1_accuracy(D: Tensor, similarity: bool = False) -> Tensor:
    """Per anchor: 1 if its positive is strictly the nearest item of its row, else 0."""
    pos = D.diagonal()[:, None]
    off = ~torch.eye(D.shape[0], dtype=torch.bool, device=D.device)
    worse = (D > pos) if not similarity else (D < pos)
    return (worse | ~off).all(1).float()


def cosine_matrix(a: Tensor, b: Tensor) -> Tensor:
    """Cosine similarity of flattened residuals: SimCLR's ``sim`` applied pixel by pixel."""
    return F.normalize(a.flatten(1), dim=1, eps=1e-12) @ F.normalize(b.flatten(1), dim=1, eps=1e-12).T


def premise_study(
    dataset: _data.NoisyImages,
    crop_sizes: Sequence[int],
    distance_names: Sequence[str] = ("emd", "bd", "mmd"),
    kinds: Sequence[str] = ("noise",),
    repeats: int = 1,
    seed: int = 0,
    overlap: tuple[float, float] = (0.25, 1.0),
) -> pd.DataFrame:
    """Per-anchor separation for every crop size, residual kind and distance (plus cosine).

    Returns a tidy table with one row per (repeat, crop, kind, measure, anchor): the anchor's σ, its
    positive and mean negative distance, its AUC and top-1 hit.
    """
    g = _rng.generator(seed)
    measures = {name: _distances.get_distance(name) for name in distance_names}
    rows = []
    for rep in range(repeats):
        for crop in crop_sizes:
            for kind in kinds:
                r1, r2 = residual_pairs(dataset, crop, kind, overlap, g)
                mats = {name: d(r1, r2).detach() for name, d in measures.items()}
                mats["cosine"] = cosine_matrix(r1, r2)
                for name, D in mats.items():
                    sim = name == "cosine"
                    auc, top1 = anchor_auc(D, sim), top1_accuracy(D, sim)
                    off = ~torch.eye(D.shape[0], dtype=torch.bool)
                    neg = (D * off).sum(1) / off.sum(1)
                    rows.append(
                        pd.DataFrame(
                            {
                                "repeat": rep,
                                "crop": crop,
                                "residual": kind,
                                "measure": name,
                                "anchor": dataset.names,
                                "sigma": dataset.sigma.numpy(),
                                "positive": D.diagonal().numpy(),
                                "negative_mean": neg.numpy(),
                                "auc": auc.numpy(),
                                "top1": top1.numpy(),
                            }
                        )
                    )
    return pd.concat(rows, ignore_index=True)


def loss_table(
    dataset: _data.NoisyImages,
    crop_size: int,
    taus: Sequence[float],
    kinds: Sequence[str] = tuple(RESIDUAL_KINDS),
    distance: str = "emd",
    seed: int = 0,
) -> pd.DataFrame:
    """Mean per-anchor contrastive loss (Eq. 3) of each residual kind at each temperature τ, with the median
    positive and negative distance of that kind's residuals (the scale τ divides)."""
    g = _rng.generator(seed)
    d = _distances.get_distance(distance)
    rows = []
    for kind in kinds:
        r1, r2 = residual_pairs(dataset, crop_size, kind, generator=g)
        D = d(r1, r2).detach()
        pos = float(D.diag().median())
        neg = float(D[~torch.eye(len(D), dtype=torch.bool)].median())
        for tau in taus:
            loss = _losses.residual_contrastive_loss(r1, r2, lambda a, b, D=D: D, tau, reduction="mean")
            rows.append({"residual": kind, "tau": tau, "loss": float(loss), "median_positive": pos,
                         "median_negative": neg})
    return pd.DataFrame(rows)


def shift_curve(
    residual: Tensor, crop_size: int, shifts: Sequence[int], distance_names: Sequence[str] = ("emd", "bd", "mmd")
) -> pd.DataFrame:
    """Similarity of one residual crop to the same residual shifted by ``k`` pixels, per measure.

    Cosine similarity compares pixel by pixel, so for noise it collapses as soon as the crops are
    misaligned by one pixel; a distributional distance barely changes. ``residual`` is ``C×H×W``.
    """
    if residual.shape[-1] < crop_size + max(shifts):
        raise ValueError(f"residual of width {residual.shape[-1]} is too small for crop {crop_size} + shifts")
    a = residual[None, :, :crop_size, :crop_size]
    b = torch.stack([residual[:, :crop_size, k : k + crop_size] for k in shifts])
    out = {"shift (px)": list(shifts), "cosine": cosine_matrix(a, b)[0].numpy()}
    for name in distance_names:
        out[name] = _distances.get_distance(name)(a, b)[0].detach().numpy()
    return pd.DataFrame(out)


@torch.no_grad()
def emd_gaps(
    dataset: _data.NoisyImages,
    crop_size: int,
    model: torch.nn.Module | None = None,
    seed: int = 0,
    device: torch.device | str = "cpu",
    chunk: int = 32,
) -> Tensor:
    """Paper Fig. 2: ``EMD(negative) − EMD(positive)`` for every anchor and negative.

    Residuals are ``x − model(x)`` of one crop pair per instance, or the true noise if ``model`` is
    None (the reference). Positive values mean the anchor's positive is closer than that negative.
    Returns a flat tensor of ``N·(N−1)`` differences.
    """
    g = _rng.generator(seed)
    corners = _data.sample_crop_pairs(dataset.sizes(), crop_size, generator=g)
    x1, x2 = _data.crop_pairs(dataset.noisy, corners, crop_size)
    if model is None:
        y1, y2 = _data.crop_pairs(dataset.clean, corners, crop_size)
        r1, r2 = x1 - y1, x2 - y2
    else:
        model = model.to(device).eval()

        def res(x: Tensor) -> Tensor:
            return torch.cat([(b - model(b.to(device)).cpu()) for b in x.split(chunk)])

        r1, r2 = res(x1), res(x2)
    D = _distances.get_distance("emd")(r1, r2)
    off = ~torch.eye(D.shape[0], dtype=torch.bool)
    return (D - D.diagonal()[:, None])[off]


@torch.no_grad()
def residual_report(
    dataset: _data.NoisyImages,
    crop_size: int,
    models: dict[str, torch.nn.Module | None],
    tau: float,
    seed: int = 0,
    device: torch.device | str = "cpu",
    chunk: int = 32,
    limit: int | None = None,
) -> pd.DataFrame:
    """What each network's residual ``n̂ = x − f(x)`` is: noise, content, or nothing.

    On one Algorithm-1 crop pair per training instance (at most ``limit`` instances, a seeded random subset:
    the pairwise EMD grows with their square), for each model (``None``: the true noise, the
    reference a perfect denoiser would give): the Pearson correlation of ``n̂`` with the true noise ``n``
    and with the clean image's local detail ``y − blur(y)`` (content a residual may copy), the EMD between
    ``n̂`` and ``n`` (per crop, averaged), the residual's std relative to the noise's, and the mean
    per-anchor contrastive loss (Eq. 3, EMD, temperature ``tau``) the residuals reach on this batch —
    beside the loss the true noise reaches, the value RCL would have if it had learned the noise.
    """
    if limit is not None and limit < 2:
        raise ValueError(f"limit={limit}: give at least 2 instances (a contrastive loss needs a negative), or None")
    g = _rng.generator(seed)
    corners = _data.sample_crop_pairs(dataset.sizes(), crop_size, generator=g)
    keep = list(range(len(corners)))
    if limit is not None and limit < len(keep):
        keep = sorted(torch.randperm(len(keep), generator=g)[:limit].tolist())
    x1, x2 = _data.crop_pairs([dataset.noisy[i] for i in keep], corners[keep], crop_size)
    y1, y2 = _data.crop_pairs([dataset.clean[i] for i in keep], corners[keep], crop_size)
    n1, n2 = x1 - y1, x2 - y2
    detail = y1 - _blur(y1)
    emd = _distances.get_distance("emd")
    rows = []
    for name, model in models.items():
        if model is None:
            r1, r2 = n1, n2
        else:
            if isinstance(model, torch.nn.Module):
                model = model.to(device).eval()

            def res(x: Tensor, model=model) -> Tensor:
                return torch.cat([(b - model(b.to(device)).float().cpu()) for b in x.split(chunk)])

            r1, r2 = res(x1), res(x2)
        D = emd(r1, r2)
        loss = _losses.residual_contrastive_loss(r1, r2, lambda a, b, D=D: D, tau, reduction="mean")
        rows.append(
            {
                "residual": name,
                "corr. with noise": _corr(r1, n1),
                "corr. with image detail": _corr(r1, detail),
                "EMD to noise": float(emd(r1, n1).diagonal().mean()),
                "std / noise std": float(r1.std() / n1.std().clamp_min(1e-12)),
                "contrastive loss": float(loss),
                "positive nearest (%)": 100 * float(top1_accuracy(D).mean()),
            }
        )
    return pd.DataFrame(rows).set_index("residual")


def what_the_residual_is(report: pd.DataFrame, name: str = "rcl-emd", label: str = "RCL-EMD",
                         tau: float | None = None) -> str:
    """One sentence on ``report``'s row ``name`` (a :func:`residual_report`, with its ``true noise`` row): whether
    the residual is the noise, the image's detail or neither, its size, and whether the true noise would reach
    a lower contrastive loss (at temperature ``tau``, where given) — whether the loss gives a reason to learn the
    noise."""
    r, t = report.loc[name], report.loc["true noise"]
    cn, cd = r["corr. with noise"], r["corr. with image detail"]
    if max(abs(cn), abs(cd)) < 0.1:
        kind = "neither the noise nor the image's detail (uncorrelated with both)"
    elif abs(cn) >= abs(cd):
        kind = ("mostly the noise" if cn > 0.5 else "partly the noise" if cn > 0 else
                "anti-correlated with the noise (the network adds to it)")  # fmt: skip
    else:
        kind = "more image detail than noise" if cd > 0 else "anti-correlated with the image's detail (it sharpens)"
    return (
        f"{label}'s residual is **{kind}**: its correlation with the true noise is {cn:.2f} and with the image "
        f"detail {cd:.2f}; its size is {r['std / noise std']:.2f}× the noise's. It reaches a contrastive loss of "
        f"{r['contrastive loss']:.3f} where the true noise would reach {t['contrastive loss']:.3f} on the same crops"
        + ("" if tau is None else f" at τ = {tau:g}")
        + (" — the noise itself would *not* lower RCL's loss, so the loss gives no reason to learn it."
           if t["contrastive loss"] >= r["contrastive loss"] else " — learning the noise would lower the loss further.")
    )


#: The columns of :func:`residual_spectrum`'s measure of how a residual's varying part spreads over frequencies.
SPREAD = "std of its varying part"
TOP_SHARE = "energy in the strongest 1% of frequencies (%)"
PEAK_SHARE = "energy in the strongest 5 frequencies (%)"
STRONGEST = "strongest frequency (cycles/px)"
#: How :func:`spectrum_reading` reads a residual against the true noise's: *flat* below this share of the noise's
#: spread; *white* while its strongest 1% of frequencies hold less than this many times the noise's share; *smooth*
#: where its strongest frequency is below this (cycles/px); a *periodic pattern* where its 5 strongest frequencies
#: hold at least this many times the noise's share.
FLAT_SPREAD, WHITE_TOP, SMOOTH_BELOW, PEAK_TIMES = 0.25, 2.0, 0.1, 10.0


def residual_spectrum(r: Tensor) -> dict[str, float]:
    """A ``(C, H, W)`` residual's size (RMS) and how its varying part (a constant offset per channel removed)
    spreads its power over spatial frequencies: white noise spreads it evenly, a residual that follows the image's
    regions puts it into the lowest frequencies, a drawn periodic pattern into a few sharp peaks."""
    varying = r - r.mean((-2, -1), keepdim=True)
    power = torch.fft.rfft2(varying.double()).abs().pow(2).mean(0)  # over channels
    f = (torch.fft.fftfreq(power.shape[0])[:, None] ** 2 + torch.fft.rfftfreq(r.shape[-1])[None] ** 2).sqrt()
    flat, total = power.flatten(), power.sum().clamp_min(1e-30)

    def share(k: int) -> float:
        return 100 * float(flat.topk(min(k, flat.numel())).values.sum() / total)

    return {"RMS": float(r.pow(2).mean().sqrt()), SPREAD: float(varying.std()),
            TOP_SHARE: share(max(1, flat.numel() // 100)), PEAK_SHARE: share(5),
            STRONGEST: float(f.flatten()[flat.argmax()])}  # fmt: skip


def spectrum_reading(residuals: dict[str, Tensor], reference: str = "true noise") -> pd.DataFrame:
    """:func:`residual_spectrum` of each named ``(C, H, W)`` residual, one row each, with a column ``looks like``
    that reads it against ``reference``'s (the true noise, which must be among them) by the thresholds
    :data:`FLAT_SPREAD`, :data:`WHITE_TOP`, :data:`SMOOTH_BELOW` and :data:`PEAK_TIMES`: flat, white, smooth (it
    follows the image's regions), a periodic pattern, or coloured."""
    if reference not in residuals:
        raise ValueError(f"reference={reference!r} is not among the residuals {sorted(residuals)}: name the true noise")
    spec = pd.DataFrame({name: residual_spectrum(r) for name, r in residuals.items()}).T
    ref = spec.loc[reference]

    def looks(name: str, r: pd.Series) -> str:
        if name == reference:
            return "white: the reference"
        if r[SPREAD] < FLAT_SPREAD * ref[SPREAD]:
            return "flat: nothing, or a constant offset (RMS)"
        if r[TOP_SHARE] < WHITE_TOP * ref[TOP_SHARE]:
            return "white, like the noise"
        if r[STRONGEST] < SMOOTH_BELOW:
            return "smooth: follows the image's regions"
        if r[PEAK_SHARE] >= PEAK_TIMES * ref[PEAK_SHARE]:
            return f"a periodic pattern (period about {1 / r[STRONGEST]:.1f} px)"
        return "coloured: uneven over frequencies, without one sharp peak"

    return spec.assign(**{"looks like": [looks(n, r) for n, r in spec.iterrows()]})


def _corr(a: Tensor, b: Tensor) -> float:
    a, b = a.flatten().double(), b.flatten().double()
    a, b = a - a.mean(), b - b.mean()
    return float((a @ b) / (a.norm() * b.norm()).clamp_min(1e-30))


@torch.no_grad()
def encoder_sensitivity(consistency: dict[str, torch.nn.Module], clean: Tensor, sigma: float = 15.0,
                        seed: int = 0) -> pd.DataFrame:
    """How each consistency loss (Eq. 5, its g_e) weighs noise against a loss of image detail of equal energy.

    For clean crops ``y`` (``N×3×H×W``): ``n`` is white noise of std ``sigma`` (0–255 scale) and ``d`` the
    crop's fine detail ``y − blur(y)`` scaled per crop to the same norm as ``n``. The loss of ``y + n`` against
    ``y`` says how much the encoder minds noise; that of ``y − d`` how much it minds losing detail. Eq. 5
    assumes "the noise should not drastically change the semantic content": an encoder suited to it has a
    ratio ``detail / noise`` above 1 — removing detail costs more than adding noise of the same energy — and
    the larger the ratio, the more a consistency loss lets a network denoise without blurring.
    """
    g = _rng.generator(seed)
    n = torch.randn(clean.shape, generator=g) * sigma / 255.0
    d = clean - _blur(clean)
    d = d * (n.flatten(1).norm(dim=1) / d.flatten(1).norm(dim=1).clamp_min(1e-12)).view(-1, 1, 1, 1)
    rows = []
    for name, loss in consistency.items():
        noise_cost, detail_cost = float(loss(clean, clean + n)), float(loss(clean, clean - d))
        rows.append({"g_e": name, "loss, noise added": noise_cost, "loss, detail removed": detail_cost,
                     "detail / noise": detail_cost / max(noise_cost, 1e-30)})
    return pd.DataFrame(rows).set_index("g_e")
