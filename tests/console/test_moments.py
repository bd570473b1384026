"""The snooze form's moments (console.moments): Jalali or Gregorian dates with a time, in
the team's time zone, in any digits; the presets, the next working day skipping holidays."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from config.routing import TeamConfig
from console.moments import parse_moment, preset_moment
from kartabl.business_hours import calendar_for
from kartabl.errors import InputError


def test_jalali_and_gregorian_in_any_digits() -> None:
    # 10:30 in Tehran is 07:00 UTC; 1405/09/15 is 2026-12-06
    expected = datetime(2026, 12, 6, 7, 0, tzinfo=UTC)
    assert parse_moment("۱۴۰۵/۰۹/۱۵ ۱۰:۳۰") == expected
    assert parse_moment("1405-9-15 10:30") == expected
    assert parse_moment("2026-12-06T10:30") == expected
    assert parse_moment("2026-12-06") == datetime(2026, 12, 6, 5, 30, tzinfo=UTC)  # 09:00
    assert parse_moment("2026-12-06 10:30", "Europe/Berlin") == datetime(
        2026, 12, 6, 9, 30, tzinfo=UTC)
    for bad in ("فردا", "1405/13/01 10:00", "2026-12-06 25:00", ""):
        with pytest.raises(InputError) as err:
            parse_moment(bad)
        assert err.value.code in ("status.bad_moment", "no_such_date"), bad


def test_presets_and_the_next_working_day() -> None:
    now = datetime(2026, 3, 19, 8, 0, tzinfo=UTC)  # Thursday, Esfand 28, 1404
    assert preset_moment("1h", now) == datetime(2026, 3, 19, 9, 0, tzinfo=UTC)
    assert preset_moment("tomorrow", now) == datetime(2026, 3, 20, 5, 30, tzinfo=UTC)
    cal = calendar_for(TeamConfig(name="x", hours={d: ["08:00-16:00"] for d in (
        "sat", "sun", "mon", "tue", "wed", "thu")}))
    # Friday off, then Nowruz 1-4 Farvardin: Wednesday 2026-03-25 09:00 Tehran
    assert preset_moment("next_working_day", now, "Asia/Tehran",
                         lambda d: not cal.is_day_off(d)) == datetime(
        2026, 3, 25, 5, 30, tzinfo=UTC)
    with pytest.raises(InputError):
        preset_moment("someday", now)
