"""Cutting quoted history off a plain-text reply, so a message holds the new text only.

The libraries that do this (email-reply-parser, mail-parser-reply, talon) know no Persian
attribution lines, so the rules are ours. A reply is cut at the first of:

* an attribution line: English ``On … wrote:``, Persian ``… نوشت:`` (Gmail's Persian UI
  writes ``در تاریخ … نوشت:``, wrapped in bidi embedding marks and often over two lines),
  Arabic ``في … كتب …:``;
* an Outlook header block: ``-----Original Message-----``, or ``From:`` followed within a
  few lines by ``Sent:``/``Date:`` (and their Persian and Arabic forms), together with the
  ``_____`` rule Outlook puts above it;
* a trailing block of ``>`` lines (quoted history without an attribution).

Inline answers between ``>`` lines are kept: only a *trailing* quote is history. When the
cut leaves nothing (the customer wrote below the quote), the attribution and the ``>``
lines are removed instead and the rest is kept.

Every pattern is anchored and applied to one bounded line at a time, so no input makes
them slow (Znuny's ReDoS was a regex over a whole Word HTML body).
"""

from __future__ import annotations

import re

from channels.email.charsets import BIDI_CONTROLS

_MAX_LINE = 500  # longer lines are never attribution lines

_EN_START = re.compile(r"^On\s", re.I)
_EN_END = re.compile(r"\bwrote\s*:$", re.I)
_FA_END = re.compile(r"نوشت(?:ه(?:\s*است)?)?\s*:$")
_FA_START = re.compile(r"^در(?:\s|\u200c)")
_AR_LINE = re.compile(r"كتب[^:]*:$")
_AR_START = re.compile(r"^(?:في|بتاريخ)\s")

_ORIGINAL = re.compile(
    r"^-{2,}\s*(?:original message|پیام اصلی|الرسالة الأصلية|ursprüngliche nachricht)\s*-{2,}$",
    re.I,
)
_FROM = re.compile(r"^\*?(?:from|از|فرستنده|من)\s*:\*?\s*\S", re.I)
_SENT = re.compile(
    r"^\*?(?:sent|date|ارسال شده|ارسال‌شده|تاریخ|التاريخ|أرسل|تم الإرسال)\s*:", re.I
)
_RULE = re.compile(r"^_{10,}$")


def _plain(line: str) -> str:
    """The line as matched: bidi marks and surrounding space removed."""
    return BIDI_CONTROLS.sub("", line).strip()


def _quoted(line: str) -> bool:
    return line.lstrip().startswith(">")


def _next_nonblank(lines: list[str], i: int) -> str:
    for line in lines[i + 1 : i + 4]:
        if line.strip():
            return line
    return ""


_ATTRIBUTIONS = (  # (end of the attribution, its first words, needs more evidence)
    (_EN_END, _EN_START, False),
    (_FA_END, _FA_START, True),
    (_AR_LINE, _AR_START, True),
)


def _attribution_start(lines: list[str], i: int) -> int | None:
    """If line ``i`` ends an attribution, the index of the line it starts on."""
    line = _plain(lines[i])
    if not line or len(line) > _MAX_LINE:
        return None
    prev = _plain(lines[i - 1]) if i > 0 and not _quoted(lines[i - 1]) else ""
    prev = prev if len(prev) <= _MAX_LINE else ""
    for end, start, needs_evidence in _ATTRIBUTIONS:
        if not end.search(line):
            continue
        if start.match(line):
            return i
        if prev and start.match(prev):  # wrapped over two lines
            return i - 1
        # "… نوشت:" alone is something a customer may write; an address or the quote
        # that follows makes it an attribution.
        if needs_evidence and ("@" in line or _quoted(_next_nonblank(lines, i))):
            return i - 1 if prev and "@" in prev else i
        return None
    return None


def _outlook_start(lines: list[str], i: int) -> int | None:
    line = _plain(lines[i])
    if len(line) > _MAX_LINE:
        return None
    if _ORIGINAL.match(line):
        return i
    if _FROM.match(line) and any(_SENT.match(_plain(x)) for x in lines[i + 1 : i + 5]):
        j = i - 1
        while j >= 0 and not lines[j].strip():
            j -= 1
        return j if j >= 0 and _RULE.match(_plain(lines[j])) else i
    return None


def _find_cut(lines: list[str]) -> tuple[int, bool] | None:
    """``(index, is_attribution)`` of the first line of quoted history."""
    for i in range(len(lines)):
        if _quoted(lines[i]):
            continue
        start = _attribution_start(lines, i)
        if start is not None:
            return start, True
        start = _outlook_start(lines, i)
        if start is not None:
            return start, False
    # A trailing run of > lines (blank lines allowed) with text above it.
    end = len(lines)
    while end > 0 and not lines[end - 1].strip():
        end -= 1
    start = end
    while start > 0 and (_quoted(lines[start - 1]) or not lines[start - 1].strip()):
        start -= 1
    if start < end and any(line.strip() for line in lines[:start]):
        return start, False
    return None


def cut_quotes(text: str) -> str:
    """The new text of ``text``: quoted history removed, the rest exactly as written."""
    lines = text.split("\n")
    found = _find_cut(lines)
    if found is None:
        return text.strip("\n").rstrip()
    index, attribution = found
    new = "\n".join(lines[:index]).strip("\n").rstrip()
    if new.strip() or not attribution:
        return new
    # Nothing above the attribution: the customer answered below the quote.
    below = [line for line in lines[index:] if not _quoted(line)]
    rest = below[1:]
    if rest and _attribution_start(lines, index + 1) == index:  # two-line attribution
        rest = rest[1:]
    return "\n".join(rest).strip("\n").rstrip()
