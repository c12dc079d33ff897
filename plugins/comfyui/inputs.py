"""ComfyUI input declarations generated from the library's option dataclasses.

Every option field carries its default, range, allowed values and help (``vidrestore.options.opt``);
the node inputs are made from that metadata, so the server's checks of ``min``/``max`` and combo
values are the library's own, and the tooltips are the CLI's help texts put in the nodes' words
(:func:`node_text`: input names instead of ``--flags``).
"""

from __future__ import annotations

import dataclasses
import functools
import re
import types
import typing
from collections.abc import Mapping
from typing import Any, TypeVar

from vidrestore.errors import UsageError, VidrestoreError
from vidrestore.faces.options import FaceOptions
from vidrestore.restore.options import RestoreOptions

T = TypeVar("T")
InputSpec = tuple[Any, ...]

FLOAT_STEP = 0.01
INT_MAX = 2**31 - 1


def _field(cls: type, name: str) -> dataclasses.Field[Any]:
    for f in dataclasses.fields(cls):
        if f.name == name:
            return f
    raise KeyError(f"{cls.__name__} has no option {name!r}")


def _base_type(tp: Any) -> Any:
    """``X | None`` to ``X``."""
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return args[0]
    return tp


@functools.cache
def _flag_names() -> dict[str, str]:
    """Command-line flag -> node input name, for every option the nodes take."""
    out = {}
    for cls in (FaceOptions, RestoreOptions):
        for f in dataclasses.fields(cls):
            out[f.metadata.get("flag") or "--" + f.name.replace("_", "-")] = f.name
    return out


_WORDS = (
    (re.compile(r"``([^`]+)``"), r"\1"),  # reST literals in docstrings
    (re.compile(r"`vidrestore track`"), "the Track Faces node"),
    (re.compile(r"`([^`]+)`"), r"\1"),
)


def node_text(text: str) -> str:
    """A help text or message of the library in the nodes' words: ``--scan-every`` becomes
    ``scan_every`` (the input's name), ``vidrestore track`` the Track Faces node, and reST
    markup goes."""
    for pattern, repl in _WORDS:
        text = pattern.sub(repl, text)
    names = _flag_names()
    return re.sub(r"--[a-z][a-z0-9-]*", lambda m: names.get(m.group(0), m.group(0)), text)


def in_node_words(fn: typing.Callable[..., T]) -> typing.Callable[..., T]:
    """Run a node function with the library's errors put in the nodes' words."""
    @functools.wraps(fn)
    def run(*args: Any, **kwargs: Any) -> T:
        try:
            return fn(*args, **kwargs)
        except VidrestoreError as exc:
            text = node_text(str(exc))
            if text == str(exc):
                raise
            raise type(exc)(text) from exc
    return run


def field_input(cls: type, name: str, **extra: Any) -> InputSpec:
    """The ComfyUI input spec (``(type, {default, min, max, ...})``) of one option field."""
    f = _field(cls, name)
    tp = _base_type(typing.get_type_hints(cls)[name])
    meta = f.metadata
    default = None if f.default is dataclasses.MISSING else f.default
    spec: dict[str, Any] = {"tooltip": node_text(meta.get("help", ""))}
    lo, hi = meta.get("min"), meta.get("max")
    if meta.get("choices"):
        spec["default"] = default
        spec.update(extra)
        return list(meta["choices"]), spec
    if tp is bool:
        kind = "BOOLEAN"
        spec["default"] = bool(default)
    elif tp is int:
        kind = "INT"
        spec.update(default=int(default), step=1, min=int(lo) if lo is not None else 0,
                    max=int(hi) if hi is not None else INT_MAX)
    elif tp is float:
        kind = "FLOAT"
        spec.update(default=float(default), step=FLOAT_STEP)
        if lo is not None:
            spec["min"] = float(lo)
        if hi is not None:
            spec["max"] = float(hi)
    else:  # text, and lists of track IDs typed as "1,3"
        kind = "STRING"
        spec["default"] = "" if default is None else str(default)
    spec.update(extra)
    return kind, spec


def fields_inputs(cls: type, names: typing.Iterable[str] | None = None, *,
                  exclude: typing.Iterable[str] = ()) -> dict[str, InputSpec]:
    """Input specs of several fields of ``cls`` (all annotated fields by default)."""
    skip = set(exclude)
    chosen = names if names is not None else [
        f.name for f in dataclasses.fields(cls) if f.metadata]
    return {n: field_input(cls, n) for n in chosen if n not in skip}


def parse_ids(text: str, name: str = "faces") -> tuple[int, ...] | None:
    """``"1, 3"`` to ``(1, 3)``; an empty text means every face."""
    text = text.strip()
    if not text:
        return None
    try:
        return tuple(int(v) for v in text.replace(" ", "").split(",") if v)
    except ValueError:
        raise UsageError(f"{name}: {text!r} is not a comma-separated list of track IDs"
                         ) from None


def options_from(cls: type[T], values: Mapping[str, Any], base: T | None = None) -> T:
    """An instance of ``cls`` from node input values (fields absent from ``values`` keep the
    value of ``base``, or their default)."""
    hints = typing.get_type_hints(cls)
    kwargs: dict[str, Any] = {}
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        if f.name not in values:
            continue
        v = values[f.name]
        tp = hints[f.name]
        base_tp = _base_type(tp)
        if typing.get_origin(base_tp) is tuple and isinstance(v, str):
            v = parse_ids(v, f.name)
        elif base_tp is str and tp is not base_tp and v == "":
            v = None  # optional text left empty
        kwargs[f.name] = v
    if base is not None:
        return dataclasses.replace(base, **kwargs)  # type: ignore[type-var]
    return cls(**kwargs)
