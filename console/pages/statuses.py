"""The conversation page's status actions: wait on the customer, snooze until a time
(Jalali or Gregorian, in the team's time zone, or a preset), resume. POST forms with the
CSRF token, post/redirect/get like every action of :mod:`console.pages.conversation`; a
refused one keeps what was typed."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from config.routing import RoutingConfig, team_config
from console.deps import PathId, Principal, get_db, page_principal
from console.flash import refused
from console.moments import parse_moment, preset_moment
from console.pages._ui import back
from console.timeline import visible
from kartabl.business_hours import IRAN_DEFAULT, Calendar, calendar_for
from kartabl.errors import KartablError
from kartabl.models import Conversation, Team, utcnow
from kartabl.workflow import waiting

router = APIRouter(include_in_schema=False)
Short = Annotated[str, Form(max_length=40)]


def team_calendar(request: Request, db: Session, conv: Conversation) -> tuple[str, Calendar]:
    """The time zone and business calendar of the conversation's team (the routing file);
    Asia/Tehran and every day but Friday without a team of the file."""
    routing: RoutingConfig = request.app.state.routing
    team = db.get(Team, conv.team_id) if conv.team_id is not None else None
    cfg = team_config(routing, team.name if team is not None else None)
    if cfg is None or cfg.hours is None:
        return (cfg.timezone if cfg else "Asia/Tehran"), IRAN_DEFAULT
    return cfg.timezone, calendar_for(cfg)


def _run(db: Session, p: Principal, cid: int, done: str, step: Callable[[], object],
         kept: dict[str, str] | None = None) -> Response:
    try:
        step()
    except KartablError as exc:
        return refused(db, p, exc, f"/conversations/{cid}", kept)
    db.commit()
    return back(f"/conversations/{cid}", done)


@router.post("/conversations/{cid}/waiting")
def wait(cid: PathId, p: Principal = Depends(page_principal),
         db: Session = Depends(get_db)) -> Response:
    visible(db, p.person, cid)
    return _run(db, p, cid, "waiting", lambda: waiting.wait(db, p.person, cid))


@router.post("/conversations/{cid}/snooze")
def snooze(request: Request, cid: PathId, until: Short = "", preset: Short = "",
           p: Principal = Depends(page_principal), db: Session = Depends(get_db)) -> Response:
    conv = visible(db, p.person, cid)
    zone, calendar = team_calendar(request, db, conv)

    def step() -> None:
        now = utcnow()
        at = (parse_moment(until, zone) if until.strip() or not preset
              else preset_moment(preset, now, zone,
                                 lambda day: not calendar.is_day_off(day)))
        waiting.snooze(db, p.person, cid, at, now=now)

    return _run(db, p, cid, "snoozed", step, {"snooze_until": until})


@router.post("/conversations/{cid}/resume")
def resume(cid: PathId, p: Principal = Depends(page_principal),
           db: Session = Depends(get_db)) -> Response:
    visible(db, p.person, cid)
    return _run(db, p, cid, "resumed", lambda: waiting.resume(db, p.person, cid))
