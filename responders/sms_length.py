"""How many SMS parts a text costs: the console shows it before approval (issue 5).

An SMS is GSM 7-bit when every character is in the GSM 03.38 alphabet (160 characters in
one part, 153 per part when concatenated; the extension characters ``^{}\\[~]|€`` take two),
and UCS-2 otherwise: one Persian letter is enough (70 in one part, 67 per part). UCS-2
counts UTF-16 code units, so an emoji outside the BMP takes two.
"""

from __future__ import annotations

from typing import NamedTuple

_GSM_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM_EXTENDED = frozenset("^{}\\[~]|€\f")


class SmsLength(NamedTuple):
    encoding: str  # "gsm7" or "ucs2"
    units: int  # septets (gsm7) or UTF-16 code units (ucs2)
    parts: int


def sms_length(text: str) -> SmsLength:
    if all(c in _GSM_BASIC or c in _GSM_EXTENDED for c in text):
        units = sum(2 if c in _GSM_EXTENDED else 1 for c in text)
        single, multi, encoding = 160, 153, "gsm7"
    else:
        units = len(text.encode("utf-16-le")) // 2
        single, multi, encoding = 70, 67, "ucs2"
    if units <= single:
        return SmsLength(encoding, units, 1 if units else 0)
    return SmsLength(encoding, units, -(-units // multi))


def sms_parts(text: str) -> int:
    """The number of SMS parts ``text`` is sent in (0 for an empty text)."""
    return sms_length(text).parts


def split_sms(text: str) -> list[str]:
    """``text`` as the network carries it: one part when it fits (160 / 70), else parts of
    153 septets (GSM 7-bit) or 67 UTF-16 units (UCS-2). A character is never cut in two: a
    GSM extension character (two septets) or an emoji (a surrogate pair) that would straddle
    a part boundary starts the next part, as phones and gateways do."""
    length = sms_length(text)
    if length.parts <= 1:
        return [text] if text else []
    per_part = 153 if length.encoding == "gsm7" else 67

    def cost(c: str) -> int:
        if length.encoding == "gsm7":
            return 2 if c in _GSM_EXTENDED else 1
        return len(c.encode("utf-16-le")) // 2

    parts: list[str] = []
    current: list[str] = []
    used = 0
    for c in text:
        if used + cost(c) > per_part:
            parts.append("".join(current))
            current, used = [], 0
        current.append(c)
        used += cost(c)
    if current:
        parts.append("".join(current))
    return parts
