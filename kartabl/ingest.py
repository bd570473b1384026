"""Durable ingest: the first thing that happens to every inbound message.

The row is inserted under the unique (channel, external_id) with ON CONFLICT DO NOTHING and
committed; only then is routing enqueued (one ``route_messages`` task per batch of at most
:data:`kartabl.tasks.ROUTE_BATCH` new rows), and only then may the caller acknowledge the
channel (flag the mail, answer 200, advance the offset). The same message ingested twice is
one row: the second call reports ``created=False`` and enqueues nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, cast

from sqlalchemy import Table, select
from sqlalchemy.orm import Session

from kartabl import metrics
from kartabl.db import DialectInsert, after_commit, dialect_insert
from kartabl.messages import InboundMessage, SafeHtml
from kartabl.models import Direction, Message
from kartabl.tasks import ROUTE_BATCH, enqueue_after_commit


@dataclass(frozen=True, slots=True)
class Stored:
    message_id: int
    created: bool


def html_columns(html: str | None) -> dict[str, str | None]:
    """Where a message's HTML goes: ``safe_html`` (rendered by pages as it is) only when the
    sanitiser made it; anything else to ``html``, kept and never rendered."""
    if isinstance(html, SafeHtml):
        return {"html": None, "safe_html": html}
    return {"html": html, "safe_html": None}


def _row(msg: InboundMessage) -> dict[str, Any]:
    return {
        "channel": msg.channel,
        "external_id": msg.external_id,
        "direction": Direction.IN,
        "kind": msg.kind,
        "sender": msg.sender,
        "sender_name": msg.sender_name,
        "recipient": msg.recipient,
        "subject": msg.subject,
        "text": msg.text,
        **html_columns(msg.html),
        "in_reply_to": msg.in_reply_to,
        "references": list(msg.references),
        "attachments": [a.to_json() for a in msg.attachments],
        "meta": msg.meta,
        "received_at": msg.received_at,
    }


@lru_cache(maxsize=2)
def _insert_stmt(insert: DialectInsert) -> Any:
    table = cast(Table, Message.__table__)
    return (
        insert(table)
        .on_conflict_do_nothing(index_elements=["channel", "external_id"])
        .returning(table.c.id, table.c.channel, table.c.external_id)
    )


def store_many(session: Session, msgs: Sequence[InboundMessage]) -> list[Stored]:
    """Insert ``msgs`` (idempotently) and commit. Returns one :class:`Stored` per input, in
    order. Routing of the new rows is enqueued after the commit, in batches."""
    out = add_many(session, msgs)
    session.commit()
    return out


def add_many(session: Session, msgs: Sequence[InboundMessage]) -> list[Stored]:
    """:func:`store_many` without the commit, for a caller whose rows of its own must be
    committed with the messages. Routing is enqueued (and the metrics counted) only once
    the caller commits; a rollback drops both."""
    if not msgs:
        return []
    # One statement with a list of parameter sets: SQLAlchemy's "insertmanyvalues" turns it
    # into multi-row INSERTs from one cached compilation. A ``.values([...])`` of N rows is
    # compiled afresh for every batch, which cost the producer more than the insert itself.
    stmt = _insert_stmt(dialect_insert(session))
    new = {(str(c), e): i for i, c, e in session.connection().execute(
        stmt, [_row(m) for m in msgs])}
    missing = [
        (str(m.channel), m.external_id) for m in msgs if (str(m.channel), m.external_id) not in new
    ]
    existing: dict[tuple[str, str], int] = {}
    for key in set(missing):
        mid = session.scalar(
            select(Message.id).where(Message.channel == key[0], Message.external_id == key[1])
        )
        assert mid is not None, "conflicting row vanished"
        existing[key] = mid
    ids = sorted(new.values())
    for start in range(0, len(ids), ROUTE_BATCH):
        enqueue_after_commit(session, "route_messages", ids[start : start + ROUTE_BATCH])
    after_commit(session, _counter(len(new), len(msgs) - len(new)))
    out: list[Stored] = []
    seen: set[tuple[str, str]] = set()
    for m in msgs:
        key = (str(m.channel), m.external_id)
        out.append(Stored(new.get(key) or existing[key], key in new and key not in seen))
        seen.add(key)
    return out


def _counter(created: int, duplicates: int) -> Callable[[], None]:
    # The counts are bound here, by value: a closure over add_many's locals read them only
    # after the commit, when a later loop had rebound one of them to one message's bool, so
    # the ingested counter moved by 0 or 1 per batch.
    def count() -> None:
        metrics.INGESTED.inc(created)
        metrics.DUPLICATES.inc(duplicates)

    return count


def store(session: Session, msg: InboundMessage) -> Stored:
    """Insert one message idempotently and commit; see :func:`store_many`."""
    return store_many(session, [msg])[0]
