"""Figures with one consistent look (seaborn + matplotlib), and the book's interactive explorers.

Images are ``C×H×W`` or ``B×C×H×W`` tensors in [0, 1]; every figure labels its axes with units.
Interactive explorers (ipywidgets) are extras: each notebook also shows a static figure, because the
rendered book is static. Figures draw what the studies computed (e.g. :func:`sensitivity_factors` draws
:func:`rcl.sensitivity.factor_points`); they compute nothing of their own.

Layer: outer shell (imports the noise model only; nothing below the outer shell imports it).
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
import torch
from torch import Tensor

from rcl import noise as _noise

__all__ = ["FACTOR_TITLES", "INPUT_COLOR", "image_grid", "nlf_curves", "nlf_explorer", "sensitivity_factors",
           "set_style", "to_numpy_image", "training_length"]


def set_style() -> None:
    """The book's figure style, and its tables': a cell's text is shown whole (a control's name, a provenance
    line), not cut at pandas' 50 characters."""
    sns.set_theme(context="notebook", style="whitegrid", palette="colorblind")
    plt.rcParams.update({"figure.dpi": 100, "savefig.dpi": 150, "image.interpolation": "nearest"})
    pd.set_option("display.max_colwidth", None)


def to_numpy_image(img: Tensor) -> np.ndarray:
    """``3×H×W`` tensor in [0, 1] -> ``H×W×3`` numpy array for ``imshow`` (clamped)."""
    return img.detach().float().clamp(0, 1).permute(1, 2, 0).cpu().numpy()


def image_grid(
    rows: Sequence[Sequence[Tensor]],
    titles: Sequence[Sequence[str]] | None = None,
    row_labels: Sequence[str] | None = None,
    size: float = 2.6,
) -> plt.Figure:
    """A grid of images, ``rows[i][j]`` a ``3×H×W`` tensor, with optional titles and row labels."""
    nr, nc = len(rows), max(len(r) for r in rows)
    fig, axes = plt.subplots(nr, nc, figsize=(size * nc, size * nr), squeeze=False)
    for i, row in enumerate(rows):
        for j in range(nc):
            ax = axes[i][j]
            ax.set_xticks([])
            ax.set_yticks([])
            ax.grid(False)
            if j >= len(row):
                ax.axis("off")
                continue
            ax.imshow(to_numpy_image(row[j]))
            if titles is not None:
                ax.set_title(titles[i][j], fontsize=9)
        if row_labels is not None:
            axes[i][0].set_ylabel(row_labels[i])
    fig.tight_layout()
    return fig


def nlf_curves(params: _noise.NLFParams, ax: plt.Axes | None = None, labels: Sequence[str] | None = None):
    """Noise std (0–255 scale) against clean intensity for each parameter pair: the NLF curves."""
    ax = ax or plt.gca()
    y = torch.linspace(0, 1, 101, dtype=torch.float64)
    for k in range(len(params)):
        std = 255 * (params.lambda_shot[k].cpu() * y + params.lambda_read[k].cpu()).clamp_min(0).sqrt()
        ax.plot(y.numpy(), std.numpy(), label=None if labels is None else labels[k])
    ax.set_xlabel("clean intensity y (0–1)")
    ax.set_ylabel("noise std (0–255 scale)")
    if labels is not None:
        ax.legend(fontsize=8)
    return ax


def nlf_explorer(y: Tensor, seed: int = 0):
    """An ipywidgets explorer: sliders for λ_shot and λ_read, showing the noisy image and its NLF curve.

    ``y`` is one clean ``3×H×W`` image. Slider ranges cover the paper's σ ∈ [0, 20] (0–255 scale). The figure is
    drawn into an ``Image`` widget as PNG bytes, redrawn when a slider moves — not by ``ipywidgets.interactive``,
    whose ``Output`` widget captures the figure as it is drawn: a notebook that displayed one in a cell hung
    papermill (nbclient 0.11; ipykernel 7 and 6) in about half its runs, with the kernel idle and the reply never
    read, where this widget ran 15 times in 15.
    """
    import io

    import ipywidgets as widgets

    vmax = (20 / 255) ** 2
    slider = dict(min=0.0, max=2 * vmax, step=vmax / 100, readout_format=".2e", continuous_update=False)
    shot = widgets.FloatSlider(value=vmax / 2, description="λ_shot", **slider)
    read = widgets.FloatSlider(value=vmax / 4, description="λ_read", **slider)
    image = widgets.Image(format="png")

    def draw(_=None) -> None:
        p = _noise.NLFParams(torch.tensor([shot.value]), torch.tensor([read.value]))
        x = _noise.add_noise(y[None], p, _noise.make_generator(seed), clip=True)[0]
        sigma = float(_noise.image_sigma(y[None], p)[0])
        fig, axes = plt.subplots(1, 3, figsize=(11, 3.4))
        for ax, img, title in zip(axes[:2], (y, x), ("clean y", f"noisy x (σ = {sigma:.1f})")):
            ax.imshow(to_numpy_image(img))
            ax.set_title(title)
            ax.axis("off")
        nlf_curves(p, axes[2])
        axes[2].set_ylim(0, 30)
        fig.tight_layout()
        png = io.BytesIO()
        fig.savefig(png, format="png")
        plt.close(fig)
        image.value = png.getvalue()

    shot.observe(draw, "value")
    read.observe(draw, "value")
    draw()
    return widgets.VBox([shot, read, image])


#: The colour of the test input's line and marks in the sensitivity figures (apart from the default setting's orange).
INPUT_COLOR = "C2"
#: Panel titles of the sensitivity figures, by factor name (the others are shown as named).
FACTOR_TITLES = {"tau": "τ", "alpha": "α", "steps": "pre-training steps"}


def training_length(points: pd.DataFrame, sigma: str, spiked: pd.DataFrame | None = None) -> plt.Figure:
    """The sensitivity study's length of pre-training at one noise level (``points``:
    :func:`rcl.sensitivity.analyse`'s ``steps_points``): each pre-training seed's PSNR minus the input's against
    the steps (log scale), one line per seed and their median; random init's seeds as a grey band (its range) with
    its mean dash-dotted; the input at zero (dotted, green). Runs whose loss log shows a spike (``spiked``: rows
    of ``steps`` and ``seed``, :func:`rcl.sensitivity.training_logs`) are circled in red. A run more than 1 dB
    below the input and below the axis the others need is marked at the axis' foot with its value."""
    fig, ax = plt.subplots(figsize=(6.4, 3.8))
    runs = points[points.steps.notna()].sort_values("steps")
    for seed, g in runs.groupby("seed"):
        ax.plot(g.steps, g["− input (dB)"], marker="o", ms=4, lw=1, alpha=0.6, label=f"seed {seed}")
    middle = runs.groupby("steps")["− input (dB)"].median()  # not the mean: one diverged run would carry it away
    ax.plot(middle.index, middle.to_numpy(), color="k", lw=2, label="median over seeds")
    init = points[points.setting == "Random init"]["− input (dB)"]
    if len(init):
        ax.axhspan(init.min(), init.max(), color="C7", alpha=0.2, lw=0)
        ax.axhline(init.mean(), color="C7", lw=1, ls="-.", label="random init (its seeds' range shaded)")
    ax.axhline(0, color=INPUT_COLOR, lw=1.2, ls=":", label="the test input")
    # a diverged run scores many dB below the rest: the axis keeps to the others and the input, with the
    # runs below it marked at its foot with their value
    values = points["− input (dB)"]
    core = pd.concat([values[values > -1.0], pd.Series([0.0])])
    pad = max(0.05, 0.15 * (core.max() - core.min()))
    bottom, top = core.min() - pad, core.max() + pad
    ax.set_ylim(bottom, top)
    foot = bottom + 0.05 * (top - bottom)
    runs = runs.assign(y=runs["− input (dB)"].clip(lower=foot))
    for r in runs[runs["− input (dB)"] < foot].to_dict("records"):
        ax.scatter(r["steps"], foot, marker="v", color="k", zorder=4)
        ax.annotate(f"seed {r['seed']}: {r['− input (dB)']:.1f} dB", (r["steps"], foot), fontsize=8, xytext=(-8, 2),
                    textcoords="offset points", ha="right")  # fmt: skip
    if spiked is not None and len(spiked):
        hit = runs.merge(spiked[["steps", "seed"]].astype(float), on=["steps", "seed"])
        ax.scatter(hit.steps, hit.y, s=120, facecolors="none", edgecolors="red", lw=1.5, zorder=4,
                   label="its loss spiked")  # fmt: skip
    ax.set_xscale("log", base=2)
    ax.set_xticks(sorted(runs.steps.unique()), [f"{int(v)}" for v in sorted(runs.steps.unique())])
    ax.set_xlabel("pre-training steps (log scale)")
    ax.set_ylabel(f"PSNR − input at {sigma} (dB)")
    ax.set_title(f"RCL-EMD's proxy PSNR at {sigma} as pre-training grows")
    ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.02, 0.5), frameon=False)
    return fig


def sensitivity_factors(points: pd.DataFrame, refs: pd.Series, title: str, ylabel: str) -> plt.Figure:
    """One panel per factor of the sensitivity study: each setting's mean PSNR with its std over seeds as error
    bars, the default setting in orange, N2N (solid), the Oracle (dashed), random init (dash-dotted, grey: the
    untrained network) and the test inputs as they are (dotted, green: a setting below it has learnt nothing) as
    horizontal lines, and in the noise panel N2N (grey squares) and the input (green crosses) at each noise range
    (``points`` and ``refs``: :func:`rcl.sensitivity.factor_points`); one legend for every panel's marks."""
    factors = list(dict.fromkeys(points.factor))
    fig, axes = plt.subplots(1, len(factors), figsize=(2.6 * len(factors), 3.6), sharey=True)
    axes = np.atleast_1d(axes)
    for ax, factor in zip(axes, factors):
        s = points[points.factor == factor]
        x = np.arange(len(s))
        ax.errorbar(x, s["mean"], yerr=s["std"].fillna(0), fmt="none", ecolor="grey", capsize=3)
        for default, label in ((False, "a setting (± std over seeds)"), (True, "the default setting")):
            mine = (s.default == default).to_numpy()
            if mine.any():
                ax.scatter(x[mine], s["mean"][mine], color="C1" if default else "C0", zorder=3, label=label)
        if "N2N" in refs:
            ax.axhline(refs["N2N"], color="k", lw=1, label="N2N")
        if "Oracle" in refs:
            ax.axhline(refs["Oracle"], color="k", lw=1, ls="--", label="Oracle")
        if "Random init" in refs:
            ax.axhline(refs["Random init"], color="C7", lw=1, ls="-.", label="random init")
        if "Input" in refs:
            ax.axhline(refs["Input"], color=INPUT_COLOR, lw=1.2, ls=":", label="the test input")
        if factor == "noise":
            ax.scatter(x, s.n2n, marker="s", color="grey", zorder=2, label="N2N at that range")
            if "input" in s:
                ax.scatter(x, s.input, marker="x", color=INPUT_COLOR, zorder=2, label="the input at that range")
        ax.set_xticks(x, s.setting, rotation=60, ha="right", fontsize=8)
        ax.set_title(FACTOR_TITLES.get(factor, factor))
    axes[0].set_ylabel(ylabel)
    marks = {label: handle for ax in axes for handle, label in zip(*ax.get_legend_handles_labels())}
    fig.legend(marks.values(), marks.keys(), fontsize=8, loc="center left", bbox_to_anchor=(0.91, 0.5),
               frameon=False)  # right of the panels: below them the rotated setting names would run into it
    fig.suptitle(title, y=1.04)  # above the panels' own titles (figures are saved with a tight box)
    return fig
