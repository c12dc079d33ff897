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
import typing
from collections.abc import Mapping
from typing import Any, TypeVar

from vidrestore.errors import VidrestoreError
from vidrestore.faces.options import FaceOptions
from vidrestore.options import option_field, option_fields
from vidrestore.options import parse_ids as _parse_ids
from vidrestore.restore.options import RestoreOptions

T = TypeVar("T")
InputSpec = tuple[Any, ...]

FLOAT_STEP = 0.01
INT_MAX = 2**31 - 1


@functools.cache
def _flag_names() -> dict[str, str]:
    """Command-line flag -> node input name, for every option the nodes take."""
    return {f.flag: f.name for cls in (FaceOptions, RestoreOptions) for f in option_fields(cls)}


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
    f = option_field(cls, name)
    spec: dict[str, Any] = {"tooltip": node_text(f.help)}
    if f.choices:
        spec["default"] = f.default
        spec.update(extra)
        return list(f.choices), spec
    if f.kind is bool:
        kind = "BOOLEAN"
        spec["default"] = bool(f.default)
    elif f.kind is int:
        kind = "INT"
        spec.update(default=int(f.default or 0), step=1,
                    min=int(f.min) if f.min is not None else 0,
                    max=int(f.max) if f.max is not None else INT_MAX)
    elif f.kind is float:
        kind = "FLOAT"
        spec.update(default=float(f.default or 0.0), step=FLOAT_STEP)
        if f.min is not None:
            spec["min"] = float(f.min)
        if f.max is not None:
            spec["max"] = float(f.max)
    else:  # text, and lists of track IDs typed as "1,3"
        kind = "STRING"
        spec["default"] = "" if f.default is None else str(f.default)
    spec.update(extra)
    return kind, spec


def fields_inputs(cls: type, names: typing.Iterable[str] | None = None, *,
                  exclude: typing.Iterable[str] = ()) -> dict[str, InputSpec]:
    """Input specs of several fields of ``cls`` (all annotated fields by default)."""
    skip = set(exclude)
    chosen = names if names is not None else [f.name for f in option_fields(cls)]
    return {n: field_input(cls, n) for n in chosen if n not in skip}


def parse_ids(text: str, name: str = "faces") -> tuple[int, ...] | None:
    """``"1, 3"`` to ``(1, 3)``; an empty text means every face."""
    return _parse_ids(text, name)


def options_from(cls: type[T], values: Mapping[str, Any], base: T | None = None) -> T:
    """An instance of ``cls`` from node input values (fields absent from ``values`` keep the
    value of ``base``, or their default)."""
    kwargs: dict[str, Any] = {}
    for f in option_fields(cls):
        if f.name not in values:
            continue
        v = values[f.name]
        if f.kind is tuple and isinstance(v, str):
            v = parse_ids(v, f.name)
        elif f.kind is str and f.optional and v == "":
            v = None  # optional text left empty
        kwargs[f.name] = v
    if base is not None:
        return dataclasses.replace(base, **kwargs)  # type: ignore[type-var]
    return cls(**kwargs)
