"""Scheduled send in the JSON API (:mod:`kartabl.workflow.schedule`), with the pages' checks:

- ``PUT /api/v1/replies/{id}/schedule`` sets or changes the send time (a draft, a reply
  awaiting approval or an approved one not yet sent; a held reply is released to it);
- ``DELETE /api/v1/replies/{id}/schedule`` cancels it (an approved reply goes back to its
  author's drafts: cancelling never sends anything at once);
- ``POST /api/v1/replies/{id}/send-now`` and ``POST /api/v1/replies/{id}/back-to-draft``
  for a scheduled (or held) approved reply.

Token scope ``act``; the reply's author or a coordinator/admin who may see the conversation
(403 for another agent of its team, 404 outside the caller's scope, 409 once it has left,
400 for a time in the past, more than a year ahead, or unreadable).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from console.api.conversations import Db, _conversation_of, _reply, _visible_reply
from console.api.schemas import PathId, ReplyOut, errors
from console.deps import Principal, require_scope
from console.schedule_time import _team_tz, parse_send_at
from kartabl.models import Person
from kartabl.workflow import schedule

router = APIRouter(prefix="/api/v1", tags=["scheduled send"])
Act = Annotated[Principal, Depends(require_scope("act"))]


class ScheduleIn(BaseModel):
    send_at: str = Field(
        min_length=1, max_length=60,
        description="When the reply leaves: an ISO 8601 instant with its offset "
        "(2026-12-05T07:00:00Z), or a wall-clock time in the team's time zone, Jalali or "
        "Gregorian (1405/09/14 10:30, 2026-12-05 10:30; Persian digits accepted).",
        examples=["2026-12-05T10:30:00+03:30", "1405/09/14 10:30"])


def _instant(db: Session, person: Person, rid: int, text: str) -> datetime:
    conv = _conversation_of(db, _visible_reply(db, person, rid))
    try:
        parsed = datetime.fromisoformat(text.strip())
    except ValueError:
        parsed = None
    if parsed is not None and parsed.tzinfo is not None:
        return parsed
    return parse_send_at(text, _team_tz(db, conv))


@router.put("/replies/{rid}/schedule", summary="Schedule a reply (or change its time)",
            responses=errors(400, 401, 403, 404, 409))
def put_schedule(rid: PathId, body: ScheduleIn, p: Act, db: Db) -> ReplyOut:
    """It still needs its approval; approved, it leaves at ``send_at``, never before, unless
    the customer writes first (then it is held: ``schedule_held_at``)."""
    when = _instant(db, p.person, rid, body.send_at)
    return _reply(db, schedule.schedule(db, p.person, rid, when))


@router.delete("/replies/{rid}/schedule", summary="Cancel a reply's schedule",
               responses=errors(401, 403, 404, 409))
def delete_schedule(rid: PathId, p: Act, db: Db) -> ReplyOut:
    """Not yet approved: the time is taken off. Approved: back to the author's drafts."""
    _visible_reply(db, p.person, rid)
    return _reply(db, schedule.cancel(db, p.person, rid))


@router.post("/replies/{rid}/send-now", summary="Send a scheduled or held reply now",
             responses=errors(401, 403, 404, 409))
def send_now(rid: PathId, p: Act, db: Db) -> ReplyOut:
    """The schedule (and a hold) is dropped; the outbox sends it after the commit."""
    _visible_reply(db, p.person, rid)
    return _reply(db, schedule.send_now(db, p.person, rid))


@router.post("/replies/{rid}/back-to-draft", summary="Take a scheduled reply back to draft",
             responses=errors(401, 403, 404, 409))
def back_to_draft(rid: PathId, p: Act, db: Db) -> ReplyOut:
    """It needs a new submission and approval to leave."""
    _visible_reply(db, p.person, rid)
    return _reply(db, schedule.withdraw(db, p.person, rid))
