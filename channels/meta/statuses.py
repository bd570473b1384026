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
goes forward, a late "sent" or "delivered" after "read" changes nothing, and a resent
"read" is recorded once.

A status can also come before we know the wamid: Meta may report "failed" while the Cloud
API's answer to our send is still on its way, so the reply is still ``sending`` with no
provider id. Ignored, that failure was lost and the reply went on to show "sent". So while
a WhatsApp reply is being sent, a status for an unknown wamid is not ignored but refused
(:class:`TooEarly`: the webhook answers 503), and Meta sends it again later, as it does for
any answer but 200; by then the reply has its wamid. The other statuses of the same POST
are applied first, and a resent POST changes nothing twice.
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
from kartabl.models import Channel, Event, Reply, ReplyState, utcnow
from kartabl.workflow import move_reply

log = logging.getLogger(__name__)
RS = ReplyState


class TooEarly(Exception):
    """Statuses of wamids we do not know yet came while a WhatsApp reply was being sent."""


def apply(sessions: sessionmaker[Session], statuses: Sequence[Status]) -> int:
    """Apply each status in its own transaction; returns how many replies changed. Raises
    :class:`TooEarly` once the others are applied when a status may belong to a reply still
    being sent."""
    changed, early = 0, 0
    for status in statuses:
        with sessions() as session, session.begin():
            n = _apply_one(session, status)
        if n is None:
            early += 1
        else:
            changed += n
    if early:
        raise TooEarly(f"{early} status(es) of a message not known yet while a WhatsApp "
                       "reply is being sent")
    return changed


def _apply_one(session: Session, status: Status) -> int | None:
    reply = session.scalar(
        select(Reply).where(Reply.channel == Channel.WHATSAPP,
                            Reply.provider_id == status.wamid)
        .with_for_update())
    if reply is None:
        sending = session.scalar(select(Reply.id).where(
            Reply.channel == Channel.WHATSAPP, Reply.state == RS.SENDING).limit(1))
        if sending is not None:
            log.info("whatsapp: status %s of an unknown message while reply %s is being "
                     "sent: asked again later", status.status, sending)
            return None
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
    if status.status == "read" and reply.state == RS.DELIVERED and session.scalar(
            select(Event.id).where(Event.reply_id == reply.id, Event.kind == "reply.read")
            .limit(1)) is None:
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
