"""Outbox fixtures: sandbox senders bound to the test database, and approved replies
made through the real workflow."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from sqlalchemy.orm import Session, sessionmaker

from kartabl import workflow
from kartabl.models import Channel, Role
from responders import base
from responders.sandbox import SandboxSender
from tests.factories import conversation, enqueued, inbound, person, team  # noqa: F401 (a fixture)


@pytest.fixture
def sandbox(db: sessionmaker[Session]) -> Iterator[dict[str, SandboxSender]]:
    """A fresh sandbox sender per channel (call counts and faults start empty)."""
    before = base.registered()
    senders = {ch.value: SandboxSender(ch, session_factory=db) for ch in Channel}
    for sender in senders.values():
        base.register(sender)
    yield senders
    for ch in Channel:
        base.unregister(ch)
    for sender in before.values():
        base.register(sender)


ApprovedReply = Callable[..., int]


@pytest.fixture
def approved_reply(db: sessionmaker[Session]) -> ApprovedReply:
    """make(channel=..., body=...) -> the id of a committed, approved reply."""

    def make(channel: Channel | str = Channel.EMAIL, body: str = "سفارش شما ارسال شد",
             template: str | None = None) -> int:
        with db() as s:
            support = team(s)
            agent = person(s, teams=[support])
            coordinator = person(s, role=Role.COORDINATOR)
            conv = conversation(s, channel=channel, team=support, assignee=agent)
            reply = workflow.draft(s, agent, conv.id, body, template=template)
            workflow.submit(s, agent, reply.id)
            workflow.approve(s, coordinator, reply.id)
            s.commit()
            return reply.id

    return make
