"""The coordinator's report: ``GET /reports?start=&end=`` and ``GET /reports.csv``.

Dates are typed and shown as the reader reads them (:mod:`console.dates`): Jalali with
Persian digits for a Persian reader ("۱۴۰۵/۰۹/۰۱"), ISO for an English one; the days are
days in Tehran. Without a range the report covers the last :data:`DEFAULT_DAYS` days. The
figures and their scope (an agent's report covers their own and their teams' work) are
:func:`console.reports.report`'s; the charts are bars drawn server-side as inline SVG
(no script, no inline style: the CSP allows neither).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Final

import jdatetime
from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session

from console.dates import format_date, local_date, parse_date
from console.deps import Principal, app_settings, get_db, page_principal
from console.i18n import DIRECTION, gettext
from console.pages._ui import render
from console.queue_types import Targets
from console.reports import Report, VolumeRow, report, report_csv
from console.templating import request_locale
from kartabl.errors import InputError
from kartabl.models import utcnow

router = APIRouter(include_in_schema=False)
DEFAULT_DAYS = 30
BAR_WIDTH = 240  # the SVG bar's full length, in its own units
_ISO = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


@dataclass(frozen=True)
class Bar:
    """One bar of a chart: ``x`` and ``width`` in the SVG's units (``x`` is where the bar
    starts: from the right for a right-to-left reader)."""

    row: VolumeRow
    label: str
    x: int
    width: int


# Rows the service names in English, shown in the reader's language.
_FIXED_LABELS = {("team", "none"): "reports.no_team", ("person", "unassigned"):
                 "reports.unassigned", ("person", "others"): "reports.others"}


def _label(section: str, row: VolumeRow, locale: str) -> str:
    if section == "channel":
        return gettext(locale, f"channel.{row.key}")
    key = _FIXED_LABELS.get((section, row.key))
    return gettext(locale, key) if key else row.label


def bars(section: str, rows: tuple[VolumeRow, ...], locale: str) -> list[Bar]:
    top = max((r.count for r in rows), default=0)
    rtl = DIRECTION[locale] == "rtl"
    out = []
    for r in rows:
        width = round(BAR_WIDTH * r.count / top) if top else 0
        if r.count and width < 2:
            width = 2  # a non-zero count stays visible
        out.append(Bar(r, _label(section, r, locale), BAR_WIDTH - width if rtl else 0, width))
    return out


def _parse(text: str, locale: str) -> date:
    """A date in the reader's calendar; an ISO date is accepted from anyone too (the CSV
    link carries ISO, and a year past 1700 is no Jalali year: it cannot be misread)."""
    try:
        return parse_date(text, locale)
    except InputError as exc:
        refused = exc
    if _ISO.fullmatch(text.strip()):
        try:
            return date.fromisoformat(text.strip())
        except ValueError:
            pass  # 2026-13-01: the reader's calendar's message says it best
    raise refused


def _range(start: str, end: str, locale: str) -> tuple[date, date]:
    """The range typed by the reader; the last DEFAULT_DAYS days by default."""
    today = local_date(utcnow())
    last = _parse(end[:40], locale) if end.strip() else today
    first = _parse(start[:40], locale) if start.strip() else last - timedelta(
        days=DEFAULT_DAYS - 1)
    return first, last


# The Jalali months, for the Persian date picker's month list.
JALALI_MONTHS: Final = ("فروردین", "اردیبهشت", "خرداد", "تیر", "مرداد", "شهریور", "مهر", "آبان",
                        "آذر", "دی", "بهمن", "اسفند")
PICKER_YEARS: Final = 10  # the picker's years: this one and the nine before


def _picked(request: Request, name: str) -> str:
    """A date from the Persian picker's three lists (``<name>_y``, ``_m``, ``_d``) as the
    text "1405/9/1", or "" when the form did not send them (the text fields then count)."""
    parts = [request.query_params.get(f"{name}_{p}", "").strip()[:6] for p in "ymd"]
    return "/".join(parts) if all(parts) else ""


@dataclass(frozen=True)
class Picker:
    """What the Persian picker of one date shows: its Jalali year, month and day, and the
    years to choose from."""

    year: int
    month: int
    day: int
    years: tuple[int, ...]


def picker(day: date) -> Picker:
    j = jdatetime.date.fromgregorian(date=day)
    this_year = jdatetime.date.fromgregorian(date=local_date(utcnow())).year
    years = sorted({*range(this_year - PICKER_YEARS + 1, this_year + 1), j.year})
    return Picker(j.year, j.month, j.day, tuple(years))


def _report(request: Request, db: Session, p: Principal, start: str,
            end: str) -> tuple[Report, str]:
    locale = request_locale(request)
    start, end = _picked(request, "start") or start, _picked(request, "end") or end
    first, last = _range(start, end, locale)
    targets = Targets.from_settings(app_settings(request))
    return report(db, p.person, first, last, targets=targets), locale


@router.get("/reports", response_class=HTMLResponse)
def reports_page(
    request: Request, start: str = "", end: str = "", p: Principal = Depends(page_principal),
    db: Session = Depends(get_db),
) -> Response:
    rep, locale = _report(request, db, p, start, end)
    # The form shows the dates in the reader's calendar, ASCII digits for the date input of
    # an English reader (the browser's date picker wants ISO).
    shown = {"start": format_date(rep.start, locale), "end": format_date(rep.end, locale)}
    return render(request, "reports.html", {
        "rep": rep, "shown": shown, "bar_width": BAR_WIDTH,
        "charts": {"channel": bars("channel", rep.by_channel, locale),
                   "team": bars("team", rep.by_team, locale),
                   "person": bars("person", rep.by_person, locale)},
        "csv_query": {"start": rep.start.isoformat(), "end": rep.end.isoformat()},
        "pick": {"start": picker(rep.start), "end": picker(rep.end)},
        "months": JALALI_MONTHS,
    })


@router.get("/reports.csv")
def reports_csv(
    request: Request, start: str = "", end: str = "", p: Principal = Depends(page_principal),
    db: Session = Depends(get_db),
) -> Response:
    """The report as CSV, always a download: ISO dates and ASCII digits whatever the
    reader's language, the Jalali date in a column of its own; a BOM lets spreadsheet
    programs read the Persian names as UTF-8."""
    rep, _ = _report(request, db, p, start, end)
    body = "\ufeff" + report_csv(rep)
    name = f"kartabl-report-{rep.start.isoformat()}-{rep.end.isoformat()}.csv"
    return Response(body, media_type="text/csv; charset=utf-8", headers={
        "Content-Disposition": f'attachment; filename="{name}"',
        "Cache-Control": "no-store",
    })
