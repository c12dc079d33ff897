"""One definition per option: defaults, ranges and help live on dataclass fields.

Stage option dataclasses (faces, restore, writer, ...) declare their fields with :func:`opt`; the
CLI and the ComfyUI nodes are generated from that metadata (:func:`option_fields`), so they
cannot disagree on a default or a range.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
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


@dataclasses.dataclass(frozen=True)
class OptionField:
    """One option field as a host sees it: the CLI and the ComfyUI nodes both build their
    inputs from these, so they read a field's type, default and limits the same way."""

    name: str
    #: The value's type with ``| None`` taken off: bool, int, float, str, or tuple (track IDs,
    #: given as text such as ``"1,3"``).
    kind: type
    #: Whether None is a value of the field (an optional text left empty means None).
    optional: bool
    default: Any
    help: str
    min: float | None
    max: float | None
    choices: tuple[str, ...] | None
    #: The command-line flag (``--scan-every``).
    flag: str


def option_fields(cls: type) -> list[OptionField]:
    """The option fields (those declared with :func:`opt`) of an options dataclass, in order."""
    hints = typing.get_type_hints(cls)
    out = []
    for f in dataclasses.fields(cls):
        if not f.metadata:
            continue
        tp, optional = hints[f.name], False
        if typing.get_origin(tp) in (typing.Union, types.UnionType):
            args = [a for a in typing.get_args(tp) if a is not type(None)]
            tp, optional = args[0], len(args) < len(typing.get_args(tp))
        kind = tuple if typing.get_origin(tp) is tuple else tp
        meta = f.metadata
        out.append(OptionField(
            name=f.name, kind=kind, optional=optional,
            default=None if f.default is dataclasses.MISSING else f.default,
            help=meta.get("help", ""), min=meta.get("min"), max=meta.get("max"),
            choices=meta.get("choices"), flag=meta.get("flag") or "--" + f.name.replace("_", "-")))
    return out


def option_field(cls: type, name: str) -> OptionField:
    """The option field ``name`` of ``cls`` (KeyError naming the class otherwise)."""
    for f in option_fields(cls):
        if f.name == name:
            return f
    raise KeyError(f"{cls.__name__} has no option {name!r}")


def parse_ids(text: str | None, name: str = "--faces") -> tuple[int, ...] | None:
    """``"1, 3"`` to ``(1, 3)``; None or an empty text means every face."""
    text = (text or "").strip()
    if not text:
        return None
    try:
        return tuple(int(v) for v in text.replace(" ", "").split(",") if v)
    except ValueError:
        raise UsageError(f"{name}: {text!r} is not a comma-separated list of track IDs"
                         ) from None
