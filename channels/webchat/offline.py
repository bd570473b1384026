"""The offline continuation: an approved widget reply also goes by SMS (or email) to the
contact the visitor typed, when the visitor is gone or the team is outside its hours.

**When.** The widget's sender (:mod:`responders.webchat`) calls :func:`continue_offline` in
the transaction that appends the reply to the visitor's log, only when that append is new
(so a retried or reconciled send never makes a second continuation), and a continuation is
made when the visitor gave a contact in the pre-chat form and either

- the visitor is **gone**: no event stream of theirs has been seen open for ``away_s``
  seconds (:func:`is_gone`; an open stream marks ``stream_seen_at`` when it opens, every
  third of ``away_s`` while it lasts, :mod:`channels.webchat.stream`; so a closed page is
  gone within ``away_s``), or
- the conversation's team is **outside its business hours** right now (the routing file's
  calendar, :mod:`kartabl.business_hours`), even with a stream open: the widget told the
  visitor then that the answer would come by SMS or email, so it does.

A connected visitor inside business hours gets the reply in the widget only; a visitor
without a contact gets it in the widget log only, where it waits for their return.

**How.** Not inside any sender: a second reply row in the same conversation, on the SMS
(or email) channel, approved with the same text and approver, goes through the outbox
like every reply (claim, send once, reconcile). :class:`~kartabl.models.WebchatOffline`
names its address; the outbox's :func:`responders.outbound.build_message` sends it there.
The reply row stays in the widget log too, so a returning visitor sees it.

**The rule about unverified contacts.** The address is what someone typed: the reply text
goes there because the visitor asked for it, and nothing else does. It is never made an
identity nor linked to any customer; the answer from that number joins this conversation
only, and only while our latest SMS (or mail) to it is this continuation
(:mod:`router.offline_answers`); it is never shown in the widget.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Final

from sqlalchemy import select
from sqlalchemy.orm import Session

from config.routing import team_config
from kartabl import audit, service_clock
from kartabl.business_hours import calendar_for
from kartabl.models import (
    Channel,
    Conversation,
    Reply,
    ReplyState,
    Team,
    WebchatOffline,
    WebchatVisitor,
    Widget,
    utcnow,
)
from kartabl.tasks import enqueue_after_commit
from kartabl.workflow import idempotency_key_for

log = logging.getLogger(__name__)

AWAY_S: Final = 60.0
CHANNEL_OF: Final = {"phone": Channel.SMS, "email": Channel.EMAIL}


def is_gone(visitor: WebchatVisitor, now: datetime, away_s: float = AWAY_S) -> bool:
    """No stream of the visitor seen open in the last ``away_s`` seconds."""
    seen = visitor.stream_seen_at
    return seen is None or now - seen > timedelta(seconds=away_s)


def outside_hours(session: Session, conv: Conversation, now: datetime) -> bool:
    """Whether ``now`` falls outside every working span of the conversation's team (a
    team without hours, or a process without a configured clock: never outside)."""
    try:
        calendar = service_clock.conversation_policy(session, conv).calendar
    except RuntimeError:  # the clock is not configured in this process: no hours known
        return False
    return not calendar.is_open(now)


def widget_offline(session: Session, widget: Widget, now: datetime | None = None) -> bool:
    """Whether the widget's team is outside its business hours now: the widget then shows
    its offline text and insists on a contact (a widget without a team, a team without
    hours, or a process without a configured clock: never offline)."""
    if widget.team_id is None:
        return False
    name = session.scalar(select(Team.name).where(Team.id == widget.team_id))
    try:
        routing = service_clock.current().routing
    except RuntimeError:
        return False
    team = team_config(routing, name)
    return team is not None and not calendar_for(team).is_open(now or utcnow())


def continue_offline(session: Session, visitor: WebchatVisitor, reply_id: int, *,
                     away_s: float = AWAY_S, now: datetime | None = None) -> Reply | None:
    """Make the continuation of widget reply ``reply_id`` when it is due (the caller
    commits; the dispatch is enqueued by that commit). Returns the new reply, or None."""
    now = now or utcnow()
    # the pre-chat form's contact, else the identity the site vouched for (HMAC)
    kind, address = visitor.contact_kind, visitor.contact_address
    if not address:
        kind, address = visitor.identity_kind, visitor.identity_address
    if kind not in CHANNEL_OF or not address:
        return None
    source = session.get(Reply, reply_id)
    if source is None:
        return None
    conv = session.get(Conversation, source.conversation_id)
    if conv is None:
        return None
    if is_gone(visitor, now, away_s):
        reason = "gone"
    elif outside_hours(session, conv, now):
        reason = "closed_hours"
    else:
        return None
    if session.scalar(select(WebchatOffline.id)
                      .where(WebchatOffline.source_reply_id == reply_id)) is not None:
        return None
    channel = CHANNEL_OF[kind]
    copy = Reply(conversation_id=conv.id, author_id=source.author_id,
                 state=ReplyState.APPROVED, channel=channel, body=source.body,
                 approved_by_id=source.approved_by_id, approved_at=now)
    session.add(copy)
    session.flush()
    copy.idempotency_key = idempotency_key_for(session, copy, conv)
    session.add(WebchatOffline(
        reply_id=copy.id, source_reply_id=reply_id, conversation_id=conv.id,
        visitor_id=visitor.id, kind=kind, address=address, reason=reason))
    # the address in the audit trail is what the visitor typed, marked as such
    audit.record(session, "reply.offline_continuation", conversation_id=conv.id,
                 reply_id=copy.id, source_reply_id=reply_id, channel=channel.value,
                 to=address, verified=address == visitor.identity_address, reason=reason)
    enqueue_after_commit(session, "dispatch_reply", copy.id)
    log.info("webchat reply %s continues by %s as reply %s (%s)", reply_id, channel.value,
             copy.id, reason)
    return copy


def target_of(session: Session, reply_id: int) -> WebchatOffline | None:
    """The continuation row of an outbound reply (None: not a continuation)."""
    return session.scalar(select(WebchatOffline).where(WebchatOffline.reply_id == reply_id))
