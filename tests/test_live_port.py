"""The live port (kartabl/live.py): a transaction that wrote events wakes the listeners once,
after its commit; a rollback wakes nobody; with no transport installed the wake stays in the
process (the embedded mode)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy.orm import Session

from kartabl import audit, live
from tests import factories as f


@pytest.fixture
def wakes() -> Iterator[list[str]]:
    live.set_transport(None)  # this process only
    got: list[str] = []
    stop = live.listen(lambda: got.append("wake"))
    yield got
    stop()


def test_one_wake_per_commit_after_it(session: Session, wakes: list[str]) -> None:
    conv = f.conversation(session)
    audit.record(session, "conversation.note", conversation_id=conv.id, text="one")
    audit.record_many(session, [audit.Entry("conversation.note", conversation_id=conv.id)] * 3)
    assert wakes == []  # not before the commit: a listener would find nothing yet
    session.commit()
    assert wakes == ["wake"]


def test_a_rollback_wakes_nobody(session: Session, wakes: list[str]) -> None:
    conv = f.conversation(session)
    audit.record(session, "conversation.note", conversation_id=conv.id, text="gone")
    session.rollback()
    session.commit()  # an empty transaction afterwards: the dropped hook stays dropped
    assert wakes == []


def test_a_stopped_listener_is_not_called(session: Session, wakes: list[str]) -> None:
    other: list[str] = []
    stop = live.listen(lambda: other.append("wake"))
    stop()
    conv = f.conversation(session)
    audit.record(session, "conversation.note", conversation_id=conv.id, text="x")
    session.commit()
    assert (wakes, other) == (["wake"], [])
