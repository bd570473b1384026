"""Dates as the console shows and reads them: Jalali with Persian digits for Persian readers
("۱۴۰۵/۰۹/۱۰"), ISO 8601 for English ones ("2026-12-01"), and a day always meaning a day
in the display time zone (Asia/Tehran by default), never a UTC day.

Stored timestamps are aware UTC (:class:`kartabl.models.UTCDateTime`); a conversation opened
at 23:00 UTC belongs to the next day in Tehran (UTC+03:30), and reports count it there.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import jdatetime

from kartabl.errors import InputError

DEFAULT_TZ: Final = "Asia/Tehran"
LOCALES: Final = ("fa", "en")

_TO_FA = str.maketrans("0123456789", "۰۱۲۳۴۵۶۷۸۹")
_TO_ASCII = str.maketrans(
    {**{chr(0x06F0 + i): str(i) for i in range(10)}, **{chr(0x0660 + i): str(i) for i in range(10)}}
)
# Bidi marks a right-to-left input box or a copy from a Persian document slips in.
_INVISIBLE = re.compile("[\u061c\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff]")
# A Jalali date as people type it: 1405/09/10, 1405-9-10, 1405.09.10 (also "٫" and "؍").
_JALALI = re.compile(r"(\d{4})\s*[/\-.\u060d\u066b]\s*(\d{1,2})\s*[/\-.\u060d\u066b]\s*(\d{1,2})")
_ISO = re.compile(r"(\d{4})-(\d{2})-(\d{2})")
# Jalali years in use are around 1300-1500; a year past 1700 is a Gregorian date typed into
# the Persian form, which jdatetime would otherwise accept as a date six centuries ahead.
_JALALI_YEARS = range(1200, 1700)


def display_tz(tz: str | tzinfo | None = None) -> tzinfo:
    """The time zone ``tz`` names (default Asia/Tehran); :class:`InputError` if unknown."""
    if tz is None:
        return ZoneInfo(DEFAULT_TZ)
    if isinstance(tz, tzinfo):
        return tz
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise InputError(f"unknown time zone {tz!r}") from exc


def local_date(value: date | datetime, tz: str | tzinfo | None = None) -> date:
    """The calendar day of ``value`` in ``tz``. A ``datetime`` must be aware: a naive one is
    ambiguous (UTC? local?) and would silently shift by 3.5 hours."""
    if isinstance(value, datetime):  # before ``date``: datetime is a subclass of date
        if value.tzinfo is None:
            raise ValueError("naive datetime: pass an aware one (the models return UTC)")
        return value.astimezone(display_tz(tz)).date()
    return value


def day_bounds(start: date, end: date, tz: str | tzinfo | None = None) -> tuple[datetime, datetime]:
    """[start 00:00, day after end 00:00) in ``tz``, as aware UTC: inclusive days, half-open
    instants, so a conversation at local midnight belongs to exactly one day."""
    zone = display_tz(tz)
    lo = datetime.combine(start, time(), tzinfo=zone).astimezone(UTC)
    hi = datetime.combine(end + timedelta(days=1), time(), tzinfo=zone).astimezone(UTC)
    return lo, hi


def persian_digits(text: str) -> str:
    return text.translate(_TO_FA)


def format_date(
    value: date | datetime, locale: str = "fa", tz: str | tzinfo | None = None
) -> str:
    """``value`` as a reader of ``locale`` expects it: "۱۴۰۵/۰۹/۱۰" (Jalali, Persian digits)
    for 'fa', "2026-12-01" for 'en'. A datetime is first taken to its day in ``tz``."""
    day = local_date(value, tz)
    if locale == "fa":
        jalali = jdatetime.date.fromgregorian(date=day)
        return persian_digits(f"{jalali.year:04d}/{jalali.month:02d}/{jalali.day:02d}")
    if locale == "en":
        return day.isoformat()
    raise InputError(f"unknown locale {locale!r}; expected one of {', '.join(LOCALES)}")


def parse_date(text: str, locale: str = "fa") -> date:
    """The Gregorian date a person typed: Jalali "1405/09/10" (ASCII, Persian or
    Arabic-Indic digits) for 'fa', ISO "2026-12-01" for 'en'. Raises :class:`InputError`
    with a message that says what was expected."""
    if locale not in LOCALES:
        raise InputError(f"unknown locale {locale!r}; expected one of {', '.join(LOCALES)}")
    raw = text if isinstance(text, str) else ""
    s = _INVISIBLE.sub("", raw.translate(_TO_ASCII)).strip()
    shown = raw.strip()[:40]
    if locale == "fa":
        m = _JALALI.fullmatch(s)
        if m is None:
            raise InputError(f"not a date: {shown!r}; expected a Jalali date like ۱۴۰۵/۰۹/۱۰",
                             code="bad_date_fa", params={"text": shown})
        year, month, day = (int(g) for g in m.groups())
        if year not in _JALALI_YEARS:
            raise InputError(f"not a Jalali date: {shown!r} (year {year}); "
                             "expected a Jalali date like ۱۴۰۵/۰۹/۱۰", code="bad_date_fa",
                             params={"text": shown})
        try:
            return jdatetime.date(year, month, day).togregorian()
        except ValueError as exc:  # month 13, Esfand 30 in a common year, ...
            raise InputError(f"no such Jalali date: {shown!r} ({exc})", code="no_such_date",
                             params={"text": shown}) from exc
    m = _ISO.fullmatch(s)
    if m is None:
        raise InputError(f"not a date: {shown!r}; expected YYYY-MM-DD like 2026-12-01",
                         code="bad_date_en", params={"text": shown})
    try:
        return date(*(int(g) for g in m.groups()))
    except ValueError as exc:
        raise InputError(f"no such date: {shown!r} ({exc})", code="no_such_date",
                         params={"text": shown}) from exc
