"""A Rubika message's file, fetched before the message is stored: ``getFile`` (``file_id``
→ ``download_url``), then the bytes, read no further than the size cap
(``KARTABL_ATTACHMENT_MAX_BYTES``, as for mail), stored content-addressed
(:func:`channels.email.attachments.store_payloads`: the name is the SHA-256, never the
customer's file name) in the attachments directory. The attachment then has its
``storage_key`` and the console serves it like a mail's.

What cannot be had is listed, not lost: a file over the cap, or one Rubika refuses
(``getFile`` answers a status other than OK, the download link answers 4xx), becomes an
attachment with its name and size and no bytes (logged), and the message is stored.

An outage (no connection, a timeout, a 5xx) is another matter: the poller raises
:class:`~kartabl.inbound.SourceUnavailable`, so the page is neither stored nor
acknowledged and is fetched again after the backoff, file and all. The webhook cannot
wait like that (Rubika is not known to resend), so it passes ``outage_lists=True`` and the
file is listed without its bytes; ``meta["files"]`` keeps its ``file_id``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
from pathlib import Path

import httpx

from channels.email.attachments import store_payloads
from channels.rubika.api import NotProcessed, Refused, RubikaApi, ServerAnswered
from kartabl.inbound import SourceUnavailable
from kartabl.messages import Attachment, InboundMessage

log = logging.getLogger(__name__)


def fetch(api: RubikaApi, msg: InboundMessage, directory: Path, max_bytes: int, *,
          outage_lists: bool = False) -> InboundMessage:
    """``msg`` with the bytes of its files stored and their ``storage_key`` set."""
    files = msg.meta.get("files") or []
    if not files:
        return msg
    fetched: list[Attachment] = []
    for att, ref in zip(msg.attachments, files, strict=True):
        fetched.append(_one(api, msg, att, ref, directory, max_bytes, outage_lists))
    return dataclasses.replace(msg, attachments=tuple(fetched))


def _one(api: RubikaApi, msg: InboundMessage, att: Attachment, ref: dict[str, object],
         directory: Path, max_bytes: int, outage_lists: bool) -> Attachment:
    where = f"rubika {msg.external_id}: file {att.filename!r}"
    if isinstance(ref.get("size"), int) and int(ref["size"]) > max_bytes:  # type: ignore[call-overload]
        log.warning("%s is %s bytes, over the %d-byte cap: listed, not stored", where,
                    ref["size"], max_bytes)
        return att
    try:
        url = api.call("getFile", {"file_id": ref["file_id"]}).get("download_url")
        if not isinstance(url, str) or not url.startswith(("https://", "http://")):
            raise Refused("getFile", "NO_DOWNLOAD_URL")
        data = api.download(url, max_bytes)
    except Refused as exc:
        log.warning("%s refused (%s): listed, not stored", where, exc)
        return att
    except ServerAnswered as exc:
        if exc.http_status < 500:  # the link is gone or forbidden: it will not come back
            log.warning("%s: %s: listed, not stored", where, exc)
            return att
        return _outage(where, exc, att, outage_lists)
    except (httpx.HTTPError, NotProcessed) as exc:  # NotProcessed: a proxy said no, for now
        return _outage(where, exc, att, outage_lists)
    if data is None:
        log.warning("%s is over the %d-byte cap: listed, not stored", where, max_bytes)
        return att
    key = hashlib.sha256(data).hexdigest()
    store_payloads({key: data}, directory)
    return dataclasses.replace(att, size=len(data), storage_key=key)


def _outage(where: str, exc: Exception, att: Attachment, outage_lists: bool) -> Attachment:
    detail = f"{type(exc).__name__}: {exc}" if isinstance(exc, (ServerAnswered, NotProcessed)) \
        else type(exc).__name__
    if not outage_lists:
        raise SourceUnavailable(f"{where} could not be fetched ({detail})") from exc
    log.warning("%s could not be fetched (%s): listed, not stored", where, detail)
    return att
