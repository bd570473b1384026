"""What the conversation page shows and takes of scheduled send
(:mod:`kartabl.workflow.schedule`): the panel of its scheduled replies (held ones marked,
with "send now", "reschedule" and "back to draft" for those who may), and the send time
typed on the compose, submit and approve forms, applied in the same transaction as the step.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from console.i18n import digits
from console.schedule_time import _team_tz, form_value, parse_send_at, show_send_at
from kartabl.errors import NotFound
from kartabl.models import Conversation, Person, Reply, ReplyState
from kartabl.workflow import schedule
from kartabl.workflow.access import REVIEWERS


@dataclass(frozen=True, slots=True)
class ScheduledItem:
    reply_id: int
    author_id: int
    body: str
    send_at: datetime
    shown: str  # the send time in the team's zone, in the reader's calendar and digits
    form_value: str  # what the reschedule input holds
    held: bool
    can_act: bool  # the author, or a coordinator/admin


def scheduled_panel(db: Session, reader: Person, conv: Conversation,
                    locale: str) -> list[ScheduledItem]:
    """The conversation's approved replies with a send time, soonest first (the page is
    already scoped: the conversation is one the reader may open)."""
    tz = _team_tz(db, conv)
    rows = db.execute(
        select(Reply.id, Reply.author_id, Reply.body, Reply.send_at, Reply.schedule_held_at)
        .where(Reply.conversation_id == conv.id, Reply.sent_at.is_(None),
               Reply.state == ReplyState.APPROVED, Reply.send_at.is_not(None))
        .order_by(Reply.send_at, Reply.id)).all()
    acts = reader.role in REVIEWERS
    return [ScheduledItem(rid, author, body, at, show_send_at(at, locale, tz),
                          form_value(at, locale, tz), held is not None,
                          acts or author == reader.id)
            for rid, author, body, at, held in rows if at is not None]


def schedule_context(db: Session, reader: Person, cid: int, locale: str) -> dict[str, Any]:
    """What conversation.html adds for scheduled send: the panel's replies, and the send-time
    inputs' example (a Jalali one for Persian readers) and time zone."""
    conv = db.get(Conversation, cid)
    if conv is None:
        return {"scheduled": [], "send_at_example": "", "send_at_zone": ""}
    tz = _team_tz(db, conv)
    example = "1405/09/14 10:30" if locale == "fa" else "2026-12-05 10:30"
    return {"scheduled": scheduled_panel(db, reader, conv, locale),
            "send_at_example": digits(example, locale), "send_at_zone": str(tz)}


def shown_time(db: Session, conv_id: int, value: datetime | None, locale: str) -> str:
    """A reply's send time for the page ("" for none), in its team's zone."""
    conv = db.get(Conversation, conv_id)
    if value is None or conv is None:
        return ""
    return show_send_at(value, locale, _team_tz(db, conv))


def apply_send_at(db: Session, actor: Person, reply_id: int, text: str | None, *,
                  required: bool = False) -> None:
    """Schedule reply ``reply_id`` at the time typed, read in its team's time zone, in the
    caller's transaction. Nothing typed: nothing to do (``required``: refused as no time)."""
    if not (text or "").strip() and not required:
        return
    reply = db.get(Reply, reply_id)
    conv = db.get(Conversation, reply.conversation_id) if reply is not None else None
    if reply is None or conv is None:
        raise NotFound(f"reply {reply_id} does not exist", code="missing",
                       params={"item": "reply", "id": reply_id})
    schedule.schedule(db, actor, reply_id, parse_send_at(text or "", _team_tz(db, conv)))
