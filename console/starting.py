"""Starting a conversation from the console and the API: the form's input made into one
call of :func:`kartabl.workflow.start.start`, and what the "New conversation" page offers.

- A typed address is normalised as the channels normalise theirs
  (:func:`router.identity.normalize_address`: a phone in any digit form becomes E.164, an
  email is case-folded with an IDNA domain); a bad one is ``bad_address``.
- Our From address for email comes from the channels file: the mailbox whose ``team`` is
  the conversation's team, else the first mailbox that can send. SMS and messengers write
  from the line or bot the customer last wrote to, else the channel's default.
- The teams offered: an agent's own teams; every team for a coordinator or an admin.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from sqlalchemy import select
from sqlalchemy.orm import Session

from config.channels import ChannelsConfig
from config.routing import ApprovalPolicy
from console.customers import customer_detail
from kartabl.errors import InputError
from kartabl.models import Identity, Person, Team, TeamMember
from kartabl.workflow.access import REVIEWERS
from kartabl.workflow.start import (
    BOT_CHATS,
    CHANNEL_OF,
    TYPED_KINDS,
    Started,
    last_inbound,
    start,
)
from responders.preview import REPLY_CHECK
from responders.render import DEFAULT_TEMPLATE, template_names
from router.identity import normalize_address

# every kind but phone and email: only who wrote on that channel (kartabl.workflow.start)
MESSENGER_KINDS: Final = tuple(k for k, ch in CHANNEL_OF.items() if ch in BOT_CHATS)


@dataclass(frozen=True)
class Recipient:
    """One of a customer's identities as the page offers it: a messenger identity that
    never wrote to our bot cannot be written to (``usable`` False)."""

    id: int
    kind: str
    address: str
    display: str
    usable: bool


@dataclass(frozen=True)
class StartRequest:
    identity_id: int | None
    kind: str
    address: str
    name: str
    team_id: int | None
    subject: str
    body: str
    template: str | None
    submit: bool


def typed_address(kind: str, address: str) -> tuple[str, str]:
    if kind not in TYPED_KINDS:
        raise InputError(f"a new {kind or 'address'} cannot be typed: only a phone number or "
                         "an email address", code="start.never_wrote", params={"channel": kind})
    try:
        return kind, normalize_address(kind, address)
    except ValueError as exc:
        raise InputError(str(exc), code="bad_address",
                         params={"kind": kind, "detail": str(exc)}) from exc


def mailboxes(session: Session, channels: ChannelsConfig) -> dict[int | None, str]:
    """Team id -> the address its mail leaves from; None -> for every other team."""
    sending = [m for m in channels.email.mailboxes if m.smtp is not None]
    if not sending:
        return {}
    names = {m.team: m.address for m in reversed(sending) if m.team}
    found: dict[int | None, str] = {None: sending[0].address}
    if names:
        for tid, name in session.execute(select(Team.id, Team.name)
                                         .where(Team.name.in_(list(names)))):
            found[tid] = names[name]
    return found


def begin(session: Session, person: Person, channels: ChannelsConfig, policy: ApprovalPolicy,
          req: StartRequest) -> Started:
    """Run the workflow step for ``req`` (the caller commits)."""
    # Both or neither: the workflow refuses (start.no_recipient).
    typed = typed_address(req.kind, req.address) if req.address.strip() else None
    return start(session, person, identity_id=req.identity_id, new_address=typed,
                 name=req.name, team_id=req.team_id, subject=req.subject, body=req.body,
                 template=req.template, then_submit=req.submit,
                 our_address=mailboxes(session, channels), policy=policy, check=REPLY_CHECK)


def recipients(session: Session, person: Person, customer_id: int) -> tuple[int, str,
                                                                              list[Recipient]]:
    """(the customer's id, name, identities) in ``person``'s scope; NotFound outside it."""
    detail = customer_detail(session, person, customer_id)
    found = []
    for view in detail.identities:
        usable = True
        if view.kind in MESSENGER_KINDS:
            row = session.get(Identity, view.id)
            usable = row is not None and last_inbound(session, row) is not None
        found.append(Recipient(view.id, view.kind, view.address, view.display, usable))
    return detail.id, detail.display_name, found


def team_choices(session: Session, person: Person) -> list[Team]:
    stmt = select(Team).order_by(Team.name)
    if person.role not in REVIEWERS:
        stmt = stmt.join(TeamMember).where(TeamMember.person_id == person.id)
    return list(session.scalars(stmt))


def own_team(session: Session, person: Person) -> int | None:
    """The team preselected: the author's one team."""
    theirs = list(session.scalars(select(TeamMember.team_id)
                                  .where(TeamMember.person_id == person.id)))
    return theirs[0] if len(theirs) == 1 else None


def templates() -> list[str]:
    """The reply templates of any channel (the draft refuses one its channel lacks)."""
    names = {n for ch in CHANNEL_OF.values() for n in template_names(ch)}
    return sorted(names - {DEFAULT_TEMPLATE})
