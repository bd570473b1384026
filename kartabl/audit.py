"""The audit trail: every change writes one :class:`~kartabl.models.Event`.

Only this module writes event rows: :func:`record` one, through the unit of work;
:func:`record_many` a batch of them in one executemany (the router writes several per
message routed, and the unit of work cost more CPU than the routing). Both write the same
row and the same log line."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, insert
from sqlalchemy.orm import Session

from kartabl.live import wake_after_commit
from kartabl.models import Event, Person, utcnow

log = logging.getLogger("kartabl.audit")


@dataclass(frozen=True, slots=True)
class Entry:
    """One event for :func:`record_many`; the fields are :func:`record`'s arguments."""

    kind: str
    actor: Person | None = None
    conversation_id: int | None = None
    customer_id: int | None = None
    reply_id: int | None = None
    message_id: int | None = None
    data: dict[str, Any] = field(default_factory=dict)

    def row(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "actor_id": self.actor.id if self.actor is not None else None,
            "conversation_id": self.conversation_id,
            "customer_id": self.customer_id,
            "reply_id": self.reply_id,
            "message_id": self.message_id,
            "data": self.data,
        }

    def log(self) -> None:
        log.info(
            "%s",
            self.kind,
            extra={
                "event_kind": self.kind,
                "actor": self.actor.username if self.actor else "system",
                "conversation": self.conversation_id,
                "reply": self.reply_id,
                "data": self.data,
            },
        )


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
    entry = Entry(kind, actor, conversation_id, customer_id, reply_id, message_id, data)
    event = Event(**entry.row())
    session.add(event)
    entry.log()
    wake_after_commit(session)  # the console pushes it once it is committed (kartabl.live)
    return event


def record_many(session: Session, entries: Sequence[Entry], *, at: datetime | None = None) -> None:
    """Write ``entries`` in order, in one executemany on the session's connection (Core: the
    rows are not loaded as objects). ``at`` is the time of every one (default now)."""
    if not entries:
        return
    when = at if at is not None else utcnow()
    rows = []
    for entry in entries:
        rows.append({"at": when, **entry.row()})
        entry.log()
    session.connection().execute(insert(cast(Table, Event.__table__)), rows)
    wake_after_commit(session)
