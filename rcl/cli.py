"""Command line: ``python -m rcl <command> --help``.

Commands:
  pretrain    pre-train a U-Net with RCL or a baseline (works under torchrun)
  notebooks   execute the book's notebooks with papermill at a profile
  datasets    list the registered real datasets, or download one (with checksums)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rcl.config import PROFILES

__all__ = ["main"]


def _parse_value(text: str):
    """Papermill-style parameter value: int, float, bool, None, else the string itself."""
    lowered = text.lower()
    if lowered in ("none", "null"):
        return None
    if lowered in ("true", "false"):
        return lowered == "true"
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


def _cmd_notebooks(args: argparse.Namespace) -> int:
    from rcl import notebooks

    params = {k: _parse_value(v) for k, v in (args.parameter or [])}
    paths = [Path(p) for p in args.notebook] if args.notebook else None
    out = notebooks.execute_all(args.profile, args.out, params, paths, progress=not args.quiet)
    for p in out:
        print(f"executed: {p}")
    return 0


def _parse_sets(items: list[str] | None) -> dict[str, str]:
    out = {}
    for item in items or []:
        if "=" not in item:
            raise SystemExit(f"--set expects key=value, got {item!r}")
        key, value = item.split("=", 1)
        out[key.strip()] = value.strip()
    return out


def _cmd_pretrain(args: argparse.Namespace) -> int:
    from rcl import train

    cfg = train.make_config(args.method, args.profile, **_parse_sets(args.set))
    if args.print_config:
        for key, value in sorted(vars(cfg).items()):
            print(f"{key} = {value!r}")
        return 0
    result = train.pretrain(cfg)
    state = "reused" if result.reused else "finished"
    if int(__import__("os").environ.get("RANK", "0")) == 0:
        print(f"{cfg.method}: {state} run at {result.path} ({result.metrics})")
    return 0


def _cmd_datasets(args: argparse.Namespace) -> int:
    from rcl import datasets

    if args.action == "list":
        print(datasets.describe())
        return 0
    if not args.name:
        print(f"datasets download needs a NAME; valid: {sorted(datasets.REGISTRY)}", file=sys.stderr)
        return 2
    path = datasets.download(args.name, args.root, allow_unverified=args.allow_unverified)
    print(f"{args.name}: {path}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m rcl",
        description="Residual Contrastive Learning (Dong et al.) reproduced: notebooks, datasets, runs.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=f"profiles: {', '.join(PROFILES)} (smoke: seconds; cpu: a laptop; gpu: paper scale)",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    from rcl import methods, train

    pt = sub.add_parser(
        "pretrain",
        help="pre-train a U-Net with RCL or a baseline",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Pre-train (or reuse a finished run of) one method. Runs are keyed by their config "
        "and stored under runs/; an interrupted run resumes from its last checkpoint. Multi-GPU: "
        "torchrun --nproc_per_node=N -m rcl pretrain ...",
        epilog="methods: "
        + ", ".join(methods.METHODS)
        + "\n\nkeys for --set: "
        + ", ".join(train.config_keys())
        + "\n\nprofile values:\n"
        + "\n".join(
            f"  {p}: " + ", ".join(f"{k}={v}" for k, v in vals.items()) for p, vals in train.PROFILE_VALUES.items()
        ),
    )
    pt.add_argument("--method", default="rcl-emd", help="one of the methods listed below (default: %(default)s)")
    pt.add_argument("--profile", choices=PROFILES, default="cpu", help="(default: %(default)s)")
    pt.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a config key (repeatable)")
    pt.add_argument("--print-config", action="store_true", help="print the resolved config and exit")
    pt.set_defaults(func=_cmd_pretrain)

    nb = sub.add_parser("notebooks", help="execute the book's notebooks with papermill")
    nb.add_argument("--profile", choices=PROFILES, default="cpu", help="notebook profile (default: cpu)")
    nb.add_argument("--out", default="book/notebooks", help="folder for executed copies (default: %(default)s)")
    nb.add_argument(
        "-p",
        "--parameter",
        nargs=2,
        action="append",
        metavar=("NAME", "VALUE"),
        help="a papermill parameter for every notebook, e.g. -p seed 1 -p dataset folder",
    )
    nb.add_argument("--quiet", action="store_true", help="no progress bars")
    nb.add_argument("notebook", nargs="*", help="notebooks to run (default: all of notebooks/, in order)")
    nb.set_defaults(func=_cmd_notebooks)

    ds = sub.add_parser("datasets", help="list or download the registered real datasets")
    ds.add_argument("action", choices=("list", "download"))
    ds.add_argument("name", nargs="?", help="dataset name (for download)")
    ds.add_argument("--root", default="data", help="download root (default: %(default)s)")
    ds.add_argument(
        "--allow-unverified",
        action="store_true",
        help="download files for which no published checksum exists",
    )
    ds.set_defaults(func=_cmd_datasets)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)
