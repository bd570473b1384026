"""How a reply with files goes out on Telegram and Bale: which chat messages, in what
order. Pure, no python-telegram-bot: the sender (:mod:`responders.telegram`) sends what
:func:`chat_plan` says, and "what was sent" (:mod:`responders.as_sent`) shows the same.

The order, decided once:

- **The text fits a caption** (at most :data:`CAPTION_MAX`, 1024 UTF-16 units, the Bot
  API's limit for a caption): the first file carries the text as its caption, the other
  files follow without one. One message fewer, and the text stays with the file it
  introduces.
- **The text is longer**: the text goes first as its own message(s) (split at 4096 like
  any reply, :func:`responders.chat_length.split_text`), then each file without a caption:
  the explanation, then the files it talks about.

Each file is one ``sendDocument``, or ``sendPhoto`` for a JPEG or PNG the Bot API takes
as a photo (:func:`as_photo`: at most 10 MB, width plus height at most 10000, sides at
most 20 to 1): the customer sees the picture rather than a file to open. Anything else
(GIF, WebP, a PDF, a photo over those limits) is a document, sent as it is.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, Literal

from kartabl.messages import OutboundAttachment
from responders.chat_length import split_text, units
from responders.reply_files import BOT_API_PHOTO_MAX

CAPTION_MAX: Final = 1024  # UTF-16 units, after entities parsing (we send plain text)
PHOTO_TYPES: Final = frozenset({"image/jpeg", "image/png"})
MAX_PHOTO_SIDES: Final = 10_000
MAX_PHOTO_RATIO: Final = 20


@dataclass(frozen=True, slots=True)
class ChatStep:
    """One chat message: text alone, or a file with its caption ("" for none)."""

    text: str
    file: OutboundAttachment | None = None

    @property
    def kind(self) -> Literal["text", "file"]:
        return "text" if self.file is None else "file"


def chat_plan(text: str, files: Sequence[OutboundAttachment]) -> list[ChatStep]:
    """The messages of a reply, in the order they are sent (module docstring)."""
    body = text.strip()
    if not files:
        return [ChatStep(p) for p in split_text(body)]
    if units(body) <= CAPTION_MAX:
        return [ChatStep(body if n == 0 else "", f) for n, f in enumerate(files)]
    return [*(ChatStep(p) for p in split_text(body)), *(ChatStep("", f) for f in files)]


def as_photo(att: OutboundAttachment, data: bytes) -> bool:
    """Whether the Bot API takes these bytes as a photo (``sendPhoto``): a JPEG or PNG of
    at most 10 MB whose size we can read and that the documented limits allow."""
    if att.content_type not in PHOTO_TYPES or len(data) > BOT_API_PHOTO_MAX:
        return False
    size = image_size(data)
    if size is None:
        return False
    w, h = size
    return w > 0 and h > 0 and w + h <= MAX_PHOTO_SIDES and \
        max(w, h) <= MAX_PHOTO_RATIO * min(w, h)


def image_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) of a PNG (its IHDR) or a JPEG (its first SOF marker), else None."""
    if data.startswith(b"\x89PNG\r\n\x1a\n") and data[12:16] == b"IHDR" and len(data) >= 24:
        w, h = struct.unpack(">II", data[16:24])
        return int(w), int(h)
    if not data.startswith(b"\xff\xd8"):
        return None
    i = 2
    while i + 9 < len(data):
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        length = int.from_bytes(data[i + 2:i + 4], "big")
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):  # start of frame
            h, w = struct.unpack(">HH", data[i + 5:i + 9])
            return int(w), int(h)
        if length < 2:
            return None
        i += 2 + length
    return None
