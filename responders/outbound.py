"""Turn a reply row into the :class:`OutboundMessage` a sender receives: who it goes to, how
it threads, and its rendered text. Pure reads; the outbox calls it inside its claim."""

from __future__ import annotations

import dataclasses

from sqlalchemy import select
from sqlalchemy.orm import Session

from channels.webchat.offline import target_of as offline_target
from kartabl.errors import PermanentDeliveryError
from kartabl.language import conversation_language
from kartabl.messages import OutboundMessage
from kartabl.models import (
    Channel,
    Conversation,
    Customer,
    Direction,
    Identity,
    Message,
    MessageKind,
    Reply,
    utcnow,
)
from kartabl.workflow import idempotency_key_for
from responders.render import render_reply, reply_subject
from responders.reply_files import outbound as outbound_files

MAX_REFERENCES = 20  # long threads: keep the root's neighbours, as mail clients do


def latest_inbound(session: Session, conversation_id: int, channel: Channel) -> Message | None:
    """The customer's latest real message (never an auto-reply or a bounce: no loops)."""
    return session.scalar(
        select(Message)
        .where(
            Message.conversation_id == conversation_id,
            Message.direction == Direction.IN,
            Message.channel == channel,
            Message.kind == MessageKind.MESSAGE,
        )
        .order_by(Message.received_at.desc(), Message.id.desc())
        .limit(1)
    )


def answered_id(inbound: Message) -> str:
    """The id the customer's client knows their message by: for email the real Message-ID,
    which the parser keeps in ``meta["message_id"]`` (the external id is
    ``<Message-ID>#hash``, unique for ingest but unknown to any mail client)."""
    real = (inbound.meta or {}).get("message_id")
    return real if isinstance(real, str) and real.strip() else inbound.external_id


def build_message(session: Session, reply: Reply) -> OutboundMessage:
    """Raises :class:`PermanentDeliveryError` when there is nobody to answer or the
    template cannot render: neither gets better by retrying."""
    conv = session.get(Conversation, reply.conversation_id)
    assert conv is not None
    if reply.to_identity_id is not None:  # re-targeted (kartabl.workflow.windows.to_sms)
        return _to_identity(session, reply, conv)
    if conv.channel == Channel.WEBCHAT and reply.channel != Channel.WEBCHAT:
        contact = offline_target(session, reply.id)  # the widget's offline continuation
        if contact is not None:
            return _to_contact(session, reply, conv, contact.address)
    inbound = latest_inbound(session, conv.id, Channel(reply.channel))
    if inbound is None:
        return _first_message(session, reply, conv)
    if reply.idempotency_key is None:  # approved outside the workflow (old data): fix it now
        reply.idempotency_key = idempotency_key_for(session, reply, conv)
    rendered = render_reply(
        reply.channel, reply.body, template=reply.template,
        context={
            "subject": reply_subject(conv.subject or inbound.subject),
            "customer_name": inbound.sender_name,
        },
        # the wrapper (greeting, signature) speaks the customer's language
        language=conversation_language(session, conv.id),
    )
    references: tuple[str, ...] = ()
    answers = answered_id(inbound)
    if reply.channel == Channel.EMAIL:
        references = (*[str(r) for r in inbound.references], answers)
        references = references[-MAX_REFERENCES:]
    return OutboundMessage(
        reply_id=reply.id, conversation_id=conv.id, channel=Channel(reply.channel),
        recipient=inbound.sender, text=rendered.text, idempotency_key=reply.idempotency_key,
        subject=rendered.subject, html=rendered.html, in_reply_to=answers,
        references=references,
        # answer from the address / line / bot the customer wrote to
        meta={"from": inbound.recipient, "inbound_message_id": inbound.id},
        attachments=outbound_files(session, reply.id),
    )


def _first_message(session: Session, reply: Reply, conv: Conversation) -> OutboundMessage:
    """A reply in a conversation we started (kartabl.workflow.start) before the customer
    wrote: to the identity chosen at the start, from the address chosen then (None: the
    sender's default mailbox, line or bot), under the subject as typed, threading on our
    own previous mail if there is one."""
    started = _started(session, reply, conv)
    identity = (session.get(Identity, started.to_identity_id)
                if started is not None and started.to_identity_id is not None else None)
    if started is None or identity is None or identity.customer_id != conv.customer_id:
        raise PermanentDeliveryError(
            f"conversation {conv.id} has no customer message on {reply.channel} to answer")
    if reply.idempotency_key is None:
        reply.idempotency_key = idempotency_key_for(session, reply, conv)
    rendered = render_reply(
        reply.channel, reply.body, template=reply.template,
        context={"subject": started.subject, "customer_name": started_name(session, conv)},
        language=conversation_language(session, conv.id),
    )
    # A second mail before the customer answered follows our first one in their client.
    ours = session.scalar(
        select(Message.external_id).where(
            Message.conversation_id == conv.id, Message.direction == Direction.OUT,
            Message.channel == Channel.EMAIL)
        .order_by(Message.received_at.desc(), Message.id.desc()).limit(1)
    ) if reply.channel == Channel.EMAIL else None
    return OutboundMessage(
        reply_id=reply.id, conversation_id=conv.id, channel=Channel(reply.channel),
        recipient=identity.address, text=rendered.text,
        idempotency_key=reply.idempotency_key,
        # the subject as the person typed it: not a "Re:" of anything
        subject=started.subject if reply.channel == Channel.EMAIL else rendered.subject,
        html=rendered.html, in_reply_to=ours, references=(ours,) if ours else (),
        meta={"from": started.from_address or "", "started": True},
        attachments=outbound_files(session, reply.id),
    )


def _to_identity(session: Session, reply: Reply, conv: Conversation) -> OutboundMessage:
    """A reply re-targeted to one identity of the customer (an Instagram or WhatsApp reply
    sent by SMS once its window closed): to that address, from the sender's default line."""
    identity = session.get(Identity, reply.to_identity_id)
    if identity is None or identity.customer_id != conv.customer_id:
        raise PermanentDeliveryError(
            f"reply {reply.id}: its recipient is no longer this customer's")
    if reply.idempotency_key is None:
        reply.idempotency_key = idempotency_key_for(session, reply, conv)
    msg = _direct(session, reply, conv, identity.address, "retargeted")
    return dataclasses.replace(msg, attachments=outbound_files(session, reply.id))


def _to_contact(session: Session, reply: Reply, conv: Conversation,
                address: str) -> OutboundMessage:
    """A widget reply continued by SMS or email (channels.webchat.offline): to the
    unverified address the visitor typed, from the sender's default line or mailbox."""
    assert reply.idempotency_key is not None  # set when the continuation was made
    return _direct(session, reply, conv, address, "offline_continuation")


def _direct(session: Session, reply: Reply, conv: Conversation, recipient: str,
            why: str) -> OutboundMessage:
    """A reply written to one address rather than in answer to a message there: rendered
    for the conversation, from the sender's default line or mailbox (``meta["from"]``
    empty); ``why`` is marked in its meta."""
    assert reply.idempotency_key is not None
    rendered = render_reply(
        reply.channel, reply.body, template=reply.template,
        context={"subject": reply_subject(conv.subject or ""),
                 "customer_name": started_name(session, conv)},
        language=conversation_language(session, conv.id),
    )
    return OutboundMessage(
        reply_id=reply.id, conversation_id=conv.id, channel=Channel(reply.channel),
        recipient=recipient, text=rendered.text, idempotency_key=reply.idempotency_key,
        subject=rendered.subject, html=rendered.html, meta={"from": "", why: True},
    )


def _started(session: Session, reply: Reply, conv: Conversation) -> Conversation | None:
    """The conversation we started that the reply was written for, on the reply's channel:
    ``conv``, or for a reply a merge moved here (kartabl.workflow.merge) the one it came
    from, whose recipient and address it keeps (a reply keeps its channel when moved)."""
    for cid in (conv.id, reply.origin_conversation_id):
        found = conv if cid == conv.id else (
            session.get(Conversation, cid) if cid is not None else None)
        if found is not None and found.to_identity_id is not None \
                and found.channel == reply.channel:
            return found
    return None


def started_name(session: Session, conv: Conversation) -> str:
    """The name a started conversation's greeting uses: the customer's, as we know it."""
    customer = session.get(Customer, conv.customer_id)
    return customer.display_name if customer is not None else ""


def record_outbound(session: Session, msg: OutboundMessage, provider_id: str) -> Message:
    """The sent reply as an outbound message row; its external id is the idempotency key
    (the email Message-ID), so a customer's answer threads to it."""
    conv = session.get(Conversation, msg.conversation_id)
    assert conv is not None
    existing = session.scalar(
        select(Message).where(
            Message.channel == msg.channel, Message.external_id == msg.idempotency_key
        )
    )
    if existing is not None:
        return existing
    now = utcnow()
    row = Message(
        channel=msg.channel, external_id=msg.idempotency_key, direction=Direction.OUT,
        kind=MessageKind.MESSAGE, conversation_id=conv.id, customer_id=conv.customer_id,
        sender=str(msg.meta.get("from") or ""), recipient=msg.recipient, subject=msg.subject,
        text=msg.text, html=msg.html, in_reply_to=msg.in_reply_to,
        references=list(msg.references),
        # the files that went with it: the timeline lists them, and the message's access-
        # checked download route (console.pages.attachments) serves them
        attachments=[a.to_json() for a in msg.attachments],
        meta={"reply_id": msg.reply_id, "provider_id": provider_id},
        # outbound rows are never routed: mark them so the unrouted sweep skips them
        received_at=now, routed_at=now,
    )
    session.add(row)
    return row
