"""Keyword matching for the routing rules, on text normalised by :func:`kartabl.text.normalize_text`
(which lives in the core so that search shares it; re-exported here)."""

from __future__ import annotations

import re
from functools import lru_cache

from kartabl.text import ZWNJ, normalize_text

__all__ = ["ZWNJ", "contains_keyword", "matches_any", "normalize_text"]


def _is_word_char(c: str) -> bool:
    return c.isascii() and c.isalnum()


@lru_cache(maxsize=1024)
def _keyword_pattern(raw_keyword: str) -> re.Pattern[str] | None:
    """A regex for ``raw_keyword`` (normalised here, once per keyword) under the ZWNJ rules.

    Persian keywords match as substrings: Persian glues affixes onto words (فاکتورم,
    فاکتورها, بپردازید), directly or with a ZWNJ, so word boundaries would miss the
    inflected forms customers actually write; a multi-letter Persian keyword is specific
    enough that the rare false positive only picks a team, which a person can change.
    ASCII words get word boundaries (so "buy" does not fire on "buyout"), with an optional
    plural "s"/"es" so "prices" still matches "price".
    """
    keyword = normalize_text(raw_keyword)
    if not keyword:
        return None
    parts: list[str] = []
    for c in keyword:
        if c == ZWNJ:
            parts.append(f"[ {ZWNJ}]?")  # written as a half-space, a space or nothing
        elif c == " ":
            parts.append(f"[ {ZWNJ}]")
        else:
            parts.append(re.escape(c))
    # Between any two letters the text may carry a ZWNJ the keyword does not have.
    body = f"{ZWNJ}?".join(parts)
    if _is_word_char(keyword[0]):
        body = r"(?<![a-z0-9])" + body
    if _is_word_char(keyword[-1]):
        body += r"(?:e?s)?(?![a-z0-9])"
    return re.compile(body)


def contains_keyword(text: str, keyword: str) -> bool:
    """Whether ``keyword`` occurs in ``text`` once both are normalised (see
    :func:`normalize_text`); a ZWNJ on either side also matches a space or nothing."""
    pattern = _keyword_pattern(keyword)
    return pattern is not None and pattern.search(normalize_text(text)) is not None


def matches_any(normalized_text: str, keywords: list[str]) -> bool:
    """:func:`contains_keyword` for text already passed through :func:`normalize_text`,
    so a rule set normalises the message once rather than once per keyword."""
    for kw in keywords:
        pattern = _keyword_pattern(kw)
        if pattern is not None and pattern.search(normalized_text):
            return True
    return False
