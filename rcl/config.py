"""Parameter checking and the device, shared by the notebooks and the command line.

Every notebook has one ``parameters`` cell with a ``profile`` — ``smoke`` (seconds, for tests),
``cpu`` (a laptop; the default) or ``gpu`` (paper scale) — and explicit overrides that default to
``None``. :func:`settings` resolves them: the profile's values (:mod:`rcl.profiles`, the one table) first,
then any override that is not ``None``. Unknown profiles, keys or choices raise errors that list what
would be valid. :func:`autocast` and :func:`numerics` say how the project computes on this machine.

Layer: configuration (imports the profile table and the method registry; never the engine or evaluation).
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterable
from typing import Any

import torch

from rcl import profiles as _profiles
from rcl.methods import NAMED_CONFIGS, NAMES, check_methods
from rcl.profiles import ALL_METHODS, ALL_TASKS, CPU_METHODS, DENSE_CL, PROFILES, PROXY_KEYS, TABLE

__all__ = [
    "CPU_METHODS",
    "DENSE_CL",
    "ALL_METHODS",
    "ALL_TASKS",
    "METHOD_NAMES",
    "NAMED_CONFIGS",
    "PROXY_KEYS",
    "PROFILES",
    "SETTINGS",
    "autocast",
    "check_choice",
    "check_methods",
    "check_number",
    "check_positive",
    "check_profile",
    "cpu_has_bf16",
    "default_device",
    "device",
    "default_jobs",
    "gpu_ids",
    "numerics",
    "parse_value",
    "progress_disabled",
    "settings",
    "status",
]

# The profile table and the method registry have their own homes; these names are re-exported for callers.
SETTINGS = TABLE
METHOD_NAMES = NAMES


def check_choice(name: str, value: Any, valid: Iterable[Any]) -> Any:
    """Return ``value`` if it is one of ``valid``; otherwise raise naming the parameter and the choices."""
    valid = tuple(valid)
    if value not in valid:
        raise ValueError(f"parameter {name}={value!r} is not valid; choose one of {valid}")
    return value


def check_profile(profile: str) -> str:
    """Validate a ``profile`` parameter."""
    return check_choice("profile", profile, PROFILES)


def settings(section: str, profile: str, **overrides: Any) -> dict[str, Any]:
    """The values of ``section`` at ``profile``, with every non-``None`` override applied."""
    check_choice("section", section, TABLE)
    values = _profiles.values(section, check_profile(profile))  # a copy; raises for a profile the section lacks
    unknown = sorted(set(overrides) - set(values))
    if unknown:
        raise ValueError(f"unknown parameter(s) {unknown} for {section!r}; valid: {sorted(values)}")
    for key, value in overrides.items():
        if value is None:
            continue
        allowed = {type(p[key]) for p in TABLE[section].values() if p[key] is not None} or {int}
        if float in allowed:
            allowed.add(int)
        if type(value) not in allowed:  # exact types: True is no int here
            names = " or ".join(sorted(t.__name__ for t in allowed))
            raise ValueError(f"parameter {key}={value!r} must be {names} (or None for the profile's value)")
        check_number(key, value)
        values[key] = value
    return values


#: Notebook parameters that are sizes or counts: at least 1 (the others — seeds, σ, label counts — at least 0).
_AT_LEAST_ONE = ("max_side", "tile", "crop", "task_size", "n_draws", "repeats", "gap_crop", "steps", "trials",
                 "n_labels", "label_size", "head_steps", "test_crop")


def check_positive(name: str, value: Any, unit: str = "") -> Any:
    """``value`` if it is a number > 0; otherwise raise naming the parameter (``unit`` says what it measures)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ValueError(f"parameter {name}={value!r} is not valid: it must be a number > 0"
                         + (f" ({unit})" if unit else ""))
    return value


def check_number(name: str, value: Any) -> Any:
    """``value`` if every number in it is valid for parameter ``name`` — sizes and counts at least 1, every
    other number at least 0 — else raise naming the parameter and what is valid."""
    numbers = value if isinstance(value, (list, tuple)) else [value]
    low = 1 if name in _AT_LEAST_ONE else 0
    for v in numbers:
        if isinstance(v, (int, float)) and not isinstance(v, bool) and not v >= low:
            raise ValueError(f"parameter {name}={value!r} is not valid: it must be {'>= 1' if low else '>= 0'}"
                             f"{' (or None for the profile value)' if low else ''}")
    return value


def parse_value(name: str, value: Any, default: Any, optional: bool = False) -> Any:
    """A command-line string turned into the type of a field whose default is ``default``: tuples from comma
    lists, booleans from true/false, numbers; ``none`` is None where the field is ``optional`` or its default
    is not a string (for a string field such as ``g_e`` or ``skip``, "none" is a value of its own). Values
    that are not strings are returned as they are."""
    if not isinstance(value, str) or (isinstance(default, str) and not optional):
        return value
    if value.lower() in ("none", "null") and (optional or default is None or not isinstance(default, str)):
        return None
    if isinstance(default, bool):
        if value.lower() not in ("true", "false", "1", "0"):
            raise ValueError(f"{name}={value!r}: expected true or false")
        return value.lower() in ("true", "1")
    if isinstance(default, tuple):
        return tuple(v for v in value.split(",") if v)
    for kind, word in ((int, "an integer"), (float, "a number")):
        if isinstance(default, kind):
            try:
                return kind(value)
            except ValueError as err:
                raise ValueError(f"{name}={value!r}: expected {word}") from err
    return value


def default_device() -> torch.device:
    """CUDA if available, then Apple's MPS, then the CPU."""
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def device(name: str | torch.device | None = None) -> torch.device:
    """The device named by ``name`` (``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"``), checked to be one this
    machine has, with a one-line error naming what is valid here; :func:`default_device` for None or ``""``."""
    if name is None or name == "":
        return default_device()
    n = torch.cuda.device_count() if torch.cuda.is_available() else 0
    here = ["cpu", *(f"cuda:{i}" for i in range(n))]
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        here.append("mps")
    try:
        dev = torch.device(name)
    except (RuntimeError, TypeError):
        raise ValueError(f"device={name!r}: not a device name; valid here: {', '.join(here)}") from None
    if dev.type == "cuda":
        if n == 0 or (dev.index is not None and dev.index >= n):
            raise ValueError(f"device={name!r}: this machine has {n} CUDA device(s); valid here: {', '.join(here)}")
    elif dev.type != "cpu" and dev.type not in here:
        raise ValueError(f"device={name!r}: not available on this machine; valid here: {', '.join(here)}")
    return dev


def cpu_has_bf16() -> bool:
    """Whether this CPU computes bfloat16 natively (x86 ``avx512_bf16`` or AMX flags; Linux only)."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((line for line in f if line.startswith("flags")), "").split()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def autocast(device: torch.device | str, enabled: bool = True):
    """The mixed-precision context the project trains in: bfloat16 autocast on a CUDA GPU that supports it
    and on a CPU with native bfloat16 units (:func:`cpu_has_bf16`), else none."""
    device = torch.device(device)
    if enabled and device.type == "cpu" and cpu_has_bf16():
        return torch.autocast("cpu", dtype=torch.bfloat16)
    if enabled and device.type == "cuda" and torch.cuda.is_bf16_supported():
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def _fp32_modes() -> str:
    """How float32 matrix products and convolutions may run on a GPU, as PyTorch's settings say: the
    ``fp32_precision`` of the whole, of matmul and of cuDNN convolutions (``"ieee"``, ``"tf32"`` or ``"none"``,
    inherit), or the legacy ``allow_tf32`` flags where a PyTorch has no such settings. Raw, not resolved: two
    settings that compute alike may give two keys (a recomputation), never one key for two computations."""
    b = torch.backends
    try:
        return f"all={b.fp32_precision},matmul={b.cuda.matmul.fp32_precision},conv={b.cudnn.conv.fp32_precision}"
    except AttributeError:  # an older PyTorch: only the legacy flags
        return f"matmul={int(b.cuda.matmul.allow_tf32)},conv={int(b.cudnn.allow_tf32)}"


def numerics(device: torch.device | str | None = None, amp: bool = True) -> str:
    """What beyond the code and settings decides the numbers computed on ``device`` (default: this machine's).
    On a CPU: the autocast precision where there is one (``"cpu-bf16"`` with native bfloat16 units), else ``""``
    (float32). On a GPU: ``"cuda-bf16"``, ``"cuda-fp16"`` or ``"cuda-fp32"`` (``amp=False``), then
    ``"-fp32:"`` and the float32 modes of :func:`_fp32_modes` — whether float32 products and convolutions may
    use TF32, which changes the float32 parts of an autocast step and every step without one (PyTorch's
    default lets convolutions use it: ``"cuda-bf16-fp32:all=none,matmul=none,conv=tf32"``). Part of run,
    evaluation and result keys, so numbers computed one way are never served for another."""
    device = torch.device(device) if device is not None else default_device()
    if device.type == "cuda":
        precision = ("cuda-bf16" if torch.cuda.is_bf16_supported() else "cuda-fp16") if amp else "cuda-fp32"
        return f"{precision}-fp32:{_fp32_modes()}"
    if not amp:
        return ""
    return "cpu-bf16" if device.type == "cpu" and cpu_has_bf16() else ""


def gpu_ids() -> list[str]:
    """The CUDA devices a process may use: those of ``CUDA_VISIBLE_DEVICES`` where it is set, else every one."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return [v for v in visible.split(",") if v.strip()]
    return [str(i) for i in range(torch.cuda.device_count())] if torch.cuda.is_available() else []


def default_jobs() -> int:
    """How many parallel jobs a sweep or a study runs: one per CUDA GPU if any, else a quarter of the CPU
    cores (at least 1)."""
    gpus = gpu_ids()
    return len(gpus) if gpus else max(1, (os.cpu_count() or 1) // 4)


def progress_disabled(progress: bool = True) -> bool:
    """Whether a progress bar stays hidden: asked for none, or ``TQDM_DISABLE`` set (the book build)."""
    return not progress or os.environ.get("TQDM_DISABLE", "").lower() in ("1", "true", "yes")


def status(message: str) -> None:
    """One line of progress on stderr where progress bars are switched off (``TQDM_DISABLE``, as when the
    book's notebooks execute): ``python -m rcl notebooks`` streams it to the terminal, and the book leaves
    stderr out of its pages."""
    if os.environ.get("TQDM_DISABLE"):
        print(message, file=sys.stderr, flush=True)
