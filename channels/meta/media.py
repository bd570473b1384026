"""The files of Meta messages: fetched once the webhook is verified, written to the
attachment store as mail attachments are (content-addressed, under generated names:
:func:`channels.email.attachments.store_payloads`), before the message is committed, so a
committed message never points at a file not yet written.

A file over ``attachment_max_bytes`` is listed with its type and no bytes (as an oversized
mail attachment); one that cannot be fetched (Meta's CDN down, an expired URL) is listed
the same way, with the reason in the message's ``meta["media_errors"]``: the message is
stored either way, never lost for its file.
"""

from __future__ import annotations

import hashlib
import logging
import mimetypes
from dataclasses import replace
from pathlib import Path

import httpx

from channels.email.attachments import display_filename, safe_content_type, store_payloads
from channels.meta.graph import MediaError, download, whatsapp_media
from channels.meta.payload import Incoming, MediaRef
from config.meta import MetaConfig
from kartabl.messages import Attachment, InboundMessage

log = logging.getLogger(__name__)


def with_media(incoming: Incoming, http: httpx.Client, config: MetaConfig, directory: Path,
               max_bytes: int) -> InboundMessage:
    """``incoming``'s message with its files fetched, stored, and listed."""
    msg = incoming.message
    if not incoming.media:
        return msg
    attachments, payloads, errors = [], {}, []
    for n, ref in enumerate(incoming.media, 1):
        try:
            data, ctype = _fetch(ref, http, config, max_bytes)
        except MediaError as exc:
            log.warning("%s message %s: file %d not fetched: %s", msg.channel.value,
                        msg.external_id, n, exc)
            errors.append(str(exc))
            data, ctype = None, ref.content_type
        name = ref.filename or display_filename(
            f"{ref.kind}-{n}{mimetypes.guess_extension(ctype) or ''}", ctype)
        key = hashlib.sha256(data).hexdigest() if data is not None else None
        if data is not None and key is not None:
            payloads[key] = data
        attachments.append(Attachment(filename=name, content_type=ctype,
                                      size=len(data) if data is not None else 0,
                                      storage_key=key))
    store_payloads(payloads, directory)
    meta = {**msg.meta, "media_errors": errors} if errors else msg.meta
    return replace(msg, attachments=tuple(attachments), meta=meta)


def _fetch(ref: MediaRef, http: httpx.Client, config: MetaConfig, max_bytes: int
           ) -> tuple[bytes | None, str]:
    ctype = ref.content_type
    if ref.media_id is not None:  # WhatsApp: look the id up, then fetch with the token
        info = whatsapp_media(http, ref.media_id, config, ref.token or "")
        size = info.get("file_size")
        if isinstance(size, int) and size > max_bytes:
            return None, ctype
        if isinstance(info.get("mime_type"), str):
            ctype = safe_content_type(info["mime_type"].split(";")[0])
        return download(http, info["url"], config, max_bytes, token=ref.token), ctype
    if ref.url is None:
        raise MediaError("a file without a URL")
    return download(http, ref.url, config, max_bytes), ctype
