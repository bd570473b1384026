"""``parse(raw) -> InboundMessage``: one mail, as every other channel's message.

PLACEHOLDER: a minimal version so the poller can be built against the interface; the full
parser (charsets, quoted history, sanitised HTML, attachments, automatic mail) replaces it.
"""

from __future__ import annotations

import hashlib
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import getaddresses

from kartabl.errors import InputError
from kartabl.messages import InboundMessage
from kartabl.models import Channel


class UnparseableMail(InputError):
    """The mail gives no message (no sender address, or broken beyond repair): it is kept
    aside (quarantined), never dropped."""


def parse(raw: bytes) -> InboundMessage:
    msg = BytesParser(policy=policy.default).parsebytes(raw)
    assert isinstance(msg, EmailMessage)
    senders = [a for _, a in getaddresses([str(msg.get("From", ""))]) if "@" in a]
    if not senders:
        raise UnparseableMail("the mail has no sender address")
    mid = str(msg.get("Message-ID", "")).strip()
    body = msg.get_body(preferencelist=("plain",))
    text = body.get_content() if body is not None else ""
    digest = hashlib.sha256(raw.partition(b"\r\n\r\n")[2] or raw).hexdigest()[:16]
    return InboundMessage(
        channel=Channel.EMAIL, external_id=f"{mid or 'no-message-id'}#{digest}",
        sender=senders[0].lower(), subject=str(msg.get("Subject", "")), text=text,
        in_reply_to=str(msg.get("In-Reply-To", "")).strip() or None,
        meta={"message_id": mid or None},
    )
