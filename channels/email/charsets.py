"""Bytes to text for mail bodies and headers, without ever raising.

Mail declares its charset, and the declaration is often wrong: Persian mail from old
Outlook/Windows setups is windows-1256 labelled ``iso-8859-1`` or ``utf-8``, or carries no
label at all, and some mailers invent names (``x-unknown``). The rule here:

1. the declared charset, strictly, when Python knows it and the bytes fit it;
2. otherwise UTF-8, strictly (what most mislabelled modern mail really is);
3. otherwise windows-1256, but only when the result reads as Arabic-script text (the
   heuristic that keeps French "été" in latin-1 from being turned into Arabic);
4. otherwise the declared charset (or UTF-8) with ``replace``: some letters become U+FFFD,
   the mail still arrives.

Steps 2-4 report ``fallback=True`` (``meta["charset_fallback"]``). Nothing is normalised:
ZWNJ, Arabic ي/ك and the customer's spacing are kept as written (matching uses
:func:`router.text.normalize_text`).
"""

from __future__ import annotations

import codecs
import re
from email.charset import ALIASES

# Labels that decode any byte, so a strict decode "succeeds" even when the label lies.
_PERMISSIVE = {"iso8859-1", "cp1252", "iso8859-15", "ascii"}  # codecs.lookup() names
_ARABIC_SCRIPT = re.compile("[\u0600-\u06ff\u200c\ufb50-\ufdff\ufe70-\ufeff]")
_SURROGATE = re.compile("[\ud800-\udfff]")
# Bidi marks, embeddings, overrides and isolates (and Arabic's letter mark): invisible, they
# reorder what is shown. Quote matching ignores them; file names drop them.
BIDI_CONTROLS = re.compile("[\u200e\u200f\u202a-\u202e\u2066-\u2069\u061c]")


def codec_name(label: str | None) -> str | None:
    """Python's codec name for a MIME charset label, or None when it is unknown."""
    if not label:
        return None
    name = label.strip().strip('"').lower()
    name = ALIASES.get(name, name)
    try:
        return codecs.lookup(name).name
    except (LookupError, ValueError):  # ValueError: labels with NULs and other junk
        return None


def _reads_as_arabic_script(text: str) -> bool:
    letters = [c for c in text if ord(c) > 0x7F and c.isalpha()]
    if len(letters) < 2:
        return False
    arabic = sum(1 for c in letters if _ARABIC_SCRIPT.match(c))
    return arabic / len(letters) >= 0.8


def decode_bytes(data: bytes, declared: str | None) -> tuple[str, bool]:
    """``(text, fallback)`` for ``data`` labelled ``declared``; never raises."""
    codec = codec_name(declared) if declared else "ascii"
    if data.isascii():
        return data.decode("ascii"), False
    if codec is not None and codec not in _PERMISSIVE:
        try:
            return _strip_bom(data.decode(codec)), False
        except (UnicodeDecodeError, LookupError):
            pass
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    else:
        # Labelled latin-1/ascii (or unknown, or failing) but valid UTF-8: UTF-8 is what it
        # is, since a text in another charset is almost never valid UTF-8. Unlabelled UTF-8
        # is a guess that cannot go wrong, so only a label we overrode counts as fallback.
        return _strip_bom(text), declared is not None
    cp1256 = data.decode("cp1256", "replace")
    if _reads_as_arabic_script(cp1256):
        return cp1256, True
    if codec in _PERMISSIVE and codec != "ascii":
        return data.decode(codec, "replace"), False
    return data.decode(codec or "utf-8", "replace"), True


def _strip_bom(text: str) -> str:
    return text[1:] if text.startswith("\ufeff") else text


def fix_surrogates(value: str) -> tuple[str, bool]:
    """Headers with raw 8-bit bytes (no RFC 2047) or an unknown encoded-word charset come
    out of :mod:`email` with the bytes smuggled as lone surrogates. Turn them back into
    bytes and decode those as above. Returns ``(text, fallback)``."""
    if not _SURROGATE.search(value):
        return value, False
    try:
        data = value.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # surrogates outside the escape range: not bytes, junk
        return _SURROGATE.sub("\ufffd", value), True
    text, _ = decode_bytes(data, "utf-8")
    return _SURROGATE.sub("\ufffd", text), True


_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def clean_text(text: str) -> str:
    """Text safe to store: no NUL or other C0 controls except tab/newline/CR (PostgreSQL
    refuses NUL), no lone surrogates (not encodable as UTF-8)."""
    return _SURROGATE.sub("\ufffd", _CONTROL.sub("", text))
