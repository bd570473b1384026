"""The snippet of a search hit: a window of the original text around the first match, with
every match in it marked (``<mark>``). Built safely: the text is cut into plain pieces and
marked pieces, each escaped, and only the ``<mark>`` tags are ours.

Matches are found as the index found them: the original text is normalised a character at
a time (:func:`kartabl.search.search_form`), spaces and ZWNJ dropped, and each normalised
character remembers where it came from; a substring term is found in that squashed text
and mapped back, so "می خواهم" is marked whole when "میخواهم" was asked. English words are
marked by a crude stem (the database's stemmer is not at hand here): "refunds" marks
"refund" and "refunded".
"""

from __future__ import annotations

import re
from functools import lru_cache

from markupsafe import Markup, escape

from console.search_query import Term
from kartabl.search import search_form

WIDTH = 180
BEFORE = 50
MAX_SCAN = 20_000  # a huge mail is marked in its beginning only
_MARK = Markup("<mark>{}</mark>")
_WORD = re.compile(r"[A-Za-z]+")
_SUFFIXES = ("ies", "ing", "ed", "es", "s", "e", "ly")


@lru_cache(maxsize=4096)
def _char(c: str) -> str:
    return search_form(c).replace(" ", "")


def _stem(word: str) -> str:
    w = word.casefold()
    for suffix in _SUFFIXES:
        if len(w) - len(suffix) >= 3 and w.endswith(suffix):
            return w[: -len(suffix)] + ("y" if suffix == "ies" else "")
    return w


def _squashed(raw: str) -> tuple[str, list[int]]:
    out: list[str] = []
    where: list[int] = []
    for i, c in enumerate(raw):
        for n in _char(c):
            out.append(n)
            where.append(i)
    return "".join(out), where


def spans(raw: str, terms: list[Term]) -> list[tuple[int, int]]:
    """The [start, end) ranges of ``raw`` that match a term, sorted and merged."""
    text = raw[:MAX_SCAN]
    found: list[tuple[int, int]] = []
    squashed: str | None = None
    where: list[int] = []
    for term in terms:
        if not term.marks:
            continue
        if term.kind == "english":
            stems = {_stem(w) for w in term.value.split()}
            for m in _WORD.finditer(text):
                s = _stem(m[0])
                if any(s == st or (len(st) >= 4 and s.startswith(st)) for st in stems):
                    found.append((m.start(), m.end()))
            continue
        if squashed is None:
            squashed, where = _squashed(text)
        start = squashed.find(term.value)
        while start >= 0 and term.value:
            end = start + len(term.value) - 1
            found.append((where[start], where[end] + 1))
            start = squashed.find(term.value, start + 1)
    merged: list[tuple[int, int]] = []
    for a, b in sorted(found):
        if merged and a <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(b, merged[-1][1]))
        else:
            merged.append((a, b))
    return merged


def snippet(raw: str, terms: list[Term], width: int = WIDTH) -> Markup:
    """``raw`` around its first match (its beginning when none is there: a phone's
    customer matched, or the match is past :data:`MAX_SCAN`), matches marked."""
    text = " ".join(raw.split())  # one line: newlines and runs of spaces as one space
    marks = spans(text, terms)
    lo = max(0, marks[0][0] - BEFORE) if marks else 0
    if lo:
        space = text.find(" ", lo)  # start at a word
        lo = space + 1 if 0 <= space < marks[0][0] else lo
    hi = min(len(text), lo + width)
    if hi < len(text):
        space = text.rfind(" ", lo, hi)
        hi = space if space > (marks[0][1] if marks else lo) else hi
    parts: list[Markup] = [escape("…" if lo else "")]
    at = lo
    for a, b in marks:
        a, b = max(a, lo), min(b, hi)
        if a >= b:
            continue
        parts.append(escape(text[at:a]))
        parts.append(_MARK.format(text[a:b]))  # format escapes its argument
        at = b
    parts.append(escape(text[at:hi]))
    parts.append(escape("…" if hi < len(text) else ""))
    return Markup("").join(parts)
