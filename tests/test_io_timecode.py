"""``--start``/``--end`` values: every accepted form, exact results, one-line refusals."""

from __future__ import annotations

from fractions import Fraction

import pytest

from vidrestore.errors import UsageError
from vidrestore.io import parse_time


@pytest.mark.parametrize(("text", "seconds"), [
    ("90", Fraction(90)),
    ("90.5", Fraction(181, 2)),
    ("1:30", Fraction(90)),
    ("01:02:03.250", Fraction(3723) + Fraction(1, 4)),
    ("0:00.3", Fraction(3, 10)),
    ("75:00", Fraction(4500)),  # minutes alone may pass 59
    (" 12 ", Fraction(12)),
    (0.2, Fraction(1, 5)),  # the decimal the user wrote, not the nearest double
    (7, Fraction(7)),
    (Fraction(1001, 30000), Fraction(1001, 30000)),
])
def test_accepted_forms(text: object, seconds: Fraction) -> None:
    assert parse_time(text) == seconds  # type: ignore[arg-type]


def test_frames_need_a_rate() -> None:
    assert parse_time("300f", rate=Fraction(30000, 1001)) == Fraction(10010, 1000)
    with pytest.raises(UsageError, match="frame rate is unknown"):
        parse_time("300f")


@pytest.mark.parametrize("bad", ["", "soon", "1:2:3:4", "-5", "1:60", "1:75:00", "12 s", True])
def test_refusals_name_the_value(bad: object) -> None:
    with pytest.raises(UsageError) as exc:
        parse_time(bad, name="start")  # type: ignore[arg-type]
    message = str(exc.value)
    assert message.startswith("start: ") and "\n" not in message
