"""Who may take a step: roles, scope (own and team conversations for agents), and the
row loading every transition shares (``FOR UPDATE`` on PostgreSQL)."""

from __future__ import annotations

from typing import Final

from sqlalchemy import select
from sqlalchemy.orm import Session, object_session

from kartabl.errors import InputError, NotFound, PermissionDenied
from kartabl.models import Conversation, Person, Reply, Role, Team, TeamMember

REVIEWERS: Final = frozenset({Role.ADMIN, Role.COORDINATOR})

# -- who may do what -----------------------------------------------------------------------


def actor_name(actor: Person | None) -> str:
    return "the system" if actor is None else f"{Role(actor.role).value} {actor.username!r}"


def team_ids(actor: Person, anchor: object) -> set[int]:
    session = object_session(anchor) or object_session(actor)
    if session is None:
        return {m.team_id for m in actor.teams}
    return set(session.scalars(select(TeamMember.team_id).where(TeamMember.person_id == actor.id)))


def can_access(actor: Person, conversation: Conversation) -> bool:
    """Admins and coordinators see every conversation; an agent sees the ones assigned to
    them and their teams' conversations. A deactivated person sees nothing."""
    if not actor.active:
        return False
    if actor.role in REVIEWERS or conversation.assignee_id == actor.id:
        return True
    return conversation.team_id is not None and conversation.team_id in team_ids(
        actor, conversation
    )


def require_actor(step: str, actor: Person | None, *, system_ok: bool = False) -> None:
    if actor is None:
        if not system_ok:
            raise PermissionDenied(step, actor_name(actor), "a person must take this step",
                                   code="person_required")
    elif not actor.active:
        raise PermissionDenied(step, actor_name(actor), "the account is deactivated",
                               code="deactivated")


def require_reviewer(step: str, actor: Person | None, *, system_ok: bool = False) -> None:
    require_actor(step, actor, system_ok=system_ok)
    if actor is not None and actor.role not in REVIEWERS:
        raise PermissionDenied(step, actor_name(actor), "only a coordinator or an admin may",
                               code="reviewers_only")


def require_access(step: str, actor: Person | None, conv: Conversation) -> None:
    if actor is not None and not can_access(actor, conv):
        reason = f"conversation {conv.id} is outside their teams"
        raise PermissionDenied(step, actor_name(actor), reason, code="outside_teams",
                               params={"id": conv.id})


def require_author(step: str, actor: Person | None, reply: Reply) -> Person:
    require_actor(step, actor)
    assert actor is not None
    if reply.author_id != actor.id:
        raise PermissionDenied(step, actor_name(actor), f"only the author of reply {reply.id} may",
                               code="author_only", params={"id": reply.id})
    return actor


# -- loading -------------------------------------------------------------------------------


def load_conversation(session: Session, conversation_id: int) -> Conversation:
    conv = session.get(Conversation, conversation_id, with_for_update=True, populate_existing=True)
    if conv is None:
        raise NotFound(f"conversation {conversation_id} does not exist", code="missing",
                       params={"item": "conversation", "id": conversation_id})
    return conv


def load_reply(session: Session, reply_id: int) -> tuple[Reply, Conversation]:
    reply = session.get(Reply, reply_id, with_for_update=True, populate_existing=True)
    if reply is None:
        raise NotFound(f"reply {reply_id} does not exist", code="missing",
                       params={"item": "reply", "id": reply_id})
    return reply, load_conversation(session, reply.conversation_id)


def active_person(session: Session, person_id: int) -> Person:
    person = session.get(Person, person_id)
    if person is None:
        raise NotFound(f"person {person_id} does not exist", code="missing",
                       params={"item": "person", "id": person_id})
    if not person.active:
        raise InputError(f"person {person.username!r} is not active", code="inactive_person",
                         params={"name": person.display_name or person.username})
    return person


def load_team(session: Session, team_id: int) -> Team:
    team = session.get(Team, team_id)
    if team is None:
        raise NotFound(f"team {team_id} does not exist", code="missing",
                       params={"item": "team", "id": team_id})
    return team


# What ``nonempty`` checks -> the field's name in the console's catalogs (``field.<key>``).
FIELDS: Final = {"a referral note": "referral_note", "a note": "note",
                 "a reply body": "reply_body", "the edited body": "edited_body",
                 "a rejection comment": "rejection_comment"}


def nonempty(value: str | None, what: str) -> str:
    text = (value or "").strip()
    if not text:
        raise InputError(f"{what} must not be empty", code="empty",
                         params={"field": FIELDS.get(what, what)})
    return text


def load_target(
    session: Session, person_id: int | None, team_id: int | None, step: str
) -> tuple[Person | None, Team | None]:
    if person_id is None and team_id is None:
        raise InputError(f"{step} needs a person or a team", code="no_target")
    person = active_person(session, person_id) if person_id is not None else None
    team = load_team(session, team_id) if team_id is not None else None
    return person, team




def handover_team(session: Session, conv: Conversation, person: Person | None,
                  team: Team | None, step: str) -> int | None:
    """The team a conversation is left in when handed to ``person`` and/or ``team``.

    A team named wins. A person alone keeps the conversation's team when they are in it
    (or see everything: a coordinator, an admin); otherwise it moves to the person's team,
    so their teammates can see it (left in the old team, it was a 404 to them). A person in
    several other teams is asked which: an :class:`InputError` naming them."""
    if team is not None:
        return team.id
    if person is None or person.role in REVIEWERS:
        return conv.team_id
    theirs = team_ids(person, conv)
    if not theirs or conv.team_id in theirs:
        return conv.team_id
    if len(theirs) == 1:
        return next(iter(theirs))
    rows = session.execute(select(Team.name, Team.title).where(Team.id.in_(theirs))).all()
    names = sorted(name for name, _ in rows)
    # The code and params let the console say it in the reader's language (the team
    # titles, as its team select shows them), and keep the person's choice on the form.
    raise InputError(f"{step}: {person.username!r} is in several teams ({', '.join(names)}) "
                     "and not in this conversation's: choose the team too",
                     code="handover.several_teams",
                     params={"name": person.display_name or person.username,
                             "teams": " · ".join(sorted(title or name for name, title in rows))})
