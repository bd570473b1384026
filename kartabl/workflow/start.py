"""Start a conversation: a person writes to a customer first.

:func:`start` opens a conversation on the channel of one of the customer's identities (or
of a new address, which creates the customer), assigned to its author in the chosen team,
and drafts its first reply through :func:`~kartabl.workflow.transitions.draft`, then
submits it through :func:`~kartabl.workflow.transitions.submit`: the approval rule is the
one of every reply (reviewed unless the approval policy lets the author skip review), and
the reply checks (SMS length, templates) are the same ones.

Until the customer writes, the outbox takes the recipient from the conversation's
``to_identity_id`` and our sending address from ``from_address``
(:func:`responders.outbound.build_message`); an email gets a signed Message-ID like every
reply, so the customer's answer threads back by In-Reply-To (:mod:`router.threading`); an
SMS or messenger answer lands here as the customer's open conversation on that channel.

Decisions
- **Scope.** An agent starts conversations only in their own teams (PermissionDenied
  otherwise: teams are no secret), and only for customers they can see: an identity id
  outside their scope is NotFound, like a missing one. An address typed by an agent that
  belongs to a customer outside their scope is refused (``start.outside_scope``): the
  conversation would show that customer's name and history to them.
- **Team.** Default: the author's one team. An author in several teams chooses; a
  coordinator or admin in none starts it without a team (they see everything anyway).
- **Telegram and Bale.** A bot can only write to a user who wrote to it first: only
  identities with an inbound message on that channel qualify, and the bot that received it
  answers (``start.never_wrote``).
- **Addresses** arrive normalised (``router.identity.normalize_address``, called by the
  console: the core does not import the router). A new one creates the customer and the
  identity, audited as ``customer.created``; two people racing for the same new address
  meet on the identity's unique key, the loser takes the winner's customer.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from sqlalchemy import delete, exists, select
from sqlalchemy.orm import Session

from config.routing import ApprovalPolicy
from kartabl import audit, service_clock
from kartabl.db import dialect_insert
from kartabl.errors import IllegalTransition, InputError, NotFound, PermissionDenied
from kartabl.models import (
    Channel,
    Conversation,
    ConversationStatus,
    Customer,
    Direction,
    Identity,
    Message,
    MessageKind,
    Person,
    Reply,
    TeamMember,
    utcnow,
)
from kartabl.outbound import ReplyCheck
from kartabl.workflow.access import (
    REVIEWERS,
    actor_name,
    load_team,
    nonempty,
    require_actor,
    team_ids,
)
from kartabl.workflow.transitions import REVIEW_ALL, draft, submit

STEP: Final = "start"
# The channel a conversation started on an identity goes out by: every identity kind has one
# (a kind missing here was a KeyError in the console). A phone is written to by SMS (starting
# on WhatsApp would need an approved template: not offered).
CHANNEL_OF: Final = {
    "email": Channel.EMAIL, "phone": Channel.SMS, "telegram": Channel.TELEGRAM,
    "bale": Channel.BALE, "rubika": Channel.RUBIKA, "instagram": Channel.INSTAGRAM,
    "webchat": Channel.WEBCHAT, "api": Channel.API,
}
# Channels answered only after the customer wrote on them (and from where they wrote): a bot
# cannot open a chat, Instagram answers within its window, a website visitor and an API
# channel's user are reached where their last message came from.
BOT_CHATS: Final = tuple(ch for ch in CHANNEL_OF.values()
                         if ch not in (Channel.EMAIL, Channel.SMS))
# Kinds a person may type as a new address: a bot cannot write to a user first.
TYPED_KINDS: Final = ("phone", "email")
MAX_SUBJECT: Final = 500
MAX_NAME: Final = 200


@dataclass(frozen=True, slots=True)
class Started:
    conversation: Conversation
    reply: Reply
    customer_created: bool


def customer_in_scope(session: Session, actor: Person, customer_id: int) -> bool:
    """Whether ``actor`` may see the customer: the rule of ``console.customer_scope`` (a
    coordinator or admin sees every customer; an agent one with a conversation they can
    access)."""
    if not actor.active:
        return False
    if actor.role in REVIEWERS:
        return True
    teams = select(TeamMember.team_id).where(TeamMember.person_id == actor.id)
    return bool(session.scalar(select(exists().where(
        Conversation.customer_id == customer_id,
        (Conversation.assignee_id == actor.id) | Conversation.team_id.in_(teams)))))


def last_inbound(session: Session, identity: Identity) -> Message | None:
    """The latest real message the identity sent us on its channel, any conversation."""
    return session.scalar(
        select(Message).where(
            Message.customer_id == identity.customer_id,
            Message.channel == CHANNEL_OF[identity.kind], Message.direction == Direction.IN,
            Message.kind == MessageKind.MESSAGE, Message.sender == identity.address,
        ).order_by(Message.received_at.desc(), Message.id.desc()).limit(1))


def _survivor(session: Session, customer_id: int) -> Customer:
    customer = session.get(Customer, customer_id, with_for_update=True)
    for _ in range(100):  # merges move identities to the survivor: this is belt and braces
        if customer is None or customer.merged_into_id is None:
            break
        customer = session.get(Customer, customer.merged_into_id, with_for_update=True)
    if customer is None or customer.merged_into_id is not None:
        raise NotFound(f"customer {customer_id} does not exist", code="missing",
                       params={"item": "customer", "id": customer_id})
    return customer


def _typed(session: Session, actor: Person, kind: str, address: str,
           name: str) -> tuple[Identity, bool]:
    """The identity of a typed (normalised) address, created with its customer when new."""
    if kind not in TYPED_KINDS:
        raise InputError(f"a new {kind} address cannot be written to first: a bot writes "
                         "only to users who wrote to it", code="start.never_wrote",
                         params={"channel": kind})
    found = session.scalar(select(Identity).where(Identity.kind == kind,
                                                  Identity.address == address))
    if found is not None:
        if not customer_in_scope(session, actor, found.customer_id):
            raise PermissionDenied(STEP, actor_name(actor), "the address belongs to a "
                                   "customer outside their teams", code="start.outside_scope")
        return found, False
    customer = Customer(display_name=name.strip()[:MAX_NAME], tags=[])
    session.add(customer)
    session.flush()
    won = session.scalar(
        dialect_insert(session)(Identity).values(
            customer_id=customer.id, kind=kind, address=address,
            display=customer.display_name[:320] or address)
        .on_conflict_do_nothing(index_elements=["kind", "address"]).returning(Identity.id))
    if won is None:  # someone created it meanwhile: theirs it is
        session.execute(delete(Customer).where(Customer.id == customer.id)
                        .execution_options(synchronize_session=False))
        session.expunge(customer)
        return _typed(session, actor, kind, address, name)
    identity = session.get(Identity, won)
    assert identity is not None
    audit.record(session, "customer.created", actor=actor, customer_id=customer.id,
                 identity_id=identity.id, identity_kind=kind, address=address, via=STEP)
    return identity, True


def _chosen(session: Session, actor: Person, identity_id: int) -> Identity:
    identity = session.get(Identity, identity_id)
    if identity is None or not customer_in_scope(session, actor, identity.customer_id):
        raise NotFound(f"identity {identity_id} does not exist", code="missing",
                       params={"item": "identity", "id": identity_id})
    return identity


def _team(session: Session, actor: Person, team_id: int | None, anchor: object) -> int | None:
    theirs = team_ids(actor, anchor)
    if team_id is not None:
        load_team(session, team_id)
        if actor.role not in REVIEWERS and team_id not in theirs:
            raise PermissionDenied(STEP, actor_name(actor), f"team {team_id} is not theirs",
                                   code="start.other_team")
        return team_id
    if len(theirs) == 1:
        return next(iter(theirs))
    if not theirs and actor.role in REVIEWERS:
        return None
    raise InputError(f"{actor.username!r} is in {len(theirs)} teams: choose one",
                     code="start.choose_team")


def start(
    session: Session, actor: Person | None, *, identity_id: int | None = None,
    new_address: tuple[str, str] | None = None, name: str = "", team_id: int | None = None,
    subject: str = "", body: str, template: str | None = None, then_submit: bool = True,
    our_address: str | Mapping[int | None, str] | None = None,
    policy: ApprovalPolicy = REVIEW_ALL, check: ReplyCheck,
) -> Started:
    """Open a conversation to the customer of ``identity_id`` (or of ``new_address``, a
    normalised ``(kind, address)``, created with ``name`` when new) and draft its first
    reply (``body``, through ``template``), submitted unless ``then_submit`` is False.
    ``our_address`` is the address we write from when the caller's configuration names one
    (the team's mailbox for email: a mapping of team id to address, None for any other
    team); otherwise the address the customer last wrote to on that channel. Does not
    commit."""
    require_actor(STEP, actor)
    assert actor is not None
    if (identity_id is None) == (new_address is None):
        raise InputError("choose one of the customer's addresses or type a new one",
                         code="start.no_recipient")
    text = nonempty(body, "a reply body")  # before anything is created for nothing
    created = False
    if identity_id is not None:
        identity = _chosen(session, actor, identity_id)
    else:
        assert new_address is not None
        identity, created = _typed(session, actor, *new_address, name)
    customer = _survivor(session, identity.customer_id)
    channel = CHANNEL_OF[identity.kind]
    team = _team(session, actor, team_id, customer)
    wrote = last_inbound(session, identity)
    if channel in BOT_CHATS and wrote is None:
        raise IllegalTransition(STEP, "never_wrote", f"{identity.kind} user {identity.address} "
                                "never wrote to our bot", code="start.never_wrote",
                                params={"channel": channel.value})
    title = " ".join(subject.split())[:MAX_SUBJECT]
    if channel is Channel.EMAIL and not title:
        raise InputError("an email needs a subject", code="start.subject_required")
    if not title:
        title = " ".join(text.split())[:80]  # what the queues show, as for a customer's SMS
    # our_address names a mailbox: it is for email only (an SMS from a mailbox address
    # would fall back to the default line, not the one the customer wrote to)
    ours = None if channel is not Channel.EMAIL else (
        our_address.get(team, our_address.get(None)) if isinstance(our_address, Mapping)
        else our_address)
    if channel in BOT_CHATS or ours is None:
        ours = wrote.recipient if wrote is not None and wrote.recipient else ours
    now = utcnow()
    conv = Conversation(
        customer_id=customer.id, channel=channel, status=ConversationStatus.OPEN,
        subject=title, team_id=team, assignee_id=actor.id, opened_at=now, last_message_at=now,
        started_by_id=actor.id, to_identity_id=identity.id, from_address=ours or None,
    )
    session.add(conv)
    session.flush()
    # Its targets run from now like any conversation's: the first response is our first
    # message leaving (approval included), in the team's business time.
    service_clock.refresh(session, conv, now, no_pauses=True)
    audit.record(session, "conversation.started", actor=actor, conversation_id=conv.id,
                 customer_id=customer.id, channel=channel.value, identity_id=identity.id,
                 to=identity.address, team=team, customer_created=created)
    reply = draft(session, actor, conv.id, text, template=template, check=check)
    if then_submit:
        submit(session, actor, reply.id, policy=policy, check=check)
    return Started(conv, reply, created)
