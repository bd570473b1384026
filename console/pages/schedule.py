"""The conversation page's scheduled-send actions (:mod:`kartabl.workflow.schedule`), each a
POST form with the CSRF token answered 303 back to the conversation (refused: the reason
shown and the typed time kept, :mod:`console.flash`):

- ``POST /replies/{id}/schedule``: set or change the send time (``send_at``, Jalali or
  Gregorian, in the team's time zone); a held reply is released to the new time;
- ``POST /replies/{id}/schedule/cancel``: take the time off (an approved reply goes back to
  its author's drafts: cancelling never sends);
- ``POST /replies/{id}/send-now``: a scheduled or held reply leaves now;
- ``POST /replies/{id}/back-to-draft``: a scheduled or held reply back to its author.

Out-of-scope reply ids answer 404 like a missing one (the conversation's scope, first).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from console.deps import PathId, Principal, get_db, page_principal
from console.pages.conversation import _act, _visible_reply
from console.schedule_view import apply_send_at
from kartabl.workflow import schedule

router = APIRouter(include_in_schema=False)
When = Annotated[str, Form(max_length=60)]


@router.post("/replies/{rid}/schedule")
def set_time(
    request: Request, rid: PathId, send_at: When = "", p: Principal = Depends(page_principal),
    db: Session = Depends(get_db),
) -> Response:
    cid = _visible_reply(db, p, rid).conversation_id
    return _act(request, db, p, cid, "scheduled",
                lambda: apply_send_at(db, p.person, rid, send_at, required=True),
                {f"schedule_{rid}": send_at})


@router.post("/replies/{rid}/schedule/cancel")
def cancel(
    request: Request, rid: PathId, p: Principal = Depends(page_principal),
    db: Session = Depends(get_db),
) -> Response:
    cid = _visible_reply(db, p, rid).conversation_id
    return _act(request, db, p, cid, "unscheduled",
                lambda: schedule.cancel(db, p.person, rid))


@router.post("/replies/{rid}/send-now")
def send_now(
    request: Request, rid: PathId, p: Principal = Depends(page_principal),
    db: Session = Depends(get_db),
) -> Response:
    cid = _visible_reply(db, p, rid).conversation_id
    return _act(request, db, p, cid, "sent_now", lambda: schedule.send_now(db, p.person, rid))


@router.post("/replies/{rid}/back-to-draft")
def back_to_draft(
    request: Request, rid: PathId, p: Principal = Depends(page_principal),
    db: Session = Depends(get_db),
) -> Response:
    cid = _visible_reply(db, p, rid).conversation_id
    return _act(request, db, p, cid, "withdrawn", lambda: schedule.withdraw(db, p.person, rid))
