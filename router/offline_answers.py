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
"""

from __future__ import annotations

from datetime import timedelta
from typing import Final

from sqlalchemy import select
from sqlalchemy.orm import Session

from kartabl.models import Channel, Conversation, Direction, Message, WebchatOffline
from router.identity import normalize_email, normalize_phone

WINDOW: Final = timedelta(days=7)
KIND_OF: Final = {Channel.SMS: "phone", Channel.EMAIL: "email"}


def offline_answer(session: Session, message: Message) -> Conversation | None:
    """The widget conversation ``message`` answers, or None (route as usual)."""
    kind = KIND_OF.get(Channel(message.channel))
    if kind is None or message.direction != Direction.IN:
        return None
    try:
        address = (normalize_phone if kind == "phone" else normalize_email)(message.sender)
    except ValueError:
        return None
    continued = session.scalar(
        select(WebchatOffline.conversation_id)
        .where(WebchatOffline.kind == kind, WebchatOffline.address == address,
               WebchatOffline.created_at > message.received_at - WINDOW)
        .order_by(WebchatOffline.id.desc()).limit(1))
    if continued is None:
        return None
    ours = session.scalar(
        select(Message.conversation_id)
        .where(Message.channel == message.channel, Message.direction == Direction.OUT,
               Message.recipient == address)
        .order_by(Message.received_at.desc(), Message.id.desc()).limit(1))
    if ours != continued:  # not sent yet, or we wrote to it since from elsewhere
        return None
    return session.get(Conversation, continued)
