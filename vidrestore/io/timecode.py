"""Parse the user's ``--start`` / ``--end`` values into exact seconds.

Accepted forms: plain seconds (``90``, ``90.5``), clock time (``1:30``, ``01:02:03.250``) and
frame numbers (``120f``), which need the stream's frame rate. Seconds are returned as
:class:`~fractions.Fraction` so that comparisons with stream timestamps stay exact.
"""

from __future__ import annotations

import re
from fractions import Fraction

from ..errors import UsageError

TimeValue = str | int | float | Fraction

_CLOCK = re.compile(r"^(?:(\d+):)?(\d+):(\d+(?:\.\d+)?)$")
_SECONDS = re.compile(r"^\d+(?:\.\d+)?$")
_FRAMES = re.compile(r"^(\d+)f$")

FORMS = "seconds (90, 90.5), [HH:]MM:SS[.fff] (1:30, 01:02:03.250) or frames (120f)"


def parse_time(value: TimeValue, *, rate: Fraction | None = None, name: str = "time") -> Fraction:
    """Seconds from the start of the video for one ``--start``/``--end`` value.

    ``rate`` (frames per second) is needed only for the ``120f`` form; frames are converted
    with it, which is exact for constant-rate video. ``name`` appears in error messages.
    """
    if isinstance(value, bool):
        raise UsageError(f"{name}: {value!r} is not a time; use {FORMS}")
    if isinstance(value, float):
        seconds = Fraction(repr(value))  # 0.2 means 1/5 s, not the binary double nearest it
    elif isinstance(value, (int, Fraction)):
        seconds = Fraction(value)
    else:
        seconds = _parse_text(value.strip(), rate, name)
    if seconds < 0:
        raise UsageError(f"{name}: {value!r} is negative; use {FORMS}")
    return seconds


def _parse_text(text: str, rate: Fraction | None, name: str) -> Fraction:
    if _SECONDS.match(text):
        return Fraction(text)
    clock = _CLOCK.match(text)
    if clock:
        hours, minutes, secs = clock.groups()
        if (int(minutes) >= 60 and hours is not None) or Fraction(secs) >= 60:
            raise UsageError(f"{name}: {text!r} has minutes or seconds of 60 or more")
        return Fraction(int(hours or 0) * 3600 + int(minutes) * 60) + Fraction(secs)
    frames = _FRAMES.match(text)
    if frames:
        if not rate:
            raise UsageError(f"{name}: {text!r} is a frame number but the frame rate is unknown")
        return Fraction(int(frames.group(1))) / Fraction(rate)
    raise UsageError(f"{name}: {text!r} is not a time; use {FORMS}")
