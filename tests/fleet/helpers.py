"""Small helpers of the fleet tests: wait for the database to say something, and play the
people at the console (draft, submit, approve) on the fleet's database."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from kartabl import workflow
from kartabl.models import Conversation, Identity, Person, Reply
from responders.preview import REPLY_CHECK

T = TypeVar("T")


def wait_for(probe: Callable[[], T | None], timeout_s: float, what: str,
             logs: Callable[[], str] = lambda: "") -> T:
    """Poll ``probe`` until it returns something truthy; fail with the fleet's logs."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}\n{logs()}")
        time.sleep(0.2)


def routed_conversation(db: sessionmaker[Session], kind: str, address: str) -> int | None:
    """The id of the routed conversation of the customer with this identity, if any."""
    with db() as s:
        return s.scalar(
            select(Conversation.id)
            .join(Identity, Identity.customer_id == Conversation.customer_id)
            .where(Identity.kind == kind, Identity.address == address)
            .order_by(Conversation.id.desc()).limit(1))


def approved_reply(db: sessionmaker[Session], conversation_id: int, body: str) -> int:
    """The agent drafts and submits, the coordinator approves: committed, so the approval's
    dispatch goes to the fleet's queue."""
    with db() as s:
        agent = s.scalar(select(Person).where(Person.username == "fleet-agent"))
        coordinator = s.scalar(select(Person).where(Person.username == "fleet-coordinator"))
        reply = workflow.draft(s, agent, conversation_id, body, check=REPLY_CHECK)
        workflow.submit(s, agent, reply.id, check=REPLY_CHECK)
        workflow.approve(s, coordinator, reply.id, check=REPLY_CHECK)
        s.commit()
        return reply.id


def reply_row(db: sessionmaker[Session], reply_id: int) -> Reply:
    with db() as s:
        reply = s.get(Reply, reply_id)
        assert reply is not None
        s.expunge(reply)
        return reply


def reply_in(db: sessionmaker[Session], reply_id: int, *states: str) -> Reply | None:
    reply = reply_row(db, reply_id)
    return reply if reply.state in states else None
