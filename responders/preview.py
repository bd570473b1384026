"""What a reply will look like, and cost, on its channel before anyone approves it.

The text is rendered through the reply's template exactly as the outbox will render it, and
counted in the channel's units: SMS parts (UCS-2 for Persian: 70 characters in one SMS, 67
per part beyond; GSM 7-bit: 160 and 153, :mod:`responders.sms_length`), Telegram/Bale
messages of 4096 characters. The console shows :class:`Preview` beside the approve button;
the workflow refuses to submit or approve a reply the channel's sender would refuse
(:func:`require_fits`, which callers hand to the workflow as :data:`REPLY_CHECK`), so a
too-long SMS is caught by its author, not by a failed send.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from sqlalchemy import select
from sqlalchemy.orm import Session

from kartabl.errors import PermanentDeliveryError, WorkflowError
from kartabl.language import DEFAULT_LANGUAGE, conversation_language
from kartabl.messages import OutboundAttachment
from kartabl.models import Channel, Conversation, Direction, Message, Reply
from kartabl.outbound import ReplyCheck
from responders.chat_files import chat_plan
from responders.outbound import started_name
from responders.render import has_template, render_reply, reply_subject
from responders.reply_files import outbound as outbound_files
from responders.sms_length import sms_length

# The most parts each channel's sender accepts (responders.sms / responders.telegram).
MAX_SMS_PARTS: Final = 8
MAX_CHAT_MESSAGES: Final = 10
# Instagram and WhatsApp take one message per reply (responders.meta), this long at most.
MAX_INSTAGRAM_BYTES: Final = 1000
MAX_WHATSAPP_CHARS: Final = 4096


class ReplyTooLong(WorkflowError):
    """The rendered reply is longer than its channel's sender accepts."""


class ReplyCannotRender(WorkflowError):
    """The reply's template fails: it could never be sent."""


@dataclass(frozen=True, slots=True)
class Preview:
    channel: Channel
    text: str  # as the customer will read it (the plain-text part, for email)
    parts: int  # SMS parts, chat messages; 1 for a mail
    limit: int  # the most parts the sender accepts
    encoding: str | None = None  # "ucs2" or "gsm7" for SMS

    @property
    def fits(self) -> bool:
        return self.parts <= self.limit

    def describe(self) -> str:
        """One line for people: "3 SMS (UCS-2, 170 characters)"."""
        if self.channel is Channel.SMS:
            units = sms_length(self.text).units
            return f"{self.parts} SMS ({(self.encoding or '').upper()}, {units} characters)"
        if self.channel in (Channel.TELEGRAM, Channel.BALE, Channel.RUBIKA, Channel.INSTAGRAM,
                            Channel.WHATSAPP):
            return f"{self.parts} message{'s' if self.parts != 1 else ''}"
        return "1 mail"


def preview(
    channel: Channel | str, body: str, *, template: str | None = None, subject: str = "",
    customer_name: str = "", language: str = DEFAULT_LANGUAGE,
    files: Sequence[OutboundAttachment] = (),
) -> Preview:
    """Render ``body`` for ``channel`` (its wrapper in the customer's ``language``) and
    count it; on a chat, each of ``files`` is a message too (a short text rides as the
    first file's caption: :func:`responders.chat_files.chat_plan`). Raises
    :class:`PermanentDeliveryError` when the template fails."""
    ch = Channel(channel)
    text = render_reply(ch, body, template=template, language=language, context={
        "subject": reply_subject(subject), "customer_name": customer_name}).text
    if ch is Channel.SMS:
        length = sms_length(text)
        return Preview(ch, text, length.parts, MAX_SMS_PARTS, length.encoding)
    if ch in (Channel.TELEGRAM, Channel.BALE, Channel.RUBIKA):
        return Preview(ch, text, len(chat_plan(text, files)), MAX_CHAT_MESSAGES)
    if ch in (Channel.INSTAGRAM, Channel.WHATSAPP):  # one message, no splitting
        size, cap = ((len(text.strip().encode()), MAX_INSTAGRAM_BYTES)
                     if ch is Channel.INSTAGRAM else (len(text.strip()), MAX_WHATSAPP_CHARS))
        return Preview(ch, text, max(1, -(-size // cap)), 1)
    return Preview(ch, text, 1, 1)


def preview_reply(session: Session, reply: Reply, body: str | None = None) -> Preview:
    """:func:`preview` of ``reply`` (or of ``body``, an edit not saved yet) with the context
    the outbox will use: the conversation's subject, the customer's name as they wrote, and
    their language."""
    conv = session.get(Conversation, reply.conversation_id)
    assert conv is not None  # a reply belongs to a conversation (foreign key)
    name = session.scalar(
        select(Message.sender_name)
        .where(Message.conversation_id == conv.id, Message.direction == Direction.IN,
               Message.channel == reply.channel)
        .order_by(Message.received_at.desc(), Message.id.desc()).limit(1)
    )
    if name is None and conv.to_identity_id is not None:  # started by us: as the outbox names
        name = started_name(session, conv)
    return preview(reply.channel, reply.body if body is None else body, template=reply.template,
                   subject=conv.subject or "", customer_name=name or "",
                   language=conversation_language(session, conv.id),
                   files=outbound_files(session, reply.id) if reply.id is not None else ())


def require_fits(session: Session, step: str, reply: Reply, body: str | None = None) -> Preview:
    """The preview, or :class:`ReplyTooLong` / :class:`ReplyCannotRender` saying why the
    channel would refuse it."""
    try:
        p = preview_reply(session, reply, body)
    except PermanentDeliveryError as exc:
        raise ReplyCannotRender(f"cannot {step}: {exc}", code="cannot_render",
                                params={"detail": str(exc)}) from None
    if not p.fits:
        what = "SMS" if p.channel is Channel.SMS else "messages"
        raise ReplyTooLong(f"cannot {step}: the reply is {p.describe()}, and {p.channel.value} "
                           f"replies are at most {p.limit} {what}; shorten it",
                           code="too_long_sms" if p.channel is Channel.SMS else "too_long_chat",
                           params={"channel": p.channel.value, "parts": p.parts,
                                   "limit": p.limit})
    return p


class _ReplyCheck:
    """The outbound side's answer to the workflow (:class:`kartabl.outbound.ReplyCheck`):
    the templates of :mod:`responders.render`, the lengths of :func:`require_fits`."""

    def has_template(self, name: str, channel: Channel | str) -> bool:
        return has_template(name, channel)

    def require_fits(self, session: Session, step: str, reply: Reply,
                     body: str | None = None) -> Preview:
        return require_fits(session, step, reply, body)


# What every caller of workflow.draft, submit and approve passes as ``check``.
REPLY_CHECK: Final[ReplyCheck] = _ReplyCheck()
