"""Text normalisation for matching and search (never for what is stored or shown).

Persian text arrives in several encodings of the same words: Arabic ي/ى and ك from Arabic
keyboards and windows-1256 (which has no Persian ye), Persian or Arabic-Indic digits, Arabic
presentation forms from old systems, tatweel used for emphasis, and ZWNJ (U+200C, the
"half-space") typed as a ZWNJ, a space or nothing at all. Matching must see through all of
that, while the stored text keeps the customer's ZWNJ (stripping it changes how Persian reads).

In the core so that search (:mod:`kartabl.search`, written by the workflow and the
responders as well as the router) shares it; :mod:`router.text` re-exports it.
"""

from __future__ import annotations

import re
import unicodedata

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
