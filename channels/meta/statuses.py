"""WhatsApp's statuses of our messages, applied to the replies they belong to: the same
moves as the outbox's delivery poll (:func:`responders.dispatch.poll_delivery`, which asks
Kavenegar), here pushed by Meta instead of asked for.

    sent       nothing: the reply is 'sent' since the Cloud API took it
    delivered  sent → delivered (``delivered_at``, audit ``reply.delivered``)
    read       as delivered when not yet, then audit ``reply.read`` (there is no 'read'
               state: a read reply is a delivered one the customer opened)
    failed     sent → failed with WhatsApp's reason (``131047: Re-engagement message``),
               audit ``reply.failed``: back to the coordinator, as a failed SMS

A reply is found by its provider id (the wamid the Cloud API answered); a status for a
message we do not know (sent from WhatsApp's own app, or by an older install) is logged and
ignored. Statuses arrive out of order sometimes (read before delivered): each move only
goes forward, a late "sent" or "delivered" after "read" changes nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from channels.meta.payload import Status
from kartabl import audit, metrics
from kartabl.db import after_commit
from kartabl.models import Channel, Reply, ReplyState, utcnow
from kartabl.workflow import move_reply

log = logging.getLogger(__name__)
RS = ReplyState


def apply(sessions: sessionmaker[Session], statuses: Sequence[Status]) -> int:
    """Apply each status in its own transaction; returns how many replies changed."""
    changed = 0
    for status in statuses:
        with sessions() as session, session.begin():
            changed += _apply_one(session, status)
    return changed


def _apply_one(session: Session, status: Status) -> int:
    reply = session.scalar(
        select(Reply).where(Reply.channel == Channel.WHATSAPP,
                            Reply.provider_id == status.wamid)
        .with_for_update())
    if reply is None:
        log.info("whatsapp: status %s of a message that is not a reply of ours ignored",
                 status.status)
        return 0
    ids: dict[str, Any] = {"conversation_id": reply.conversation_id, "reply_id": reply.id,
                           "provider_id": status.wamid}
    if status.status in ("delivered", "read") and reply.state == RS.SENT:
        move_reply(reply, "deliver", RS.DELIVERED)
        reply.delivered_at = utcnow()
        audit.record(session, "reply.delivered", **ids)
        after_commit(session, metrics.REPLIES.labels(state="delivered").inc)
        if status.status == "read":
            audit.record(session, "reply.read", **ids)
        return 1
    if status.status == "read" and reply.state == RS.DELIVERED:
        audit.record(session, "reply.read", **ids)
        return 1
    if status.status == "failed" and reply.state == RS.SENT:
        reason = "WhatsApp reported that delivery failed" + (
            f": {status.reason}" if status.reason else "")
        move_reply(reply, "fail", RS.FAILED)
        reply.error = reason
        audit.record(session, "reply.failed", reason=reason, **ids)
        after_commit(session, metrics.REPLIES.labels(state="failed").inc)
        log.warning("reply %s failed: %s", reply.id, reason)
        return 1
    return 0
