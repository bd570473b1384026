"""route_batch: many messages, one transaction, the same outcomes as routing them one by one."""

from sqlalchemy import event, func, select, text

from kartabl.db import is_sqlite
from kartabl.models import Conversation, Customer, Event, Message, Team
from router.batch import route_batch
from router.teams import sync_teams
from tests.router.conftest import WINDOW


def _count(session, model, *where):
    return session.scalar(select(func.count()).select_from(model).where(*where))


def _support(session, routing):
    sync_teams(session, routing)
    session.commit()
    return session.scalar(select(Team).where(Team.name == "support"))


def test_a_batch_threads_each_customer_once_and_rejects_bad_senders(
    session, inbound, routing, make_person
):
    person = make_person(_support(session, routing))
    # Given two messages of one new customer, one of another, and an invalid sender
    a1 = inbound(sender="a@example.ir", text="one")
    b1 = inbound(sender="b@example.ir", text="hi")
    bad = inbound(channel="sms", sender="not-a-phone")
    a2 = inbound(sender="a@example.ir", text="two")
    # When they are routed in one batch
    out = route_batch(session, [a2, bad, a1, b1], routing=routing, reopen_window=WINDOW)
    # Then there is one outcome per message, in id order
    assert [o.message_id for o in out] == [a1, b1, bad, a2]
    by_id = {o.message_id: o for o in out}
    # And both messages of the first customer share one conversation, created once
    assert by_id[a1].conversation_id == by_id[a2].conversation_id
    assert (by_id[a1].customer_created, by_id[a2].customer_created) == (True, False)
    assert (by_id[a1].how, by_id[a2].how) == ("new", "open")
    assert by_id[a1].assignee_id == by_id[a2].assignee_id == person.id
    assert by_id[bad].how == "rejected" and by_id[bad].customer_id is None
    assert _count(session, Customer) == 2 and _count(session, Conversation) == 2
    # And the audit trail is what single routes write: one assignment per new conversation
    assert _count(session, Event, Event.kind == "message.routed") == 3
    assert _count(session, Event, Event.kind == "conversation.assigned") == 2
    assert _count(session, Event, Event.kind == "router.rejected") == 1
    assert _count(session, Message, Message.routed_at.is_(None)) == 0
    # And routing the batch again does nothing
    assert route_batch(session, [a1, a2, b1, bad], routing=routing, reopen_window=WINDOW) == []


def test_a_batch_respects_capacity_and_spreads_the_load(session, inbound, routing, make_person):
    # Given support with two members, room for one conversation each
    support = _support(session, routing)
    first, second = make_person(support, capacity=1), make_person(support, capacity=1)
    # When three new customers write in one batch
    ids = [inbound(sender=f"c{n}@example.ir") for n in range(3)]
    out = route_batch(session, ids, routing=routing, reopen_window=WINDOW)
    # Then each member gets one, and the third waits in support's queue
    assert [o.assignee_id for o in out] == [first.id, second.id, None]
    assert {o.team_id for o in out} == {support.id}
    triaged = session.scalars(select(Event).where(Event.kind == "conversation.triaged")).one()
    assert triaged.data["reason"] == "team at capacity"


def test_statements_do_not_grow_with_the_batch(session, inbound, routing, make_person):
    make_person(_support(session, routing), capacity=1000)
    engine = session.get_bind()
    statements: list[str] = []

    def count(conn, cursor, statement, *args):
        statements.append(statement)

    def run(n: int, tag: str) -> int:
        # n known customers, each continuing its assigned conversation
        ids = [inbound(sender=f"{tag}{k}@example.ir") for k in range(n)]
        route_batch(session, ids, routing=routing, reopen_window=WINDOW)
        ids = [inbound(sender=f"{tag}{k}@example.ir") for k in range(n)]
        statements.clear()
        event.listen(engine, "before_cursor_execute", count)
        try:
            route_batch(session, ids, routing=routing, reopen_window=WINDOW)
        finally:
            event.remove(engine, "before_cursor_execute", count)
        return len(statements)

    assert run(1, "one") == run(30, "many")


def test_a_customer_locked_elsewhere_is_deferred_not_waited_for(db, session, inbound, routing):
    if is_sqlite(session):
        return  # SQLite serialises whole transactions: no row is ever locked by another
    # Given a known customer, and another transaction holding that customer's row
    route_batch(session, [inbound(sender="l@example.ir")], routing=routing, reopen_window=WINDOW)
    locked, free = inbound(sender="l@example.ir"), inbound(sender="f@example.ir")
    cid = session.scalar(select(Message.customer_id).where(Message.customer_id.is_not(None)))
    deferred: list[list[int]] = []
    with db() as other:
        other.execute(text("SELECT id FROM customer WHERE id = :c FOR UPDATE"), {"c": cid})
        # When a batch with a message of that customer is routed with a defer callback
        out = route_batch(session, [locked, free], routing=routing, reopen_window=WINDOW,
                          defer=deferred.append)
        other.rollback()
    # Then the other message is routed, and that one is handed back, still unrouted
    assert [o.message_id for o in out] == [free]
    assert deferred == [[locked]]
    session.expire_all()
    assert session.get(Message, locked).routed_at is None
    # And once the lock is gone it is routed into the customer's conversation
    [again] = route_batch(session, [locked], routing=routing, reopen_window=WINDOW)
    assert again.customer_id == cid and again.how == "open"
