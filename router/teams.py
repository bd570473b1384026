"""The teams named in the routing file must exist as rows before anyone is assigned to
them; :func:`sync_teams` creates the missing ones (the CLI's ``sync-config`` and the demo
call it). Routing to a team without a row does not fail: it leaves the conversation in
triage and logs a warning."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from config.routing import RoutingConfig
from kartabl.db import dialect_insert
from kartabl.models import Team


def sync_teams(session: Session, routing: RoutingConfig) -> int:
    """Create the routing file's teams that have no row; return how many were created.
    Existing teams are left as they are (titles edited in the console are kept). Safe when
    two processes start at once (ON CONFLICT DO NOTHING). Does not commit."""
    wanted = {t.name: t.title for t in routing.teams}
    if not wanted:
        return 0
    existing = set(session.scalars(select(Team.name).where(Team.name.in_(wanted))))
    missing = [{"name": n, "title": t} for n, t in wanted.items() if n not in existing]
    if not missing:
        return 0
    insert = dialect_insert(session)
    created = session.scalars(
        insert(Team).values(missing).on_conflict_do_nothing(index_elements=["name"])
        .returning(Team.id)
    ).all()
    return len(created)
