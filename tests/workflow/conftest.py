"""A small organisation for workflow tests: two teams, their agents, two coordinators, an
admin, and an open email conversation in the support team assigned to ali."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from sqlalchemy.orm import Session

from kartabl.models import Conversation, Person, Role, Team
from tests.factories import conversation, enqueued, person, team  # noqa: F401 (a fixture)


@dataclass
class Org:
    support: Team
    sales: Team
    admin: Person
    maryam: Person  # coordinator
    reza: Person  # coordinator
    ali: Person  # support agent, assignee of conv
    sara: Person  # support agent
    bob: Person  # sales agent
    conv: Conversation


@pytest.fixture
def org(session: Session) -> Org:
    support, sales = team(session, "support"), team(session, "sales")
    ali = person(session, "ali", teams=[support])
    o = Org(
        support=support, sales=sales,
        admin=person(session, "admin", Role.ADMIN),
        maryam=person(session, "maryam", Role.COORDINATOR),
        reza=person(session, "reza", Role.COORDINATOR),
        ali=ali,
        sara=person(session, "sara", teams=[support]),
        bob=person(session, "bob", teams=[sales]),
        conv=conversation(session, team=support, assignee=ali),
    )
    session.commit()
    return o
