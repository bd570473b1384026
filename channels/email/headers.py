"""Reading header values from untrusted mail without ever raising.

:mod:`email`'s ``policy.default`` parses headers lazily, when they are read, and a crafted
header can make that parse raise. Every read here goes through the raw value, so one bad
header costs its own value, never the mail.

The header registry is also slow, and superlinear on long address lists (a 0.8 MB To: of
encoded-word names took 41 s). So the registry never sees more than
:data:`MAX_HEADER_VALUE` characters of a value (:data:`POLICY` cuts the values the stdlib
reads for itself: Content-Type, Content-Disposition), nor more than :data:`REGISTRY_BUDGET`
characters per mail through :class:`HeaderReader`. Beyond that, address headers fall back
to a linear regex over the whole value (the ``<addr>`` forms, else bare addresses) and text
headers to their raw, unfolded text. The header block as a whole is capped by the parser.
"""

from __future__ import annotations

import re
from email.header import decode_header, make_header
from email.message import Message
from email.policy import EmailPolicy
from typing import Any

from channels.email.charsets import clean_text, fix_surrogates

MAX_HEADER_VALUE = 16_384
# MIME structure headers are parsed again on every stdlib call (get_param, get_filename)
# at ~20 us a character; real ones are well under 1 KB, RFC 2231 file names included.
MAX_MIME_HEADER_VALUE = 4_096
REGISTRY_BUDGET = 65_536  # characters per mail given to the registry by HeaderReader

# An RFC 5322 msg-id as people actually write them: <...> without spaces or brackets.
_MSG_ID = re.compile(r"<[^<>\s]{1,900}>")
_WS = re.compile(r"\s+")
_ANGLE_ADDR = re.compile(r"<([^<>\s]{1,320})>")
_BARE_ADDR = re.compile(r"[^\s<>,;:\"()\[\]@]{1,64}@[^\s<>,;:\"()\[\]@]{1,255}")


class _CappedPolicy(EmailPolicy):
    """``policy.default`` whose lazy header parse sees a bounded value."""

    def header_fetch_parse(self, name: str, value: str) -> Any:
        if isinstance(value, str):
            limit = (MAX_MIME_HEADER_VALUE if name.lower().startswith("content-")
                     else MAX_HEADER_VALUE)
            value = value[:limit]
        return super().header_fetch_parse(name, value)


POLICY = _CappedPolicy()


class HeaderReader:
    """Decoded header values of one message. Remembers whether a value had to be decoded
    by guesswork (``fallback``), which ends up as ``meta["charset_fallback"]``."""

    def __init__(self, msg: Message) -> None:
        self.msg = msg
        self.fallback = False
        self._budget = REGISTRY_BUDGET
        self._raw: dict[str, list[str]] = {}
        self._cache: dict[str, list[str]] = {}
        for name, value in msg.raw_items():
            self._raw.setdefault(name.lower(), []).append(value)

    def has(self, name: str) -> bool:
        return name.lower() in self._raw

    def raw(self, name: str) -> list[str]:
        return self._raw.get(name.lower(), [])

    def all(self, name: str) -> list[str]:
        key = name.lower()
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        out = []
        for raw in self.raw(name):
            # Unknown charsets in encoded-words come back as surrogates as well.
            out.append(clean_text(self._unescape(self._decode(name, self._unescape(raw)))))
        self._cache[key] = out
        return out

    def first(self, name: str) -> str:
        values = self.all(name)
        return values[0] if values else ""

    def _unescape(self, raw: str) -> str:
        # Raw 8-bit bytes (no RFC 2047) reach us as lone surrogates, which the header
        # parser would turn into U+FFFD: decode them first.
        text, fell_back = fix_surrogates(raw)
        self.fallback |= fell_back
        return text

    def _registry_allows(self, raw: str) -> bool:
        """Whether ``raw`` may go through the (slow) header registry; counts it if so."""
        if len(raw) > MAX_HEADER_VALUE or len(raw) > self._budget:
            return False
        self._budget -= len(raw)
        return True

    def _decode(self, name: str, raw: str) -> str:
        raw = raw[:MAX_HEADER_VALUE]  # a display value: its start is enough
        if raw.isascii() and "=?" not in raw:
            # Nothing to decode: unfolding is all the header registry would do to the text,
            # at a fraction of its cost (it dominates parse time otherwise).
            return "".join(raw.splitlines()).strip()
        if not self._registry_allows(raw):
            return "".join(raw.splitlines()).strip()  # over budget: the raw text
        try:
            return str(self.msg.policy.header_fetch_parse(name, raw))
        except Exception:  # any parser failure: fall back to plain RFC 2047
            try:
                return str(make_header(decode_header(raw)))
            except Exception:  # not even RFC 2047: the raw text
                return raw

    def addresses(self, name: str) -> list[tuple[str, str]]:
        """``(display name, addr-spec)`` pairs of an address header, in order. The addresses
        are not validated here: callers pass them through ``normalize_email``."""
        out: list[tuple[str, str]] = []
        for raw in map(self._unescape, self.raw(name)):
            if not self._registry_allows(raw):
                pairs = _scan_addresses(raw)  # every address of the value, in linear time
            else:
                try:
                    header: Any = self.msg.policy.header_fetch_parse(name, raw)
                    pairs = [(a.display_name, a.addr_spec) for a in header.addresses]
                except Exception:  # unparseable: fall back to the bare <...>
                    pairs = [("", m) for m in _ANGLE_ADDR.findall(raw)]
                    if not pairs and "@" in raw and len(raw) < 320:
                        pairs = [("", raw.strip())]
            for display, addr in pairs:
                display, f1 = fix_surrogates(display or "")
                addr, f2 = fix_surrogates(addr or "")
                self.fallback |= f1 or f2
                out.append((clean_text(display), addr))
        return out


def _scan_addresses(raw: str) -> list[tuple[str, str]]:
    """The ``<addr>`` of an over-long address header or, when it has none, its bare
    addresses; no display names (the registry would be needed to tell them apart)."""
    found = _ANGLE_ADDR.findall(raw) or _BARE_ADDR.findall(raw)
    return [("", a) for a in found]


def one_line(text: str, limit: int) -> str:
    """A header value for display: CR/LF and runs of whitespace collapsed to one space
    (so it can never start a new header line when quoted in a reply), capped."""
    return _WS.sub(" ", text).strip()[:limit]


def msg_ids(text: str, limit: int = 1000) -> list[str]:
    """The ``<...>`` message ids in ``text`` (In-Reply-To, References), in order."""
    return [m.group() for _, m in zip(range(limit), _MSG_ID.finditer(text), strict=False)]


def message_id(text: str) -> str | None:
    """The mail's own Message-ID as written (with its brackets), folding whitespace
    removed; None when absent or blank."""
    value = _WS.sub("", text)
    return value or None
