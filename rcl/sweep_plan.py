"""What a sweep is, before anything runs: its parameter values, its grid, its file names, its manifest.

:func:`parse_values` reads a command-line value list, :func:`grid` expands swept values into combinations,
:func:`check_names` checks them against the notebook's ``parameters`` cell, :func:`execution_name` names
each execution's notebook, :func:`default_out_dir` names the output folder, and :func:`plan` checks a whole
sweep (profile, grid, names, and the manifest of an earlier sweep in the same folder) and lists its
executions (:class:`Execution`), marking those whose notebook already exists as done. :mod:`rcl.sweep`
executes the plan and collects the results; it re-exports everything here, so ``rcl.sweep`` is the one
name to use.

Layer: outer shell (imports :mod:`rcl.cache` and the configuration; nbformat lazily).
"""

from __future__ import annotations

import ast
import itertools
import json
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rcl import cache
from rcl.config import check_profile

__all__ = [
    "MANIFEST",
    "RESULTS",
    "Execution",
    "SweepError",
    "check_names",
    "default_out_dir",
    "execution_name",
    "grid",
    "notebook_parameters",
    "parse_value",
    "parse_values",
    "plan",
    "read_manifest",
]

MANIFEST = "sweep.json"
RESULTS = "results.csv"
_SAFE = re.compile(r"[A-Za-z0-9_+-][A-Za-z0-9._+-]{0,31}")


class SweepError(ValueError):
    """A sweep that cannot start (bad notebook, parameter, value or output folder); the message says why."""


# ---------------------------------------------------------------------------------------------- parameters


def parse_value(text: str) -> Any:
    """Papermill-style parameter value: int, float, bool (any case), None/null, else the string itself."""
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


def _split_top_level(text: str) -> list[str]:
    """Split at commas that are not inside brackets, braces or quotes."""
    items, depth, quote, start, i = [], 0, "", 0, 0
    while i < len(text):
        ch = text[i]
        if quote:
            if ch == "\\":
                i += 1
            elif ch == quote:
                quote = ""
        elif ch in "\"'":
            quote = ch
        elif ch in "[{(":
            depth += 1
        elif ch in "]})":
            depth -= 1
        elif ch == "," and depth == 0:
            items.append(text[start:i])
            start = i + 1
        i += 1
    items.append(text[start:])
    return items


def _literal(text: str) -> Any:
    """A JSON or Python literal (``{"tau": 0.1}``, ``{'tau': 0.1}``, ``["n2n"]``, ``"a,b"``), as JSON data."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        try:
            value = ast.literal_eval(text)
        except (ValueError, SyntaxError) as e:
            raise ValueError(f"cannot read {text!r} as JSON or a Python literal ({e})") from None
    try:
        return json.loads(json.dumps(value))  # tuples become lists; sets, bytes, ... are refused
    except TypeError:
        raise ValueError(f"{text!r} is not a JSON value (use numbers, strings, lists, dicts)") from None


def parse_values(text: str) -> list[Any]:
    """The values one ``-p NAME VALUES`` gives: a list of one value (fixed) or several (swept).

    VALUES is split at commas outside brackets, braces and quotes; each item starting with ``[``, ``{`` or a
    quote is a JSON (or Python) literal, any other item a papermill-style value (:func:`parse_value`).
    A single list whose items are all dicts is a sweep over those dicts (no notebook parameter takes a
    list of dicts). So ``0,1,2`` sweeps three ints, ``'{"tau": 0.1}'`` is one dict,
    ``'{"tau": 0.1},{"tau": 1}'`` and ``'[{"tau": 0.1}, {"tau": 1}]'`` sweep two dicts, ``'["n2n"]'`` is one
    list and ``'["n2n"],["n2n","rcl-emd"]'`` sweeps two lists; ``'"a,b"'`` is one string with a comma.
    """
    values = []
    for item in _split_top_level(text):
        item = item.strip()
        if not item:
            raise ValueError(f"empty value in {text!r}")
        values.append(_literal(item) if item[0] in "[{\"'" else parse_value(item))
    if len(values) == 1 and isinstance(values[0], list) and values[0] and all(isinstance(v, dict) for v in values[0]):
        values = values[0]
    seen: list[str] = []
    for v in values:
        canon = json.dumps(v, sort_keys=True)
        if canon in seen:
            raise ValueError(f"{v!r} is listed twice in {text!r}")
        seen.append(canon)
    return values


def grid(params: Mapping[str, Sequence[Any]]) -> list[dict[str, Any]]:
    """Every combination of the swept ``params`` (name → values), the first name varying slowest."""
    for name, values in params.items():
        if isinstance(values, (str, bytes)) or not isinstance(values, Sequence) or not values:
            raise ValueError(f"parameter {name}: give a non-empty list of values, got {values!r}")
    names = list(params)
    return [dict(zip(names, combo)) for combo in itertools.product(*(params[n] for n in names))]


def notebook_parameters(notebook: str | os.PathLike) -> dict[str, Any]:
    """The names the notebook's ``parameters`` cell assigns, with their defaults (the source text where the
    default is not a literal)."""
    import nbformat

    path = Path(notebook)
    if not path.is_file():
        raise SweepError(f"notebook {str(path)!r} does not exist")
    try:
        nb = nbformat.read(path, as_version=4)
    except ValueError as err:  # not UTF-8 or not JSON (nbformat's NotJSONError is a ValueError)
        first = str(err).splitlines()[0][:120] if str(err) else type(err).__name__
        raise SweepError(f"{path}: not a readable notebook ({first})") from err
    cells = [c for c in nb.cells if c.cell_type == "code" and "parameters" in c.metadata.get("tags", [])]
    if not cells:
        raise SweepError(f"{path}: no code cell tagged 'parameters', so papermill cannot set parameters")
    out: dict[str, Any] = {}
    for node in ast.parse(cells[0].source).body:
        if isinstance(node, ast.Assign):
            targets = node.targets
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            targets = [node.target]
        else:
            continue
        for target in targets:
            if isinstance(target, ast.Name):
                try:
                    out[target.id] = ast.literal_eval(node.value)
                except ValueError:
                    out[target.id] = ast.unparse(node.value)
    return out


def check_names(notebook: str | os.PathLike, names: Sequence[str]) -> None:
    """Raise :class:`SweepError` naming any of ``names`` the notebook's ``parameters`` cell does not define."""
    valid = notebook_parameters(notebook)
    unknown = [n for n in names if n not in valid]
    if unknown:
        listed = ", ".join(f"{k}={v!r}" for k, v in valid.items())
        raise SweepError(
            f"{Path(notebook).name} has no parameter {', '.join(map(repr, unknown))}; its parameters (with "
            f"defaults) are: {listed}"
        )


# --------------------------------------------------------------------------------------------------- names


def _canon(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _slug(value: Any) -> str:
    """A file-name-safe rendering: short plain values as they are, anything else readable part + hash."""
    if value is None or isinstance(value, (bool, int, float)):
        text = str(value)
        if _SAFE.fullmatch(text):
            return text
    if isinstance(value, str) and _SAFE.fullmatch(value):
        return value
    readable = re.sub(r"[^A-Za-z0-9.+-]+", "_", _canon(value)).strip("_.")[:24].rstrip("_.")
    digest = cache.key(value, length=8)
    return f"{readable}-{digest}" if readable else digest


def execution_name(stem: str, combo: Mapping[str, Any]) -> str:
    """``<stem>--<name>=<value>--…`` (no extension) for one combination of swept values."""
    return "--".join([stem, *(f"{k}={_slug(v)}" for k, v in combo.items())])


def default_out_dir(notebook: str | os.PathLike, profile: str, fixed: Mapping[str, Any]) -> Path:
    """``build/sweeps/<stem>-<profile>-<hash of the fixed parameters>``.

    The swept values are not part of the folder name (each execution's file name carries them), so adding
    a value to a sweep reuses the executions that already finished.
    """
    stem = Path(notebook).stem
    return Path("build") / "sweeps" / f"{stem}-{profile}-{cache.key({'notebook': stem, **fixed}, length=8)}"


def _cell(value: Any) -> Any:
    """A parameter value as a table cell: plain values as they are, lists and dicts as sorted JSON text."""
    return _canon(value) if isinstance(value, (list, dict)) else value


# ------------------------------------------------------------------------------------------------ manifest


def read_manifest(out_dir: str | os.PathLike) -> dict[str, Any] | None:
    """The ``sweep.json`` of the sweep in ``out_dir``, or None."""
    path = Path(out_dir) / MANIFEST
    if not path.exists():
        return None
    try:
        return cache.read_json(path)
    except ValueError as err:  # JSONDecodeError, UnicodeDecodeError: a file cut short or not this package's
        raise ValueError(f"{path}: not a readable sweep manifest ({err}); remove it and run the sweep again") from err


@dataclass
class Execution:
    """One execution of a sweep: its name, its swept values, and (once run) how it went."""

    name: str
    parameters: dict[str, Any]
    status: str = "pending"  # pending, done, failed
    seconds: float | None = None
    error: str | None = None
    skipped: bool = False

    def record(self) -> dict[str, Any]:
        """The execution's entry in the manifest (``sweep.json``)."""
        return {
            "name": self.name,
            "parameters": self.parameters,
            "status": self.status,
            "skipped": self.skipped,
            "seconds": None if self.seconds is None else round(self.seconds, 1),
            "error": self.error,
            "notebook": f"{self.name}.ipynb",
            "failed_notebook": f"{self.name}.failed.ipynb" if self.status == "failed" else None,
            "results_log": f"logs/{self.name}.results.jsonl",
            "output": f"logs/{self.name}.out",
        }


def _check_grid(params_grid: Sequence[Mapping[str, Any]], fixed: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The combinations of ``params_grid`` (``[{}]`` for none), checked: no profile among the parameters,
    every combination sets the same names in the same order, and none of them is also fixed."""
    if "profile" in fixed or any("profile" in c for c in params_grid):
        raise SweepError("set the profile with profile=... (--profile), not as a notebook parameter")
    combos = [dict(c) for c in params_grid] or [{}]
    swept = list(combos[0])
    if any(list(c) != swept for c in combos):
        raise SweepError("every combination of the grid must set the same parameters, in the same order")
    both = sorted(set(swept) & set(fixed))
    if both:
        raise SweepError(f"parameter(s) {both} are both swept and fixed")
    return combos


def _check_previous(out_dir: Path, notebook: Path, profile: str, fixed: Mapping[str, Any]) -> dict[str, dict]:
    """The manifest entries of an earlier sweep in ``out_dir`` by name; an error if that sweep had other
    settings (its finished notebooks would be taken for this sweep's)."""
    previous = read_manifest(out_dir)
    if previous is None:
        return {}
    mine = {"notebook": notebook.name, "profile": profile, "fixed": dict(fixed)}
    theirs = {
        "notebook": Path(previous.get("notebook", "")).name,
        "profile": previous.get("profile"),
        "fixed": previous.get("fixed"),
    }
    if _canon(mine) != _canon(theirs):
        raise SweepError(
            f"{out_dir} holds a sweep with other settings ({theirs}); this one is {mine}. Its finished "
            "notebooks would be taken for this sweep's: choose another output folder or remove that one"
        )
    return {e["name"]: e for e in previous.get("executions", [])}


def plan(
    notebook: Path, params_grid: Sequence[Mapping[str, Any]], out_dir: Path, profile: str, fixed: Mapping[str, Any]
) -> tuple[list[dict[str, Any]], list[Execution]]:
    """Check a sweep and list its executions: ``(combinations, executions)``. An execution whose notebook
    is in ``out_dir`` already is marked done (``skipped``), with the time the earlier sweep recorded."""
    check_profile(profile)
    combos = _check_grid(params_grid, fixed)
    check_names(notebook, [*combos[0], *fixed])
    executions = [Execution(execution_name(notebook.stem, c), c) for c in combos]
    names = [e.name for e in executions]
    if len(set(names)) != len(names):
        dup = sorted({n for n in names if names.count(n) > 1})
        raise SweepError(f"two combinations would share the file name {dup[0]}.ipynb; make the values distinct")
    before = _check_previous(out_dir, notebook, profile, fixed)
    for e in executions:
        if (out_dir / f"{e.name}.ipynb").exists():
            e.status, e.skipped = "done", True
            e.seconds = before.get(e.name, {}).get("seconds")
    return combos, executions
