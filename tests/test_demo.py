"""The demo's driver (issue 14): it acts under its own, clearly named accounts, never as a
person who signs in; it leaves the newest conversations in triage and the visitor's own
work (their conversations, their replies awaiting approval) for the visitor. On SQLite and
PostgreSQL."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from boot.demo import (
    BOT_COORDINATOR,
    BOTS,
    DEMO_PASSWORD,
    KEEP_IN_TRIAGE,
    DemoDriver,
    print_login,
    seed,
)
from kartabl import workflow
from kartabl.models import Conversation, Event, Person, Reply, ReplyState
from kartabl.passwords import verify_password
from responders.preview import REPLY_CHECK
from router.route import route_message
from tests.factories import routing_args

Db = sessionmaker[Session]


@pytest.fixture
def seeded(db: Db) -> Db:
    with db() as s:
        seed(s)
        s.commit()
    return db


def _people(db: Db) -> dict[str, Person]:
    with db() as s:
        return {p.username: p for p in s.scalars(select(Person))}


def _route_all(db: Db) -> None:
    from kartabl.models import Message

    with db() as s:
        ids = list(s.scalars(select(Message.id).where(Message.routed_at.is_(None))))
    for mid in ids:
        with db() as s:
            route_message(s, mid, **routing_args())


def test_the_bots_are_accounts_of_their_own_that_nobody_signs_in_as(seeded: Db) -> None:
    people = _people(seeded)
    for username, _, _, name in BOTS:
        bot = people[username]
        assert name.startswith("demo bot — ") and bot.display_name == name
        assert not verify_password(bot.password_hash, DEMO_PASSWORD)
    assert verify_password(people["maryam"].password_hash, DEMO_PASSWORD)
    with seeded() as s:  # seeding again changes nothing
        seed(s)
        s.commit()
    assert len(_people(seeded)) == len(people)


def test_the_driver_never_acts_as_a_visitor(seeded: Db) -> None:
    # Given a running demo: customers write, the router places them, the bots work
    driver = DemoDriver(threading.Event(), seed_=5)
    for _ in range(12):
        driver.customer_writes()
        _route_all(seeded)
        driver.tick()
        _route_all(seeded)
    # Then every step taken by a person was taken by a bot: no visitor's name on any step
    bots = {p.id for n, p in _people(seeded).items() if n in {b[0] for b in BOTS}}
    with seeded() as s:
        actors = set(s.scalars(select(Event.actor_id).where(Event.actor_id.is_not(None))))
        kinds = set(s.scalars(select(Event.kind).where(Event.actor_id.in_(bots))))
    assert actors and actors <= bots, actors - bots
    assert "conversation.assigned" in kinds or "reply.submitted" in kinds


def test_the_newest_of_triage_wait_for_the_visitor(seeded: Db) -> None:
    from tests import factories as f

    with seeded() as s:
        ids = [f.conversation(s).id for _ in range(KEEP_IN_TRIAGE + 3)]
        s.commit()
    driver = DemoDriver(threading.Event(), seed_=2)
    with seeded() as s:
        driver.coordinator_triages(s)
        s.commit()
    with seeded() as s:
        left = list(s.scalars(select(Conversation.id).where(Conversation.assignee_id.is_(None))
                              .order_by(Conversation.id)))
    assert left == ids[-KEEP_IN_TRIAGE:]  # the oldest three went to the bots
    # and again: nothing more is taken while only KEEP_IN_TRIAGE wait
    with seeded() as s:
        driver.coordinator_triages(s)
        s.commit()
    with seeded() as s:
        assert len(s.scalars(select(Conversation.id).where(
            Conversation.assignee_id.is_(None))).all()) == KEEP_IN_TRIAGE


def test_the_visitors_conversations_and_replies_are_left_to_them(seeded: Db) -> None:
    from tests import factories as f

    people = _people(seeded)
    with seeded() as s:
        ali, maryam = s.get(Person, people["ali"].id), s.get(Person, people["maryam"].id)
        mine = f.conversation(s, assignee=ali)
        answered = f.conversation(s, assignee=ali)
        reply = workflow.draft(s, ali, answered.id, "سلام", check=REPLY_CHECK)
        workflow.submit(s, ali, reply.id, check=REPLY_CHECK)
        s.commit()
        mine_id, reply_id = mine.id, reply.id
    assert maryam is not None
    driver = DemoDriver(threading.Event(), seed_=4)
    driver.rnd.random = lambda: 0.9  # type: ignore[method-assign]  # always approve
    for _ in range(3):
        driver.tick()
    with seeded() as s:
        # Ali's conversation got no draft from anyone else; his reply still awaits a person
        assert s.scalars(select(Reply).where(Reply.conversation_id == mine_id)).all() == []
        pending = s.get(Reply, reply_id)
        assert pending is not None and pending.state == ReplyState.PENDING_APPROVAL


def test_the_sign_in_url_is_printed_last(capsys: pytest.CaptureFixture[str]) -> None:
    print_login("127.0.0.1", 8000)
    lines = [line for line in capsys.readouterr().out.splitlines() if line.strip()]
    assert lines[-1].strip() == (
        f"Sign in: http://127.0.0.1:8000/login  (user maryam, password {DEMO_PASSWORD})")
    assert any(BOT_COORDINATOR in line for line in lines)
