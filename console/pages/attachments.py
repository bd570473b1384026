"""Attachment downloads: ``GET /messages/{message_id}/attachments/{key}``.

An attachment is the customer's file: it must never run in our origin. So
- it is served only from the message's own attachment list (the key must be listed there:
  a key alone, even a valid SHA-256 of some stored file, opens nothing), and only to a
  person who may see the message's conversation (unrouted messages: coordinators and
  admins); anything else is 404, as if it did not exist;
- it always downloads (``Content-Disposition: attachment``), except a raster image asked
  for inline (``?inline=1``, the ``<img>`` of a mail) whose bytes really are PNG, JPEG, GIF
  or WebP; never HTML or SVG inline, whatever type the sender claimed;
- the content type is the declared one only when harmless (an allow-list); otherwise
  ``application/octet-stream``. ``nosniff`` (set for every response) stops the browser
  guessing, and a ``sandbox`` CSP disarms the file if it is opened anyway.

:func:`inline_image_urls` turns the ``attachment:<key>`` image sources kept by the mail
sanitiser (:mod:`channels.email.html`) into URLs of this route.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import quote

from fastapi import APIRouter, Depends
from fastapi.responses import Response
from sqlalchemy.orm import Session

from channels.email.attachments import inline_raster
from console.deps import AppSettings, PathId, Principal, get_db, page_principal
from kartabl.errors import NotFound
from kartabl.models import Conversation, Message
from kartabl.workflow.access import REVIEWERS, can_access

router = APIRouter(include_in_schema=False)

_KEY = re.compile(r"^[0-9a-f]{64}$")
_INLINE_SRC = re.compile(r'src="attachment:([0-9a-f]{64})"')
# Types a browser handles without running anything of the sender's.
SAFE_TYPES = frozenset({
    "image/png", "image/jpeg", "image/gif", "image/webp", "application/pdf", "text/plain",
    "text/csv", "audio/mpeg", "audio/ogg", "audio/wav", "video/mp4", "application/zip",
    "application/msword", "application/vnd.ms-excel",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
})
SANDBOX_CSP = "default-src 'none'; sandbox"


def _visible_message(db: Session, p: Principal, message_id: int) -> Message:
    msg = db.get(Message, message_id)
    if msg is None:
        raise NotFound(f"message {message_id} does not exist")
    if msg.conversation_id is None:
        if p.person.role not in REVIEWERS or not p.person.active:
            raise NotFound(f"message {message_id} does not exist")
        return msg
    conv = db.get(Conversation, msg.conversation_id)
    if conv is None or not can_access(p.person, conv):
        raise NotFound(f"message {message_id} does not exist")
    return msg


def attachment_path(attachments_dir: Path | str, key: str) -> Path:
    return Path(attachments_dir) / key[:2] / key


def content_disposition(kind: str, filename: str) -> str:
    # RFC 6266: an ASCII fallback plus the UTF-8 name (Persian file names survive).
    ascii_name = filename.encode("ascii", "replace").decode().replace('"', "_").replace("?", "_")
    return f"{kind}; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename, safe='')}"


@router.get("/messages/{message_id}/attachments/{key}")
def download(
    message_id: PathId, key: str, settings: AppSettings, inline: bool = False,
    p: Principal = Depends(page_principal), db: Session = Depends(get_db),
) -> Response:
    msg = _visible_message(db, p, message_id)
    listed = next((a for a in msg.attachments if isinstance(a, dict)
                   and a.get("storage_key") == key), None)
    if not _KEY.fullmatch(key) or listed is None:
        raise NotFound("no such attachment on this message")
    path = attachment_path(settings.attachments_dir, key)
    if not path.is_file():
        raise NotFound("the attachment was not stored (over the size limit) or was removed")
    data = path.read_bytes()
    declared = str(listed.get("content_type") or "application/octet-stream")
    show_inline = inline and inline_raster(declared, data)
    media_type = declared if declared in SAFE_TYPES else "application/octet-stream"
    filename = str(listed.get("filename") or "attachment")
    return Response(data, media_type=media_type, headers={
        "Content-Disposition": content_disposition(
            "inline" if show_inline else "attachment", filename
        ),
        "Content-Security-Policy": SANDBOX_CSP,
        "Cache-Control": "private, max-age=3600",
    })


def inline_image_urls(safe_html: str, message_id: int) -> str:
    """Point the sanitiser's ``attachment:<key>`` image sources at this route. Only keys
    listed on the message are served, so a forged key just shows a broken image."""
    return _INLINE_SRC.sub(
        lambda m: f'src="/messages/{message_id}/attachments/{m.group(1)}?inline=1"', safe_html
    )
