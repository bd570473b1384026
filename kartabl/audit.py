"""The audit trail: every change writes one :class:`~kartabl.models.Event`."""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy.orm import Session

from kartabl.models import Event, Person

log = logging.getLogger("kartabl.audit")


def record(
    session: Session,
    kind: str,
    *,
    actor: Person | None = None,
    conversation_id: int | None = None,
    customer_id: int | None = None,
    reply_id: int | None = None,
    message_id: int | None = None,
    **data: Any,
) -> Event:
    event = Event(
        kind=kind,
        actor_id=actor.id if actor is not None else None,
        conversation_id=conversation_id,
        customer_id=customer_id,
        reply_id=reply_id,
        message_id=message_id,
        data=data,
    )
    session.add(event)
    log.info(
        "%s",
        kind,
        extra={
            "event_kind": kind,
            "actor": actor.username if actor else "system",
            "conversation": conversation_id,
            "reply": reply_id,
            **{"data": data},
        },
    )
    return event
