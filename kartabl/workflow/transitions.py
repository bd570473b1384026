"""Every transition of a conversation and of a reply, in this one module.

Each transition takes the caller's session and the actor (a :class:`Person`; ``None`` is the
system, accepted only by :func:`assign`, :func:`close` and :func:`reopen`). It checks the
actor's role and scope, loads its row ``FOR UPDATE`` (PostgreSQL; SQLite transactions are
``BEGIN IMMEDIATE`` already), changes the state, writes one audit event, and does **not**
commit: the caller owns the transaction. Work that must follow the commit (dispatching an
approved reply) is registered with :func:`kartabl.tasks.enqueue_after_commit`.

Order of checks: the actor (role, scope) first, then the state, then the input. So a
stranger learns nothing about a conversation's state, and every illegal step raises
:class:`IllegalTransition` naming the step and the state.

Decisions
- **Four eyes.** Nobody approves their own reply, admins included. The approval policy
  (``trusted_agents`` / ``trusted_teams`` / ``mode = "none"``) is the one audited way to
  skip review.
- **Close** refuses while a reply awaits approval (approve or reject it first). Approved
  replies still go out after a close; drafts stay drafts and can be submitted after a reopen.
- **Refer** to a team alone leaves the conversation unassigned in that team's queue; to a
  person alone keeps the team. Only the assignee (or a coordinator/admin) may refer.
- **Assign** and **refer** work on open conversations only; the target person must be active.
- **Idempotency key**, fixed once at approval: for email a signed Message-ID
  ``<kartabl.{id}.{nonce}.{mac}@{our domain}>`` (:mod:`kartabl.reply_tokens`; the domain of
  the address the customer wrote to), so a reference or a bounce naming it can be verified;
  for every other channel the reply id as a decimal string, usable as Kavenegar's numeric
  ``localid``.

**Does it fit its channel.** Drafting with a template, submitting and approving ask a
:class:`kartabl.outbound.ReplyCheck` (the outbound side renders and counts the reply as its
sender will): a required argument, so no caller can skip the check by forgetting it. Every
caller sits above ``responders/`` and passes :data:`responders.preview.REPLY_CHECK`.

The reply states form one table, :data:`kartabl.workflow.states.REPLY_TRANSITIONS`, used
here and by the outbox (:mod:`responders.dispatch`) through ``move_reply``.
"""

from __future__ import annotations

import re
from typing import Any, Final

from sqlalchemy import select
from sqlalchemy.orm import Session

from config.routing import ApprovalPolicy
from kartabl import audit, notifications, reply_tokens, search, service_clock
from kartabl.errors import IllegalTransition, InputError, PermissionDenied
from kartabl.models import (
    Channel,
    Conversation,
    Direction,
    Event,
    Message,
    Person,
    Reply,
    Team,
    TeamMember,
    utcnow,
)
from kartabl.outbound import ReplyCheck
from kartabl.tasks import enqueue_after_commit
from kartabl.workflow.access import (
    REVIEWERS,
    actor_name,
    handover_team,
    load_conversation,
    load_reply,
    load_target,
    nonempty,
    require_access,
    require_actor,
    require_author,
    require_reviewer,
)
from kartabl.workflow.states import (
    CLOSED,
    OPEN,
    RS,
    check_conversation,
    check_reply_transition,
    move_reply,
)
from kartabl.workflow.waiting import leave_hold
from kartabl.workflow.windows import require_open

# A hostname only: it ends up in a header (the Message-ID of the reply).
_DOMAIN = re.compile(r"^[a-z0-9](?:[a-z0-9.-]{0,198}[a-z0-9])?$")
# A caller that does not pass the routing file's policy gets the strict one: every reply is
# reviewed, never one skipped by accident.
REVIEW_ALL: Final = ApprovalPolicy()

# -- conversation transitions --------------------------------------------------------------


def assign(
    session: Session, actor: Person | None, conversation_id: int, *,
    person_id: int | None = None, team_id: int | None = None,
) -> Conversation:
    """Coordinators, admins and the system give an open conversation to a person and/or team."""
    require_reviewer("assign", actor, system_ok=True)
    conv = load_conversation(session, conversation_id)
    check_conversation("assign", conv)
    person, team = load_target(session, person_id, team_id, "assign")
    before = {"from_person": conv.assignee_id, "from_team": conv.team_id}
    conv.team_id = handover_team(session, conv, person, team, "assign")
    if person is not None:
        conv.assignee_id = person.id
    service_clock.refresh(session, conv, utcnow())  # another team: its hours and targets
    audit.record(
        session, "conversation.assigned", actor=actor, conversation_id=conv.id,
        customer_id=conv.customer_id, to_person=conv.assignee_id, to_team=conv.team_id, **before,
    )
    if person is not None:
        notifications.assigned(session, actor, conv)
    return conv


def refer(
    session: Session, actor: Person | None, conversation_id: int, *,
    person_id: int | None = None, team_id: int | None = None, note: str,
) -> Conversation:
    """The assignee (or a coordinator/admin) hands the conversation on, with a note."""
    require_actor("refer", actor)
    assert actor is not None
    conv = load_conversation(session, conversation_id)
    require_access("refer", actor, conv)
    if actor.role not in REVIEWERS and conv.assignee_id != actor.id:
        raise PermissionDenied("refer", actor_name(actor), "only the assignee may refer it",
                               code="assignee_only")
    check_conversation("refer", conv)
    text = nonempty(note, "a referral note")
    person, team = load_target(session, person_id, team_id, "refer")
    before = {"from_person": conv.assignee_id, "from_team": conv.team_id}
    conv.team_id = handover_team(session, conv, person, team, "refer")
    # A team alone means "the team picks it up": nobody keeps it meanwhile.
    conv.assignee_id = person.id if person is not None else None
    service_clock.refresh(session, conv, utcnow())  # another team: its hours and targets
    audit.record(
        session, "conversation.referred", actor=actor, conversation_id=conv.id,
        customer_id=conv.customer_id, to_person=conv.assignee_id, to_team=conv.team_id,
        note=text, **before,
    )
    notifications.referred(session, actor, conv, text)
    return conv


def close(session: Session, actor: Person | None, conversation_id: int) -> Conversation:
    """Resolve an open conversation; refused while a reply awaits approval."""
    require_actor("close", actor, system_ok=True)
    conv = load_conversation(session, conversation_id)
    require_access("close", actor, conv)
    check_conversation("close", conv)
    pending = session.scalar(
        select(Reply.id).where(
            Reply.conversation_id == conv.id, Reply.state == RS.PENDING_APPROVAL
        ).limit(1)
    )
    if pending is not None:
        raise IllegalTransition(
            "close", RS.PENDING_APPROVAL.value,
            f"reply {pending} awaits approval; approve or reject it first",
            code="close_pending", params={"item": "conversation", "id": conv.id,
                                          "reply": pending},
        )
    leave_hold(session, conv)  # closed from waiting/snoozed: the pause ends with it
    conv.status = CLOSED
    conv.resolved_at = utcnow()
    audit.record(
        session, "conversation.closed", actor=actor, conversation_id=conv.id,
        customer_id=conv.customer_id,
    )
    return conv


def reopen(session: Session, actor: Person | None, conversation_id: int) -> Conversation:
    require_actor("reopen", actor, system_ok=True)
    conv = load_conversation(session, conversation_id)
    require_access("reopen", actor, conv)
    check_conversation("reopen", conv)
    conv.status = OPEN
    conv.resolved_at = None
    service_clock.refresh(session, conv, utcnow())
    audit.record(
        session, "conversation.reopened", actor=actor, conversation_id=conv.id,
        customer_id=conv.customer_id,
    )
    return conv


def note(session: Session, actor: Person | None, conversation_id: int, text: str) -> Event:
    """A private note for staff: an audit event, never sent to the customer."""
    require_actor("note", actor)
    conv = load_conversation(session, conversation_id)
    require_access("note", actor, conv)
    check_conversation("note", conv)
    event = audit.record(
        session, "conversation.note", actor=actor, conversation_id=conv.id,
        customer_id=conv.customer_id, text=nonempty(text, "a note"),
    )
    assert actor is not None
    search.index_note(session, event)
    notifications.mentioned(session, actor, conv, event.data["text"])
    return event


# -- reply transitions ---------------------------------------------------------------------


def draft(
    session: Session, actor: Person | None, conversation_id: int, body: str, *,
    template: str | None = None, check: ReplyCheck,
) -> Reply:
    """Start a reply on an open conversation the actor can access; ``check`` says whether
    ``template`` exists for its channel."""
    require_actor("draft", actor)
    assert actor is not None
    conv = load_conversation(session, conversation_id)
    require_access("draft", actor, conv)
    check_conversation("draft", conv)
    text = nonempty(body, "a reply body")
    if template is not None and not check.has_template(template, conv.channel):
        raise InputError(f"no reply template {template!r} for {conv.channel.value}",
                         code="no_template",
                         params={"template": template, "channel": conv.channel.value})
    reply = Reply(
        conversation_id=conv.id, author_id=actor.id, state=RS.DRAFT, channel=conv.channel,
        body=text, template=template,
    )
    session.add(reply)
    session.flush()
    audit.record(
        session, "reply.drafted", actor=actor, conversation_id=conv.id, reply_id=reply.id,
        template=template,
    )
    return reply


def update_draft(session: Session, actor: Person | None, reply_id: int, body: str) -> Reply:
    """The author edits a draft, or a rejected reply (which becomes a draft again)."""
    reply, conv = load_reply(session, reply_id)
    require_author("edit", actor, reply)
    require_access("edit", actor, conv)
    before = move_reply(reply, "edit", RS.DRAFT)
    reply.body = nonempty(body, "a reply body")
    audit.record(
        session, "reply.edited", actor=actor, conversation_id=conv.id, reply_id=reply.id,
        previous_state=before.value, body=reply.body,
    )
    return reply


def review_skip_reason(
    session: Session, actor: Person, policy: ApprovalPolicy
) -> str | None:
    """Why ``actor``'s replies skip review under ``policy``, or None when they are reviewed."""
    if policy.mode == "none":
        return "mode=none"
    if actor.username in policy.trusted_agents:
        return f"trusted agent {actor.username}"
    if policy.trusted_teams:
        names = session.scalars(
            select(Team.name).join(TeamMember).where(TeamMember.person_id == actor.id)
        )
        trusted = sorted(set(names) & set(policy.trusted_teams))
        if trusted:
            return f"trusted team {trusted[0]}"
    return None


def submit(
    session: Session, actor: Person | None, reply_id: int, *,
    policy: ApprovalPolicy = REVIEW_ALL, check: ReplyCheck,
) -> Reply:
    """The author submits a draft: it awaits approval, or is approved at once when the
    approval ``policy`` (the routing file's ``[approval]``, handed over by the caller; by
    default every reply is reviewed) lets the author skip review.
    ``check`` refuses a reply its channel would refuse."""
    reply, conv = load_reply(session, reply_id)
    author = require_author("submit", actor, reply)
    require_access("submit", actor, conv)
    check_reply_transition("submit", reply)
    check_conversation("submit", conv)
    check.require_fits(session, "submit", reply)  # a too-long SMS is for its author to shorten
    skip = review_skip_reason(session, author, policy)
    ids = {"conversation_id": conv.id, "reply_id": reply.id}
    if skip is None:
        move_reply(reply, "submit", RS.PENDING_APPROVAL)
        audit.record(session, "reply.submitted", actor=actor, **ids, policy="reviewed")
        return reply
    require_open(session, "submit", reply)  # approved now: its Meta window must be open
    move_reply(reply, "submit", RS.APPROVED)
    audit.record(
        session, "reply.submitted", actor=actor, **ids, policy=f"skipped review: {skip}"
    )
    _ready_for_dispatch(session, reply, conv)
    audit.record(session, "reply.approved", actor=actor, **ids, by_policy=skip, edited=False)
    return reply


def approve(
    session: Session, actor: Person | None, reply_id: int, *, edited_body: str | None = None,
    check: ReplyCheck,
) -> Reply:
    """A coordinator or admin approves a pending reply, optionally editing it: the author's
    text is kept in ``original_body``, the edit becomes ``body``, and both are audited.
    ``check`` refuses a reply (as edited) its channel would refuse."""
    require_reviewer("approve", actor)
    assert actor is not None
    reply, conv = load_reply(session, reply_id)
    require_access("approve", actor, conv)
    if reply.author_id == actor.id:
        raise PermissionDenied("approve", actor_name(actor), "nobody approves their own reply",
                               code="own_reply")
    check_reply_transition("approve", reply)
    require_open(session, "approve", reply)  # Instagram, WhatsApp: refused at once, not sent
    edit: dict[str, Any] = {}
    new = nonempty(edited_body, "the edited body") if edited_body is not None else None
    check.require_fits(session, "approve", reply, new)  # what the customer would get, as sent
    if new is not None and new != reply.body:
        edit = {"original_body": reply.body, "edited_body": new}
        reply.original_body, reply.body = reply.body, new
    move_reply(reply, "approve", RS.APPROVED)
    reply.approved_by_id = actor.id
    _ready_for_dispatch(session, reply, conv)
    audit.record(
        session, "reply.approved", actor=actor, conversation_id=conv.id, reply_id=reply.id,
        edited=bool(edit), **edit,
    )
    notifications.reviewed(session, actor, reply, conv)
    return reply


def reject(session: Session, actor: Person | None, reply_id: int, comment: str) -> Reply:
    """A coordinator or admin sends a pending reply back to its author with a comment."""
    require_reviewer("reject", actor)
    reply, conv = load_reply(session, reply_id)
    require_access("reject", actor, conv)
    check_reply_transition("reject", reply)
    reply.review_comment = nonempty(comment, "a rejection comment")
    move_reply(reply, "reject", RS.REJECTED)
    audit.record(
        session, "reply.rejected", actor=actor, conversation_id=conv.id, reply_id=reply.id,
        comment=reply.review_comment,
    )
    notifications.reviewed(session, actor, reply, conv)
    return reply


# -- approval side effects -----------------------------------------------------------------


def _our_domain(session: Session, conv: Conversation) -> str:
    recipient = session.scalar(
        select(Message.recipient).where(
            Message.conversation_id == conv.id, Message.direction == Direction.IN
        ).order_by(Message.received_at.desc(), Message.id.desc()).limit(1)
    )
    # A conversation we started has no inbound message yet: the address chosen at its start.
    domain = (recipient or conv.from_address or "").rpartition("@")[2].strip().lower()
    return domain if _DOMAIN.match(domain) else "kartabl.localhost"


def idempotency_key_for(session: Session, reply: Reply, conv: Conversation) -> str:
    if reply.channel == Channel.EMAIL:
        return reply_tokens.make_message_id(reply.id, _our_domain(session, conv))
    return str(reply.id)


def _ready_for_dispatch(session: Session, reply: Reply, conv: Conversation) -> None:
    reply.approved_at = utcnow()
    if reply.idempotency_key is None:
        reply.idempotency_key = idempotency_key_for(session, reply, conv)
    enqueue_after_commit(session, "dispatch_reply", reply.id)
