"""Outbox fixtures: sandbox senders bound to the test database, approved replies made
through the real workflow, and a local SMTP server (:mod:`tests.responders.smtp_server`)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from kartabl import outbound, workflow
from kartabl.models import Channel, Role
from responders.email import SmtpSender
from responders.preview import REPLY_CHECK
from responders.sandbox import SandboxSender
from tests.factories import conversation, enqueued, inbound, person, team  # noqa: F401 (a fixture)
from tests.responders import smtp_server as smtp
from tests.tls import self_signed_cert


@pytest.fixture
def sandbox(db: sessionmaker[Session]) -> Iterator[dict[str, SandboxSender]]:
    """A fresh sandbox sender per channel (call counts and faults start empty)."""
    before = outbound.registered()
    senders = {ch.value: SandboxSender(ch, session_factory=db) for ch in Channel}
    for sender in senders.values():
        outbound.register(sender)
    yield senders
    for ch in Channel:
        outbound.unregister(ch)
    for sender in before.values():
        outbound.register(sender)


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
            reply = workflow.draft(s, agent, conv.id, body, template=template, check=REPLY_CHECK)
            workflow.submit(s, agent, reply.id, check=REPLY_CHECK)
            workflow.approve(s, coordinator, reply.id, check=REPLY_CHECK)
            s.commit()
            return reply.id

    return make


# -- a local SMTP server ----------------------------------------------------------------------


@pytest.fixture
def smtp_server() -> Iterator[smtp.SmtpServer]:
    """A plain local SMTP server that records what it receives."""
    server = smtp.start()
    yield server
    server.controller.stop()


@pytest.fixture(scope="session")
def tls_cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    cert = self_signed_cert(tmp_path_factory.mktemp("tls"))
    if cert is None:
        pytest.skip("the openssl CLI is not installed: no certificate for the TLS tests")
    return cert


@pytest.fixture
def smtp_outbox(smtp_server: smtp.SmtpServer) -> Iterator[SmtpSender]:
    """The SMTP sender, pointed at the local server, registered for email (the other
    channels keep whatever they had)."""
    before = outbound.registered()
    sender = SmtpSender(smtp_server.email_config(timeout_s=2.0))
    outbound.register(sender)
    yield sender
    outbound.unregister(Channel.EMAIL)
    if "email" in before:
        outbound.register(before["email"])
