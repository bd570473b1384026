"""A queue page's rows, completed for display by one query each for the whole page (never
per row): the preview of the last inbound message (:func:`preview_line`), the oldest
pending reply, an address for customers without a name, the overdue flag, and the "new"
marker (a customer message the reader has not seen: one primary-key lookup per row of the
page in ``conversation_seen``, :func:`kartabl.notifications.unseen`).
"""
from __future__ import annotations

from typing import Any, Final

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from console.queue_types import PENDING, PendingReply, QueueKind, QueueRow, _Cutoffs
from kartabl.models import Channel, ConversationStatus, Direction, Identity, Message, Person, Reply
from kartabl.notifications import unseen

PREVIEW_CHARS: Final = 140  # the one-line preview of the last inbound message
_PREVIEW_READ: Final = 600  # characters read from the database to find that line


def _name(display: str | None, username: str | None) -> str | None:
    return (display or username) if username is not None else None


def _rows(session: Session, kind: QueueKind, rows: list[Any], cut: _Cutoffs,
          reader_id: int) -> list[QueueRow]:
    """The page's rows, completed by one query each for the whole page (never per row):
    previews, oldest pending replies, addresses for customers without a name, and which
    rows are new to ``reader_id``."""
    ids = list({r.id for r in rows})
    new = unseen(session, reader_id, {r.id: r.last_message_at for r in rows})
    previews = _previews(session, ids)
    pending = _pending(session, ids) if kind != "approval" else {}
    labels = _identity_labels(session, {r.customer_id for r in rows if not r.customer_name})
    out = []
    for r in rows:
        reply = pending.get(r.id)
        if kind == "approval":
            reply = PendingReply(r.reply_id, _name(r.author_display, r.author_username) or "",
                                 r.reply_updated_at)
        status = ConversationStatus(r.status)
        out.append(QueueRow(
            conversation_id=r.id, customer_id=r.customer_id,
            customer_name=r.customer_name or labels.get(r.customer_id, ""),
            channel=Channel(r.channel), subject=r.subject, preview=previews.get(r.id, ""),
            status=status, team_id=r.team_id,
            team_name=(r.team_title or r.team_slug) if r.team_id is not None else None,
            assignee_id=r.assignee_id,
            assignee_name=_name(r.assignee_display, r.assignee_username),
            opened_at=r.opened_at, last_message_at=r.last_message_at,
            first_response_at=r.first_response_at,
            overdue=cut.flag(status, r.opened_at, r.first_response_at,
                             r.first_response_due_at, r.resolution_due_at),
            pending_reply_id=reply.id if reply else None, pending_reply=reply,
            unread=r.id in new, snoozed_until=r.snoozed_until,
            first_response_due_at=r.first_response_due_at,
            resolution_due_at=r.resolution_due_at,
            **(_scheduled(r) if kind == "scheduled" else
               {"send_at": r.send_at} if kind == "approval" else {}),
        ))
    return out


def _scheduled(r: Any) -> dict[str, Any]:
    return {"scheduled_reply_id": r.reply_id, "send_at": r.send_at,
            "schedule_held": r.held_at is not None}


def preview_line(text: str) -> str:
    """The first non-blank line of ``text``, at most :data:`PREVIEW_CHARS` characters."""
    line = next((ln.strip() for ln in text.splitlines() if ln.strip()), "")
    return line if len(line) <= PREVIEW_CHARS else line[: PREVIEW_CHARS - 1].rstrip() + "…"


def _previews(session: Session, ids: list[int]) -> dict[int, str]:
    if not ids:
        return {}
    # The newest inbound message by id (the order they were stored); the text is cut in
    # SQL so that a page never pulls whole mail bodies.
    last = (select(func.max(Message.id))
            .where(Message.conversation_id.in_(ids), Message.direction == Direction.IN)
            .group_by(Message.conversation_id))
    rows = session.execute(
        select(Message.conversation_id, func.substr(Message.text, 1, _PREVIEW_READ))
        .where(Message.id.in_(last))
    )
    return {cid: preview_line(text or "") for cid, text in rows if cid is not None}


def _pending(session: Session, ids: list[int]) -> dict[int, PendingReply]:
    if not ids:
        return {}
    rows = session.execute(
        select(Reply.conversation_id, Reply.id, Reply.updated_at, Person.display_name,
               Person.username)
        .join(Person, Person.id == Reply.author_id)
        .where(Reply.conversation_id.in_(ids), Reply.state == PENDING)
        .order_by(Reply.updated_at.desc(), Reply.id.desc())
    )
    # Newest first, so the oldest pending reply is the one the dict keeps.
    return {cid: PendingReply(rid, display or username, at)
            for cid, rid, at, display, username in rows}


def _identity_labels(session: Session, customer_ids: set[int]) -> dict[int, str]:
    if not customer_ids:
        return {}
    return dict(session.execute(
        select(Identity.customer_id, func.min(Identity.address))
        .where(Identity.customer_id.in_(customer_ids)).group_by(Identity.customer_id)
    ).all())
