"""What the customer received, piece by piece: the rendered text (wrapper included) of a
sent reply as its channel carried it: the SMS parts a phone joins back together, the chat
messages a long reply was split into, or the one mail. The console's timeline shows it
under each sent reply, so nobody has to guess what the customer saw."""

from __future__ import annotations

from kartabl.models import Channel
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
