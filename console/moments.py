"""A moment as a person types it into the snooze form: a date (Jalali "۱۴۰۵/۰۹/۱۵" or
Gregorian "2026-12-06", told apart by the year, so either works in both languages) and an
optional time "09:30" (default 09:00), in the team's time zone; or a preset ("tomorrow
9:00", "next working day 9:00", "in an hour"). Returns aware UTC."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Final

import jdatetime

from console.dates import _INVISIBLE, _TO_ASCII, display_tz
from kartabl.errors import InputError

PRESETS: Final = ("1h", "tomorrow", "next_working_day", "next_week")
MORNING: Final = time(9, 0)
_MOMENT = re.compile(
    r"(\d{4})\s*[/\-.\u060d\u066b]\s*(\d{1,2})\s*[/\-.\u060d\u066b]\s*(\d{1,2})"
    r"(?:\s*(?:T|\s|،|,)\s*(\d{1,2})\s*[:٫]\s*(\d{2}))?")

# Is ``day`` a working day? The caller passes the team's business calendar; without one,
# every day but Friday (Iran's weekly day off).
WorkingDay = Callable[[date], bool]


def _not_friday(day: date) -> bool:
    return day.weekday() != 4


def parse_moment(text: str, tz: str | tzinfo | None = None) -> datetime:
    """The aware UTC moment ``text`` names in ``tz``; :class:`InputError` (code
    ``bad_moment`` / ``no_such_date``) with what was expected."""
    raw = text if isinstance(text, str) else ""
    s = _INVISIBLE.sub("", raw.translate(_TO_ASCII)).strip()
    shown = raw.strip()[:40]
    m = _MOMENT.fullmatch(s)
    if m is None:
        raise InputError(f"not a date and time: {shown!r}; expected e.g. 1405/09/15 09:00 "
                         "or 2026-12-06 09:00", code="status.bad_moment", params={"text": shown})
    year, month, day = int(m[1]), int(m[2]), int(m[3])
    hour, minute = (int(m[4]), int(m[5])) if m[4] else (MORNING.hour, MORNING.minute)
    try:
        at = time(hour, minute)
        on = (jdatetime.date(year, month, day).togregorian() if 1200 <= year < 1700
              else date(year, month, day))
    except ValueError as exc:
        raise InputError(f"no such date or time: {shown!r} ({exc})", code="no_such_date",
                         params={"text": shown}) from exc
    return datetime.combine(on, at, display_tz(tz)).astimezone(UTC)


def preset_moment(name: str, now: datetime, tz: str | tzinfo | None = None,
                  working: WorkingDay = _not_friday) -> datetime:
    """The moment of preset ``name`` after ``now`` (aware), in ``tz``."""
    zone = display_tz(tz)
    today = now.astimezone(zone).date()
    if name == "1h":
        return now + timedelta(hours=1)
    if name == "tomorrow":
        day = today + timedelta(days=1)
    elif name == "next_week":
        day = today + timedelta(days=7)
    elif name == "next_working_day":
        day = today + timedelta(days=1)
        for _ in range(60):  # Nowruz and a run of holidays are a fortnight at most
            if working(day):
                break
            day += timedelta(days=1)
    else:
        raise InputError(f"unknown preset {name!r}; one of {', '.join(PRESETS)}",
                         code="status.bad_moment", params={"text": name[:40]})
    return datetime.combine(day, MORNING, zone).astimezone(UTC)
