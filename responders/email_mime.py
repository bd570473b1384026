"""Build the MIME message of one email reply, safe against header injection.

Every header value is checked or neutralised here, whatever earlier layers did:

- free text (the subject, display names) is folded to one line: CR, LF and every other
  line break or control character become a space (the reply still goes out, the injected
  "header" becomes harmless subject text; FreeScout CVE-2025-48388, CPython CVE-2024-6923);
- the recipient must be exactly one plain address (dot-atom local part, a hostname or an
  IDNA domain); anything else (a list, a comment, a quoted or bracketed form, CR/LF) is a
  :class:`PermanentDeliveryError`, never a guess (CVE-2023-27043);
- message ids (ours and the customer's) must be one ``<left@right>`` of visible ASCII: our own
  Message-ID must be, references that are not are dropped (they come from the customer's
  mail, and a missing reference only weakens threading).

In-Reply-To and References are written as raw message ids, folded between ids: the email
package would otherwise RFC 2047-encode a long one, and no mail client would recognise it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from email import policy
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Any, Final

import idna

from kartabl.errors import PermanentDeliveryError
from kartabl.messages import OutboundAttachment, OutboundMessage

# policy.SMTP: policy.default with CRLF line ends, as the wire wants them.
SMTP_POLICY: Final = policy.SMTP
MAX_SUBJECT_CHARS: Final = 900
MAX_NAME_CHARS: Final = 200
MAX_ID_CHARS: Final = 250
MAX_REFERENCES: Final = 20

_CONTROL = re.compile(r"[\x00-\x1f\x7f\x85\u2028\u2029]")
_LOCAL = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*$")
_HOST = re.compile(r"^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                   r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$")
_MSG_ID = re.compile(r"^[\x21-\x3b\x3d\x3f-\x7e]+@[\x21-\x3b\x3d\x3f-\x7e]+$")  # no < > or space


def one_line(value: str, limit: int) -> str:
    """Free text for a header: one line, no control characters, at most ``limit`` chars.
    ZWNJ (U+200C) is not whitespace and survives, as Persian needs it."""
    return " ".join(_CONTROL.sub(" ", value).split())[:limit]


def plain_address(value: str, what: str = "recipient") -> Address:
    """Exactly one plain address, its domain IDNA-encoded, or PermanentDeliveryError."""
    text = value.strip()
    local, at, domain = text.rpartition("@")
    if not at or not _LOCAL.match(local) or _CONTROL.search(value):
        raise PermanentDeliveryError(f"the {what} is not a single valid address: {text[:100]!r}")
    try:
        ascii_domain = idna.encode(domain, uts46=True).decode("ascii")
    except (idna.IDNAError, UnicodeError, ValueError) as exc:
        raise PermanentDeliveryError(
            f"the {what}'s domain is not valid: {domain[:100]!r}") from exc
    if not _HOST.match(ascii_domain) or len(local) > 64:
        raise PermanentDeliveryError(f"the {what} is not a single valid address: {text[:100]!r}")
    try:
        return Address(username=local, domain=ascii_domain)
    except (ValueError, IndexError) as exc:  # the email package's own check, belt and braces
        raise PermanentDeliveryError(f"the {what} is not a valid address: {exc}") from exc


def message_id(value: str | None) -> str | None:
    """``<left@right>`` when ``value`` is one message id (with or without brackets), else
    None."""
    bare = (value or "").strip().removeprefix("<").removesuffix(">")
    if not bare or len(bare) > MAX_ID_CHARS or not _MSG_ID.match(bare):
        return None
    return f"<{bare}>"


class _MessageIds(str):
    """A header of raw message ids, one per line (the email policy folds a header object by
    calling its ``fold``, and stores it as is: see ``EmailPolicy.header_store_parse``)."""

    name: str
    ids: tuple[str, ...]

    def __new__(cls, name: str, ids: Iterable[str]) -> _MessageIds:
        checked = tuple(ids)
        if not checked or any(message_id(i) != i for i in checked):
            raise ValueError("message ids must be checked <left@right> values")
        self = super().__new__(cls, " ".join(checked))
        self.name, self.ids = name, checked
        return self

    def fold(self, *, policy: Any) -> str:
        sep = policy.linesep + " "
        return f"{self.name}: {sep.join(self.ids)}{policy.linesep}"


def build_email(msg: OutboundMessage, *, from_address: str, display_name: str = "",
                files: Sequence[tuple[OutboundAttachment, bytes]] = ()) -> EmailMessage:
    """The reply as a MIME message: text, plus HTML as an alternative when there is some;
    with ``files`` (the reply's attachments and their bytes), ``multipart/mixed``: the text
    first, then one ``attachment`` part per file, base64, its name in the
    Content-Disposition's ``filename`` (RFC 2231 ``filename*=utf-8''...`` when it is not
    ASCII, as a Persian name is; the email package writes it)."""
    key = message_id(msg.idempotency_key)
    if key is None:  # ours, fixed at approval: a bug or tampered data, never to be sent
        raise PermanentDeliveryError(
            f"reply {msg.reply_id}: its Message-ID is not valid: {msg.idempotency_key[:100]!r}")
    sender = plain_address(from_address, "sender address")
    em = EmailMessage(policy=SMTP_POLICY)
    em["From"] = Address(display_name=one_line(display_name, MAX_NAME_CHARS),
                         username=sender.username, domain=sender.domain)
    em["To"] = plain_address(msg.recipient)
    em["Subject"] = one_line(msg.subject, MAX_SUBJECT_CHARS)
    em["Date"] = format_datetime(datetime.now(UTC))
    em["Message-ID"] = key
    answered = message_id(msg.in_reply_to)
    if answered is not None:
        em["In-Reply-To"] = _MessageIds("In-Reply-To", [answered])
    refs = _references(msg.references, answered)
    if refs:
        em["References"] = _MessageIds("References", refs)
    em.set_content(msg.text, subtype="plain", charset="utf-8", cte=_cte(msg.text))
    if msg.html:
        em.add_alternative(msg.html, subtype="html", charset="utf-8", cte=_cte(msg.html))
    for att, data in files:
        maintype, _, subtype = att.content_type.partition("/")
        if not maintype or not subtype or maintype in ("multipart", "message"):
            maintype, subtype = "application", "octet-stream"  # never a container part
        em.add_attachment(data, maintype=maintype, subtype=subtype, cte="base64",
                          filename=one_line(att.filename, MAX_NAME_CHARS) or "attachment")
    return em


def _references(values: Iterable[str], answered: str | None) -> list[str]:
    out: list[str] = []
    for v in [*values, answered or ""]:
        checked = message_id(v)
        if checked is not None and checked not in out:
            out.append(checked)
    # The root and the newest ids matter to clients; keep the root and the last ones.
    if len(out) > MAX_REFERENCES:
        out = [out[0], *out[-(MAX_REFERENCES - 1):]]
    return out


def _cte(text: str) -> str | None:
    # Non-ASCII text (Persian) goes out as base64: 7-bit clean, so no server needs 8BITMIME
    # and none rewrites it; the email package's own choice (7bit / quoted-printable) for
    # ASCII text.
    return None if text.isascii() else "base64"
