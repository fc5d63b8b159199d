"""Command line: ``python -m rcl <command> --help``.

Commands:
  pretrain    pre-train a U-Net with RCL or a baseline (works under torchrun)
  evaluate    evaluate a finished run by the proxy protocol, on its test split or a folder of test images
  notebooks   execute the book's notebooks with papermill at a profile
  datasets    list the registered real datasets, or download one (with checksums)
  sweep       execute one notebook over a grid of parameters and collect its results into one table
  sensitivity run (or resume) the sensitivity study that notebook 06 shows (proxy evaluations of notebook 04)
  backbones   run (or reload) the backbone study that notebook 03 shows
  apply       denoise one's own images (a folder, any size) with a finished run, into PNGs
  at-scale    the headline comparison at a profile on real photographs, saved with its provenance

:func:`build_parser` assembles one sub-parser per command (an ``_add_<command>`` function each); each command
runs in a ``_cmd_<command>`` function, which imports only the modules that command needs.

A failure caused by the user's input prints one line, ``rcl: error: …``, and exits with status 2; with
``--debug`` (or ``RCL_DEBUG=1``) its traceback is shown instead. :func:`user_error` says which failures
those are; any other exception is a bug and shows its traceback.

Layer: outer shell (calls the studies, the engine and the notebooks; nothing imports it).

Why one module: the commands are one parser tree that shares its helpers (``--set`` parsing, the project's
folders, the one-line errors); split by command, every part would import those from one another.
"""

from __future__ import annotations

import argparse
import dataclasses
import errno
import os
import shlex
import sys
from pathlib import Path
from typing import NoReturn

from rcl import __version__
from rcl.config import ALL_TASKS, NAMED_CONFIGS, PROFILES
from rcl.profiles import HEADLINE_SEEDS, STUDY_PROFILES, STUDY_TIMES, STUDY_WHY, TABLE
from rcl.sweep_plan import parse_value as _parse_value  # noqa: F401 - one papermill-style value

__all__ = ["build_parser", "main", "user_error"]

_FILE_ERRORS = (FileNotFoundError, FileExistsError, IsADirectoryError, NotADirectoryError, PermissionError)

#: Errors raised inside a notebook that come from the values it was given (see :func:`user_error`).
_USER_ERRORS_IN_NOTEBOOKS = ("ValueError", "FileNotFoundError", "NotADirectoryError", "IsADirectoryError",
    "PermissionError", "SweepError", "JSONDecodeError", "UnverifiedDownloadError", "DownloadError",
    "UnsafeArchiveError", "ImageNetWeightsUnavailable", "FloatingPointError", "StudyIncomplete")  # fmt: skip


def user_error(err: BaseException) -> str | None:
    """The one line that explains ``err`` when the user's input caused it, else None (a bug).

    The user's input: a ``ValueError`` (a value, name or file content that is not valid: every check names
    the parameter and what would be valid; unreadable JSON), a training loss that is not finite
    (``FloatingPointError``: settings that diverge, such as too large an ``lr``), a missing, misplaced or
    unreadable file or folder (``FileNotFoundError`` and its kin, or any ``OSError`` naming a file), a refused or failed
    download (:class:`rcl.datasets.DownloadError`, :class:`rcl.datasets.UnverifiedDownloadError`), ImageNet
    weights for ``g_e`` neither cached nor downloadable (:class:`rcl.encoders.ImageNetWeightsUnavailable`), a
    study some of whose settings failed (:class:`rcl.sensitivity.StudyIncomplete`: running it again retries them).
    A ``KeyError`` is a bug (lookups of names raise ``ValueError`` listing the valid ones); so is an
    ``OSError`` naming no file (a full disk, say).
    """
    if isinstance(err, OSError) and err.filename is not None:
        return f"{err.filename}: {err.strerror or err}"
    datasets, encoders = sys.modules.get("rcl.datasets"), sys.modules.get("rcl.encoders")  # raised only if imported
    download = (datasets.DownloadError, datasets.UnverifiedDownloadError) if datasets else ()
    weights = (encoders.ImageNetWeightsUnavailable,) if encoders else ()  # g_e="imagenet" offline, nothing cached
    study = sys.modules.get("rcl.sensitivity")
    incomplete = (study.StudyIncomplete,) if study else ()  # some settings failed; running again retries them
    if isinstance(err, (ValueError, FloatingPointError, *_FILE_ERRORS, *download, *weights, *incomplete)):
        return " ".join(line.strip() for line in str(err).splitlines() if line.strip()) or type(err).__name__
    return None


def _debug(args: argparse.Namespace) -> bool:
    return bool(getattr(args, "debug", False)) or os.environ.get("RCL_DEBUG", "").lower() not in ("", "0", "false")


def _check_folder(path: str | os.PathLike, what: str) -> None:
    """Refuse ``path`` as a folder to write into, naming ``what`` (the option that gave it), when a file is in
    its place or in the place of one of its folders; checked before the work."""
    for p in (Path(path), *Path(path).parents):
        if p.exists():
            if not p.is_dir():
                raise NotADirectoryError(errno.ENOTDIR, f"a file, where {what} would be a folder", str(p))
            return


def _check_test_set(test_dataset: str | None, test_dir: str | None) -> None:
    """``--test-dataset`` other than builtin needs ``--test-dir``: named before the work, by the option's name."""
    if test_dataset not in (None, "builtin") and not test_dir:
        where = "the folder of test images" if test_dataset == "folder" else "the folder it was downloaded into"
        raise ValueError(f"--test-dataset {test_dataset} needs --test-dir, {where}")


def _cmd_notebooks(args: argparse.Namespace) -> int:
    import papermill as pm

    from rcl import notebooks

    params = notebooks.parse_parameters(args.parameter or [])
    paths = [Path(p) for p in args.notebook] if args.notebook else None
    try:
        notebooks.execute_all(args.profile, args.out, params, paths, progress=not args.quiet, force=args.force)
    except pm.PapermillExecutionError as err:
        if err.ename not in _USER_ERRORS_IN_NOTEBOOKS:
            raise
        failed = max(Path(args.out).glob("*.failed.ipynb"), key=lambda p: p.stat().st_mtime, default=None)
        name = failed.name.replace(".failed", "") if failed else "a notebook"
        raise ValueError(f"{name} stopped at cell {err.exec_count}: {err.ename}: {err.evalue} (its executed "
                         f"copy, with the traceback: {failed})") from err
    return 0


def _parse_sets(items: list[str] | None) -> dict[str, str]:
    out = {}
    for item in items or []:
        if "=" not in item:
            raise ValueError(f"--set {item!r}: expected KEY=VALUE")
        key, value = item.split("=", 1)
        out[key.strip()] = value.strip()
    return out


#: What pre-training does with a folder of the user's images, said before it starts (README: "Denoise your own
#: photographs"); the second sentence is for ``sigma_max > 0``, the third for ``sigma_max = 0``.
_DATA_NOTE = ("note: dataset=folder reads every training image as clean{resize}; a folder without train/ and test/ "
              "subfolders holds out every fifth image for testing. ",
              "Simulated camera noise up to σ = {sigma:g} (0–255 scale) is added, so photographs that are noisy "
              "already get more; --set sigma_max=0 adds none, and the methods that need no second draw (Noise2Self, "
              "RCL) then see only the images' own noise.",
              "sigma_max=0: no noise is added, so the methods that need no second draw (Noise2Self, RCL) see only the "
              "images' own noise, and N2N learns the identity (its two draws are the same image).")


def _cmd_pretrain(args: argparse.Namespace) -> int:
    from rcl import train

    sets = _parse_sets(args.set)
    if "method" in sets:
        raise ValueError(f"--set method={sets['method']}: give the method as --method {sets['method']}")
    cfg = train.make_config(args.method, args.profile, **sets)
    if args.print_config:
        for key, value in sorted(vars(cfg).items()):
            print(f"{key} = {value!r}")
        return 0
    _check_folder(cfg.runs_dir, "--set runs_dir" if "runs_dir" in sets else "the runs folder (--set runs_dir)")
    if cfg.dataset == "folder" and int(os.environ.get("RANK", "0")) == 0:
        resize = f", downscaled to at most {cfg.max_side} px on its longer side" if cfg.max_side else ""
        noise = _DATA_NOTE[1 if cfg.sigma_max > 0 else 2].format(sigma=cfg.sigma_max)
        print(_DATA_NOTE[0].format(resize=resize) + noise)
    result = train.pretrain(cfg)
    state = "reused" if result.reused else "finished"
    if int(os.environ.get("RANK", "0")) == 0:
        print(f"{cfg.method}: {state} run at {result.path} ({result.metrics})")
    return 0


def _proxy_sets(items: list[str] | None, option: str, why: str, settable: tuple[str, ...] | None = None) -> dict:
    """``KEY=VALUE`` items as typed :class:`rcl.evaluate.ProxyConfig` fields: those of ``settable`` (default:
    all but the data's)."""
    from rcl import evaluate

    proxy = _parse_sets(items)
    fixed = {"task", "dataset", "data_dir", "max_side", "sigma_max", "test_dataset", "test_dir", "seed"}
    settable = sorted(settable or set(evaluate.ProxyConfig.__dataclass_fields__) - fixed)
    unknown = sorted(set(proxy) - set(settable))
    if unknown:
        raise ValueError(f"{option} {', '.join(unknown)}: not settable here ({why}); "
                         f"valid keys: {', '.join(settable)}")
    parse = {"sigma_grid": lambda v: tuple(float(x) for x in v.split(",") if x),
             "test_crop": lambda v: None if v.lower() in ("none", "") else int(v)}
    defaults = evaluate.ProxyConfig()
    words = {"sigma_grid": "comma-separated numbers, e.g. 0,10,20", "test_crop": "a whole number of pixels or none"}
    for k, v in proxy.items():
        kind = type(getattr(defaults, k))
        try:
            proxy[k] = parse[k](v) if k in parse else kind(v)
        except ValueError:
            expected = words.get(k, {int: "a whole number", float: "a number"}.get(kind, kind.__name__))
            raise ValueError(f"{option} {k}={v!r}: expected {expected}") from None
    return proxy


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from rcl import cache, config, evaluate, runs, summary

    _check_test_set(args.test_dataset, args.test_dir)
    run = Path(args.run)
    trained = runs.read_config(run)
    proxy = _proxy_sets(args.set, "--set", "the run fixes its data; --task, --test-dir, --test-dataset and --seed "
                        "are options")
    cfg = evaluate.proxy_config(run, task=args.task, seed=args.seed, test_dataset=args.test_dataset,
                                test_dir=args.test_dir, **proxy)
    if args.out:
        cache.check_writable(args.out, "--out")  # before the evaluation, not after it
    device = config.device(args.device)
    rows, _ = evaluate.proxy_evaluate(run, cfg, device=device)
    table = evaluate.aggregate(rows, ["condition"])
    table = table.set_index("condition").loc[summary.conditions(rows)].reset_index()  # by σ, then the mixed range
    print(f"{trained['method']} on {args.task}, test images: "
          f"{args.test_dir or args.test_dataset or trained['dataset'] + ' test split'} "
          f"({summary.count_of(rows.image.nunique(), 'image')}, {summary.count_of(cfg.trials, 'trial')})")
    print(table.round(3).to_string(index=False))
    if args.out:
        cache.atomic_write_text(args.out, rows.to_csv(index=False))  # never half-written, even when interrupted
        print(f"per-case rows written to {args.out}")
    return 0


def _cmd_datasets(args: argparse.Namespace) -> int:
    from rcl import datasets

    if args.action == "list":
        print(datasets.describe())
        return 0
    if not args.name:
        raise ValueError(f"datasets download needs a NAME; valid: {', '.join(sorted(datasets.REGISTRY))}")
    path = datasets.download(args.name, args.root, allow_unverified=args.allow_unverified)
    print(f"{args.name}: {path}")
    return 0


SWEEP_HELP = """\
Executes NOTEBOOK once per combination of the swept values, each in its own process, into an output
folder: <stem>--<name>=<value>--....ipynb per execution, sweep.json (what ran, how long, what failed),
logs/ (what each execution printed and the results it saved) and results.csv (the collected table,
also rcl.sweep.collect(folder) from Python). Executions already there are not run again, so the same
command resumes an interrupted sweep; a failed execution does not stop the others, but the exit status
is then 1.

Values (-p NAME VALUES): commas outside brackets, braces and quotes separate values; one value fixes
the parameter, several sweep it. Items starting with [ { or a quote are JSON (or Python) literals;
others are papermill-style: 1 -> int, 0.5 -> float, true/false -> bool, none -> None, else a string.
A single list of dicts sweeps its dicts.
  -p seeds '[0]','[1]','[2]'                  three pre-training seeds, one per execution
  -p overrides '{"tau": 0.1}'                 one dict (fixed)
  -p overrides '{"tau": 0.1},{"tau": 1.0}'    two dicts (swept); so is '[{"tau": 0.1}, {"tau": 1.0}]'
  -p methods '["n2n"]'                        one list (fixed)
  -p methods '["n2n"],["n2n","rcl-emd"]'      two lists (swept)
  -p data_dir '"a,b"'                         a string containing a comma

Relative paths given as values are read from the notebook's folder (notebooks run inside it).

examples:
  python -m rcl sweep notebooks/04_proxy_evaluation.ipynb --profile smoke -p methods '["n2n"]' -p seeds '[0]','[1]'
  python -m rcl sweep notebooks/04_proxy_evaluation.ipynb -p overrides '{"tau": 0.05},{"tau": 0.2}' \\
      --jobs 2 --out build/sweeps/tau
  python -m rcl sweep --collect build/sweeps/tau     # collect (again) and summarise a sweep's folder
"""


def _cmd_sensitivity(args: argparse.Namespace) -> int:
    from rcl import results, sensitivity

    try:
        seeds = [int(v) for v in args.seeds.split(",")] if args.seeds else None
    except ValueError:
        raise ValueError(f"--seeds {args.seeds!r}: give comma-separated integers, e.g. 0,1,2") from None
    if args.jobs is not None and args.jobs < 1:
        raise ValueError(f"--jobs {args.jobs}: give 1 or more")
    if args.plan:
        print(sensitivity.plan(args.profile).to_string(index=False))
        return 0
    runs_dir, results_dir = _project_dirs(args)
    table = sensitivity.run(args.profile, seeds, runs_dir, results_dir, args.jobs, progress=not args.quiet)
    print(f"sensitivity study at profile={args.profile}: {len(table)} rows saved in {results_dir}/")
    if args.publish:
        path = results.path_for("sensitivity", sensitivity.settings(args.profile, seeds=seeds), results_dir)
        _publish(path, sensitivity, args, f" --seeds {args.seeds}" if args.seeds else "",
                 sensitivity.published_extra(args.profile, sensitivity.seeds_of(args.profile, seeds), runs_dir))
    return 0


def _publish(path, study, args: argparse.Namespace, options: str, extra: dict | None = None) -> None:
    """Publish the saved result at ``path`` of ``study`` (:mod:`rcl.sensitivity` or :mod:`rcl.backbones`: its
    ``PUBLISHED_BY`` and ``PUBLISHED_PER``), just run or reloaded, into ``--studies-dir``
    (:func:`rcl.results.publish`, with ``extra``); the command recorded is this one with ``options``."""
    from rcl import results
    from rcl.notebooks import project_dir

    result = next(s for s in results.saved(Path(path).parent, args.command) if s.path == Path(path))
    folder = args.studies_dir or project_dir(results.STUDIES_DIR)
    command = f"python -m rcl {args.command} --profile {args.profile}{options} --publish"
    out = results.publish(result, study.PUBLISHED_BY, folder, study.PUBLISHED_PER, command, extra)
    print(f"published {out} and its sidecar (commit both; the book shows them where a build computed none)")


def _project_dirs(args: argparse.Namespace) -> tuple[str, str]:
    """``--runs-dir`` and ``--results-dir``, the project's ``runs/`` and ``results/`` (those the notebooks
    read) where not given."""
    from rcl.notebooks import project_dir

    for option in ("runs_dir", "results_dir"):
        if getattr(args, option):
            _check_folder(getattr(args, option), "--" + option.replace("_", "-"))
    return args.runs_dir or project_dir("runs"), args.results_dir or project_dir("results")


def _cmd_backbones(args: argparse.Namespace) -> int:
    from rcl import backbones

    runs_dir, results_dir = _project_dirs(args)
    table, path, reused = backbones.cached(args.profile, results_dir, runs_dir, seed=args.seed, progress=not args.quiet)
    print(backbones.summary(table).to_string())
    print("copy-the-input control (PSNR of f(x) against x, end to end):")
    print(backbones.copy_control(table).to_string())
    print(f"{'reloaded' if reused else 'saved'} {path}")
    if args.publish:
        _publish(path, backbones, args, f" --seed {args.seed}" if args.seed else "")
    return 0


def _cmd_apply(args: argparse.Namespace) -> int:
    from rcl import apply, config

    apply.output_paths(args.input, args.output)  # bad folders are refused before anything is loaded or fitted
    config.check_positive("--tile", args.tile, "pixels")  # and bad sizes
    if args.overlap is not None and args.overlap < 0:
        raise ValueError(f"--overlap={args.overlap}: give 0 or more pixels")
    proxy = None
    if args.head == "proxy":
        from rcl import evaluate

        given = args.labels_dir or args.labels_dataset
        labels = {"dataset": args.labels_dataset or "folder", "data_dir": args.labels_dir} if given else {}
        sets = _proxy_sets(args.proxy, "--proxy", "the other settings do not change the head; --labels-dir and "
                           "--labels-dataset choose the labelled images", evaluate.HEAD_FIELDS)
        proxy = evaluate.proxy_config(args.run, profile=args.profile or "cpu", task="denoise", **labels, **sets)
        if not given and proxy.dataset == "folder" and not Path(proxy.data_dir).is_dir():  # a run moved elsewhere
            relative = "" if Path(proxy.data_dir).is_absolute() else f" (a relative path, read from {Path.cwd()})"
            raise FileNotFoundError(errno.ENOENT, f"the run's training images{relative}, whose clean crops fit the "
                                    "proxy head, are not there: give --labels-dir DIR, a folder of clean images",
                                    proxy.data_dir)
    elif args.labels_dir or args.labels_dataset or args.proxy or args.profile:
        raise ValueError("--labels-dir, --labels-dataset, --proxy and --profile choose how the proxy head is fitted: "
                         "add --head proxy, or drop them")
    device = config.device(args.device)
    network, about = apply.load_network(args.run, args.head, device, proxy)
    if about["head"] == "proxy":
        print(f"proxy head fitted on {about['labels']} ({about['steps']} steps, σ ~ U[0, {about['sigma_max']:g}], "
              f"trial {about['trial']}), final L1 {about['fit_l1']:.4f}")
    outs = apply.apply_folder(network, args.input, args.output, args.bits, args.tile, args.overlap, device,
                              progress=not args.quiet)  # fmt: skip
    print(f"{len(outs)} image(s) written to {args.output}")
    return 0


def _cmd_at_scale(args: argparse.Namespace) -> int:
    import shlex
    from datetime import datetime, timezone

    from rcl import at_scale
    from rcl.notebooks import project_dir

    proxy = _proxy_sets(args.proxy, "--proxy", "the runs fix their data; --test-dir and --test-dataset are options")
    _check_test_set(args.test_dataset, args.test_dir)
    proxy.update({k: v for k, v in (("test_dir", args.test_dir), ("test_dataset", args.test_dataset)) if v})
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    out = args.out or Path(project_dir("book")) / "at_scale" / f"at-scale-{args.profile}-{stamp}.json"
    hide = lambda a: a.split("=", 1)[0] + "=FOLDER" if "=" in a else "FOLDER"  # noqa: E731 - no machine's paths
    command = "python -m rcl " + " ".join(shlex.quote(hide(a) if os.sep in a else a) for a in sys.argv[1:])
    sets = _parse_sets(args.set)
    pretrain = {"runs_dir": project_dir("runs"), **sets}  # the runs the notebooks find
    _check_folder(pretrain["runs_dir"], "--set runs_dir" if "runs_dir" in sets else "the project's runs folder")
    seeds = args.seeds or HEADLINE_SEEDS[args.profile]
    path = at_scale.run(args.profile, out, pretrain, proxy, args.methods, args.tasks or at_scale.TASKS, seeds,
                        command=command, progress=not args.quiet, data_note=args.data_note)  # fmt: skip
    print(f"at-scale results written to {path}; the book's At scale page shows every file of book/at_scale/")
    return 0


def _cmd_sweep(args: argparse.Namespace) -> int:
    from rcl import sweep

    if args.collect:
        if args.notebook or args.parameter:
            raise ValueError("sweep --collect DIR takes no NOTEBOOK or -p")
        table = sweep.collect(args.collect)
        manifest = sweep.read_manifest(args.collect) or {}
        text = sweep.summary(table, manifest.get("swept", []))
        if text:
            print(text)
        return 0
    if not args.notebook:
        raise ValueError("sweep needs a NOTEBOOK (or --collect DIR); see python -m rcl sweep --help")
    swept: dict[str, list] = {}
    fixed: dict[str, object] = {}
    try:
        for name, text in args.parameter or []:
            if name in swept or name in fixed:
                raise sweep.SweepError(f"parameter {name} is given twice; list its values once: -p {name} a,b")
            try:
                values = sweep.parse_values(text)
            except ValueError as e:
                raise sweep.SweepError(f"-p {name}: {e}") from None
            if len(values) == 1:
                fixed[name] = values[0]
            else:
                swept[name] = values
        if args.jobs is not None and args.jobs < 1:
            raise sweep.SweepError(f"--jobs {args.jobs}: give 1 or more")
        out_dir = Path(args.out) if args.out else sweep.default_out_dir(args.notebook, args.profile, fixed)
        manifest = sweep.run(args.notebook, sweep.grid(swept), out_dir=out_dir, profile=args.profile, jobs=args.jobs,
                             fixed=fixed, progress=not args.quiet, dry_run=args.dry_run)  # fmt: skip
    except KeyboardInterrupt:
        print("\nsweep interrupted; the same command resumes it (finished executions are kept)", file=sys.stderr)
        return 130
    if args.dry_run:
        return 0
    table = sweep.collect(out_dir)
    text = sweep.summary(table, list(swept))
    if text:
        print(text)
    return 1 if any(e["status"] == "failed" for e in manifest["executions"]) else 0


#: What each ``--set`` key of ``pretrain`` means, in one line (a test keeps it equal to rcl.train.config_keys()).
SET_KEYS = {
    "tau": "RCL's contrastive temperature (Eq. 3)",
    "tau_scale": "'absolute', or 'median': tau times the batch's median residual distance",
    "alpha": "weight of the contrastive term against the consistency term (Eq. 6)",
    "distance": "RCL's residual distance: emd, bd or mmd",
    "distance_reduction": "'pooled' (a residual's values over channels as one distribution) or 'per_channel'",
    "contrast_reduction": "'sum' (Algorithm 1) or 'mean' over anchors",
    "g_e": "the consistency loss's frozen encoder: imagenet, random, self-supervised or none (no consistency term)",
    "g_e_arch": "g_e's torchvision ResNet, e.g. resnet18 or resnet50",
    "g_e_layers": "g_e's stages whose features the consistency loss compares, e.g. layer1,layer2",
    "n2s_grid": "Noise2Self's mask: one pixel masked in each grid × grid cell",
    "n2s_replace": "what replaces Noise2Self's masked pixels: interpolate (its neighbours' mean) or zero",
    "proj_dim": "dense contrastive baselines: projection width",
    "queue_size": "dense contrastive baselines: images whose keys the negative queue holds",
    "momentum": "dense contrastive baselines: key encoder's momentum",
    "dense_samples": "dense baselines: pixels VADeR samples per image; DenseCL, PixContrast pool to √n × √n",
    "tau_dense": "dense contrastive baselines: temperature (None: each method's own)",
    "loss_norm": "the reconstruction losses' norm: l1 or l2",
    "supervised_task": "the task the supervised baseline (the Oracle) learns: denoise, sr, jdensr, demosaic, jdd",
    "sigma_max": "top of the training noise range, σ on the 0–255 scale",
    "method": "the method (as --method)",
    "dataset": "builtin, folder (with data_dir) or a registered dataset (rcl datasets list)",
    "data_dir": "the folder of images (dataset=folder) or a dataset's root",
    "max_side": "images are resized so their longer side is at most this (None: as they are)",
    "tile": "instances are tiles of this size, each with its own noise parameters",
    "overlap_min": "smallest overlap (area fraction) of a positive pair's two crops",
    "overlap_max": "largest overlap of a positive pair's two crops",
    "crop": "crop size of a training pair, smaller than tile",
    "batch_size": "instances per step (each one's other crop is the others' negative)",
    "steps": "optimisation steps",
    "lr": "Adam's learning rate",
    "beta1": "Adam's β1",
    "beta2": "Adam's β2",
    "eps": "Adam's ε (the paper's 1e-7)",
    "seed": "the run's seed (initial weights, noise, batches)",
    "width": "the U-Net's channels at the first level",
    "depth": "the U-Net's levels",
    "norm": "the U-Net's normalisation: none, batch, group or instance",
    "skip": "the U-Net's global skip: residual (f(x) = x + h), none or concat",
    "g_e_weights": "a local torchvision ResNet state dict for g_e=imagenet (offline)",
    "g_e_steps": "SimCLR steps that train g_e=self-supervised",
    "amp": "autocast: bfloat16 where the device has it, else float16 on a GPU (the precision is in a run's key)",
    "checkpoint_every": "steps between checkpoints (an interrupted run resumes from the last)",
    "log_every": "steps between logged losses",
    "runs_dir": "where runs are stored",
    "device": "cuda, mps, cpu, … (None: a GPU when there is one, else the CPU)",
    "progress": "show a progress bar",
}


def _add_pretrain(sub: argparse._SubParsersAction) -> None:
    from rcl import methods, train

    named = "".join(f"\nnamed configuration {n.name}: {n.method} with {n.overrides}" for n in NAMED_CONFIGS.values())
    profile_values = "\n".join(f"  {p}: " + ", ".join(f"{k}={v}" for k, v in vals.items())
                               for p, vals in TABLE["pretrain"].items())  # fmt: skip
    defaults = {f.name: f.default for f in dataclasses.fields(train.PretrainConfig)}
    key_lines = "\n".join(f"  {k} ({defaults[k]}): {SET_KEYS.get(k, '')}" for k in train.config_keys())
    pt = sub.add_parser(
        "pretrain",
        help="pre-train a U-Net with RCL or a baseline",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Pre-train (or reuse a finished run of) one method. Runs are keyed by their config "
        "and stored under runs/; an interrupted run resumes from its last checkpoint. Multi-GPU: "
        "torchrun --nproc_per_node=N -m rcl pretrain ...",
        epilog="methods: " + ", ".join(methods.METHODS) + named
        + "\n\nkeys for --set (the default, then what it means; a profile changes some: profile values below, "
        "and --print-config shows a run's every value):\n" + key_lines
        + "\n\nprofile values:\n" + profile_values,
    )  # fmt: skip
    pt.add_argument("--method", default="rcl-emd", help="one of the methods listed below (default: %(default)s)")
    pt.add_argument("--profile", choices=PROFILES, default="cpu",
                    help="the settings' scale: smoke (seconds), cpu (a laptop), gpu (the paper's) "
                         "(default: %(default)s)")
    pt.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a config key (repeatable)")
    pt.add_argument("--print-config", action="store_true", help="print the resolved config and exit")
    pt.set_defaults(func=_cmd_pretrain)


def _add_evaluate(sub: argparse._SubParsersAction) -> None:
    ev = sub.add_parser(
        "evaluate",
        help="evaluate a finished run by the proxy protocol (optionally on a folder of test images)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Refit the last layer of a finished run on its training data's labelled crops (the "
        "paper's proxy protocol) and report PSNR per noise level on test images it never trained on: its "
        "dataset's held-out split, or --test-dir (every image of a folder, or its test/ subfolder). Test images "
        "that are also training images are refused. The result is cached beside the run.",
        epilog="examples:\n  python -m rcl evaluate runs/rcl-emd-<key> --test-dir ~/photos/kodak\n"
        "  python -m rcl evaluate runs/n2n-<key> --task sr --set trials=3 --set sigma_grid=10,25",
    )
    ev.add_argument("run", help="a finished run directory (runs/<method>-<key>)")
    ev.add_argument("--task", default="denoise", choices=ALL_TASKS, help="downstream task (default: %(default)s)")
    ev.add_argument("--test-dir", help="folder of test images (dataset 'folder'), or a registered dataset's root")
    ev.add_argument("--test-dataset", help="'folder' (default with --test-dir) or a registered dataset name")
    ev.add_argument("--set", action="append", metavar="KEY=VALUE",
                    help="a field of rcl.evaluate.ProxyConfig, e.g. trials=3, sigma_grid=0,10,20 (repeatable)")
    ev.add_argument("--seed", type=int, default=0,
                    help="seed of the test degradations and labelled subsets (default: %(default)s, as notebook 04, "
                    "whatever the run's pre-training seed)")
    ev.add_argument("--device", help="cpu, cuda, … (default: the best available)")
    ev.add_argument("--out", help="also write the per-case rows to this CSV file")
    ev.set_defaults(func=_cmd_evaluate)


def _add_notebooks(sub: argparse._SubParsersAction) -> None:
    nb = sub.add_parser(
        "notebooks",
        help="execute the book's notebooks with papermill",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Execute the notebooks (default: every notebook of the project's notebooks/, in order) at a "
        "profile into --out, keeping the executed copies that are current.",
        epilog="Each notebook gets the -p parameters its parameters cell defines; a name that no notebook defines "
        "is refused,\nlisting the valid ones. Values are read as python -m rcl sweep reads one value: 1 -> int, "
        "0.5 -> float,\ntrue/false -> bool, none -> None, JSON lists and dicts, else a string. Notebooks run "
        "inside notebooks/,\nso relative paths start there; runs_dir and results_dir default to the project's "
        "runs/ and results/.\n\nexamples:\n  python -m rcl notebooks --profile smoke -p seed 1 --out build/seed1\n"
        "  python -m rcl notebooks notebooks/04_proxy_evaluation.ipynb -p methods '[\"n2n\", \"rcl-emd\"]' "
        "-p proxy '{\"trials\": 3}'",
    )
    nb.add_argument("--profile", choices=PROFILES, default="cpu", help="notebook profile (default: cpu)")
    nb.add_argument("--out", default="book/notebooks", help="folder for executed copies (default: %(default)s)")
    nb.add_argument("-p", "--parameter", nargs=2, action="append", metavar=("NAME", "VALUE"),
                    help="a parameter of the notebooks' parameters cells (repeatable), e.g. -p seed 1 -p dataset "
                    "folder")  # fmt: skip
    nb.add_argument("--quiet", action="store_true", help="no progress bars")
    nb.add_argument("--force", action="store_true", help="execute every notebook, even those whose executed copy "
                    "in --out is current (same source, library and parameters; such copies are kept by default)")
    nb.add_argument("notebook", nargs="*", help="notebooks to run (default: all of notebooks/, in order)")
    nb.set_defaults(func=_cmd_notebooks)


def _add_datasets(sub: argparse._SubParsersAction) -> None:
    ds = sub.add_parser("datasets", help="list or download the registered real datasets")
    ds.add_argument("action", choices=("list", "download"))
    ds.add_argument("name", nargs="?", help="dataset name (for download)")
    ds.add_argument("--root", default="data", help="download root (default: %(default)s)")
    ds.add_argument("--allow-unverified", action="store_true",
                    help="download files for which no published checksum exists")  # fmt: skip
    ds.set_defaults(func=_cmd_datasets)


def _add_sweep(sub: argparse._SubParsersAction) -> None:
    sw = sub.add_parser(
        "sweep",
        help="execute one notebook over a grid of parameters and collect its results",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Execute a notebook over every combination of parameter values and collect the results "
        "it saves into one table.",
        epilog=SWEEP_HELP,
    )
    sw.add_argument("notebook", nargs="?", help="the notebook to execute, e.g. notebooks/04_proxy_evaluation.ipynb")
    sw.add_argument("-p", "--parameter", nargs=2, action="append", metavar=("NAME", "VALUES"),
                    help="a parameter of the notebook's parameters cell and its value(s), comma-separated "
                    "(repeatable)")  # fmt: skip
    sw.add_argument("--profile", choices=PROFILES, default="cpu", help="notebook profile (default: %(default)s)")
    sw.add_argument("--out", metavar="DIR",
                    help="output folder (default: build/sweeps/<stem>-<profile>-<hash of the fixed parameters>)")
    sw.add_argument("--jobs", type=int, metavar="N",
                    help="executions at once (default: one per CUDA GPU, else a quarter of the CPU cores, at "
                    "least 1); each gets cores/N threads")  # fmt: skip
    sw.add_argument("--dry-run", action="store_true", help="list the executions and the folder, run nothing")
    sw.add_argument("--collect", metavar="DIR", help="only collect (again) the results of the sweep in DIR")
    sw.add_argument("--quiet", action="store_true", help="no progress bar")
    sw.set_defaults(func=_cmd_sweep)


def _add_sensitivity(sub: argparse._SubParsersAction) -> None:
    se = sub.add_parser(
        "sensitivity",
        help="run (or resume) the sensitivity study that notebook 06 shows",
        description="Vary RCL's temperature, α, g_e, distance, crop size, noise range and pre-training steps one at a "
        "time, evaluate each setting by the proxy protocol of notebook 04 (rcl.evaluate.study, as that notebook "
        "calls it; several settings at once), and save the labelled rows as the 'sensitivity' result that notebook 06 "
        f"reads. At the cpu profile it takes {STUDY_TIMES['sensitivity']} on 2 cores after make book (which trains its "
        "default setting); finished runs and evaluations are reused, so an interrupted study resumes.",
    )
    se.add_argument("--profile", choices=STUDY_PROFILES, default="cpu",
                    help=f"the study's scale: smoke (seconds) or cpu ({STUDY_TIMES['sensitivity']}) (default: "
                    "%(default)s); not gpu: " + STUDY_WHY)
    se.add_argument("--seeds", default=None, help="comma-separated seeds (default: the profile's, e.g. 0,1,2)")
    se.add_argument("--jobs", type=int, default=None,
                    help="settings evaluated at once, each in its own process with cores/N threads (default: one "
                    "per CUDA GPU, else a quarter of the CPU cores, at least 1)")  # fmt: skip
    se.add_argument("--plan", action="store_true", help="print the settings it would run, and exit")
    _add_study_options(se)
    se.set_defaults(func=_cmd_sensitivity)


def _add_backbones(sub: argparse._SubParsersAction) -> None:
    bb = sub.add_parser(
        "backbones",
        help="run (or reload) the backbone study that notebook 03 shows",
        description="Pre-train copy-the-input, the Oracle, N2N, RCL-EMD and consistency-only with each U-Net "
        "backbone (plain, residual, input at the top decoder level), add a randomly initialised network, and "
        f"evaluate each end to end and under the proxy protocol per noise level. At the cpu profile "
        f"{STUDY_TIMES['backbones']} on 2 cores after make book (the default backbone's runs are the book's own, "
        "reused).",
    )
    bb.add_argument("--profile", choices=STUDY_PROFILES, default="cpu",
                    help="the study's scale: smoke (seconds) or cpu (minutes) (default: %(default)s); not gpu: "
                    + STUDY_WHY)
    bb.add_argument("--seed", type=int, default=0, help="pre-training and test seed (default: %(default)s)")
    _add_study_options(bb)
    bb.set_defaults(func=_cmd_backbones)


def _add_study_options(parser: argparse.ArgumentParser) -> None:
    """The options every published study shares: where its runs and result live, publishing, quiet."""
    parser.add_argument("--runs-dir", help="pre-training runs (default: the project's runs/)")
    parser.add_argument("--results-dir", help="where the result is saved (default: the project's results/)")
    parser.add_argument("--publish", action="store_true",
                        help="then copy the study's means, with its provenance (commit, machine, dates), into the "
                        "published studies the book shows where its build computed none (commit them)")
    parser.add_argument("--studies-dir", help="where --publish writes (default: the project's book/studies/)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def _add_apply(sub: argparse._SubParsersAction) -> None:
    ap = sub.add_parser("apply", help="denoise one's own images (a folder, any size) with a finished run",
                        description="Run a finished run's network (its own last layer, or with --head proxy one "
                        "fitted by the proxy protocol) over every image of INPUT (a folder or one file) tile by tile, "
                        "on the GPU when present, into OUTPUT/<stem>.png; inputs are never overwritten.")
    for name, text in (("run", "a finished run directory (runs/<method>-<key>)"), ("input", "a folder of images or "
                       "one image file"), ("output", "the folder for the PNGs (not the input folder)")):  # fmt: skip
        ap.add_argument(name, help=text)
    ap.add_argument("--tile", type=int, default=512, help="pixels of output per tile and side (default: %(default)s)")
    ap.add_argument("--overlap", type=int, help="context pixels around each tile (default: enough to equal untiled)")
    ap.add_argument("--bits", type=int, choices=(8, 16), default=8, help="bits per sample (default: %(default)s)")
    ap.add_argument("--device", help="cpu, cuda, … (default: the best available)")
    ap.add_argument("--head", choices=("own", "proxy"), default="own",  # rcl.apply.HEADS (a test keeps them equal)
                    help="the run's own last layer, or one fitted by the proxy protocol on its frozen features from "
                    "a few clean labelled crops — how the paper judges a self-supervised representation (RCL, SimCLR, "
                    "…) as a denoiser (default: %(default)s)")  # fmt: skip
    ap.add_argument("--profile", choices=PROFILES, help="whose proxy protocol fits the head: its number and size "
                    "of labelled crops and its fitting steps, as in notebook 04 (default: cpu)")
    ap.add_argument("--labels-dir", metavar="DIR", help="a folder of clean images for the proxy head's labelled "
                    "crops, or with --labels-dataset the dataset's download root (default: the run's own training "
                    "images, as in the book)")
    ap.add_argument("--labels-dataset", metavar="NAME", help="a built-in or downloaded dataset whose training images "
                    "give those crops instead, e.g. builtin, or bsds500 with --labels-dir ROOT")
    ap.add_argument("--proxy", action="append", metavar="KEY=VALUE",
                    help="a proxy-protocol setting of the head (n_labels, label_size, head_steps, head_lr, pixels), "
                    "over the profile's; repeatable")
    ap.add_argument("--quiet", action="store_true", help="no progress bars")
    ap.set_defaults(func=_cmd_apply)


def _add_at_scale(sub: argparse._SubParsersAction) -> None:
    from rcl.methods import HEADLINE_AND_CONTROLS  # not rcl.at_scale: the parser stays free of the evaluation's imports

    ap = sub.add_parser("at-scale", help="the headline comparison at a profile on real photographs, with provenance",
                        description="Pre-train (or reuse) the headline methods and the copy-the-input and random-init "
                        "controls at a profile on a folder of photographs, evaluate them by the proxy protocol on "
                        "held-out photographs, and write one small JSON file with the results and their provenance "
                        "(settings, code, device, time), which the book's At scale page shows. Resumes: finished "
                        "runs and evaluations are reused. Example: "
                        "python -m rcl at-scale --profile gpu --seeds 0 1 2 3 4 --set dataset=folder "
                        "--set data_dir=PHOTOS --test-dir HELD_OUT (add --set steps=2000 for a shorter look "
                        "than the gpu profile's 20,000)")  # fmt: skip
    ap.add_argument("--profile", choices=PROFILES, default="gpu", help="pre-training and evaluation settings "
                    "(default: %(default)s; smoke checks the mechanism in seconds)")
    ap.add_argument("--set", action="append", metavar="KEY=VALUE", help="a pre-training key (as pretrain --set)")
    ap.add_argument("--proxy", action="append", metavar="KEY=VALUE", help="a proxy-protocol key (as evaluate --set)")
    ap.add_argument("--test-dir", help="held-out photographs (default: the dataset's own test split)")
    ap.add_argument("--test-dataset", help="a registered dataset as the held-out test set")
    ap.add_argument("--methods", nargs="+", default=list(HEADLINE_AND_CONTROLS),
                    help="(default: %(default)s; without 'copy' and 'supervised' the controls cannot hold)")
    ap.add_argument("--tasks", nargs="+", choices=ALL_TASKS, help="downstream tasks (default: denoise sr)")
    ap.add_argument("--seeds", nargs="+", type=int, help="pre-training seeds (default: the profile's, those notebook "
                    "04 pre-trains: " + ", ".join(f"{p} {' '.join(map(str, s))}" for p, s in HEADLINE_SEEDS.items())
                    + "; --seeds 0 is the cheapest look, and one seed gives no verdicts)")
    ap.add_argument("--out", help="the results file (default: book/at_scale/at-scale-PROFILE-UTC.json)")
    ap.add_argument("--data-note", default="", metavar="TEXT", help="what the photographs are, in words, recorded "
                    "in the file (its digests identify the files but do not name them), e.g. 'BSDS500: its 200 "
                    "training photographs; held out, the first 68 of its test set by name'")
    ap.add_argument("--quiet", action="store_true", help="no progress bars")
    ap.set_defaults(func=_cmd_at_scale)


class _Parser(argparse.ArgumentParser):
    """argparse's parser, its errors on one line as every other error of the user's input."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"rcl: error: {message}; see {self.prog} --help\n")


_DEBUG_HELP = "show the traceback of an error instead of one line (also RCL_DEBUG=1)"  # every command has --debug


def build_parser() -> argparse.ArgumentParser:
    """The command line's parser: one subcommand per ``_add_*`` function."""
    parser = _Parser(
        prog="python -m rcl",
        description="Residual Contrastive Learning (Dong et al.) reproduced: notebooks, datasets, runs.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=f"profiles: {', '.join(PROFILES)} (smoke: seconds; cpu: a laptop; gpu: paper scale)\n"
        "An error of the input prints one line, rcl: error: ..., and exits with status 2.",
    )
    parser.add_argument("--version", action="version", version=f"rcl {__version__}")
    parser.add_argument("--debug", action="store_true", help=_DEBUG_HELP)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in (_add_pretrain, _add_evaluate, _add_notebooks, _add_datasets, _add_sweep, _add_sensitivity,
                _add_backbones, _add_apply, _add_at_scale):  # fmt: skip
        add(sub)
    for command in sub.choices.values():  # --debug after the command too; SUPPRESS keeps one given before it
        command.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=_DEBUG_HELP)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status (2 after an error of the input, see :func:`user_error`)."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        if _debug(args):
            raise
        print("rcl: interrupted; nothing half-written is left, and pre-training, evaluations, sweeps and studies "
              "resume from their finished parts when the same command runs again: python -m rcl "
              f"{shlex.join(sys.argv[1:] if argv is None else argv)}", file=sys.stderr)
        return 130
    except Exception as err:
        line = None if _debug(args) else user_error(err)
        if line is None:
            raise
        print(f"rcl: error: {line}", file=sys.stderr)
        return 2
