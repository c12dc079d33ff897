"""One definition per option: defaults, ranges and help live on dataclass fields.

Stage option dataclasses (faces, restore, writer, ...) declare their fields with :func:`opt`; the
CLI and the ComfyUI nodes are generated from that metadata, so they cannot disagree on a default
or a range.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any

from .errors import UsageError


def opt(
    default: Any,
    help: str,
    *,
    min: float | None = None,
    max: float | None = None,
    choices: Sequence[str] | None = None,
    flag: str | None = None,
) -> Any:
    """A dataclass field carrying its help text, range and allowed values."""
    meta = {"help": help, "min": min, "max": max, "choices": tuple(choices) if choices else None,
            "flag": flag}
    if isinstance(default, (list, dict, set)):
        return dataclasses.field(default_factory=lambda: type(default)(default), metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def validate(obj: Any) -> None:
    """Check every field of an options dataclass against its declared range and choices."""
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        meta = f.metadata
        if value is None or not meta:
            continue
        name = meta.get("flag") or "--" + f.name.replace("_", "-")
        lo, hi, choices = meta.get("min"), meta.get("max"), meta.get("choices")
        if isinstance(value, float) and not math.isfinite(value):  # NaN passes every range
            raise UsageError(f"{name}: {value} is not a finite number")
        if choices and value not in choices:
            raise UsageError(f"{name}: {value!r} is not one of {', '.join(map(str, choices))}")
        if lo is not None and value < lo:
            raise UsageError(f"{name}: {value} is below the minimum {lo}")
        if hi is not None and value > hi:
            raise UsageError(f"{name}: {value} is above the maximum {hi}")
