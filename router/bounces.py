"""A bounce of one of our replies marks that reply failed, so the failure comes back to the
coordinator (the reply's state and error, and a ``reply.bounced`` audit event).

Which reply bounced: the parser lists the Message-IDs the delivery report names in
``meta["bounced_message_ids"]`` (RFC 3464 ``message/rfc822`` or ``text/rfc822-headers``
part); In-Reply-To and References are the fallback, since many servers quote the original's
Message-ID there. Only a Message-ID that verifies as one of our reply tokens
(:mod:`kartabl.reply_tokens`) and is exactly that reply's key counts: a bounce is a mail like
any other, and anyone can write one. What a signature cannot rule out: a recipient of our
reply (who knows its genuine Message-ID) forging a bounce for it. The harm is bounded (the
reply shows as failed to a coordinator, who sees the bounce and can resend), and the
provider's status is not available for SMTP to cross-check.

Runs inside the router's transaction (:func:`router.batch.route_batch`), after the bounce
messages themselves are routed; a bounce message is routed once, so a reply is failed once.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Final

from sqlalchemy.orm import Session

from kartabl import audit, metrics, reply_tokens
from kartabl.db import after_commit
from kartabl.models import Channel, Direction, Message, MessageKind, Reply, ReplyState
from kartabl.workflow import REPLY_TRANSITIONS, move_reply

log = logging.getLogger(__name__)

DEFAULT_REASON: Final = "the reply bounced: the recipient's mail server returned it"
MAX_CANDIDATES: Final = 20  # a crafted bounce may list thousands
MAX_REASON_CHARS: Final = 2000


def fail_bounced_replies(session: Session, messages: Sequence[Message]) -> int:
    """Fail the sent (or delivered) replies that the bounces among ``messages`` name.
    Returns how many replies it failed. Does not commit: the caller owns the transaction."""
    bounced: dict[int, tuple[Message, str]] = {}
    for message in messages:
        if message.kind is not MessageKind.BOUNCE or message.direction != Direction.IN:
            continue
        for value in _candidates(message):
            if not reply_tokens.looks_like_ours(value):
                continue
            reply_id = reply_tokens.verify(value)
            if reply_id is None:
                log.warning("bounce message %s names a reply token we did not sign; ignored",
                            message.id)
                continue
            bounced.setdefault(reply_id, (message, value))
    failed = 0
    for reply_id in sorted(bounced):  # lock order: reply ids ascending
        message, value = bounced[reply_id]
        failed += _fail(session, reply_id, message, value)
    return failed


def _fail(session: Session, reply_id: int, message: Message, value: str) -> int:
    reply = session.get(Reply, reply_id, with_for_update=True, populate_existing=True)
    if (
        reply is None
        or reply.channel != Channel.EMAIL
        or reply.idempotency_key is None
        or not reply_tokens.same_token(reply.idempotency_key, value)
    ):
        log.warning("bounce message %s names reply %s under another key; ignored",
                    message.id, reply_id)
        return 0
    if reply.state not in REPLY_TRANSITIONS["bounce"][0]:
        # Already failed (a second bounce), or not sent at all: nothing to change.
        log.info("bounce message %s for reply %s in state %s; nothing to do",
                 message.id, reply.id, ReplyState(reply.state).value)
        return 0
    before = move_reply(reply, "bounce", ReplyState.FAILED)
    reply.error = _reason(message)
    audit.record(
        session, "reply.bounced", conversation_id=reply.conversation_id, reply_id=reply.id,
        message_id=message.id, previous_state=before.value, reason=reply.error,
    )
    # Counted once the routing batch commits: a batch that rolls back (and is retried) failed
    # nothing.
    after_commit(session, metrics.REPLIES.labels(state="failed").inc)
    log.warning("reply %s bounced (message %s)", reply.id, message.id)
    return 1


def _candidates(message: Message) -> list[str]:
    meta = message.meta or {}
    listed = meta.get("bounced_message_ids") or []
    if isinstance(listed, str):
        listed = [listed]
    values = [*listed, message.in_reply_to or "", *(message.references or [])]
    out: list[str] = []
    for v in values:
        if isinstance(v, str) and v.strip() and v.strip() not in out:
            out.append(v.strip())
        if len(out) >= MAX_CANDIDATES:
            break
    return out


def _reason(message: Message) -> str:
    # Text from the bounce: untrusted, shown to staff as data; bounded in size.
    reason = (message.meta or {}).get("bounce_reason")
    text = reason.strip() if isinstance(reason, str) else ""
    return (text or DEFAULT_REASON)[:MAX_REASON_CHARS]
