"""Attachments: metadata for display, bytes stored under generated names only.

The customer's filename is display text and nothing else (php-imap GHSA-47p7-xfcc-4pv9 used
it as a path; osTicket CVE-2020-24917 rendered it as HTML). :func:`display_filename` keeps
the last path component, without control or bidi-override characters (``"fdp.exe"`` dressed
as ``"exe.pdf"``) and without the characters Windows forbids, capped in length.
:func:`store_payloads` writes bytes content-addressed: ``<dir>/<key[:2]>/<key>`` where the
key is the SHA-256 of the bytes, so the name is ours and a duplicate is free.

An image may be shown inline only when its bytes are PNG, JPEG, GIF or WebP
(:func:`inline_raster`): never SVG, which is a document with scripts (Chatwoot
CVE-2021-3741), whatever type the part claims. SVG parts stay downloadable with their
declared content type.
"""

from __future__ import annotations

import hashlib
import mimetypes
import os
import re
import tempfile
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from email.message import Message
from pathlib import Path

from channels.email.charsets import BIDI_CONTROLS, fix_surrogates
from kartabl.messages import Attachment

MAX_FILENAME = 150
_KEY = re.compile(r"[0-9a-f]{64}")
_CONTENT_TYPE = re.compile(r"[a-z0-9][a-z0-9!#$&^_.+-]{0,126}/[a-z0-9][a-z0-9!#$&^_.+-]{0,126}")
_FORBIDDEN = re.compile(r'[<>:"|?*]')
_RASTER_MAGIC = {
    "image/png": (b"\x89PNG\r\n\x1a\n",),
    "image/jpeg": (b"\xff\xd8\xff",),
    "image/gif": (b"GIF87a", b"GIF89a"),
    "image/webp": (b"RIFF",),
}


def display_filename(name: str | None, content_type: str) -> str:
    """A filename fit for display and for a download's Content-Disposition."""
    text = (name or "").replace("\\", "/").split("/")[-1]
    text = BIDI_CONTROLS.sub("", text)
    # Line breaks and tabs become spaces; other control characters (NUL, ESC) vanish.
    text = "".join(" " if c in "\r\n\t" or unicodedata.category(c) in ("Zl", "Zp") else c
                   for c in text if c in "\r\n\t" or unicodedata.category(c) != "Cc")
    text = _FORBIDDEN.sub("_", re.sub(r"\s+", " ", text)).strip(" .")
    if not text:
        ext = mimetypes.guess_extension(content_type) or ".bin"
        return f"attachment{ext}"
    if len(text) > MAX_FILENAME:
        _, dot, ext = text.rpartition(".")
        ext = ext if dot and 0 < len(ext) <= 10 else ""
        text = text[: MAX_FILENAME - len(ext) - 1].rstrip() + ("." + ext if ext else "")
    return text


def safe_content_type(value: str) -> str:
    value = value.strip().lower()
    return value if _CONTENT_TYPE.fullmatch(value) else "application/octet-stream"


def inline_raster(content_type: str, data: bytes) -> bool:
    """Whether the part may be shown as an inline image: declared raster, and its bytes
    agree (a WebP is RIFF....WEBP)."""
    magics = _RASTER_MAGIC.get(content_type)
    if not magics or not data.startswith(magics):
        return False
    return content_type != "image/webp" or data[8:12] == b"WEBP"


@dataclass(frozen=True, slots=True)
class Extracted:
    attachment: Attachment
    payload: bytes | None  # None when over the size limit (listed, not stored)


def _part_bytes(part: Message, content_type: str) -> bytes:
    if content_type.startswith("message/"):
        payload = part.get_payload()
        inner = payload[0] if isinstance(payload, list) and payload else None
        if isinstance(inner, Message):
            try:
                return inner.as_bytes()
            except Exception:  # a generator failure on a broken inner mail: keep its text
                return str(inner.get_payload()).encode("utf-8", "replace")
        return str(payload).encode("utf-8", "replace")
    data = part.get_payload(decode=True)
    return data if isinstance(data, bytes) else b""


def extract(part: Message, declared_type: str, params: Mapping[str, str],
            max_bytes: int) -> Extracted:
    """One part as an :class:`Attachment`; never raises (a part that cannot be read is
    listed as an empty download rather than lost silently). ``declared_type`` and
    ``params`` are the part's parsed Content-Type."""
    content_type = safe_content_type(declared_type)
    try:
        raw_name = part.get_filename() or params.get("name")
        name = fix_surrogates(raw_name)[0] if isinstance(raw_name, str) else None
    except Exception:  # an unparseable filename parameter is not worth the part
        name = None
    if not name and content_type in ("message/rfc822", "message/global"):
        name = "message.eml"
    try:
        data = _part_bytes(part, content_type)
    except Exception:  # undecodable transfer encoding: the part is listed, empty
        data = b""
    content_id: str | None = None
    try:
        raw_cid = part.get("Content-ID")
        if raw_cid:
            cid = re.sub(r"[\s<>]", "", fix_surrogates(str(raw_cid))[0])
            content_id = "".join(c for c in cid if c.isprintable())[:250] or None
    except Exception:  # a malformed Content-ID only costs the inline image
        content_id = None
    key = hashlib.sha256(data).hexdigest()
    stored = len(data) <= max_bytes
    attachment = Attachment(
        filename=display_filename(name, content_type),
        content_type=content_type,
        size=len(data),
        storage_key=key if stored else None,
        content_id=content_id,
    )
    return Extracted(attachment, data if stored else None)


def store_payloads(payloads: Mapping[str, bytes], directory: Path) -> None:
    """Write each payload to ``<directory>/<key[:2]>/<key>``, atomically (temp file, fsync,
    ``os.replace``); an existing file is left alone (same key, same bytes). Keys must be
    SHA-256 hex: anything else is refused, so a key can never be a path either."""
    for key, data in payloads.items():
        if not _KEY.fullmatch(key):
            raise ValueError(f"not a storage key: {key[:80]!r}")
        folder = directory / key[:2]
        target = folder / key
        if target.exists():
            continue
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
