"""Which conversation an inbound message belongs to.

In order:

1. a reply reference (In-Reply-To / References, or a messenger's reply-to id) that names one
   of *our* outbound messages or reply Message-IDs in a conversation **of the same customer**.
   A reference into another customer's conversation is ignored and audited
   (``router.foreign_reference``): reference values are visible to whoever received our
   mail, so they prove nothing about the sender (the forged-reply-token attack, FreeScout
   CVE-2026-47123). Identity decides whose message it is; a reference only picks among that
   customer's own conversations. A reference shaped like our reply tokens
   (:mod:`kartabl.reply_tokens`) must also verify: a bad signature, or a genuine token that
   names another customer's conversation, is ignored and audited as
   ``router.forged_reference``. Nothing here ever makes a message anything but the
   customer's own inbound message: a reference only chooses the conversation;
1b. an SMS or email answer to a website chat reply continued to that address
   (:mod:`router.offline_answers`): that widget conversation;
2. the customer's open conversation on the same channel (the most recent, if several);
3. the customer's most recently closed conversation on that channel: reopened when it was
   closed within the reopen window, otherwise a new conversation linked to it by
   ``previous_id``;
4. a new conversation.

A reference to a closed conversation follows rule 3 for that conversation. A conversation
found by rule 1, 2 or 3 that was merged into another stands for that other one
(:func:`merged_target`), rule 3 then applying to it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Integer, case, cast, func, null, or_, select, union_all
from sqlalchemy.orm import Session

from kartabl import audit, reply_tokens
from kartabl.models import (
    Channel,
    Conversation,
    ConversationStatus,
    Customer,
    Direction,
    Message,
    MessageKind,
    Reply,
    utcnow,
)
from kartabl.workflow import waiting
from router.offline_answers import offline_answer

log = logging.getLogger(__name__)

# Not closed: continued by the customer's next message (kartabl.workflow.waiting wakes a
# waiting or snoozed one). Issue 15, statuses; keep in step with kartabl.workflow.states.
_ACTIVE = (ConversationStatus.OPEN, ConversationStatus.WAITING, ConversationStatus.SNOOZED)

# A crafted mail can carry thousands of References; the newest few are the ones that matter.
MAX_REFERENCES = 20


@dataclass(slots=True)
class _References:
    """A message's references, ranked most specific first (In-Reply-To, then the newest
    References): the lookup keys (bare and <angle-bracketed>, since stores differ), the reply
    ids of our verified reply tokens, and the values that claim to be our tokens but do not
    verify."""

    rank: dict[str, int] = field(default_factory=dict)
    reply_ids: dict[int, int] = field(default_factory=dict)
    forged: list[str] = field(default_factory=list)


def _references(message: Message) -> _References:
    raw = [message.in_reply_to or "", *reversed(list(message.references or [])[-MAX_REFERENCES:])]
    refs = _References()
    for i, r in enumerate(raw):
        bare = str(r).strip().strip("<>").strip()
        if not bare or len(bare) > 498:
            continue
        if reply_tokens.looks_like_ours(bare):
            reply_id = reply_tokens.verify(bare)
            if reply_id is None:  # our shape, not our signature: never a lookup key
                if bare not in refs.forged:
                    refs.forged.append(bare)
                continue
            refs.reply_ids.setdefault(reply_id, i)
        for k in (bare, f"<{bare}>"):
            refs.rank.setdefault(k, i)
    return refs


def _messenger_replies(
    session: Session, message: Message, customer: Customer
) -> list[tuple[str, None, int, int]]:
    """A Telegram/Bale/Rubika answer to one of our messages: ``in_reply_to`` is
    ``<bot>:<chat>:<message id>``, and a reply we sent records ``<bot>:<chat>:<id>,<id>``
    (one id per part) as its provider id. Rows shaped like :func:`_by_reference`'s. Only the
    customer's own conversations are searched (a private chat is theirs alone), which keeps
    the lookup on the customer index instead of every reply of the channel."""
    if message.channel not in (Channel.TELEGRAM, Channel.BALE, Channel.RUBIKA) \
            or not message.in_reply_to:
        return []
    chat, sep, answered = message.in_reply_to.rpartition(":")
    if not sep or not chat or not answered.isdigit():
        return []
    prefix = chat.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + ":%"
    rows = session.execute(
        select(Reply.provider_id, Conversation.id, Conversation.customer_id)
        .join(Conversation, Conversation.id == Reply.conversation_id)
        .where(Reply.channel == message.channel, Conversation.customer_id == customer.id,
               Reply.provider_id.like(prefix, escape="\\"))
    ).all()
    return [(message.in_reply_to, None, cid, owner) for provider_id, cid, owner in rows
            if answered in (provider_id or "").rpartition(":")[2].split(",")]


def _by_reference(session: Session, message: Message, customer: Customer) -> Conversation | None:
    refs = _references(message)
    if refs.forged:
        _forged(session, message, customer, "bad signature", refs.forged)
    if not refs.rank:
        return None
    no_reply = cast(null(), Integer)
    ours = union_all(
        select(Message.external_id.label("key"), Message.conversation_id.label("cid"),
               no_reply.label("rid"))
        .where(Message.channel == message.channel, Message.external_id.in_(list(refs.rank)),
               Message.direction == Direction.OUT, Message.conversation_id.is_not(None)),
        # A verified token is found by its reply id as well: a relay may change the domain's
        # case, and the signature already vouches for the id.
        select(Reply.idempotency_key.label("key"), Reply.conversation_id.label("cid"),
               Reply.id.label("rid"))
        .where(Reply.channel == message.channel,
               or_(Reply.idempotency_key.in_(list(refs.rank)),
                   Reply.id.in_(list(refs.reply_ids)))),
    ).subquery()
    rows = [*session.execute(
        select(ours.c.key, ours.c.rid, Conversation.id, Conversation.customer_id)
        .join(Conversation, Conversation.id == ours.c.cid)
    ).all(), *_messenger_replies(session, message, customer)]
    own: list[tuple[int, int]] = []
    foreign: dict[int, bool] = {}  # conversation id -> named by one of our tokens
    for key, rid, cid, owner in rows:
        at = refs.rank.get(key) if key is not None else None
        if at is None and rid is not None:
            at = refs.reply_ids.get(rid)
        if at is None:
            continue  # defensive: every row was found by a ranked key or a verified id
        if owner == customer.id:
            own.append((at, cid))
        else:
            token = rid in refs.reply_ids or reply_tokens.looks_like_ours(key or "")
            foreign[cid] = foreign.get(cid, False) or token
    if foreign:
        log.warning(
            "message %s references conversation(s) %s of another customer; ignored",
            message.id, sorted(foreign),
        )
        plain = sorted(c for c, token in foreign.items() if not token)
        signed = sorted(c for c, token in foreign.items() if token)
        if plain:
            audit.record(session, "router.foreign_reference", message_id=message.id,
                         customer_id=customer.id, conversations=plain)
        # A bounce of our reply comes from a mail server, not the customer, and carries the
        # genuine token by design: not threaded there either, but no forgery
        # (router.bounces handles it).
        if signed and message.kind is not MessageKind.BOUNCE:
            _forged(session, message, customer, "another customer's conversation", [],
                    conversations=signed)
    return session.get(Conversation, min(own)[1]) if own else None


def _forged(session: Session, message: Message, customer: Customer, reason: str,
            values: list[str], **data: Any) -> None:
    """Audit a reference that claims to be ours but may not be used: a token whose signature
    does not verify, or a genuine token naming another customer's conversation (our mail
    forwarded, or a copied header: either way it proves nothing about the sender)."""
    log.warning("message %s carries a forged reply reference (%s); ignored", message.id, reason)
    audit.record(session, "router.forged_reference", message_id=message.id,
                 customer_id=customer.id, reason=reason,
                 references=[v[:200] for v in values[:5]], **data)


def _latest_on_channel(
    session: Session, message: Message, customer: Customer
) -> Conversation | None:
    """The open conversation on the message's channel, else the most recently closed one:
    one query on ix_conversation_customer_channel_status."""
    # waiting and snoozed count as open here: the customer's message continues them
    is_open = case((Conversation.status.in_(_ACTIVE), 0), else_=1)
    return session.scalars(
        select(Conversation)
        .where(Conversation.customer_id == customer.id, Conversation.channel == message.channel)
        .order_by(is_open, func.coalesce(Conversation.resolved_at, Conversation.last_message_at)
                  .desc(), Conversation.id.desc())
        .limit(1)
    ).first()


def latest_per_channel(
    session: Session, customer_ids: Iterable[int], channels: Iterable[str]
) -> dict[tuple[int, str], Conversation]:
    """What :func:`_latest_on_channel` finds, for many customers and channels in one query:
    a window over ix_conversation_customer_channel_status keeps the first row per
    (customer, channel) in the same order."""
    cids, chans = sorted(set(customer_ids)), sorted({str(c) for c in channels})
    if not cids or not chans:
        return {}
    # waiting and snoozed count as open here: the customer's message continues them
    is_open = case((Conversation.status.in_(_ACTIVE), 0), else_=1)
    rn = func.row_number().over(
        partition_by=(Conversation.customer_id, Conversation.channel),
        order_by=(is_open, func.coalesce(Conversation.resolved_at, Conversation.last_message_at)
                  .desc(), Conversation.id.desc()),
    )
    ranked = (
        select(Conversation.id, rn.label("rn"))
        .where(Conversation.customer_id.in_(cids), Conversation.channel.in_(chans))
        .subquery()
    )
    rows = session.scalars(
        select(Conversation).join(ranked, ranked.c.id == Conversation.id).where(ranked.c.rn == 1)
    )
    return {(c.customer_id, str(c.channel)): c for c in rows}


def rank(conv: Conversation) -> tuple[int, float, float]:
    """The order of :func:`_latest_on_channel` as a sort key (smallest first), for
    conversations changed in memory; a conversation not yet inserted is the newest."""
    at = conv.resolved_at or conv.last_message_at
    return (0 if conv.status in _ACTIVE else 1,
            -at.timestamp() if at is not None else 0.0,
            -conv.id if conv.id is not None else float("-inf"))


def _subject(message: Message) -> str:
    subject = (message.subject or "").strip()
    if not subject:
        subject = " ".join((message.text or "").split())[:80]
    return subject[:500]


def _new(session: Session, message: Message, customer: Customer,
         previous: Conversation | None) -> Conversation:
    conv = Conversation(
        customer_id=customer.id, channel=message.channel, status=ConversationStatus.OPEN,
        subject=_subject(message), previous_id=previous.id if previous else None,
        opened_at=utcnow(), last_message_at=message.received_at or utcnow(),
    )
    session.add(conv)
    return conv


def thread(
    session: Session,
    message: Message,
    customer: Customer,
    *,
    reopen_window: timedelta,
    reopen: bool = True,
    latest: Callable[[Message, Customer], Conversation | None] | None = None,
    offline: Mapping[int, Conversation] | None = None,
) -> tuple[Conversation, str]:
    """The conversation ``message`` continues, and how it was found: "reference", "open",
    "reopened", "new_linked" or "new" ("closed" when ``reopen`` is False and the message is
    filed in a closed conversation without reopening it, which is how automatic mail is
    kept visible without waking a finished conversation).

    A new conversation is added to the session but not flushed, so
    :mod:`router.placement` can tell it is new. Updates ``last_message_at``.
    ``latest`` replaces the per-message query for rule 2/3 when the caller (the batch
    router) has already loaded every customer's latest conversation per channel;
    ``offline`` the batch's answers to website chat continuations
    (:func:`router.offline_answers.offline_answers`).
    """
    conv = _by_reference(session, message, customer)
    how = "reference"
    if conv is None:  # an answer to a website chat reply continued by SMS or email
        conv = (offline_answer(session, message) if offline is None
                else offline.get(message.id))
        how = "offline"
        if conv is not None and conv.status is ConversationStatus.CLOSED and (
                message.received_at - (conv.resolved_at or conv.last_message_at)
                > reopen_window):
            conv = None  # long closed: the number's own conversation, never linked to it
    if conv is None:
        conv = (_latest_on_channel(session, message, customer) if latest is None
                else latest(message, customer))
        how = "open"
    if conv is not None and conv.merged_into_id is not None:
        conv = merged_target(session, conv)
    if conv is None:
        conv, how = _new(session, message, customer, None), "new"
    elif conv.status is ConversationStatus.CLOSED:
        conv, how = _closed(session, message, customer, conv, reopen_window, reopen)
    elif conv.status is not ConversationStatus.OPEN and reopen:
        # waiting on the customer or snoozed: the customer wrote, so it is open again
        # (automatic mail, reopen=False, is filed without waking it)
        waiting.customer_wrote(session, conv, message.id)
    _touch(conv, message.received_at)
    return conv, how


# -- merge --


def merged_target(session: Session, conv: Conversation) -> Conversation:
    """The conversation ``conv`` was merged into (following a chain): a message or a reply
    reference that would have gone to a merged conversation goes there
    (:mod:`kartabl.workflow.merge`). A cycle (only from hand-edited data) stops the walk."""
    seen = {conv.id}
    while conv.merged_into_id is not None:
        nxt = session.get(Conversation, conv.merged_into_id)
        if nxt is None or nxt.id in seen:
            break
        seen.add(nxt.id)
        conv = nxt
    return conv


def _closed(session: Session, message: Message, customer: Customer, conv: Conversation,
            window: timedelta, reopen: bool) -> tuple[Conversation, str]:
    closed_at = conv.resolved_at or conv.last_message_at
    if not reopen:
        return conv, "closed"
    # Measured from when the customer wrote, not when we route: a message routed late (after
    # an outage, or re-enqueued by the sweep) must reopen as it would have on time.
    if message.received_at - closed_at <= window:
        conv.status = ConversationStatus.OPEN
        conv.resolved_at = None
        audit.record(session, "conversation.reopened", conversation_id=conv.id,
                     customer_id=customer.id, message_id=message.id,
                     closed_at=closed_at.isoformat())
        return conv, "reopened"
    return _new(session, message, customer, conv), "new_linked"


def _touch(conv: Conversation, at: datetime | None) -> None:
    # received_at comes from the channel and may lag; last_message_at never moves backwards.
    at = at or utcnow()
    if conv.last_message_at is None or at > conv.last_message_at:
        conv.last_message_at = at

