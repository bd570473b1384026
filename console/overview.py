"""Counts of the cartable by state: the overview page and ``/api/v1/status``."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from kartabl.models import (
    Conversation,
    ConversationStatus,
    Customer,
    Direction,
    Message,
    Reply,
    ReplyState,
)


def overview_counts(session: Session) -> dict[str, Any]:
    replies = dict(
        session.execute(select(Reply.state, func.count()).group_by(Reply.state)).all()
    )
    open_q = (
        select(func.count())
        .select_from(Conversation)
        .where(Conversation.status == ConversationStatus.OPEN)
    )
    return {
        "customers": session.scalar(select(func.count()).select_from(Customer)) or 0,
        "messages_in": session.scalar(
            select(func.count()).select_from(Message).where(Message.direction == Direction.IN)
        )
        or 0,
        "unrouted": session.scalar(
            select(func.count())
            .select_from(Message)
            .where(Message.direction == Direction.IN, Message.routed_at.is_(None))
        )
        or 0,
        "conversations_open": session.scalar(open_q) or 0,
        "triage": session.scalar(open_q.where(Conversation.assignee_id.is_(None))) or 0,
        "conversations_closed": session.scalar(
            select(func.count())
            .select_from(Conversation)
            .where(Conversation.status == ConversationStatus.CLOSED)
        )
        or 0,
        "replies": {state.value: int(replies.get(state, 0)) for state in ReplyState},
    }
