"""What the customer received, piece by piece: the rendered text (wrapper included) of a
sent reply as its channel carried it: the SMS parts a phone joins back together, the chat
messages a long reply was split into, or the one mail; and the files that went with it
(:func:`files`). The console's timeline shows it under each sent reply, so nobody has to
guess what the customer saw."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from kartabl.messages import OutboundAttachment
from kartabl.models import Channel
from responders.chat_files import chat_plan
from responders.chat_length import split_text
from responders.sms_length import split_sms


def pieces(channel: Channel | str, text: str) -> list[str]:
    """``text`` as ``channel`` sends it (the sender splits the same way)."""
    match Channel(channel):
        case Channel.SMS:
            return split_sms(text)
        case Channel.TELEGRAM | Channel.BALE:
            return split_text(text)
        case _:
            return [text]


@dataclass(frozen=True, slots=True)
class SentFile:
    """A file that went with a reply: a MIME part of the mail, or a chat message (a
    document or photo) whose caption was the reply's text when ``captioned``."""

    filename: str
    content_type: str
    size: int
    storage_key: str
    captioned: bool = False


def files(channel: Channel | str, text: str, listed: Iterable[Any]) -> list[SentFile]:
    """The files of a sent reply from its outbound message's attachment list (JSON, as
    :func:`responders.outbound.record_outbound` wrote it), in the order they went."""
    atts = [OutboundAttachment(str(a.get("filename") or ""), str(a.get("content_type") or ""),
                               int(a.get("size") or 0), str(a.get("storage_key")))
            for a in listed if isinstance(a, dict) and isinstance(a.get("storage_key"), str)]
    captioned: set[str] = set()
    if Channel(channel) in (Channel.TELEGRAM, Channel.BALE, Channel.RUBIKA):
        captioned = {s.file.storage_key for s in chat_plan(text, atts)
                     if s.file is not None and s.text}
    return [SentFile(a.filename, a.content_type, a.size, a.storage_key,
                     a.storage_key in captioned) for a in atts]
