"""The index is written with its source, in the same transaction, by the router, the note
transition and the dispatcher; reindex rebuilds it; move_docs follows a merge."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from boot.cli import app as cli_app
from kartabl import ingest, workflow
from kartabl import search as index
from kartabl.messages import InboundMessage
from kartabl.models import Channel, Role, SearchDoc
from responders.dispatch import dispatch_reply, poll_delivery
from router.route import route_message
from tests import factories as f
from tests.responders.conftest import ApprovedReply
from tests.responders.conftest import approved_reply as approved_reply
from tests.responders.conftest import sandbox as sandbox
from tests.search.conftest import found


def _docs(s: Session) -> list[tuple[str, int, int, str]]:
    return [tuple(r) for r in s.execute(  # type: ignore[misc]
        select(SearchDoc.source, SearchDoc.source_id, SearchDoc.conversation_id, SearchDoc.text)
        .order_by(SearchDoc.source, SearchDoc.source_id))]


def test_a_routed_message_is_searchable_once_routed(session: Session) -> None:
    # Given a stored message: not routed, not searchable
    coord = f.person(session, role=Role.COORDINATOR)
    session.commit()
    mid = ingest.store(session, InboundMessage(
        channel=Channel.EMAIL, external_id="e-1", sender="ali@example.ir",
        subject="فاكتور خرید", text="لطفاً فاکتور رسمی بفرستید")).message_id
    assert found(session, coord, "فاکتور") == set()
    # When the router files it
    outcome = route_message(session, mid, **f.routing_args())
    assert outcome is not None
    # Then it is found by its subject and its text, as a message of its conversation
    assert found(session, coord, "فاکتور رسمی") == {outcome.conversation_id}
    assert index.indexed(session, index.MESSAGE, [mid]) == {mid}


def test_a_note_is_indexed_in_its_transaction(db: sessionmaker[Session]) -> None:
    with db() as s:
        coord = f.person(s, role=Role.COORDINATOR)
        conv = f.conversation(s)
        s.commit()
        cid = conv.id
        # A note rolled back leaves no trace in the index
        event = workflow.note(s, coord, cid, "یادداشت محرمانه: مشتری ویژه")
        assert index.indexed(s, index.NOTE, [event.id]) == {event.id}
        s.rollback()
        assert s.scalar(select(func.count()).select_from(SearchDoc)) == 0
        # A note committed is found, marked as a note
        event = workflow.note(s, coord, cid, "یادداشت محرمانه: مشتری ویژه")
        s.commit()
        assert found(s, coord, "محرمانه") == {cid}
        assert _docs(s)[0][:3] == ("note", event.id, cid)


def test_a_sent_reply_is_indexed_when_recorded_sent(
        db: sessionmaker[Session], sandbox: object, approved_reply: ApprovedReply) -> None:
    rid = approved_reply(body="Your refund was processed today")
    with db() as s:
        # approved is not sent: not searchable yet
        assert index.indexed(s, index.REPLY, [rid]) == set()
    assert dispatch_reply(db, rid) == "sent"
    with db() as s:
        coord = f.person(s, role=Role.COORDINATOR)
        s.commit()
        assert index.indexed(s, index.REPLY, [rid]) == {rid}
        assert len(found(s, coord, "refunds processing")) == 1


def test_a_sent_reply_that_fails_after_all_leaves_the_index(
        db: sessionmaker[Session], sandbox: dict, approved_reply: ApprovedReply) -> None:
    # Given two SMS replies sent and indexed
    failing, fine = approved_reply(Channel.SMS, "first"), approved_reply(Channel.SMS, "second")
    assert dispatch_reply(db, failing) == dispatch_reply(db, fine) == "sent"
    # When the provider reports one failed (the delivery poll moves it sent -> failed)
    sandbox["sms"].report_status = "failed"
    assert poll_delivery(db, limit=1) == 1
    # Then that one is no longer a sent reply to search; the other still is
    with db() as s:
        left = index.indexed(s, index.REPLY, [failing, fine])
    assert len(left) == 1


def test_reindex_rebuilds_the_same_index(db: sessionmaker[Session]) -> None:
    with db() as s:
        coord = f.person(s, role=Role.COORDINATOR)
        conv = f.conversation(s, subject="موضوع", text="می‌خواهم سفارشم را لغو کنم")
        workflow.note(s, coord, conv.id, "note about the refund")
        s.commit()
        # the factory's message bypassed the router: only the note is indexed
        assert [d[0] for d in _docs(s)] == ["note"]
        written = index.reindex(s, batch=1)
        assert written == 2
        docs = _docs(s)
        assert [d[0] for d in docs] == ["message", "note"]
        assert docs[0][3] == "موضوع می خواهم سفارشم را لغو کنم"
        assert found(s, coord, "میخواهم") == {conv.id}
        # and again: the same rows, nothing doubled
        index.reindex(s)
        assert [d[:3] for d in _docs(s)] == [d[:3] for d in docs]


def test_the_reindex_command(db: sessionmaker[Session]) -> None:
    with db() as s:
        f.conversation(s, text="hello there")
        f.conversation(s, text="سلام")
        s.commit()
    result = CliRunner().invoke(cli_app, ["search", "reindex"])
    assert result.exit_code == 0, result.output
    assert "indexed 2 text(s)" in result.output
    with db() as s:
        assert len(_docs(s)) == 2


def test_move_docs_follows_a_merge(session: Session) -> None:
    coord = f.person(session, role=Role.COORDINATOR)
    a, b = f.conversation(session, text="first unique-alpha"), f.conversation(session)
    index.reindex(session)
    event = workflow.note(session, coord, a.id, "a note with unique-beta")
    session.commit()
    (mid,) = [d[1] for d in _docs(session) if d[0] == "message" and d[2] == a.id]
    index.move_docs(session, message_ids=[mid], event_ids=[event.id], to_conversation_id=b.id)
    session.commit()
    assert found(session, coord, "unique-alpha") == {b.id}
    assert found(session, coord, "unique-beta") == {b.id}


@pytest.mark.parametrize("query", ["", "   ", "-refund", '""'])
def test_a_query_without_a_word_finds_nothing(session: Session, query: str) -> None:
    coord = f.person(session, role=Role.COORDINATOR)
    f.conversation(session, text="refund")
    index.reindex(session)
    assert found(session, coord, query) == set()
