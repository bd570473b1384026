"""Who handles a conversation: the routing rules choose the team, then a person in it.

Within the team: the customer's previous assignee if they are available and under capacity,
else the least-loaded available member under capacity (lowest id on a tie), else nobody: the
conversation waits in the team's queue (or, with no team, the coordinator's triage queue).
Load is the number of OPEN conversations assigned to a person, across all teams.

Race safety. Handing out "the last free slot" is a read-then-write: two workers could both
read load = capacity - 1 and both assign. On PostgreSQL the worker locks the team row, then
the candidate members' person rows (in id order, so no deadlock), and only then counts
loads, in a new statement that sees every assignment committed before it got the locks.
The team lock serialises assignment within a team; the person locks cover people who sit in
two teams. The locks are taken only when an unlocked pre-check finds a free slot: finding
"everyone is full" without a lock is safe (triage is always allowed, and a slot freed a
moment ago is simply used by the next message), and it keeps a saturated team lock-free.
SQLite needs none of this: every transaction is BEGIN IMMEDIATE, so writers are serial.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from sqlalchemy import ColumnElement, ScalarSelect, and_, func, inspect, select
from sqlalchemy.orm import Session, aliased

from config.routing import RoutingConfig
from kartabl import audit
from kartabl.db import is_sqlite
from kartabl.models import (
    Channel,
    Conversation,
    ConversationStatus,
    Customer,
    Person,
    Team,
    TeamMember,
)
from router.text import matches_any, normalize_text

log = logging.getLogger(__name__)


def choose_team(
    routing: RoutingConfig, channel: Channel | str, subject: str, text: str, tags: Iterable[str]
) -> tuple[str | None, str | None]:
    """(team name, rule name) of the first rule that matches, or (None, None).

    A rule matches when every kind of condition it names holds (channels AND keywords AND
    tags); within a kind any one value is enough. Keywords are compared after
    :func:`router.text.normalize_text`, in the subject and the text.
    """
    chan = Channel(channel).value
    tagset = {normalize_text(str(t)) for t in tags}
    haystack: str | None = None  # normalised lazily: rules on channel or tags need no text
    for rule in routing.rules:
        if rule.channels and chan not in rule.channels:
            continue
        if rule.tags and not tagset.intersection(normalize_text(t) for t in rule.tags):
            continue
        if rule.keywords:
            if haystack is None:
                haystack = normalize_text(f"{subject}\n{text}")
            if not matches_any(haystack, rule.keywords):
                continue
        return rule.team, rule.name
    return None, None


def _load() -> ScalarSelect[int]:
    return (
        select(func.count(Conversation.id))
        .where(Conversation.assignee_id == Person.id,
               Conversation.status == ConversationStatus.OPEN)
        .correlate(Person)
        .scalar_subquery()
    )


def _members(team_id: int) -> ColumnElement[bool]:
    return and_(TeamMember.team_id == team_id, Person.available.is_(True),
                Person.active.is_(True))


def _candidates(
    session: Session, team_id: int, customer_id: int
) -> tuple[dict[int, tuple[Person, int]], int | None]:
    """Available active members of the team with their load, and the customer's previous
    assignee in this team, in one query and without locks. The previous assignee is an
    uncorrelated subquery: PostgreSQL and SQLite evaluate it once, not once per member."""
    rows = session.execute(
        select(Person, _load(), _previous_assignee(customer_id, team_id))
        .join(TeamMember, TeamMember.person_id == Person.id)
        .where(_members(team_id))
    ).all()
    previous = rows[0][2] if rows else None
    return {p.id: (p, load) for p, load, _ in rows}, previous


def _locked_candidates(session: Session, team_id: int) -> dict[int, tuple[Person, int]]:
    """Like :func:`_candidates`, after locking the team and the members (PostgreSQL)."""
    session.execute(select(Team.id).where(Team.id == team_id).with_for_update())
    people = session.scalars(
        select(Person).join(TeamMember, TeamMember.person_id == Person.id)
        .where(_members(team_id)).order_by(Person.id).with_for_update(of=Person)
    ).all()
    if not people:
        return {}
    # A new statement, so it sees what was committed while we waited for the locks.
    loads: dict[int | None, int] = {
        pid: n for pid, n in session.execute(
            select(Conversation.assignee_id, func.count(Conversation.id))
            .where(Conversation.assignee_id.in_([p.id for p in people]),
                   Conversation.status == ConversationStatus.OPEN)
            .group_by(Conversation.assignee_id)
        )
    }
    return {p.id: (p, loads.get(p.id, 0)) for p in people}


def _previous_assignee(customer_id: int, team_id: int) -> ScalarSelect[int | None]:
    """The assignee of the customer's latest conversation whose assignee is in the team."""
    prev = aliased(Conversation)
    member = aliased(TeamMember)
    return (
        select(prev.assignee_id)
        .join(member, and_(member.person_id == prev.assignee_id, member.team_id == team_id))
        .where(prev.customer_id == customer_id, prev.assignee_id.is_not(None))
        .order_by(prev.opened_at.desc(), prev.id.desc())
        .limit(1)
        .correlate(None)
        .scalar_subquery()
    )


def _pick(session: Session, conv: Conversation, team_id: int) -> tuple[Person | None, str]:
    def free(c: dict[int, tuple[Person, int]]) -> list[tuple[int, int]]:
        return sorted((load, pid) for pid, (p, load) in c.items() if load < p.capacity)

    candidates, previous = _candidates(session, team_id, conv.customer_id)
    if not candidates:
        return None, "no available member"
    if not free(candidates):
        return None, "team at capacity"
    if not is_sqlite(session):
        candidates = _locked_candidates(session, team_id)
    slots = free(candidates)
    if previous is not None and any(pid == previous for _, pid in slots):
        return candidates[previous][0], "previous assignee"
    if slots:
        return candidates[slots[0][1]][0], "least loaded"
    return None, "team at capacity"


def _keep(session: Session, conv: Conversation) -> Person | None:
    """The current assignee, if still active, available and (when the conversation has a
    team) a member of it."""
    stmt = select(Person).where(Person.id == conv.assignee_id, Person.available.is_(True),
                                Person.active.is_(True))
    if conv.team_id is not None:
        stmt = stmt.where(select(TeamMember.person_id).where(
            TeamMember.team_id == conv.team_id, TeamMember.person_id == Person.id).exists())
    return session.scalars(stmt).first()


def assign(
    session: Session,
    conversation: Conversation,
    routing: RoutingConfig,
    *,
    subject: str | None = None,
    text: str = "",
) -> Person | None:
    """Place ``conversation`` (team and assignee) and return the assignee, or None when it
    waits in triage. ``subject`` and ``text`` are what the rules' keywords are matched
    against (the triggering message; the conversation's subject by default).

    A current assignee who is still available (and in the conversation's team) keeps it.
    A conversation already in a team stays in that team; only one without a team is placed
    by the rules. Writes "conversation.assigned" or "conversation.triaged" when the
    placement changes, and for every new conversation. Does not commit.
    """
    is_new = inspect(conversation).pending
    # A new conversation is inserted once, after it is placed, rather than inserted by
    # autoflush at the first query and then updated: one statement less per new message.
    with session.no_autoflush:
        person, team_id, rule, reason = _decide(session, conversation, routing, subject, text)
    if reason == "kept":
        return person
    before = (conversation.team_id, conversation.assignee_id)
    conversation.team_id = team_id
    conversation.assignee_id = person.id if person is not None else None
    if is_new or before != (conversation.team_id, conversation.assignee_id):
        if conversation.id is None:
            session.flush()
        kind = "conversation.assigned" if person is not None else "conversation.triaged"
        audit.record(session, kind, conversation_id=conversation.id,
                     customer_id=conversation.customer_id, team_id=team_id,
                     assignee_id=conversation.assignee_id, rule=rule, reason=reason)
    return person


def _decide(
    session: Session, conversation: Conversation, routing: RoutingConfig,
    subject: str | None, text: str,
) -> tuple[Person | None, int | None, str | None, str]:
    """(assignee, team id, rule name, reason) for the conversation; changes nothing."""
    if conversation.assignee_id is not None:
        kept = _keep(session, conversation)
        if kept is not None:
            return kept, conversation.team_id, None, "kept"
    team_id, rule = conversation.team_id, None
    reason = "team kept"
    if team_id is None:
        # The customer is in the identity map already (routing loaded it): no query.
        customer = session.get(Customer, conversation.customer_id)
        team_name, rule = choose_team(
            routing, conversation.channel,
            conversation.subject if subject is None else subject, text,
            (customer.tags if customer is not None else None) or [],
        )
        reason = "no rule matched"
        if team_name is not None:
            team_id = session.scalar(select(Team.id).where(Team.name == team_name))
            if team_id is None:
                log.warning("rule %r names team %r, which has no row (run `kartabl sync-config`);"
                            " conversation left in triage", rule, team_name)
                reason = f"team {team_name!r} does not exist"
    person: Person | None = None
    if team_id is not None:
        person, reason = _pick(session, conversation, team_id)
    return person, team_id, rule, reason
