"""The backbone study: which U-Net can denoise at a profile's budget, chosen by measurement.

For each backbone of :data:`rcl.models.SKIPS` (the plain U-Net, residual learning, the input at the top
decoder level) it pre-trains the controls — copy-the-input, the supervised Oracle, Noise2Noise — and
RCL-EMD and consistency-only, adds the random-init control (the untrained network), and evaluates each on the held-out
images at every σ of the grid and on the paper's mixed range, both end to end (the network's own output)
and under the proxy protocol (only the last layer refitted). The copy control is also scored against its
own input (``psnr_vs_input``): a backbone that cannot reproduce its input cannot denoise either.

``python -m rcl backbones`` (``make backbones``) runs it and saves the table as the ``backbones`` result
(:mod:`rcl.results`); notebook 03 shows it, or where the build computed none its published copy
(``--publish``: the means per :data:`PUBLISHED_BY`, committed under ``book/studies/``). The runs of the
default backbone are the book's own runs, so only the other backbones cost extra.

Layer: studies (above :mod:`rcl.train` and :mod:`rcl.evaluate`; never imported by them).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import pandas as pd

from rcl import config as _config
from rcl import evaluate, profiles, results, train
from rcl.models import SKIPS

__all__ = ["CONTROLS", "PUBLISHED_BY", "PUBLISHED_PER", "cached", "copy_control", "describe", "load", "run", "settings",
           "summary"]

#: What each backbone is trained with: the controls first, then RCL and its ablation.
CONTROLS = ("copy", "supervised", "n2n", "rcl-emd", "consistency")
#: What a published copy keeps (:func:`rcl.results.publish`): the means per backbone, method, protocol, test
#: condition and trial, which :func:`summary` and :func:`copy_control` read as they read the per-image rows.
PUBLISHED_BY = ("skip", "method", "protocol", "condition", "trial")
#: The settings that name a published study (what :func:`load` matches on): publishing replaces the copy with the
#: same values.
PUBLISHED_PER = ("profile", "dataset", "seed", "data_dir")


def settings(profile: str, dataset: str = "builtin", seed: int = 0, data_dir: str | None = None) -> dict[str, Any]:
    """The study's settings (its result's key): profile, data, seed, backbones, methods, evaluation."""
    if dataset == "builtin":
        profiles.check_study(profile)
    p = _config.settings("proxy", profile)
    proxy = {k: p[k] for k in _config.PROXY_KEYS} | {"trials": min(2, p["trials"])}
    return {"profile": profile, "dataset": dataset, "data_dir": data_dir, "seed": seed, "skips": list(SKIPS),
            "methods": list(CONTROLS), "proxy": proxy}


def run(profile: str = "cpu", runs_dir: str | os.PathLike = "runs", dataset: str = "builtin",
        data_dir: str | None = None, seed: int = 0, skips: Sequence[str] = SKIPS,
        methods: Sequence[str] = CONTROLS, progress: bool = True) -> pd.DataFrame:
    """Pre-train (or reuse) every (backbone, method) and evaluate it; tidy rows, one per test case.

    Columns: skip, method (``"init"``, the random-init control, is always added: the untrained network;
    ``"noisy input"`` for the reference), protocol (``"end to end"`` or ``"proxy"``), trial, image, condition,
    psnr, mse, ssim, and ``psnr_vs_input`` (end to end: the output against the network's own input).
    """
    proxy = settings(profile, dataset, seed, data_dir)["proxy"]
    device = _config.default_device()
    frames = []
    for skip in skips:
        for m in dict.fromkeys([*methods, "init"]):
            _config.status(f"backbone study: skip={skip}, {m}")
            cfg = train.make_config(m, profile, skip=skip, seed=seed, dataset=dataset, data_dir=data_dir,
                                    runs_dir=str(runs_dir), progress=progress)
            r = train.pretrain(cfg)
            pcfg = evaluate.ProxyConfig(task="denoise", dataset=dataset, data_dir=data_dir, max_side=cfg.max_side,
                                        sigma_max=cfg.sigma_max, seed=seed, **proxy)
            e2e = evaluate.end_to_end(r.model(device), pcfg, device).assign(protocol="end to end", trial=0)
            px, _ = evaluate.proxy_evaluate(r.path, pcfg, method=m, device=device)
            frames += [e2e.assign(skip=skip, method=m), px.assign(skip=skip, method=m, protocol="proxy")]
    ref = evaluate.reference_evaluate(pcfg, os.path.join(str(runs_dir), "references"))
    frames.append(ref[ref.trial == 0].assign(skip="any", method="noisy input", protocol="input"))
    keep = ["skip", "method", "protocol", "trial", "image", "condition", "psnr", "mse", "ssim", "psnr_vs_input"]
    return pd.concat(frames, ignore_index=True).reindex(columns=keep)


def summary(table: pd.DataFrame, value: str = "psnr") -> pd.DataFrame:
    """Mean PSNR per (backbone, method, protocol) and test condition, with the noisy input's row."""
    agg = evaluate.aggregate(table, ["skip", "method", "protocol", "condition", "trial"])
    wide = agg.groupby(["skip", "method", "protocol", "condition"])[value].mean().unstack("condition")
    cols = sorted((c for c in wide.columns if c.startswith("σ=")), key=lambda c: float(c[2:]))
    return wide[cols + [c for c in wide.columns if c not in cols]].round(2)


def copy_control(table: pd.DataFrame) -> pd.Series:
    """Each backbone's copy-the-input control: mean PSNR of ``f(x)`` against its own input ``x``, end to end, over
    every test case (a published copy's group means weighted by their row counts ``n``)."""
    sel = table[(table.method == "copy") & (table.protocol == "end to end")]
    n = sel["n"] if "n" in sel else pd.Series(1.0, index=sel.index)
    weighted = (sel.psnr_vs_input * n).groupby(sel.skip).sum() / n.groupby(sel.skip).sum()
    return weighted.rename("psnr_vs_input").round(2)


def cached(profile: str, results_dir: str | os.PathLike = "results", runs_dir: str | os.PathLike = "runs",
           dataset: str = "builtin", data_dir: str | None = None, seed: int = 0, progress: bool = True):
    """Reload the saved study for these settings, or run and save it: ``(table, path, reused)``."""
    s = settings(profile, dataset, seed, data_dir)
    return results.cached("backbones", s, results_dir,
                          lambda: run(profile, runs_dir, dataset, data_dir, seed, progress=progress))


def describe(saved: results.Saved) -> str:
    """Where the study shown came from (:func:`rcl.results.describe`), with the command that computes it again."""
    return results.describe(saved, f"python -m rcl backbones --profile {saved.settings.get('profile')}")


def load(profile: str, results_dir: str | os.PathLike = "results", dataset: str = "builtin", seed: int = 0,
         studies_dir: str | os.PathLike | None = None):
    """The saved study to show (a :class:`rcl.results.Saved`), or None (run ``python -m rcl backbones``): from
    ``results_dir`` or, where ``studies_dir`` is given, its published copy (:func:`rcl.results.find`)."""
    return results.find("backbones", [results_dir, studies_dir], **dict(zip(PUBLISHED_PER,
                                                                          (profile, dataset, seed, None))))
