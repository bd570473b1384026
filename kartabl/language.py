"""The customer's language, for what Kartabl writes to them: the canned response's variant
and the reply wrapper (greeting, signature).

Nothing a channel gives says it reliably (a mail has no language header worth trusting, an
SMS none at all), so it is read from what the customer wrote: the script of the letters of
their latest messages in the conversation. Arabic-script letters (Persian) make it
``fa``; Latin letters without them make it ``en``; a message with neither (digits, emoji,
only an attachment) says nothing, and the one before it is read; then the subjects. A
conversation with no letters at all is Persian, the inbox's home language
(:data:`DEFAULT_LANGUAGE`).

A message mixing both counts letters: "سفارش ORD-123" is Persian (a Persian sentence around
an order number), "Hi, my order سفارش 12 is late" English, as the customer wrote most.
"""

from __future__ import annotations

import unicodedata
from typing import Final

from sqlalchemy import select
from sqlalchemy.orm import Session

from kartabl.models import Direction, Message, MessageKind

LANGUAGES: Final = ("fa", "en")
DEFAULT_LANGUAGE: Final = "fa"
# How many of the customer's latest messages are read before giving up (each is one row).
_LOOK_BACK: Final = 5


def text_language(text: str) -> str | None:
    """``fa``, ``en``, or None when ``text`` has no letters of either script."""
    arabic = latin = 0
    for ch in text:
        if not ch.isalpha():
            continue
        if "\u0600" <= ch <= "\u06ff" or "\u0750" <= ch <= "\u077f" or "\ufb50" <= ch <= "\ufefc":
            arabic += 1
        elif ch.isascii() or unicodedata.name(ch, "").startswith("LATIN"):
            latin += 1
    if arabic == 0 and latin == 0:
        return None
    return "fa" if arabic >= latin else "en"


def conversation_language(session: Session, conversation_id: int) -> str:
    """The language of the customer in this conversation (see the module's docstring)."""
    rows = session.execute(
        select(Message.text, Message.subject)
        .where(Message.conversation_id == conversation_id, Message.direction == Direction.IN,
               Message.kind == MessageKind.MESSAGE)
        .order_by(Message.received_at.desc(), Message.id.desc())
        .limit(_LOOK_BACK)
    )
    latest = list(rows)
    # The texts first: a reply's subject is often the first message's ("Re: ..."), while
    # its text is what the customer writes now.
    for found in (text_language(t or "") for t, _ in latest):
        if found is not None:
            return found
    for found in (text_language(s or "") for _, s in latest):
        if found is not None:
            return found
    return DEFAULT_LANGUAGE
