"""Helpers for the queue tests (plain functions; the fixtures are in conftest.py)."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from kartabl.models import (
    Channel,
    Conversation,
    ConversationStatus,
    Customer,
    Direction,
    Event,
    Message,
    Person,
    Reply,
    ReplyState,
    Role,
    utcnow,
)

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
DRAMATIQ = Path(sys.executable).parent / "dramatiq"
ROUTED = "message.routed"


def needs_router() -> None:
    pytest.importorskip("router.route", reason="router.route is not written yet")


def needs_dispatcher() -> None:
    pytest.importorskip("responders.dispatch", reason="responders.dispatch is not written yet")


def wait_until(check: Callable[[], bool], timeout_s: float = 30.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what or check}")
        time.sleep(0.1)


def add_unqueued_message(session: Session, external_id: str, sender: str, *, age_s: float = 0.0
                         ) -> int:
    """A committed inbound message whose enqueue was lost: the row exists, no task does."""
    then = utcnow() - timedelta(seconds=age_s)
    row = Message(channel=Channel.SMS, external_id=external_id, direction=Direction.IN,
                  sender=sender, text="سلام", received_at=then, created_at=then)
    session.add(row)
    session.commit()
    return row.id


# -- reading the outcome -----------------------------------------------------------------------


def unrouted(db: sessionmaker[Session]) -> int:
    with db() as s:
        return int(s.scalar(select(func.count()).where(Message.routed_at.is_(None))) or 0)


def routed_events(db: sessionmaker[Session]) -> dict[int, int]:
    """message id -> how many "message.routed" events it has."""
    with db() as s:
        rows = s.execute(
            select(Event.message_id, func.count()).where(Event.kind == ROUTED)
            .group_by(Event.message_id)
        )
        return {int(mid): int(n) for mid, n in rows}


def conversations_per_customer(db: sessionmaker[Session]) -> dict[int, int]:
    with db() as s:
        rows = s.execute(
            select(Conversation.customer_id, func.count()).group_by(Conversation.customer_id)
        )
        return {int(cid): int(n) for cid, n in rows}


def make_approved_reply(session: Session, *, age_s: float = 0.0) -> int:
    """An approved reply on a fresh conversation, last touched ``age_s`` seconds ago."""
    then = utcnow() - timedelta(seconds=age_s)
    agent = Person(username=f"agent{time.monotonic_ns()}", role=Role.AGENT)
    customer = Customer(display_name="Sara")
    session.add_all([agent, customer])
    session.flush()
    conv = Conversation(customer_id=customer.id, channel=Channel.SMS,
                        status=ConversationStatus.OPEN, assignee_id=agent.id)
    session.add(conv)
    session.flush()
    # The customer's message the reply answers (the outbox replies to the latest one).
    session.add(Message(
        channel=Channel.SMS, external_id=f"in-{conv.id}", direction=Direction.IN,
        sender=f"+98912{conv.id:07d}", text="سفارشم کجاست؟", conversation_id=conv.id,
        customer_id=customer.id, received_at=then, created_at=then, routed_at=then,
    ))
    reply = Reply(
        conversation_id=conv.id, author_id=agent.id, state=ReplyState.APPROVED,
        channel=Channel.SMS, body="سلام، پیگیری شد.", idempotency_key=f"test-{conv.id}",
        approved_by_id=agent.id, approved_at=then, created_at=then, updated_at=then,
    )
    session.add(reply)
    session.commit()
    return reply.id
