import threading
from datetime import timedelta

from sqlalchemy import event, func, select

from kartabl.models import (
    Conversation,
    Customer,
    Direction,
    Event,
    Message,
    Team,
    utcnow,
)
from router.route import route_message
from router.teams import sync_teams
from tests.factories import routing_args

WINDOW = timedelta(hours=168)


def _count(session, model, *where):
    return session.scalar(select(func.count()).select_from(model).where(*where))


def test_routing_twice_routes_once(session, inbound, route):
    mid = inbound(sender="a@example.ir")
    first = route(mid)
    # a sweep re-enqueue or a broker redelivery runs it again
    assert route(mid) is None
    message = session.get(Message, mid)
    assert message.routed_at is not None and message.conversation_id == first.conversation_id
    assert _count(session, Conversation) == 1
    assert _count(session, Event, Event.kind == "message.routed") == 1


def test_invalid_sender_is_rejected_and_kept(session, inbound, route):
    mid = inbound(channel="sms", sender="not-a-phone")
    out = route(mid)
    assert out.how == "rejected" and out.customer_id is None
    message = session.get(Message, mid)
    assert message.routed_at is not None and message.conversation_id is None
    assert "not a phone number" in message.meta["rejected"]
    ev = session.scalars(select(Event).where(Event.kind == "router.rejected")).one()
    assert ev.message_id == mid and "not-a-phone" in ev.data["reason"]
    assert route(mid) is None  # and it is not retried forever


def test_outbound_and_missing_messages_are_not_routed(session, route):
    out = Message(channel="email", external_id="<o@x>", direction=Direction.OUT, sender="us@x.ir")
    session.add(out)
    session.commit()
    assert route(out.id) is None and session.get(Message, out.id).routed_at is None
    assert route(999_999) is None


def test_default_routing_comes_from_the_routing_file(session, inbound):
    sync_teams(session, __import__("config.routing").routing.get_routing())
    session.commit()
    out = route_message(session, inbound(sender="a@example.ir", text="please send the invoice"),
                        **routing_args())
    team = session.get(Team, out.team_id)
    assert team.name == "billing"


def test_queries_per_message_stay_small(session, inbound, route, routing, make_person):
    # The benchmark routes tens of thousands of messages: count statements per route.
    sync_teams(session, routing)
    session.commit()
    make_person(session.scalar(select(Team).where(Team.name == "support")))
    engine = session.get_bind()
    statements: list[str] = []

    def count(conn, cursor, statement, *args):
        statements.append(statement)

    first, second = inbound(sender="q@example.ir"), inbound(sender="q@example.ir")
    event.listen(engine, "before_cursor_execute", count)
    try:
        route(first)
        new_customer = len(statements)
        statements.clear()
        route(second)
        known_customer = len(statements)
    finally:
        event.remove(engine, "before_cursor_execute", count)
    # new customer, new conversation, assigned (PostgreSQL, with the team and person locks),
    # and its new holder notified (one insert per batch: kartabl.notifications.answered),
    # and the message's search document (one insert per batch: kartabl.search), and whether
    # it answers a website chat reply continued to this address (router.offline_answers)
    assert new_customer <= 16, new_customer
    # known customer continuing an assigned conversation, its holder told "answered", its
    # scheduled replies looked up to be held (kartabl.workflow.schedule.hold_on_inbound),
    # and the message's search document, and the website chat continuation looked up
    assert known_customer <= 12, known_customer


# -- concurrency -------------------------------------------------------------------------------


def _race(db, *jobs):
    """Run each job(session) in its own thread and session, released together by a
    barrier so they really overlap; re-raise the first error."""
    barrier = threading.Barrier(len(jobs), timeout=30)
    results: list = [None] * len(jobs)
    errors: list[BaseException] = []

    def run(i, job):
        try:
            with db() as s:
                results[i] = job(s, barrier)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i, j), daemon=True) for i, j in enumerate(jobs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    if errors:
        raise errors[0]
    return results


def test_assignment_race_gives_the_last_slot_once(db, session, inbound, routing, make_person):
    # Given support, whose one member has room for exactly one more conversation
    sync_teams(session, routing)
    session.commit()
    support = session.scalar(select(Team).where(Team.name == "support"))
    person = make_person(support, capacity=2)
    customer = Customer(display_name="c")
    session.add(customer)
    session.flush()
    session.add(Conversation(customer_id=customer.id, channel="email", team_id=support.id,
                             assignee_id=person.id))
    session.commit()
    # and two new customers' messages that the rules send to support
    a = inbound(channel="email", sender="first@example.ir", text="سلام")
    b = inbound(channel="email", sender="second@example.ir", text="سلام")

    # When two workers route them at the same moment
    def job(mid):
        def run(s, barrier):
            # (the barrier comes before any query: on SQLite the first query takes the
            # write lock, and a thread holding it at the barrier would wait for ever)
            barrier.wait()
            outcome = route_message(s, mid, routing=routing, reopen_window=WINDOW)
            return outcome.assignee_id if outcome else "not routed"
        return run

    results = _race(db, job(a), job(b))
    # Then exactly one gets the slot; the other waits in support's queue
    assert sorted(results, key=lambda r: r is None) == [person.id, None]
    session.expire_all()
    assert _count(session, Conversation, Conversation.assignee_id == person.id) == 2
    assert {c.team_id for c in session.scalars(select(Conversation))} == {support.id}


def test_two_messages_of_one_new_customer_routed_at_once(db, session, inbound, routing):
    # Given two messages from a sender never seen before, stored and not yet routed
    a = inbound(channel="telegram", sender="777", text="سلام")
    b = inbound(channel="telegram", sender="777", text="هستید؟")

    # When two workers route them at the same moment
    def job(mid):
        def run(s, barrier):
            barrier.wait()
            return route_message(s, mid, routing=routing, reopen_window=WINDOW)
        return run

    out_a, out_b = _race(db, job(a), job(b))
    # Then there is one customer, one identity and one conversation holding both messages
    session.expire_all()
    assert _count(session, Customer) == 1
    assert _count(session, Conversation) == 1
    assert out_a.customer_id == out_b.customer_id
    assert out_a.conversation_id == out_b.conversation_id
    assert sorted([out_a.customer_created, out_b.customer_created]) == [False, True]
    assert _count(session, Message, Message.conversation_id == out_a.conversation_id) == 2


def test_concurrent_routes_of_one_message_route_it_once(db, session, inbound, routing):
    mid = inbound(sender="z@example.ir")

    def run(s, barrier):
        barrier.wait()
        return route_message(s, mid, routing=routing, reopen_window=WINDOW)

    results = _race(db, run, run, run)
    assert sum(r is not None for r in results) == 1
    session.expire_all()
    assert _count(session, Event, Event.kind == "message.routed") == 1
    assert session.get(Message, mid).routed_at <= utcnow()
