"""kartabl.audit writes every event row: one at a time (record) or in one statement
(record_many, the router's batches), the same row and the same log line either way."""

from __future__ import annotations

import logging

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from kartabl import audit
from kartabl.models import Event, Person, Role

COLUMNS = ("kind", "actor_id", "conversation_id", "customer_id", "reply_id", "message_id",
           "data")


def _rows(session: Session) -> list[tuple[object, ...]]:
    return [tuple(getattr(e, c) for c in COLUMNS)
            for e in session.scalars(select(Event).order_by(Event.id))]


def test_record_many_writes_the_rows_and_lines_record_writes(
        session: Session, caplog: pytest.LogCaptureFixture) -> None:
    admin = Person(username="adm", role=Role.ADMIN)
    session.add(admin)
    session.flush()
    # Given the same events written one by one, then in one batch
    with caplog.at_level(logging.INFO, logger="kartabl.audit"):
        audit.record(session, "a.one", actor=admin, reply_id=None, how="x")
        audit.record(session, "a.two", message_id=None, n=2)
        session.flush()
        one_by_one = _rows(session)
        lines = len(caplog.records)
        audit.record_many(session, [audit.Entry("a.one", actor=admin, data={"how": "x"}),
                                    audit.Entry("a.two", data={"n": 2})])
        session.commit()
    # Then the rows are the same, in order, with their time set
    assert _rows(session) == one_by_one * 2
    assert all(e.at is not None for e in session.scalars(select(Event)))
    # And so are the log lines
    first = [(r.getMessage(), r.actor, r.data) for r in caplog.records[:lines]]
    again = [(r.getMessage(), r.actor, r.data) for r in caplog.records[lines:]]
    assert first == again == [("a.one", "adm", {"how": "x"}), ("a.two", "system", {"n": 2})]


def test_record_many_of_nothing_writes_nothing(session: Session) -> None:
    audit.record_many(session, [])
    assert _rows(session) == []
