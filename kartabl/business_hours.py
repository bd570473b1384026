"""Business time: a team's working hours per weekday, its time zone, Iran's official
holidays and the team's own days off, and the arithmetic the service targets count in.

A :class:`Calendar` is built once from the routing file's ``[[teams]]`` entry
(:func:`calendar_for`). ``hours`` maps a weekday to spans of local time ("08:00-12:00",
several a day allowed); Iran's week starts on Saturday, Friday is off and Thursday is often
half a day. Holidays come from the ``holidays`` package (country "IR": the solar ones such
as Nowruz, 1-4 and 12-13 Farvardin, and the lunar ones such as Tasua and Ashura, which move
every year), plus the team's ``days_off`` (Jalali "1405-02-10" or Gregorian "2026-05-01").
A team without ``hours`` works round the clock with no holidays: its targets count wall
time, as before business hours existed.

The arithmetic walks day by day, never minute by minute: each day contributes the overlap
of its spans with the interval, so a year is ~365 small steps; days off cost one set lookup.
Spans are local wall time, converted to UTC per day (a time-zone change of offset is
honoured; Iran has had no daylight saving since 2022).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from typing import Final
from zoneinfo import ZoneInfo

import holidays as holidays_lib
import jdatetime

from config.routing import TeamConfig

WEEKDAYS: Final = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")  # date.weekday() order
# Iran's week as people read it (the page lists it in this order)
IRAN_WEEK: Final = ("sat", "sun", "mon", "tue", "wed", "thu", "fri")
MAX_DAYS: Final = 3 * 366  # no target is further than this: a calendar with no hours stops


Span = tuple[time, time | None]  # end None: midnight (24:00)


def _span(text: str) -> Span:
    start, end = text.split("-")
    return time.fromisoformat(start), None if end == "24:00" else time.fromisoformat(end)


def gregorian_day(text: str) -> date:
    """A day off as written in the routing file: Jalali when its year is 1200-1699."""
    y, m, d = (int(p) for p in text.replace("/", "-").split("-"))
    return jdatetime.date(y, m, d).togregorian() if 1200 <= y < 1700 else date(y, m, d)


@lru_cache(maxsize=64)
def iran_holidays(year: int) -> dict[date, str]:
    """Iran's official holidays of a Gregorian year (the ``holidays`` package), by day."""
    return dict(holidays_lib.country_holidays("IR", years=year).items())


@dataclass(frozen=True)
class Calendar:
    """One team's business calendar. ``hours`` None: round the clock, no days off."""

    zone: ZoneInfo = field(default_factory=lambda: ZoneInfo("Asia/Tehran"))
    hours: dict[int, tuple[Span, ...]] | None = None  # weekday() -> spans, local time
    iran_holidays: bool = True
    days_off: frozenset[date] = frozenset()

    @property
    def always(self) -> bool:
        return self.hours is None

    def is_day_off(self, day: date) -> bool:
        if self.hours is None:
            return False
        if day in self.days_off or not self.hours.get(day.weekday()):
            return True
        return self.iran_holidays and day in iran_holidays(day.year)

    def holiday_name(self, day: date) -> str | None:
        if day in self.days_off:
            return "day off"
        return iran_holidays(day.year).get(day) if self.iran_holidays else None

    def is_open(self, at: datetime) -> bool:
        """Whether aware ``at`` falls inside a working span (a span may start the local day
        before, when it runs past midnight)."""
        if self.hours is None:
            return True
        local = at.astimezone(self.zone).date()
        return any(a <= at < b for day in (local - timedelta(days=1), local)
                   for a, b in self.spans_utc(day))

    def spans_utc(self, day: date) -> list[tuple[datetime, datetime]]:
        """The working spans of local ``day``, as aware UTC intervals (none on a day off)."""
        if self.hours is None:
            start = datetime.combine(day, time(0), self.zone)
            return [(start.astimezone(UTC),
                     datetime.combine(day + timedelta(days=1), time(0), self.zone)
                     .astimezone(UTC))]
        if self.is_day_off(day):
            return []
        out = []
        for opens, closes in self.hours[day.weekday()]:
            a = datetime.combine(day, opens, self.zone).astimezone(UTC)
            b = (datetime.combine(day, closes, self.zone) if closes is not None
                 else datetime.combine(day + timedelta(days=1), time(0), self.zone))
            out.append((a, b.astimezone(UTC)))
        return out


ALWAYS: Final = Calendar()
# what "next working day" means for a team without hours: Saturday to Thursday, less Iran's
# holidays (only the snooze preset uses it; the targets of such a team count wall time)
IRAN_DEFAULT: Final = Calendar(hours={i: ((time(8, 0), time(17, 0)),) for i in (5, 6, 0, 1, 2, 3)})


def calendar_for(team: TeamConfig | None) -> Calendar:
    """The calendar of a team of the routing file (None, or no ``hours``: round the clock)."""
    if team is None or team.hours is None:
        return ALWAYS if team is None else Calendar(zone=ZoneInfo(team.timezone))
    hours = {WEEKDAYS.index(day): tuple(sorted(_span(s) for s in spans))
             for day, spans in team.hours.items()}
    return Calendar(zone=ZoneInfo(team.timezone), hours=hours,
                    iran_holidays=team.iran_holidays,
                    days_off=frozenset(gregorian_day(d) for d in team.days_off))


def _days(calendar: Calendar, start: datetime) -> Iterable[date]:
    day = start.astimezone(calendar.zone).date() - timedelta(days=1)  # a span may start before
    for _ in range(MAX_DAYS):
        yield day
        day += timedelta(days=1)


def business_seconds(calendar: Calendar, start: datetime, end: datetime) -> float:
    """Working seconds in [start, end) (aware datetimes); 0 when end <= start."""
    if end <= start:
        return 0.0
    if calendar.always:
        return (end - start).total_seconds()
    total = 0.0
    last = end.astimezone(calendar.zone).date()
    for day in _days(calendar, start):
        if day > last:
            break
        for a, b in calendar.spans_utc(day):
            lo, hi = max(a, start), min(b, end)
            if hi > lo:
                total += (hi - lo).total_seconds()
    return total


def add_business_seconds(calendar: Calendar, start: datetime, seconds: float) -> datetime:
    """The moment ``seconds`` of working time after ``start`` (aware UTC). With 0, the start
    itself. A calendar with no working time within :data:`MAX_DAYS` raises ValueError."""
    if seconds <= 0:
        return start.astimezone(UTC)
    if calendar.always:
        return (start + timedelta(seconds=seconds)).astimezone(UTC)
    left = seconds
    for day in _days(calendar, start):
        for a, b in calendar.spans_utc(day):
            lo = max(a, start)
            if b <= lo:
                continue
            available = (b - lo).total_seconds()
            if available >= left:
                return lo + timedelta(seconds=left)
            left -= available
    raise ValueError("the calendar has no working time ahead")


def next_working_day(calendar: Calendar, after: date) -> date:
    """The first working day after ``after`` (the snooze preset)."""
    day = after + timedelta(days=1)
    for _ in range(MAX_DAYS):
        if not calendar.is_day_off(day) and (calendar.always or calendar.spans_utc(day)):
            return day
        day += timedelta(days=1)
    return after + timedelta(days=1)
