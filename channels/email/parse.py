"""``parse(raw) -> InboundMessage``: one mail, as every other channel's message.

Pure: no I/O, no database. :func:`parse_mail` also returns the attachment bytes to store
(``payloads``, storage key -> bytes) for :func:`channels.email.attachments.store_payloads`.

Only :class:`UnparseableMail` ever leaves this module, and only when the mail gives no
message: over ``limits.mail_max_bytes``, a header block over :data:`MAX_HEADER_BYTES`,
not a mail at all, or no usable sender address. Anything else degrades: bad HTML keeps the
text (see :mod:`channels.email.html`); a MIME tree the stdlib still cannot parse falls back
to the headers alone (``meta["mime_error"]``, and ingest keeps the raw bytes), trees that
are too deep or too wide are cut (``meta["parts_truncated"]``), undecodable charsets fall
back (``meta["charset_fallback"]``).

The key (``external_id``) is ``"<Message-ID>#<hash16>"``, ``hash16`` being the first 16 hex
digits of ``meta["content_hash"]``: a SHA-256 over the body bytes (line endings unified)
and the decoded From, To, Cc, Date, Subject and Message-ID. So the same mail fetched twice,
or delivered again with other Received headers, is the same key; a Message-ID reused with
other content is another key (FreeScout #5591); no Message-ID is ``"no-message-id#…"``
(FreeScout #4740), and an overlong one is hashed so the key stays under 500 characters.

``received_at`` is when we received the mail (the caller's ``received_at``: the IMAP
INTERNALDATE; else now), never the sender's ``Date`` header, which is ``meta["sent_at"]``
(ISO 8601, UTC) when it can be read (:mod:`channels.dates`).

``meta`` always has ``message_id`` (as written, with its brackets, or None) and
``content_hash``; it has ``sent_at``, ``auto`` (the reason), ``bounced_message_ids``,
``bounce_reason``, ``from_own_address``, ``charset_fallback``, ``parts_truncated``,
``text_truncated``, ``html_truncated``, ``html_flattened`` (nesting beyond the cap
flattened to text, the HTML as sent kept as the attachment :data:`ORIGINAL_HTML_NAME`) and
``mime_error`` only when they apply.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import Message
from email.parser import BytesParser
from email.utils import parsedate_to_datetime
from typing import Any

from channels.dates import iso, received_now
from channels.email import html as html_body
from channels.email.attachments import extract, inline_raster
from channels.email.charsets import clean_text, decode_bytes
from channels.email.headers import POLICY, HeaderReader, message_id, msg_ids, one_line
from channels.email.html_depth import cap_depth
from channels.email.kinds import classify
from channels.email.mime import Walk, precap, walk
from channels.email.quotes import cut_quotes
from config.settings import Settings
from kartabl.errors import InputError
from kartabl.messages import Attachment, InboundMessage
from kartabl.models import Channel
from router.identity import normalize_email

log = logging.getLogger(__name__)

MAX_TEXT_CHARS = 500_000
ORIGINAL_HTML_NAME = "original-message.html"  # the HTML part as sent, when it was flattened
MAX_REFERENCES = 20
MAX_ID_CHARS = 400  # a longer Message-ID is hashed in the key
# Real header blocks are a few KB (long Received chains, DKIM: tens of KB); beyond this the
# mail is refused (quarantined with its bytes) rather than fed to the header parser.
MAX_HEADER_BYTES = 256 * 1024
_HASHED_HEADERS = ("from", "to", "cc", "date", "subject", "message-id")
_HEADER_END = re.compile(rb"\r?\n\r?\n")
_FORWARD = re.compile(r"^\s*(?:fwd?|fw|tr|wg|enc|ارسال|هدایت)\s*:", re.I)


class UnparseableMail(InputError):
    """The mail gives no message (no sender address, not a mail, over the size limit): it
    is kept aside (quarantined), never dropped."""


def _default(name: str) -> int:
    default = Settings.model_fields[name].default
    assert isinstance(default, int)
    return default


@dataclass(frozen=True)
class MailLimits:
    """The size limits the parser applies. Passed in, never read from the settings here, so
    the parser stays pure; the defaults are the :class:`~config.settings.Settings` model's,
    so ``parse(raw)`` alone behaves as a process with default settings."""

    mail_max_bytes: int = _default("mail_max_bytes")
    attachment_max_bytes: int = _default("attachment_max_bytes")

    @classmethod
    def from_settings(cls, settings: Settings) -> MailLimits:
        return cls(settings.mail_max_bytes, settings.attachment_max_bytes)


DEFAULT_LIMITS = MailLimits()


@dataclass(frozen=True)
class ParsedMail:
    message: InboundMessage
    payloads: dict[str, bytes] = field(default_factory=dict)


def parse(raw: bytes, *, our_addresses: Collection[str] = (),
          received_at: datetime | None = None,
          limits: MailLimits = DEFAULT_LIMITS) -> InboundMessage:
    """The :class:`InboundMessage` of one raw mail; see :func:`parse_mail`."""
    return parse_mail(raw, our_addresses=our_addresses, received_at=received_at,
                      limits=limits).message


def parse_mail(raw: bytes, *, our_addresses: Collection[str] = (),
               received_at: datetime | None = None,
               limits: MailLimits = DEFAULT_LIMITS) -> ParsedMail:
    """Parse one raw mail. ``our_addresses`` are the mailboxes' own addresses: they choose
    ``recipient`` and mark our own mail as automatic (we never answer ourselves).
    ``received_at`` is when we received it (the IMAP INTERNALDATE), by default now: the
    ``Date`` header is the sender's claim, kept as ``meta["sent_at"]`` only. ``limits``:
    the process's size limits (:meth:`MailLimits.from_settings`)."""
    raw = bytes(raw)
    limit = limits.mail_max_bytes
    if len(raw) > limit:
        raise UnparseableMail(f"the mail is {len(raw)} bytes, over the {limit}-byte limit")
    end = _HEADER_END.search(raw)
    header_bytes = end.start() if end else len(raw)
    if header_bytes > MAX_HEADER_BYTES:
        raise UnparseableMail(
            f"the mail's header block is {header_bytes} bytes, over {MAX_HEADER_BYTES}")
    ours = _our_addresses(our_addresses)
    try:
        return _parse(raw, ours, received_now(received_at), limits.attachment_max_bytes,
                      headers_only=False)
    except UnparseableMail:
        raise
    except Exception as exc:  # RecursionError and any parser bug: try the headers alone
        log.warning("mail body could not be parsed (%s); keeping the headers", type(exc).__name__)
        try:
            return _parse(raw, ours, received_now(received_at), limits.attachment_max_bytes,
                          headers_only=True, error=type(exc).__name__)
        except UnparseableMail:
            raise
        except Exception as exc2:
            raise UnparseableMail(f"the mail cannot be parsed ({type(exc2).__name__})") from exc2


def _our_addresses(addresses: Collection[str]) -> frozenset[str]:
    out = set()
    for address in addresses:
        try:
            out.add(_base(normalize_email(address)))
        except ValueError:
            continue
    return frozenset(out)


def _base(address: str) -> str:
    """``support+token@x`` -> ``support@x``: our replies may carry a token in the address."""
    local, _, domain = address.partition("@")
    return f"{local.split('+', 1)[0]}@{domain}"


def _valid(address: str) -> str | None:
    try:
        return normalize_email(address)
    except ValueError:
        return None


def _parse(raw: bytes, ours: frozenset[str], received_at: datetime, attachment_max_bytes: int,
           *, headers_only: bool, error: str | None = None) -> ParsedMail:
    meta: dict[str, Any] = {}
    if headers_only:
        source, truncated = raw, False
    else:
        source, truncated = precap(raw)
    msg = BytesParser(policy=POLICY).parsebytes(source, headersonly=headers_only)
    headers = HeaderReader(msg)
    if not any(True for _ in msg.raw_items()):
        raise UnparseableMail("not a mail: no header found")

    senders = headers.addresses("from") or headers.addresses("sender")
    sender, sender_name = None, ""
    for display, address in senders:
        sender = _valid(address)
        if sender is not None:
            sender_name = one_line(display, 200)
            break
    if sender is None:
        sender = next((s for _, a in headers.addresses("sender") if (s := _valid(a))), None)
    if sender is None:
        raise UnparseableMail("the mail has no usable sender address")

    mid = message_id(headers.first("message-id"))
    content_hash = _content_hash(raw, headers)
    key_id = mid if mid and len(mid) <= MAX_ID_CHARS else (
        f"sha256:{hashlib.sha256(mid.encode('utf-8', 'replace')).hexdigest()}" if mid
        else "no-message-id"
    )
    meta["message_id"] = mid[:998] if mid else None
    meta["content_hash"] = content_hash
    if (sent := _sent_at(headers.first("date"))) is not None:
        meta["sent_at"] = sent

    tree = Walk() if headers_only else walk(msg)
    if truncated or tree.truncated:
        meta["parts_truncated"] = True
    if error:
        meta["mime_error"] = error
    subject = one_line(headers.first("subject"), 1000)
    body = _body(tree, subject, attachment_max_bytes)
    if body.fallback or headers.fallback:
        meta["charset_fallback"] = True
    if body.text_truncated:
        meta["text_truncated"] = True
    if body.html_truncated:
        meta["html_truncated"] = True
    if body.html_flattened:
        meta["html_flattened"] = True

    own = _base(sender) in ours
    kind = classify(msg, headers, tree, sender=sender, text=body.full_text, own=own)
    meta.update(kind.meta)
    references = tuple(msg_ids(" ".join(headers.all("references")))[-MAX_REFERENCES:])
    in_reply_to = next(iter(msg_ids(headers.first("in-reply-to"), 1)), None)

    message = InboundMessage(
        channel=Channel.EMAIL,
        external_id=f"{key_id}#{content_hash[:16]}",
        sender=sender,
        sender_name=sender_name,
        subject=subject,
        text=body.text,
        html=body.html,
        attachments=tuple(body.attachments),
        in_reply_to=in_reply_to,
        references=references,
        kind=kind.kind,
        received_at=received_at,
        recipient=_recipient(headers, ours),
        meta=meta,
    )
    return ParsedMail(message, body.payloads)


def _content_hash(raw: bytes, headers: HeaderReader) -> str:
    match = _HEADER_END.search(raw)
    body = raw[match.end():] if match else b""
    digest = hashlib.sha256(body.replace(b"\r\n", b"\n"))
    for name in _HASHED_HEADERS:
        value = "\n".join(headers.all(name))
        digest.update(b"\0" + name.encode() + b"\0" + value.encode("utf-8", "surrogatepass"))
    return digest.hexdigest()


def _sent_at(value: str) -> str | None:
    """The ``Date`` header as ISO 8601 in UTC (a header without a zone is taken as UTC), or
    None when there is none or it cannot be read. Metadata only: see channels.dates."""
    try:
        when = parsedate_to_datetime(value) if value else None
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when is None:
        return None
    return iso(when.replace(tzinfo=UTC) if when.tzinfo is None else when)


def _recipient(headers: HeaderReader, ours: frozenset[str]) -> str:
    first_to = ""
    for name in ("to", "cc", "delivered-to"):
        pairs = (headers.addresses(name) if name != "delivered-to"
                 else [("", v.strip()) for v in headers.all(name)])
        for _, address in pairs:
            valid = _valid(address)
            if valid is None:
                continue
            if _base(valid) in ours:
                return valid
            if name == "to" and not first_to:
                first_to = valid
    return first_to


@dataclass
class _Body:
    text: str = ""
    full_text: str = ""  # before quote cutting: bounces quote the original's headers
    html: str | None = None
    attachments: list[Attachment] = field(default_factory=list)
    payloads: dict[str, bytes] = field(default_factory=dict)
    fallback: bool = False
    text_truncated: bool = False
    html_truncated: bool = False
    html_flattened: bool = False


def _decode_part(part: Message, tree: Walk, body: _Body) -> str:
    try:
        data = part.get_payload(decode=True)
        charset = tree.content_type(part)[1].get("charset")
    except Exception:  # a broken transfer encoding or parameter: this part reads as empty
        body.fallback = True
        return ""
    if not isinstance(data, bytes):
        return ""
    text, fell_back = decode_bytes(data, charset)
    body.fallback |= fell_back
    return clean_text(text.replace("\r\n", "\n").replace("\r", "\n"))


def _keep_original(html: str, body: _Body, max_bytes: int) -> None:
    """Nesting beyond the cap was flattened to text for display: the HTML as sent is kept
    as an attachment (``meta["html_flattened"]``), so nothing is lost."""
    body.html_flattened = True
    data = html.encode("utf-8", "surrogatepass")
    key = hashlib.sha256(data).hexdigest()
    stored = len(data) <= max_bytes
    body.attachments.append(Attachment(
        filename=ORIGINAL_HTML_NAME, content_type="text/html", size=len(data),
        storage_key=key if stored else None))
    if stored:
        body.payloads[key] = data


def _body(tree: Walk, subject: str, max_bytes: int) -> _Body:
    body = _Body()
    inline: dict[str, str] = {}
    for part in tree.files:
        extracted = extract(part, *tree.content_type(part), max_bytes)
        a = extracted.attachment
        body.attachments.append(a)
        if extracted.payload is not None and a.storage_key is not None:
            body.payloads[a.storage_key] = extracted.payload
            if a.content_id and inline_raster(a.content_type, extracted.payload):
                inline[a.content_id.lower()] = a.storage_key
    forwarded = bool(_FORWARD.match(subject))  # a forward's "quote" is its content
    text = "\n".join(t for t in (_decode_part(p, tree, body) for p in tree.texts) if t)
    html = "\n".join(h for h in (_decode_part(p, tree, body) for p in tree.htmls) if h)
    if len(text) > MAX_TEXT_CHARS:
        text, body.text_truncated = text[:MAX_TEXT_CHARS], True
    if html:
        sent = html
        if len(html) > html_body.MAX_HTML_CHARS:
            html, body.html_truncated = html[: html_body.MAX_HTML_CHARS], True
        html, flattened = cap_depth(html)  # once, before any HTML parser sees it
        if flattened:
            _keep_original(sent, body, max_bytes)
        if not forwarded:
            html = html_body.strip_quotes(html)
        if not text:
            text, cut = html_body.html_to_text(html)
            body.text_truncated |= cut or len(text) > MAX_TEXT_CHARS
            text = text[:MAX_TEXT_CHARS]
        body.html = html_body.sanitize(html, inline) or None
    body.full_text = text
    body.text = text if forwarded else cut_quotes(text)
    return body
