"""The reply windows of Instagram and WhatsApp, part of the approval step.

Meta lets a business answer only within a window after the customer's last message:
WhatsApp 24 h (later only as an approved template: when the number has a re-engagement
template configured, its messages say so in ``meta["template"]``
(:mod:`channels.meta.whatsapp`), and a late reply is approved to go as that template);
Instagram 24 h, or 7 days with the ``HUMAN_AGENT`` tag for an account that has Meta's Human
Agent feature (the inbound message records it: ``meta["human_agent"]``,
:mod:`channels.meta.instagram`). A reply approved after its window closed would only come
back refused by the Graph API (code 10/2018278, 131047), so:

- :func:`window_of` says when a reply's window closes (the console shows it on a pending
  reply);
- :func:`require_open` refuses the approval at once, with no send attempted
  (:class:`WindowClosed`, naming the channel and when it closed, and whether SMS is
  possible: the customer has a phone identity);
- :func:`to_sms` is the way out: a coordinator re-targets the pending reply to SMS, to the
  customer's phone number; audited (``reply.retargeted``); it stays pending, so the SMS
  text is approved as SMS (its length checked as every SMS).

The window counts from when we received the customer's last real message on the channel
(``received_at``: our clock, never the sender's).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from sqlalchemy import select
from sqlalchemy.orm import Session

from kartabl import audit
from kartabl.errors import IllegalTransition, InputError
from kartabl.models import (
    Channel,
    Conversation,
    Direction,
    Identity,
    Message,
    MessageKind,
    Person,
    Reply,
    utcnow,
)
from kartabl.workflow.access import load_reply, require_access, require_reviewer
from kartabl.workflow.states import RS

STANDARD: Final = timedelta(hours=24)
HUMAN_AGENT: Final = timedelta(days=7)
CHANNELS: Final = frozenset({Channel.INSTAGRAM, Channel.WHATSAPP})
PRODUCT: Final = {Channel.INSTAGRAM: "Instagram", Channel.WHATSAPP: "WhatsApp"}


class WindowClosed(IllegalTransition):
    """The channel's reply window closed before the reply was approved."""


@dataclass(frozen=True, slots=True)
class ReplyWindow:
    channel: Channel
    last_customer_at: datetime | None  # None: the customer never wrote on this channel
    closes_at: datetime | None
    human_agent: bool  # Instagram with the HUMAN_AGENT tag: 7 days
    sms_to: str | None  # the customer's phone number, when SMS is the way out
    template: str = ""  # WhatsApp: the approved template a late reply goes as

    def is_open(self, now: datetime | None = None) -> bool:
        return self.closes_at is not None and (now or utcnow()) < self.closes_at

    def allows_approval(self, now: datetime | None = None) -> bool:
        """Open, or closed on WhatsApp with a template to send the reply in."""
        return self.is_open(now) or (self.closes_at is not None and bool(self.template))


def window_of(session: Session, reply: Reply) -> ReplyWindow | None:
    """The window of ``reply``'s channel; None for a channel without one."""
    channel = Channel(reply.channel)
    if channel not in CHANNELS:
        return None
    last = session.scalar(
        select(Message).where(
            Message.conversation_id == reply.conversation_id,
            Message.direction == Direction.IN, Message.channel == channel,
            Message.kind == MessageKind.MESSAGE)
        .order_by(Message.received_at.desc(), Message.id.desc()).limit(1))
    conv = session.get(Conversation, reply.conversation_id)
    assert conv is not None
    phone = session.scalar(select(Identity.address).where(
        Identity.customer_id == conv.customer_id, Identity.kind == "phone")
        .order_by(Identity.id).limit(1))
    if last is None:
        return ReplyWindow(channel, None, None, False, phone)
    meta = last.meta or {}
    human = channel is Channel.INSTAGRAM and bool(meta.get("human_agent"))
    template = str(meta.get("template") or "") if channel is Channel.WHATSAPP else ""
    received = last.received_at
    return ReplyWindow(channel, received, received + (HUMAN_AGENT if human else STANDARD),
                       human, phone, template)


def require_open(session: Session, step: str, reply: Reply) -> None:
    """:class:`WindowClosed` when ``reply``'s channel window is closed."""
    window = window_of(session, reply)
    if window is None or window.allows_approval():
        return
    closed = window.closes_at.isoformat(timespec="minutes") if window.closes_at else ""
    rule = ("7 days (human agent)" if window.human_agent else "24 h")
    offer = ("; send it by SMS instead (the customer has a phone number)" if window.sms_to
             else "; the customer has no phone number for SMS")
    template = (" (WhatsApp allows only an approved template then, and this number has "
                "no reengagement_template configured)") if window.channel is Channel.WHATSAPP \
        else ""
    when = f"closed at {closed}" if closed else "never opened: the customer has not written"
    code = "meta_window.never" if not closed else (
        "meta_window.closed_sms" if window.sms_to else "meta_window.closed")
    raise WindowClosed(
        step, "window closed",
        f"the {window.channel.value} reply window ({rule} after the customer's last message) "
        f"{when}{template}{offer}",
        code=code,
        params={"product": PRODUCT[window.channel], "closed_at": closed or None,
                "sms": "yes" if window.sms_to else "no", "id": reply.id})


def to_sms(session: Session, actor: Person | None, reply_id: int) -> Reply:
    """A coordinator or admin re-targets a pending Instagram or WhatsApp reply whose window
    closed to SMS, to the customer's phone number; it stays pending approval."""
    require_reviewer("retarget", actor)
    reply, conv = load_reply(session, reply_id)
    require_access("retarget", actor, conv)
    if reply.state != RS.PENDING_APPROVAL:  # only a reply awaiting approval
        raise IllegalTransition("retarget", RS(reply.state).value, f"reply {reply.id}",
                                params={"item": "reply", "id": reply.id})
    window = window_of(session, reply)
    if window is None or window.is_open():
        raise InputError("only a reply whose Instagram or WhatsApp window closed goes by SMS "
                         "instead", code="meta_window.open")
    phone = session.scalar(select(Identity).where(
        Identity.customer_id == conv.customer_id, Identity.kind == "phone")
        .order_by(Identity.id).limit(1))
    if phone is None:
        raise InputError("the customer has no phone number to send an SMS to",
                         code="meta_window.no_phone")
    before = Channel(reply.channel).value
    reply.channel = Channel.SMS
    reply.to_identity_id = phone.id
    audit.record(session, "reply.retargeted", actor=actor, conversation_id=conv.id,
                 reply_id=reply.id, from_channel=before, to_channel="sms", to=phone.address,
                 reason="reply window closed")
    return reply

