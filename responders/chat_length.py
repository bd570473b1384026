"""How many chat messages a reply takes on Telegram and Bale: 4096 UTF-16 units each, cut
where a reader expects a break. Pure text, no python-telegram-bot: the preview counts with it
(:mod:`responders.preview`) and the sender sends the parts it makes
(:mod:`responders.telegram`)."""

from __future__ import annotations

from typing import Final

MAX_UNITS: Final = 4096  # Telegram's limit, in UTF-16 code units


def _units(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


units = _units  # the length Telegram counts (captions too: responders.chat_files)


def split_text(text: str, limit: int = MAX_UNITS) -> list[str]:
    """``text`` in parts of at most ``limit`` UTF-16 units, cut at the last paragraph break,
    else line break, else space in the second half of a part; else (one long word) hard."""
    rest = text.strip()
    parts: list[str] = []
    while _units(rest) > limit:
        end, used = 0, 0
        while end < len(rest) and used + _units(rest[end]) <= limit:
            used += _units(rest[end])
            end += 1
        window = rest[:end]
        cut = end
        for sep in ("\n\n", "\n", " "):
            at = window.rfind(sep)
            if at > end // 2:  # not a tiny part followed by a full one
                cut = at
                break
        parts.append(rest[:cut].rstrip())
        rest = rest[cut:].lstrip()
    if rest:
        parts.append(rest)
    return parts
