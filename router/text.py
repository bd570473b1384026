"""Text normalisation for matching and search (never for what is stored or shown).

Persian text arrives in several encodings of the same words: Arabic ي/ى and ك from Arabic
keyboards and windows-1256 (which has no Persian ye), Persian or Arabic-Indic digits, Arabic
presentation forms from old systems, tatweel used for emphasis, and ZWNJ (U+200C, the
"half-space") typed as a ZWNJ, a space or nothing at all. Matching must see through all of
that, while the stored text keeps the customer's ZWNJ (stripping it changes how Persian reads).
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

ZWNJ = "\u200c"

_LETTERS = str.maketrans({
    "ي": "ی", "ى": "ی", "ك": "ک",
    **{chr(0x06F0 + i): str(i) for i in range(10)},  # Persian digits
    **{chr(0x0660 + i): str(i) for i in range(10)},  # Arabic-Indic digits
    "ـ": None,  # tatweel: pure stretching
    # Invisible characters other than ZWNJ carry no meaning for a reader but would let
    # "فا\u200bکتور" dodge a keyword rule.
    "\u200b": None, "\u200d": None, "\u200e": None, "\u200f": None, "\ufeff": None,
    "\u202a": None, "\u202b": None, "\u202c": None, "\u202d": None, "\u202e": None,
})
# Arabic short vowels and other harakat (U+064B..U+065F, U+0670) are optional in writing.
_HARAKAT = re.compile("[\u064b-\u065f\u0670]")
_SPACE = re.compile(r"\s+")


def normalize_text(s: str) -> str:
    """The comparable form of ``s``: NFKC (folds presentation forms and full-width ASCII),
    Arabic ي/ى→ی and ك→ک, Persian and Arabic-Indic digits to ASCII, no tatweel or harakat,
    case-folded, runs of whitespace collapsed to one space. ZWNJ is kept."""
    s = unicodedata.normalize("NFKC", s).translate(_LETTERS)
    s = _HARAKAT.sub("", s).casefold()
    # A ZWNJ next to a space is meaningless; dropping it keeps "a \u200c b" == "a b".
    s = _SPACE.sub(" ", s)
    s = re.sub(f" ?{ZWNJ}+ ?", lambda m: " " if " " in m.group() else ZWNJ, s)
    return s.strip()


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
