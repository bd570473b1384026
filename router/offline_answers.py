"""An SMS (or email) answer to a website chat reply continued offline
(:mod:`channels.webchat.offline`) continues that widget conversation.

The reply went to an address the visitor typed, unverified. Its answer is threaded into
that conversation, and nothing more: the address is not made the visitor's identity and
its customer is not linked to the visitor, so no history moves or shows either way (the
router still recognises the number's own customer as for any SMS; the message is filed in
the widget conversation, under the conversation's customer, and that customer's page
lists it there only). It is never shown in the widget either: the log has only the
visitor's own messages and our replies.

An answer joins the conversation only while our **latest** outbound message on that
channel to that address is a continuation of it, sent within :data:`WINDOW`: if we have
written to the number since from its own conversation (say an agent started one), its
answers go there as usual, so a number someone typed cannot pull a person's ongoing SMS
conversation into a stranger's chat.

Looked up for a whole batch at once (:func:`offline_answers`): one indexed query per batch
when no continuation matches (the usual case), two more when one does.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Final

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from kartabl.models import Channel, Conversation, Direction, Message, WebchatOffline
from router.identity import normalize_email, normalize_phone

WINDOW: Final = timedelta(days=7)
KIND_OF: Final = {Channel.SMS: "phone", Channel.EMAIL: "email"}
CHANNEL_OF: Final = {kind: channel for channel, kind in KIND_OF.items()}


def _address(message: Message) -> tuple[str, str] | None:
    kind = KIND_OF.get(Channel(message.channel))
    if kind is None or message.direction != Direction.IN:
        return None
    try:
        return kind, (normalize_phone if kind == "phone" else normalize_email)(message.sender)
    except ValueError:
        return None


def offline_answers(session: Session, messages: Iterable[Message]) -> dict[int, Conversation]:
    """message id -> the widget conversation it answers, for those that answer one."""
    by_id = {m.id: m for m in messages}
    wanted = {i: a for i, m in by_id.items() if (a := _address(m)) is not None}
    if not wanted:
        return {}
    addresses = sorted({a for _, a in wanted.values()})
    since = min(by_id[i].received_at for i in wanted) - WINDOW
    latest: dict[tuple[str, str], tuple[int, datetime]] = {}
    for kind, address, conv_id, created in session.execute(
            select(WebchatOffline.kind, WebchatOffline.address, WebchatOffline.conversation_id,
                   WebchatOffline.created_at)
            .where(WebchatOffline.address.in_(addresses), WebchatOffline.created_at > since)
            .order_by(WebchatOffline.id)):
        latest[(kind, address)] = (conv_id, created)  # the newest continuation wins
    if not latest:
        return {}
    # our latest outbound message on the channel to each of those addresses
    rn = func.row_number().over(partition_by=(Message.channel, Message.recipient),
                                order_by=(Message.received_at.desc(), Message.id.desc()))
    ranked = (select(Message.channel, Message.recipient, Message.conversation_id,
                     rn.label("rn"))
              .where(Message.direction == Direction.OUT,
                     Message.recipient.in_(sorted({a for _, a in latest})),
                     Message.channel.in_([CHANNEL_OF[k] for k, _ in latest]))
              .subquery())
    ours = {(str(ch), rcpt): cid for ch, rcpt, cid in session.execute(
        select(ranked.c.channel, ranked.c.recipient, ranked.c.conversation_id)
        .where(ranked.c.rn == 1))}
    out: dict[int, Conversation] = {}
    for message_id, (kind, address) in wanted.items():
        found = latest.get((kind, address))
        if found is None:
            continue
        conv_id, created = found
        if created <= by_id[message_id].received_at - WINDOW:
            continue
        # not sent yet, or we wrote to it since from elsewhere: route as usual
        if ours.get((str(CHANNEL_OF[kind]), address)) != conv_id:
            continue
        conv = session.get(Conversation, conv_id)
        if conv is not None:
            out[message_id] = conv
    return out


def offline_answer(session: Session, message: Message) -> Conversation | None:
    """The widget conversation ``message`` answers, or None (route as usual)."""
    return offline_answers(session, [message]).get(message.id)
