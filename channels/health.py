"""The health of every polled source (:class:`~kartabl.models.PollerState`), written by the
poller runner (:mod:`channels.runner`) and read by ``kartabl status`` and ``/readyz``.

Each function is one short transaction of its own: the runner never holds a database
transaction open across a round trip to the source.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from kartabl.db import dialect_insert
from kartabl.models import PollerState, utcnow


def _row(session: Session, name: str) -> PollerState:
    # Insert-if-missing that two processes may race on safely.
    session.execute(
        dialect_insert(session)(PollerState)
        .values(name=name, updated_at=utcnow())
        .on_conflict_do_nothing(index_elements=["name"])
    )
    row = session.get(PollerState, name, populate_existing=True)
    assert row is not None
    return row


def record_ok(sf: sessionmaker[Session], name: str) -> datetime | None:
    """A pass succeeded. Returns when the outage that this ends began (None: there was none)."""
    with sf() as session:
        row = _row(session, name)
        was = row.failing_since
        row.last_ok_at, row.failing_since, row.last_error = utcnow(), None, None
        session.commit()
        return was


def record_failure(sf: sessionmaker[Session], name: str, error: str) -> datetime:
    """The source failed. Returns when the current outage began."""
    with sf() as session:
        row = _row(session, name)
        if row.failing_since is None:
            row.failing_since = utcnow()
        row.last_error = error[:2000]
        since = row.failing_since
        session.commit()
        return since


def failing(session: Session, prefix: str = "") -> list[dict[str, Any]]:
    """The sources in an outage now (JSON-ready), those named ``prefix...`` only if given;
    ``name`` without the prefix."""
    query = (select(PollerState.name, PollerState.failing_since, PollerState.last_error)
             .where(PollerState.failing_since.is_not(None)).order_by(PollerState.name))
    if prefix:
        query = query.where(PollerState.name.startswith(prefix, autoescape=True))
    return [
        {"name": n.removeprefix(prefix), "failing_since": since.isoformat() if since else None,
         "last_error": err}
        for n, since, err in session.execute(query)
    ]
