"""``GET /teams/hours``: each team's business hours, time zone and own days off, and the
year's holidays (Iran's official ones, from the ``holidays`` package) with their Jalali
dates: every team for coordinators and admins, an agent's own teams for an agent (the
scope of their queues). ``?year=1405`` picks the Jalali
year (default: this one); the page covers its Farvardin 1 to Esfand 29/30."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Final

import jdatetime
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from config.routing import RoutingConfig, team_config
from console.dates import display_tz, format_date, persian_digits
from console.deps import Principal, get_db, page_principal
from console.pages._ui import render
from console.templating import request_locale
from kartabl.business_hours import IRAN_WEEK, gregorian_day, iran_holidays
from kartabl.models import Team, TeamMember, utcnow
from kartabl.workflow.access import REVIEWERS

router = APIRouter(include_in_schema=False)
YEARS: Final = range(1390, 1500)


@dataclass(frozen=True)
class TeamHours:
    name: str
    title: str
    timezone: str
    always: bool  # no hours: round the clock
    days: list[tuple[str, list[str]]]  # Iran's week order: (weekday, spans)
    days_off: list[date]
    iran_holidays: bool
    wait_after_reply: bool


@dataclass(frozen=True)
class Holiday:
    day: date
    jalali: str
    name: str


def _year_days(year: int) -> tuple[date, date]:
    first = jdatetime.date(year, 1, 1).togregorian()
    return first, jdatetime.date(year + 1, 1, 1).togregorian() - timedelta(days=1)


def holidays_of(year: int, locale: str) -> list[Holiday]:
    """Iran's official holidays of Jalali ``year``, in order."""
    first, last = _year_days(year)
    found: dict[date, str] = {}
    for y in {first.year, last.year}:
        found.update({d: n for d, n in iran_holidays(y).items() if first <= d <= last})
    return [Holiday(d, format_date(d, locale), n) for d, n in sorted(found.items())]


@router.get("/teams/hours", response_class=HTMLResponse)
def team_hours(request: Request, year: int | None = Query(None, ge=YEARS.start, lt=YEARS.stop),
               p: Principal = Depends(page_principal), db: Session = Depends(get_db)) -> Response:
    locale = request_locale(request)
    routing: RoutingConfig = request.app.state.routing
    this_year = jdatetime.date.fromgregorian(date=utcnow().astimezone(display_tz()).date()).year
    shown_year = year or this_year
    teams = []
    listed = select(Team.name, Team.title).order_by(Team.name)
    if p.person.role not in REVIEWERS:  # an agent: their own teams' hours, as their queues
        listed = listed.where(Team.id.in_(select(TeamMember.team_id)
                                          .where(TeamMember.person_id == p.person.id)))
    for name, title in db.execute(listed):
        cfg = team_config(routing, name)
        hours = (cfg.hours if cfg is not None else None) or {}
        teams.append(TeamHours(
            name=name, title=title or name,
            timezone=cfg.timezone if cfg is not None else "Asia/Tehran",
            always=cfg is None or cfg.hours is None,
            days=[(d, list(hours.get(d, []))) for d in IRAN_WEEK],
            days_off=sorted(gregorian_day(d) for d in (cfg.days_off if cfg else [])),
            iran_holidays=bool(cfg.iran_holidays) if cfg is not None else True,
            wait_after_reply=bool(cfg.wait_after_reply) if cfg is not None else False,
        ))
    year_label = persian_digits(str(shown_year)) if locale == "fa" else str(shown_year)
    return render(request, "team_hours.html", {
        "teams": teams, "holidays": holidays_of(shown_year, locale), "year": shown_year,
        "year_label": year_label, "years": [shown_year - 1, shown_year + 1],
        "fmt_day": lambda d: format_date(d, locale),
    })
