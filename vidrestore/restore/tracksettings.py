"""Per-track settings: a different fidelity or blend for some faces, or leave some alone.

Written inline as ``"3:fidelity=0.8,blend=0.6;5:skip"`` (track IDs from ``vidrestore track``;
entries separated by ``;``, settings by ``,``) or kept in a ``.json`` or ``.toml`` file with the
same content::

    {"3": {"fidelity": 0.8, "blend": 0.6}, "5": "skip"}        # JSON

    [3]                                                         # TOML
    fidelity = 0.8
    blend = 0.6
    [5]
    skip = true

A file is read once, where the options are made, and kept as the inline text, so a batch job
counts the settings themselves, not where they were written.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import UsageError

FLAG = "--track-settings"
FILE_SUFFIXES = (".json", ".toml")
KEYS = ("fidelity", "blend", "skip")


@dataclass(frozen=True)
class TrackSetting:
    """What one track does differently: ``None`` keeps the run's own value."""

    fidelity: float | None = None
    blend: float | None = None
    skip: bool = False


def load_track_settings(text: str) -> dict[int, TrackSetting]:
    """The settings of an inline text or of the ``.json``/``.toml`` file it names."""
    if text.strip().lower().endswith(FILE_SUFFIXES):
        return _from_file(Path(text.strip()))
    return parse_track_settings(text)


def parse_track_settings(text: str) -> dict[int, TrackSetting]:
    """``"3:fidelity=0.8,blend=0.6;5:skip"`` to ``{3: TrackSetting(0.8, 0.6), 5: skip}``."""
    raw: dict[str, Any] = {}
    for entry in filter(None, (e.strip() for e in text.split(";"))):
        tid, sep, rest = entry.partition(":")
        if not sep:
            raise UsageError(f"{FLAG}: {entry!r} is not ID:SETTINGS (e.g. 3:fidelity=0.8;5:skip)")
        values: dict[str, Any] = {}
        for item in filter(None, (i.strip() for i in rest.split(","))):
            key, eq, value = (p.strip() for p in item.partition("="))
            if key == "skip" and not eq:
                values["skip"] = True
            elif not eq:
                raise UsageError(f"{FLAG}: track {tid.strip()}: {item!r} is not KEY=VALUE")
            else:
                values[key] = value
        raw[tid.strip()] = values
    return _checked(raw)


def format_track_settings(settings: dict[int, TrackSetting]) -> str:
    """The inline text of ``settings`` (IDs in order), which parses back to the same."""
    parts = []
    for tid in sorted(settings):
        s = settings[tid]
        items = ["skip"] if s.skip else []
        items += [f"{k}={v:g}" for k, v in (("fidelity", s.fidelity), ("blend", s.blend))
                  if v is not None]
        parts.append(f"{tid}:{','.join(items)}")
    return ";".join(parts)


def _from_file(path: Path) -> dict[int, TrackSetting]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"{FLAG}: cannot read {path} ({exc.strerror or exc})") from None
    decode: Callable[[str], Any]
    errors: tuple[type[ValueError], ...]
    if path.suffix.lower() == ".json":
        decode, errors = json.loads, (json.JSONDecodeError,)
    elif sys.version_info >= (3, 11):
        import tomllib

        decode, errors = tomllib.loads, (tomllib.TOMLDecodeError,)
    else:
        raise UsageError(f"{FLAG}: reading {path} needs Python 3.11 or later; use a .json file")
    try:
        data = decode(text)
    except errors as exc:
        raise UsageError(f"{FLAG}: {path} is not valid {path.suffix[1:].upper()} ({exc})"
                         ) from None
    if not isinstance(data, dict):
        raise UsageError(f"{FLAG}: {path} must map track IDs to settings")
    raw = {str(k): ({"skip": True} if v == "skip" else v) for k, v in data.items()}
    for tid, v in raw.items():
        if not isinstance(v, dict):
            raise UsageError(f"{FLAG}: track {tid}: settings must be a table of "
                             f"{', '.join(KEYS)} (or \"skip\")")
    return _checked(raw, str(path))


def _checked(raw: dict[str, Any], where: str = "") -> dict[int, TrackSetting]:
    """Validate IDs, keys and values; every message names the track and the key."""
    out: dict[int, TrackSetting] = {}
    at = f" in {where}" if where else ""
    for tid, values in raw.items():
        try:
            track = int(tid)
        except ValueError:
            raise UsageError(f"{FLAG}: {tid!r}{at} is not a track ID") from None
        if track < 1:
            raise UsageError(f"{FLAG}: {track}{at} is not a track ID (IDs count from 1)")
        if track in out:
            raise UsageError(f"{FLAG}: track {track}{at} is given twice")
        unknown = sorted(set(values) - set(KEYS))
        if unknown:
            raise UsageError(f"{FLAG}: track {track}{at}: unknown setting {unknown[0]!r} "
                             f"(known: {', '.join(KEYS)})")
        fields: dict[str, Any] = {}
        for key in ("fidelity", "blend"):
            if key in values:
                fields[key] = _unit(values[key], track, key, at)
        skip = values.get("skip", False)
        if not isinstance(skip, bool):
            raise UsageError(f"{FLAG}: track {track}{at}: skip must be true or false")
        if skip and fields:
            raise UsageError(f"{FLAG}: track {track}{at}: skip leaves the face alone; "
                             f"{', '.join(fields)} would do nothing")
        out[track] = TrackSetting(skip=skip, **fields)
    return out


def _unit(value: Any, track: int, key: str, at: str) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise UsageError(f"{FLAG}: track {track}{at}: {key}={value!r} is not a number") from None
    if not (math.isfinite(v) and 0.0 <= v <= 1.0):
        raise UsageError(f"{FLAG}: track {track}{at}: {key}={value} is outside 0-1")
    return v
