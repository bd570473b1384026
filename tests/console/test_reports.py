"""The coordinator's report (console/reports.py) and the console's dates (console/dates.py):
hand-computed volumes and percentiles, Tehran day boundaries, agents' scope, CSV injection,
Jalali in and out. Both databases."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, timedelta

import jdatetime
import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from console.dates import format_date, parse_date
from console.reports import Report, csv_cell, percentile, report, report_csv
from kartabl.errors import InputError, PermissionDenied
from kartabl.models import Channel, ConversationStatus, Person, Role, Team
from tests import factories as f

NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
DEC1, DEC2 = date(2026, 12, 1), date(2026, 12, 2)


def conv(
    s: Session, opened: datetime, *, channel: Channel = Channel.EMAIL, team: Team | None = None,
    assignee: Person | None = None, first: float | None = None, resolved: float | None = None,
):
    """A conversation opened at ``opened`` (UTC), answered ``first`` and resolved
    ``resolved`` minutes later (resolved means closed)."""
    c = f.conversation(s, channel=channel, team=team, assignee=assignee,
                       status=ConversationStatus.CLOSED if resolved is not None
                       else ConversationStatus.OPEN)
    c.opened_at = opened
    c.first_response_at = None if first is None else opened + timedelta(minutes=first)
    c.resolved_at = None if resolved is None else opened + timedelta(minutes=resolved)
    s.flush()
    return c


def utc(day: int, hour: int, minute: int = 0, second: int = 0, month: int = 12) -> datetime:
    return datetime(2026, month, day, hour, minute, second, tzinfo=UTC)


def rows(r: Report, section: str) -> dict[str, int]:
    return {v.label: v.count for v in getattr(r, section) if v.count}


@pytest.fixture
def floor(session: Session) -> dict:
    a, b = f.team(session, "sales"), f.team(session, "billing")
    ali = f.person(session, "ali", teams=[a])
    bahar = f.person(session, "bahar", teams=[b])
    coord = f.person(session, "coord", Role.COORDINATOR)
    return {"a": a, "b": b, "ali": ali, "bahar": bahar, "coord": coord}


def test_volumes_and_hand_computed_percentiles(session, floor) -> None:
    a, b, ali, bahar = floor["a"], floor["b"], floor["ali"], floor["bahar"]
    conv(session, utc(1, 6), team=a, assignee=ali, first=10, resolved=60)
    conv(session, utc(1, 7), channel=Channel.SMS, team=a, assignee=ali, first=20, resolved=120)
    conv(session, utc(1, 8), channel=Channel.TELEGRAM, team=b, assignee=bahar, first=30)
    conv(session, utc(2, 9), team=b, first=40, resolved=600)
    conv(session, utc(2, 10), channel=Channel.BALE, first=100, resolved=1440)
    # 23:59:59 in Tehran on Dec 1: unanswered, 4 h target missed by NOW
    conv(session, utc(1, 20, 29, 59), channel=Channel.SMS, team=a, assignee=ali)
    # outside the range, open: one answered (only the 72 h target missed), one not (both)
    conv(session, utc(20, 9, month=11), team=b, first=5)
    conv(session, utc(25, 9, month=11), team=b)

    r = report(session, floor["coord"], DEC1, DEC2, "Asia/Tehran", now=NOW)

    assert r.opened == 6 and r.scope == "all"
    # every channel has its row, the quiet ones at zero
    assert {v.key for v in r.by_channel} == {ch.value for ch in Channel}
    assert {v.key: v.count for v in r.by_channel if v.count} == {
        "email": 2, "sms": 2, "telegram": 1, "bale": 1}
    assert rows(r, "by_team") == {"sales": 3, "billing": 2, "no team": 1}
    assert rows(r, "by_person") == {"ali": 3, "bahar": 1, "unassigned": 2}
    # first response [10, 20, 30, 40, 100]: median 30; p90 at rank 3.6 = 40 + 0.6 * 60
    assert (r.first_response.count, r.first_response.median_minutes,
            r.first_response.p90_minutes) == (5, 30.0, pytest.approx(76.0))
    # resolution [60, 120, 600, 1440]: median (120 + 600) / 2; p90 at rank 2.7
    assert (r.resolution.count, r.resolution.median_minutes,
            r.resolution.p90_minutes) == (4, 360.0, pytest.approx(600 + 0.7 * 840))
    assert (r.backlog, r.overdue_first_response, r.overdue_resolution, r.overdue) == (4, 2, 2, 3)
    assert (r.first_response_target_minutes, r.resolution_target_hours) == (240.0, 72.0)


def test_percentiles_match_postgresql_percentile_cont(session, floor) -> None:
    for i, minutes in enumerate([3, 7, 7, 12, 45, 46, 200]):
        conv(session, utc(1, 6 + i), first=minutes)
    r = report(session, floor["coord"], DEC1, DEC1, now=NOW)
    assert (r.first_response.median_minutes, r.first_response.p90_minutes) == (
        12.0, pytest.approx(46 + 0.4 * 154))
    if session.get_bind().dialect.name == "postgresql":
        pg = session.execute(text(
            "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY m), "
            "percentile_cont(0.9) WITHIN GROUP (ORDER BY m) FROM (SELECT "
            "extract(epoch FROM first_response_at - opened_at) / 60 AS m FROM conversation) t"
        )).one()
        assert (float(pg[0]), float(pg[1])) == pytest.approx(
            (r.first_response.median_minutes, r.first_response.p90_minutes))
    assert percentile([], 0.5) is None and percentile([4.0], 0.9) == 4.0


def test_days_are_tehran_days(session, floor) -> None:
    conv(session, utc(30, 20, 29, 59, month=11), channel=Channel.EMAIL)  # Tehran Nov 30 23:59:59
    conv(session, utc(30, 20, 30, month=11), channel=Channel.SMS)  # Tehran Dec 1 00:00
    conv(session, utc(1, 23), channel=Channel.TELEGRAM)  # Tehran Dec 2 02:30
    coord = floor["coord"]

    def opened(start: date, end: date, tz: str = "Asia/Tehran") -> dict[str, int]:
        r = report(session, coord, start, end, tz, now=NOW)
        return {v.key: v.count for v in r.by_channel if v.count}

    assert opened(DEC1, DEC1) == {"sms": 1}
    assert opened(DEC2, DEC2) == {"telegram": 1}
    assert opened(date(2026, 11, 30), date(2026, 11, 30)) == {"email": 1}
    assert opened(DEC1, DEC1, "UTC") == {"telegram": 1}  # the zone is a parameter


def test_agent_report_covers_their_scope_and_only_their_own_row(session, floor) -> None:
    a, ali = floor["a"], floor["ali"]
    colleague = f.person(session, "sara", teams=[a])
    conv(session, utc(1, 6), team=a, assignee=ali)
    conv(session, utc(1, 7), team=a, assignee=colleague)
    conv(session, utc(1, 8), team=a)
    conv(session, utc(1, 9), team=floor["b"], assignee=floor["bahar"])

    mine = report(session, ali, DEC1, DEC1, now=NOW)
    assert (mine.scope, mine.opened, mine.backlog) == ("own", 3, 3)
    assert rows(mine, "by_person") == {"ali": 1, "unassigned": 1, "others": 1}
    assert rows(mine, "by_team") == {"sales": 3}
    everyone = report(session, floor["coord"], DEC1, DEC1, now=NOW)
    assert rows(everyone, "by_person") == {"ali": 1, "sara": 1, "bahar": 1, "unassigned": 1}
    ali.active = False
    with pytest.raises(PermissionDenied):
        report(session, ali, DEC1, DEC1, now=NOW)


def test_bad_ranges_and_zones_are_input_errors(session, floor) -> None:
    coord = floor["coord"]
    with pytest.raises(InputError, match="before it starts"):
        report(session, coord, DEC2, DEC1)
    with pytest.raises(InputError, match="at most 366 days"):
        report(session, coord, date(2025, 1, 1), date(2026, 1, 2))
    with pytest.raises(InputError, match="unknown time zone"):
        report(session, coord, DEC1, DEC1, "Mars/Olympus")


def test_csv_export_neutralises_formulas(session, floor) -> None:
    floor["a"].title = "=HYPERLINK(\"http://evil\")"
    floor["ali"].display_name = "+98 سارا"
    colleague = f.person(session, "x", teams=[floor["a"]])
    colleague.display_name = "@SUM(A1)"
    tabbed = f.person(session, "y", teams=[floor["a"]])
    tabbed.display_name = "\t-1"
    for p in (floor["ali"], colleague, tabbed):
        conv(session, utc(1, 6), team=floor["a"], assignee=p, first=15)
    session.flush()

    out = report_csv(report(session, floor["coord"], DEC1, DEC1, now=NOW))
    cells = list(csv.reader(io.StringIO(out)))
    assert cells[0] == ["section", "key", "label", "value", "jalali"]
    labels = {row[2] for row in cells if row[0] in ("team", "person")}
    assert labels == {"'=HYPERLINK(\"http://evil\")", "'+98 سارا", "'@SUM(A1)", "'\t-1"}
    assert not any(c.startswith(("=", "+", "-", "@", "\t", "\r")) for row in cells for c in row)
    # ISO and ASCII digits for spreadsheets, the Jalali date in its own column
    assert ["period", "start", "", DEC1.isoformat(), "1405/09/10"] in cells
    assert ["first_response", "median_minutes", "", "15.0", ""] in cells
    assert out.endswith("\r\n")


@pytest.mark.parametrize("text", [
    " =1+1", "\u00a0\u00a0@SUM(A1)", "\n-2+3", "\u3000=cmd", "\u200f=HYPERLINK(\"x\")",
    "\uff1dHYPERLINK(\"http://evil\")", "\uff0b1", "\uff0d1", "\uff20SUM(A1)", " \uff1d1",
    "\tx", "\rx",
])
def test_csv_guard_sees_through_blanks_and_full_width_signs(text: str) -> None:
    assert csv_cell(text) == "'" + text


@pytest.mark.parametrize("text", ["support", " support", "سارا", "", "15.0", "a=b"])
def test_csv_guard_leaves_plain_text(text: str) -> None:
    assert csv_cell(text) == text


# -- dates -----------------------------------------------------------------------------------


def test_format_date_jalali_persian_digits_and_iso() -> None:
    assert format_date(date(2026, 12, 1), "fa") == "۱۴۰۵/۰۹/۱۰"
    assert format_date(date(2026, 12, 1), "en") == "2026-12-01"
    # 21:00 UTC on Nov 30 is 00:30 on Dec 1 in Tehran
    assert format_date(datetime(2026, 11, 30, 21, 0, tzinfo=UTC), "en") == "2026-12-01"
    assert format_date(datetime(2026, 11, 30, 21, 0, tzinfo=UTC), "fa", "UTC") == "۱۴۰۵/۰۹/۰۹"
    with pytest.raises(ValueError, match="naive"):
        format_date(datetime(2026, 12, 1, 12, 0), "fa")


@pytest.mark.parametrize("typed", ["1405/09/10", "۱۴۰۵/۰۹/۱۰", "١٤٠٥/٠٩/١٠", "1405-9-10",
                                   " \u200f۱۴۰۵/۹/۱۰ "])
def test_parse_jalali_in_any_digits(typed) -> None:
    assert parse_date(typed, "fa") == date(2026, 12, 1)


def test_jalali_round_trip_over_two_years_with_a_leap_esfand() -> None:
    day, last = date(2024, 3, 20), date(2026, 3, 21)  # 1403/01/01 .. 1405/01/01
    seen_esfand_30 = False
    while day <= last:
        shown = format_date(day, "fa")
        assert parse_date(shown, "fa") == day, shown
        assert parse_date(format_date(day, "en"), "en") == day
        seen_esfand_30 |= shown.endswith("۱۲/۳۰")
        day += timedelta(days=1)
    assert seen_esfand_30  # 1403 is a leap year
    assert jdatetime.date(1403, 12, 30).togregorian() == date(2025, 3, 20)


@pytest.mark.parametrize(("typed", "locale", "message"), [
    ("1404/12/30", "fa", "no such Jalali date"),  # 1404 is not a leap year
    ("1405/13/01", "fa", "no such Jalali date"),
    ("2026/12/01", "fa", "not a Jalali date"),  # a Gregorian date in the Persian form
    ("10 Azar", "fa", "expected a Jalali date"),
    ("", "fa", "expected a Jalali date"),
    ("2026-02-30", "en", "no such date"),
    ("1405/09/10", "en", "expected YYYY-MM-DD"),
])
def test_parse_date_rejects_with_a_clear_message(typed, locale, message) -> None:
    with pytest.raises(InputError, match=message):
        parse_date(typed, locale)
