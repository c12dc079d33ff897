"""Click options generated from the stage option dataclasses (one definition of each option)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, TypeVar

import click

from ..errors import UsageError
from ..options import OptionField, option_fields, parse_ids

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T", bound="DataclassInstance")


def _click_type(f: OptionField) -> Any:
    if f.choices:
        return click.Choice(list(f.choices))
    if f.kind is int:
        return click.IntRange(None if f.min is None else int(f.min),
                              None if f.max is None else int(f.max))
    if f.kind is float:
        return click.FloatRange(f.min, f.max)
    return str  # text, and track IDs ("1,3", parsed in build)


def add_options(cls: type, *, exclude: Iterable[str] = (), prefix: str = "") -> Callable[[F], F]:
    """Decorator adding one click option per option field of the dataclass ``cls``."""
    skip = set(exclude)

    def deco(fn: F) -> F:
        for f in reversed(option_fields(cls)):
            if f.name in skip:
                continue
            flag = f.flag if prefix == "" else "--" + (prefix + f.name).replace("_", "-")
            if f.kind is bool:
                fn = click.option(f"{flag}/--no-{flag[2:]}", prefix + f.name, default=f.default,
                                  show_default=True, help=f.help)(fn)
            else:
                fn = click.option(flag, prefix + f.name, type=_click_type(f), default=f.default,
                                  show_default=f.default is not None, help=f.help)(fn)
        return fn

    return deco


fps_option = click.option(
    "--fps", default=None,
    help="Frame rate of an image-sequence INPUT (a folder or frame_%06d.png), e.g. 24 or "
         "24000/1001; videos carry their own.")
"""``--fps`` of the commands that read one INPUT (the reader refuses it for a video file)."""


def build(cls: type[T], values: dict[str, Any], *, prefix: str = "") -> T:
    """An instance of ``cls`` from the click values of its generated options."""
    kwargs = {}
    for f in option_fields(cls):
        key = prefix + f.name
        if key not in values:
            continue
        v = values[key]
        if f.kind is tuple:
            try:
                v = parse_ids(v)
            except UsageError:
                raise click.BadParameter(f"{v!r} is not a comma-separated list of track IDs"
                                         ) from None
        kwargs[f.name] = v
    return cls(**kwargs)
