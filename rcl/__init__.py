"""rcl — Residual Contrastive Learning for image reconstruction (Dong et al.), reproduced.

Every submodule is reachable as ``rcl.<name>`` after ``import rcl``; it is imported on first use, so
``import rcl`` itself stays cheap (no torch, no pandas).

Layer: package root (imports no submodule).

The map of the package, from the ground up. A module may import the modules of its own layer and of the
layers below it; the exceptions are named where they are. The rules marked *never* are enforced by
``tests/test_layers.py``, which also reads this map (so it lists every module, once)::

    ground floor: imports no other module of rcl (never).
        cache        keys, code versions, atomic writes, locks: one home for everything cached
        rng          random generators named by (seed, stream, index)
        imagefile    one image file of any supported format as a tensor, as a viewer shows it, bounded

    configuration: imports the method registry (rcl.methods, hence methods.base and models) and
    the ground floor; any layer above the ground floor may import it (encoders does).
        profiles     the one table of values that depend on smoke, cpu or gpu
        config       parameter checking, settings(section, profile), device, numerics, status lines

    core: the paper's model; imports the ground floor, configuration and the core. noise and
    distances never import anything that reaches the network. data imports datasets lazily, only
    when a registered dataset is asked for.
        noise        the NLF noise model (heteroscedastic Gaussian noise)
        data         image sources, instances, positive-pair crops (Algorithm 1)
        models       the U-Net f = h ∘ φ and its backbones
        distances    EMD, Bhattacharyya distance and MMD between residual distributions
        tasks        downstream degradations: denoise, sr, jdensr, demosaic, jdd
        losses       the residual contrastive loss, the consistency loss and their sum
        encoders     every g_e of the consistency loss: ResNets (random, ImageNet), SimCLR on noisy images
        methods      the method registry and interface (base), RCL and the noisy-image baselines
                     (core), the dense contrastive baselines (dense)

    engine: imports the core, configuration and the ground floor.
        train        the pre-training loop, runs keyed by config and code, DDP
        runs         a run directory: checkpoints (the previous one kept), its model, failed-run marks

    evaluation: imports the engine (to load and fine-tune runs) and everything below it.
        metrics      PSNR and SSIM (torchmetrics)
        evaluate     the proxy protocol: a re-fitted last layer on frozen features
        apply        a finished run's network over one's own images of any size, tiled, into PNGs
        labels       the label-efficiency study: SL against RCL+SL as labels grow
        stats        paired differences, intervals over seeds × test images (crossed), t tests, bootstraps
        stability    loss spikes in a run's log: logged losses far above the median of those before them
        datasets     the registry of real datasets, checksummed downloads, archives, layouts

    studies: the experiments the book reports; import anything below, and the sweeps.
        provenance   where a committed result came from: the code's commit, the machine, the time
        results      saved result tables with their settings and code version; published copies
        analysis     the paper's premise measured before any training
        backbones    the backbone study: which U-Net can denoise at a profile's budget
        sensitivity  one factor at a time, each setting evaluated by evaluate.study as in notebook 04
        workers      independent jobs in worker processes, each with its share of the cores or its own GPU
        at_scale     the headline comparison at a profile on real photographs, saved with its provenance
        summary      tables beside the paper's, and where we agree with it
        paper        the paper's reported numbers, for display only

    outer shell: drives everything; the core, the engine and the evaluation never import it.
        plots        figures with one look, and the book's interactive explorers
        notebooks    executing the book's notebooks with papermill, reusing current copies
        sweep_plan   what a sweep is: values, grid, file names, the check of its folder
        sweep        running a sweep in parallel and collecting its results
        cli          the command line
        __main__     python -m rcl: runs the command line
"""

from __future__ import annotations

import importlib
import pkgutil

__version__ = "0.1.0"  # the one place the version is written (pyproject.toml reads it from here)

#: Every submodule and subpackage of the package, found on disk (``__main__`` and private names left out).
_SUBMODULES = tuple(sorted(m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_")))

__all__ = ["__version__", *_SUBMODULES]


def __getattr__(name: str):
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module 'rcl' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_SUBMODULES})
