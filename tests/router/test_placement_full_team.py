"""A team with no free slot is not locked: a conversation waiting in a full team's queue
cannot be assigned, so its messages route without waiting for the team's lock (which
every single-message batch of that team used to take, serialising them). A team with room
is still locked before a slot is handed out. PostgreSQL only: SQLite serialises whole
transactions, no row is ever locked by another."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from config.routing import RoutingConfig
from kartabl.models import Event, Team
from router.batch import route_batch
from router.teams import sync_teams
from tests.router.conftest import WINDOW


def _route_while_team_locked(db: sessionmaker[Session], session: Session, message_id: int,
                             routing: RoutingConfig, team: str) -> Any:
    with db() as other:
        # The lock another router's batch takes on a team it may hand a slot of
        other.execute(text("SELECT id FROM team WHERE name = :n FOR NO KEY UPDATE"),
                      {"n": team})
        try:
            # In the routing transaction itself: a lock wait fails after a second
            session.execute(text("SET LOCAL lock_timeout = '1s'"))
            return route_batch(session, [message_id], routing=routing, reopen_window=WINDOW)
        finally:
            other.rollback()


def test_a_full_team_routes_without_its_lock_and_a_team_with_room_waits(
    db: sessionmaker[Session], session: Session, inbound: Any, make_person: Any,
    routing: RoutingConfig,
) -> None:
    if session.get_bind().dialect.name == "sqlite":
        pytest.skip("SQLite has no row locks")
    sync_teams(session, routing)
    session.commit()
    support = session.scalars(select(Team).where(Team.name == "support")).one()
    make_person(support, capacity=0)  # support is full
    # When mail (the rule sends it to support) is routed while another transaction holds
    # support's lock
    [out] = _route_while_team_locked(db, session, inbound(sender="c@example.ir"), routing,
                                     "support")
    # Then it did not wait: the conversation waits in support's queue, for the same reason
    assert (out.team_id, out.assignee_id) == (support.id, None)
    event = session.scalars(select(Event).where(Event.kind == "conversation.triaged")).one()
    assert event.data["reason"] == "team at capacity"
    # and the customer's next message in that waiting conversation does not wait either
    [again] = _route_while_team_locked(db, session, inbound(sender="c@example.ir"), routing,
                                       "support")
    assert (again.conversation_id, again.assignee_id) == (out.conversation_id, None)
    # But once support has room, handing out the slot waits for the lock, as before
    free = make_person(support, capacity=5)
    with pytest.raises(OperationalError, match="lock timeout"):
        _route_while_team_locked(db, session, inbound(sender="d@example.ir"), routing,
                                 "support")
    session.rollback()
    [placed] = route_batch(session, [inbound(sender="e@example.ir")], routing=routing,
                           reopen_window=WINDOW)
    assert placed.assignee_id == free.id
