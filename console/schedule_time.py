"""A reply's send time as people type it and read it: a date and a time of day in the
team's time zone, the date Jalali ("۱۴۰۵/۰۹/۱۴ ۱۰:۳۰") or Gregorian ("2026-12-05 10:30",
also the ``2026-12-05T10:30`` of a datetime-local input), in ASCII, Persian or
Arabic-Indic digits, whatever the reader's language: the year tells the calendars apart
(Jalali years are 1200-1699, Gregorian ones 1700 and later).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, time, tzinfo
from typing import Final

import jdatetime
from sqlalchemy.orm import Session

from console.dates import _INVISIBLE, _TO_ASCII, format_date
from console.i18n import digits
from kartabl import service_clock
from kartabl.errors import InputError
from kartabl.models import Conversation

_WHEN: Final = re.compile(
    r"(\d{4})\s*[/\-.\u060d\u066b]\s*(\d{1,2})\s*[/\-.\u060d\u066b]\s*(\d{1,2})"
    r"(?:\s*[T\s،,]\s*|\s+)(\d{1,2})\s*[:\u066b]\s*(\d{2})(?:\s*:\s*(\d{2}))?")
_JALALI_YEARS: Final = range(1200, 1700)


def _team_tz(session: Session, conv: Conversation) -> tzinfo:
    """The time zone a conversation's team works in (the routing file's ``timezone`` of
    the team, as the service clock reads it): a send time is typed and shown in it."""
    return service_clock.conversation_policy(session, conv).calendar.zone


def parse_send_at(text: str, tz: tzinfo) -> datetime:
    """The aware UTC instant ``text`` names in ``tz``. :class:`InputError` (code
    ``schedule.bad_time``, or ``no_such_date``) says what was expected."""
    raw = text if isinstance(text, str) else ""
    s = _INVISIBLE.sub("", raw.translate(_TO_ASCII)).strip()
    shown = raw.strip()[:40]
    m = _WHEN.fullmatch(s)
    if m is None:
        raise InputError(f"not a date and time: {shown!r}; expected 1405/09/14 10:30 or "
                         "2026-12-05 10:30", code="schedule.bad_time", params={"text": shown})
    year, month, day, hour, minute = (int(g) for g in m.groups()[:5])
    second = int(m[6] or 0)
    try:
        if year in _JALALI_YEARS:
            when_day = jdatetime.date(year, month, day).togregorian()
        elif year >= 1700:
            when_day = datetime(year, month, day).date()
        else:
            raise ValueError(f"year {year}")
        clock = time(hour, minute, second)
    except ValueError as exc:
        raise InputError(f"no such date or time: {shown!r} ({exc})", code="no_such_date",
                         params={"text": shown}) from exc
    return datetime.combine(when_day, clock, tzinfo=tz).astimezone(UTC)


def show_send_at(value: datetime, locale: str, tz: tzinfo) -> str:
    """``value`` as the form shows it back: "۱۴۰۵/۰۹/۱۴ ۱۰:۳۰" or "2026-12-05 10:30"."""
    local = value.astimezone(tz)
    return f"{format_date(value, locale, tz)} {digits(local.strftime('%H:%M'), locale)}"


def form_value(value: datetime, locale: str, tz: tzinfo) -> str:
    """What a send-time input holds for ``value``: what the reader would type."""
    return show_send_at(value, locale, tz)


def jalali_example(value: datetime, tz: tzinfo) -> str:
    """``value`` as a Jalali date-time in ASCII digits (tests, placeholders)."""
    local = value.astimezone(tz)
    j = jdatetime.datetime.fromgregorian(datetime=local.replace(tzinfo=None))
    return f"{j.year:04d}/{j.month:02d}/{j.day:02d} {local:%H:%M}"
