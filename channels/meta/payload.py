"""What one Meta webhook POST holds, once parsed: messages (with the media still to fetch)
and WhatsApp delivery statuses. :mod:`channels.meta.instagram` and
:mod:`channels.meta.whatsapp` fill it; :mod:`channels.meta.webhook` fetches the media,
stores the messages and applies the statuses."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from kartabl.errors import InputError
from kartabl.messages import InboundMessage

log = logging.getLogger(__name__)

MAX_TEXT = 20_000  # Instagram caps a DM at 1,000 bytes, WhatsApp at 4,096 characters


@dataclass(frozen=True, slots=True)
class MediaRef:
    """A file of a message, not fetched yet: an Instagram CDN ``url``, or a WhatsApp
    ``media_id`` looked up with the number's ``token``."""

    kind: str  # image, file, video, audio (Instagram); image, document ... (WhatsApp)
    content_type: str
    filename: str = ""
    url: str | None = None
    media_id: str | None = None
    token: str | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class Incoming:
    message: InboundMessage  # its attachments are added once the media are fetched
    media: tuple[MediaRef, ...] = ()


@dataclass(frozen=True, slots=True)
class Status:
    """A WhatsApp status of one of our messages (its wamid)."""

    wamid: str
    status: str  # sent, delivered, read, failed
    reason: str = ""  # for failed: the errors' codes and titles


@dataclass(slots=True)
class Payload:
    messages: list[Incoming] = field(default_factory=list)
    statuses: list[Status] = field(default_factory=list)
    ignored: int = 0  # events that are not messages for us (echoes, reactions, reads ...)
    # messages of a well-formed POST that could not be read ("<where>: <why>"), logged and
    # left out: one bad message must not make Meta resend, and in the end drop, the others
    refused: list[str] = field(default_factory=list)

    def refuse(self, where: str, exc: Exception) -> None:
        log.warning("meta webhook: %s refused (%s); the rest of the POST is stored", where, exc)
        self.refused.append(f"{where}: {exc}")


def as_list(value: Any, where: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise InputError(f"{where} is not a list")
    return value


def as_dict(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise InputError(f"{where} is not an object")
    return value


def text_of(value: Any) -> str:
    text = value.strip() if isinstance(value, str) else ""
    if len(text) > MAX_TEXT:
        raise InputError(f"a text longer than {MAX_TEXT} characters")
    return text


def id_of(value: Any, where: str) -> str:
    """A Meta id: digits, given as a string (or a number by a careless sender)."""
    text = str(value).strip() if isinstance(value, (str, int)) and not isinstance(
        value, bool) else ""
    if not text or len(text) > 64 or not text.isdigit():
        raise InputError(f"{where} is not an id")
    return text
