"""Click options generated from the stage option dataclasses (one definition of each option)."""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")


def _parse_ids(value: str | None) -> tuple[int, ...] | None:
    if value is None or value == "":
        return None
    try:
        return tuple(int(v) for v in value.replace(" ", "").split(",") if v)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a comma-separated list of track IDs"
                                 ) from None


def _click_type(tp: Any, meta: typing.Mapping[str, Any]) -> Any:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        tp = args[0]
        origin = typing.get_origin(tp)
    if meta.get("choices"):
        return click.Choice(list(meta["choices"]))
    lo, hi = meta.get("min"), meta.get("max")
    if tp is int:
        return click.IntRange(lo, hi)
    if tp is float:
        return click.FloatRange(lo, hi)
    if origin is tuple:
        return str  # parsed by _parse_ids
    return str


def add_options(cls: type, *, exclude: Iterable[str] = (), prefix: str = "") -> Callable[[F], F]:
    """Decorator adding one click option per field of the dataclass ``cls``."""
    hints = typing.get_type_hints(cls)
    skip = set(exclude)

    def deco(fn: F) -> F:
        for f in reversed(dataclasses.fields(cls)):
            if f.name in skip or not f.metadata:
                continue
            flag = f.metadata.get("flag") or "--" + (prefix + f.name).replace("_", "-")
            dest = prefix + f.name
            tp = hints[f.name]
            default = None if f.default is dataclasses.MISSING else f.default
            help_ = f.metadata.get("help", "")
            if tp is bool:
                fn = click.option(f"{flag}/--no-{flag[2:]}", dest, default=default,
                                  show_default=True, help=help_)(fn)
            else:
                fn = click.option(flag, dest, type=_click_type(tp, f.metadata), default=default,
                                  show_default=default is not None, help=help_)(fn)
        return fn

    return deco


fps_option = click.option(
    "--fps", default=None,
    help="Frame rate of an image-sequence INPUT (a folder or frame_%06d.png), e.g. 24 or "
         "24000/1001; videos carry their own.")
"""``--fps`` of the commands that read one INPUT (the reader refuses it for a video file)."""


def build(cls: type[T], values: dict[str, Any], *, prefix: str = "") -> T:
    """An instance of ``cls`` from the click values of its generated options."""
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for f in dataclasses.fields(cls):
        key = prefix + f.name
        if key not in values:
            continue
        v = values[key]
        if typing.get_origin(hints[f.name]) in (typing.Union, types.UnionType) and any(
            typing.get_origin(a) is tuple for a in typing.get_args(hints[f.name])
        ):
            v = _parse_ids(v)
        kwargs[f.name] = v
    return cls(**kwargs)
