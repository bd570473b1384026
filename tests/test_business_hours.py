"""Business-time arithmetic (kartabl.business_hours): across a weekend (Friday off, a half
Thursday), across Nowruz (1-4 Farvardin) and 12-13 Farvardin, across a lunar holiday taken
from the ``holidays`` package, a team's own Jalali day off, and a long span."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import jdatetime
import pytest

from config.routing import TeamConfig
from kartabl.business_hours import (
    ALWAYS,
    add_business_seconds,
    business_seconds,
    calendar_for,
    iran_holidays,
    next_working_day,
)

TEHRAN = ZoneInfo("Asia/Tehran")
H = 3600.0
WEEK = {d: ["08:00-12:00", "13:00-17:00"] for d in ("sat", "sun", "mon", "tue", "wed")}
CAL = calendar_for(TeamConfig(name="support", hours={**WEEK, "thu": ["08:00-13:00"]},
                              days_off=["1405-02-10"]))


def at(y: int, m: int, d: int, hh: int = 0, mm: int = 0) -> datetime:
    return datetime(y, m, d, hh, mm, tzinfo=TEHRAN)


def jalali(y: int, m: int, d: int) -> date:
    return jdatetime.date(y, m, d).togregorian()


def test_a_day_and_the_weekend() -> None:
    # Wednesday 2026-12-02 16:00 to Saturday 12/05 09:00: 1h Wed, 5h Thu, Fri off, 1h Sat
    assert business_seconds(CAL, at(2026, 12, 2, 16), at(2026, 12, 5, 9)) == 7 * H
    # the lunch hour does not count
    assert business_seconds(CAL, at(2026, 12, 5, 11), at(2026, 12, 5, 14)) == 2 * H
    # 8 working hours after Wednesday 15:00: 2h Wed, 5h Thu, then Saturday 09:00
    assert add_business_seconds(CAL, at(2026, 12, 2, 15), 8 * H) == at(2026, 12, 5, 9)
    # a start outside hours begins at the next opening; the result is UTC
    due = add_business_seconds(CAL, at(2026, 12, 4, 20), 30 * 60)
    assert due == at(2026, 12, 5, 8, 30) and due.tzinfo == UTC
    # exactly at a span's end: the next span
    assert add_business_seconds(CAL, at(2026, 12, 5, 8), 4 * H + 60) == at(2026, 12, 5, 13, 1)


def test_nowruz_and_farvardin_12_13_are_off() -> None:
    # Given the package's holidays for 2026 (1405): 1-4 Farvardin and 12-13 Farvardin
    year = iran_holidays(2026)
    for d in (1, 2, 3, 4, 12, 13):
        assert jalali(1405, 1, d) in year, d
        assert CAL.is_day_off(jalali(1405, 1, d))
    # From Thursday Esfand 28, 1404 (2026-03-19) 12:00: the Thursday's last hour, then Friday,
    # then 1-4 Farvardin off
    assert jalali(1404, 12, 28) == date(2026, 3, 19)
    due = add_business_seconds(CAL, at(2026, 3, 19, 12), 2 * H)
    # 1h on Thursday, then 1-4 Farvardin off; 5 Farvardin (Wednesday 03-25) 08:00 + 1h
    assert due == datetime.combine(jalali(1405, 1, 5), datetime.min.time(), TEHRAN) + \
        timedelta(hours=9)
    # 12 and 13 Farvardin (Wed 04-01, Thu 04-02) count nothing; Saturday 04-04 does
    assert business_seconds(CAL, at(2026, 4, 1), at(2026, 4, 3)) == 0
    assert business_seconds(CAL, at(2026, 3, 31, 16), at(2026, 4, 4, 9)) == 2 * H


def test_a_lunar_holiday_from_the_package() -> None:
    # Tasua and Ashura move every year: take them from the package, and check they are off
    year = iran_holidays(2026)
    ashura = next(d for d, name in year.items() if "Ashura" in name)
    tasua = next(d for d, name in year.items() if "Tasua" in name)
    assert (tasua, ashura) == (date(2026, 6, 24), date(2026, 6, 25))
    assert CAL.is_day_off(tasua) and CAL.is_day_off(ashura)
    # Tuesday 06-23 16:00 + 2h: 1h Tuesday, Wed/Thu holidays, Friday off, Saturday 09:00
    assert add_business_seconds(CAL, at(2026, 6, 23, 16), 2 * H) == at(2026, 6, 27, 9)


def test_own_days_off_jalali_and_holidays_can_be_ignored() -> None:
    day = jalali(1405, 2, 10)  # the team's day off (2026-04-30, a Thursday)
    assert CAL.is_day_off(day) and CAL.holiday_name(day) == "day off"
    plain = calendar_for(TeamConfig(name="x", hours=WEEK, iran_holidays=False))
    assert not plain.is_day_off(date(2026, 6, 24))  # Tasua, a Wednesday: worked


def test_round_the_clock_and_long_spans() -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    assert business_seconds(ALWAYS, start, start + timedelta(days=2)) == 48 * H
    assert add_business_seconds(ALWAYS, start, 90) == start + timedelta(seconds=90)
    # a whole year is computed day by day, not minute by minute, and the two agree
    year = business_seconds(CAL, at(2026, 1, 1), at(2027, 1, 1))
    assert 1800 * H < year < 2340 * H  # 45 h a week, less the holidays
    assert add_business_seconds(CAL, at(2026, 1, 1), year) <= at(2027, 1, 1)
    assert business_seconds(CAL, at(2026, 1, 1),
                            add_business_seconds(CAL, at(2026, 1, 1), year)) == year
    assert next_working_day(CAL, date(2026, 3, 19)) == date(2026, 3, 25)  # over Nowruz


def test_bad_calendars_are_refused() -> None:
    with pytest.raises(ValueError):
        TeamConfig(name="x", hours={"sat": ["17:00-08:00"]})
    with pytest.raises(ValueError):
        TeamConfig(name="x", timezone="Mars/Olympus")
    with pytest.raises(ValueError):
        TeamConfig(name="x", days_off=["tomorrow"])


def test_hours_without_any_span_refused_at_load() -> None:
    # a calendar with no working time made add_business_seconds raise on every routing
    import pytest
    from pydantic import ValidationError

    for hours in ({}, {"mon": []}):
        with pytest.raises(ValidationError, match="no working"):
            TeamConfig(name="support", hours=hours)


def test_day_off_not_a_date_refused_at_load() -> None:
    # "1405-13-40" passed the pattern, then calendar_for raised on every routing to the team
    import pytest
    from pydantic import ValidationError

    for off in ("1405-13-40", "2026-02-30"):
        with pytest.raises(ValidationError, match="day off"):
            TeamConfig(name="support", hours={"mon": ["09:00-17:00"]}, days_off=[off])
