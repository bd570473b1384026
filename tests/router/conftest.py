"""Factories for router tests: people in teams, stored inbound messages, a routing file."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy.orm import Session

from config.routing import RoutingConfig
from kartabl import ingest
from kartabl.messages import InboundMessage
from kartabl.models import Person, Role, Team, TeamMember
from tests.factories import enqueued  # noqa: F401 (a fixture)

WINDOW = timedelta(hours=168)

ROUTING = RoutingConfig.model_validate({
    "teams": [{"name": "billing"}, {"name": "sales"}, {"name": "support"}],
    "rules": [
        {"name": "billing words", "team": "billing", "keywords": ["فاکتور", "invoice"]},
        {"name": "vip", "team": "sales", "tags": ["vip"]},
        {"name": "telegram price", "team": "sales", "channels": ["telegram"],
         "keywords": ["قیمت", "price"]},
        {"name": "email to support", "team": "support", "channels": ["email"]},
    ],
})


@pytest.fixture
def routing() -> RoutingConfig:
    return ROUTING


@pytest.fixture
def make_team(session: Session) -> Callable[..., Team]:
    def make(name: str) -> Team:
        team = Team(name=name, title=name)
        session.add(team)
        session.commit()
        return team
    return make


@pytest.fixture
def make_person(session: Session) -> Callable[..., Person]:
    counter = iter(range(1, 10_000))

    def make(*teams: Team, role: Role = Role.AGENT, **kw: Any) -> Person:
        person = Person(username=kw.pop("username", f"p{next(counter)}"), role=role, **kw)
        session.add(person)
        session.flush()
        for t in teams:
            session.add(TeamMember(team_id=t.id, person_id=person.id))
        session.commit()
        return person
    return make


@pytest.fixture
def inbound(session: Session) -> Callable[..., int]:
    """Store an inbound message (as ingest does, committed) and return its id."""
    counter = iter(range(1, 1_000_000))

    def store(channel: str = "email", sender: str = "ali@example.ir", text: str = "سلام",
              **kw: Any) -> int:
        kw.setdefault("external_id", f"ext-{next(counter)}")
        return ingest.store(session, InboundMessage(channel=channel, sender=sender, text=text,
                                                    **kw)).message_id
    return store


@pytest.fixture
def route(session: Session, routing: RoutingConfig) -> Callable[..., Any]:
    """route_message with the test routing and the default reopen window."""
    from router.route import route_message

    def run(message_id: int, **kw: Any) -> Any:
        kw.setdefault("routing", routing)
        kw.setdefault("reopen_window", WINDOW)
        return route_message(session, message_id, **kw)
    return run
