"""Small builders for tests: teams, people, and routed conversations with an inbound message.

They add and flush, never commit: the test owns the transaction. Import with
``from tests.factories import ...``.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import pytest
from argon2 import PasswordHasher
from sqlalchemy import select
from sqlalchemy.orm import Session

from kartabl import tasks
from kartabl.models import (
    Channel,
    Conversation,
    ConversationStatus,
    Customer,
    Direction,
    Event,
    Identity,
    Message,
    MessageKind,
    Person,
    Role,
    Team,
    TeamMember,
    utcnow,
)

_seq = itertools.count(1)

# argon2id at its smallest cost (1 pass over 1 MiB, one lane) for the people tests sign in
# as: verify_password reads the cost from the stored hash, so signing in runs the production
# check (kartabl.passwords) in ~1 ms instead of ~0.1-0.4 s per sign-in at the RFC 9106
# cost. Tests about the cost itself (an unknown username costs what a known one costs) hash
# with kartabl.passwords.hash_password.
_QUICK = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)


def quick_hash(password: str) -> str:
    """An argon2id hash of ``password`` that is cheap to verify (see ``_QUICK``)."""
    return _QUICK.hash(password)

IDENTITY_KIND = {Channel.EMAIL: "email", Channel.SMS: "phone", Channel.TELEGRAM: "telegram",
                 Channel.BALE: "bale"}
OUR_ADDRESS = {Channel.EMAIL: "support@kartabl.example", Channel.SMS: "+9810004000"}
IDENTITY_KIND[Channel.RUBIKA] = "rubika"  # -- rubika --


def routing_args() -> dict[str, Any]:
    """The routing file and reopen window of the process's settings, as the worker's actor
    hands them to :func:`router.batch.route_batch`."""
    from config.routing import get_routing
    from config.settings import get_settings

    return {"routing": get_routing(), "reopen_window": get_settings().reopen_window}


def team(s: Session, name: str | None = None) -> Team:
    t = Team(name=name or f"team-{next(_seq)}", title=name or "")
    s.add(t)
    s.flush()
    return t


def person(
    s: Session, username: str | None = None, role: Role | str = Role.AGENT, *,
    teams: Iterable[Team] = (), active: bool = True, available: bool = True,
) -> Person:
    p = Person(
        username=username or f"user-{next(_seq)}", role=Role(role), active=active,
        available=available,
    )
    s.add(p)
    s.flush()
    for t in teams:
        s.add(TeamMember(team_id=t.id, person_id=p.id))
    s.flush()
    return p


def _address(channel: Channel, n: int) -> str:
    return {
        Channel.EMAIL: f"customer{n}@example.ir",
        Channel.SMS: f"+98912{n:07d}",
        Channel.TELEGRAM: str(1000 + n),
        Channel.BALE: str(5000 + n),
        Channel.RUBIKA: f"u0customer{n}",
    }[channel]


def conversation(
    s: Session, *, channel: Channel | str = Channel.EMAIL, team: Team | None = None,
    assignee: Person | None = None, subject: str = "سفارش ۱۲", text: str = "سلام، سفارشم کجاست؟",
    status: ConversationStatus = ConversationStatus.OPEN, sender: str | None = None,
) -> Conversation:
    """A customer with one identity, and a routed conversation holding their message."""
    ch = Channel(channel)
    n = next(_seq)
    address = sender or _address(ch, n)
    customer = Customer(display_name=f"مشتری {n}")
    s.add(customer)
    s.flush()
    s.add(Identity(customer_id=customer.id, kind=IDENTITY_KIND[ch], address=address))
    conv = Conversation(
        customer_id=customer.id, channel=ch, status=status, subject=subject,
        team_id=team.id if team else None, assignee_id=assignee.id if assignee else None,
        resolved_at=utcnow() if status == ConversationStatus.CLOSED else None,
    )
    s.add(conv)
    s.flush()
    inbound(s, conv, text=text, sender=address)
    return conv


def inbound(
    s: Session, conv: Conversation, *, text: str = "و یک پیام دیگر", sender: str | None = None,
    kind: MessageKind = MessageKind.MESSAGE, references: Iterable[str] = (),
) -> Message:
    ch = Channel(conv.channel)
    n = next(_seq)
    if sender is None:  # the customer writes again, from the address they used before
        sender = s.scalar(
            select(Identity.address).where(Identity.customer_id == conv.customer_id).limit(1)
        )
    external_id = f"<m{n}@example.ir>" if ch == Channel.EMAIL else f"in-{n}"
    msg = Message(
        channel=ch, external_id=external_id, direction=Direction.IN, kind=kind,
        conversation_id=conv.id, customer_id=conv.customer_id,
        sender=sender or _address(ch, n), recipient=OUR_ADDRESS.get(ch, ""),
        subject=conv.subject, text=text, references=list(references), routed_at=utcnow(),
    )
    s.add(msg)
    s.flush()
    return msg


def mail_html(msg: Message, html: str, inline: Mapping[str, str] | None = None) -> None:
    """Give ``msg`` mail HTML as ingest stores it: sanitised once into ``safe_html`` (the
    column pages render; ``inline``: Content-ID -> storage key, as at ingest). The raw HTML
    goes into ``html`` too, which no page may ever render."""
    from channels.email.html import sanitize

    msg.html = html
    msg.safe_html = sanitize(html, inline or {})


def events(s: Session, kind: str) -> list[Event]:
    """The audit events of ``kind``, oldest first."""
    return list(s.scalars(select(Event).where(Event.kind == kind).order_by(Event.id)))


@pytest.fixture
def enqueued() -> Iterator[list[tuple[str, int]]]:
    """A recording enqueuer: the tasks enqueued (after commit), in order. Import this
    fixture into a conftest to use it."""
    calls: list[tuple[str, int]] = []
    tasks.set_enqueuer(lambda task, obj_id: calls.append((task, obj_id)))
    yield calls
    tasks.set_enqueuer(None)


def conversation_customer(s: Session, conversation_id: int) -> int:
    """The customer id of a conversation."""
    conv = s.get(Conversation, conversation_id)
    assert conv is not None
    return conv.customer_id
