"""Unforgeable reply tokens: the Message-IDs of our email replies.

A reply's Message-ID is fixed at approval (:func:`kartabl.workflow.idempotency_key_for`)::

    <kartabl.{reply_id}.{nonce}.{mac}@{domain}>

- ``nonce``: 16 random hex characters, so two keys of one reply never collide;
- ``mac``: the first 20 hex characters (80 bits) of HMAC-SHA256 over ``"{reply_id}.{nonce}"``
  with a key derived from ``settings.secret_key``, handed over once at process start
  (:func:`configure`, called by ``boot.kinds.start``). The domain is not covered: relays may
  change its case, and the reply id is what the token vouches for.

Why: anyone who received one of our mails knows its Message-ID, and anyone else can guess
the shape. A reference in In-Reply-To or References is only trusted when it verifies
(:func:`verify`), and even then only picks among the sender's own conversations
(:mod:`router.threading`); a bounce only fails a reply whose Message-ID verifies
(:mod:`router.bounces`). Something that :func:`looks_like_ours` but does not verify is a
forgery, or a token signed with another secret: either way it is ignored and audited.

The key never appears in a repr, a log line or an error; the MAC itself is public (it travels
in every reply) and proves nothing without the key.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from typing import Final

from pydantic import SecretStr

PREFIX: Final = "kartabl."
NONCE_HEX: Final = 16
MAC_HEX: Final = 20
# Fixed purpose string: the secret key also signs sessions, so reply tokens get a key of
# their own derived from it (a MAC from one use can never be replayed as the other).
_PURPOSE: Final = b"kartabl reply token v1"
_DOMAIN = re.compile(r"^[a-z0-9](?:[a-z0-9.-]{0,251}[a-z0-9])?$")
_TOKEN = re.compile(
    rf"^kartabl\.([1-9][0-9]{{0,17}})\.([0-9a-f]{{{NONCE_HEX}}})\.([0-9a-f]{{{MAC_HEX}}})"
    r"@([A-Za-z0-9.-]{1,253})$"
)


class _Key:
    """The derived key, in a holder whose repr shows nothing: a debugger, a traceback's
    locals or a log of this module's globals never prints it."""

    __slots__ = ("_value",)

    def __init__(self, value: bytes) -> None:
        self._value = value

    def __repr__(self) -> str:
        return "<reply token key>"

    def get(self) -> bytes:
        return self._value


_key_holder: _Key | None = None


def configure(secret: SecretStr) -> None:
    """Derive the signing key from the process's secret (``settings.secret_key``). The process
    edge calls this once, before anything signs or verifies; the core never reads settings."""
    global _key_holder
    raw = secret.get_secret_value().encode()
    _key_holder = _Key(hmac.new(raw, _PURPOSE, hashlib.sha256).digest())


def _key() -> bytes:
    if _key_holder is None:
        # A process that forgot its edge would otherwise sign with nothing: refuse loudly.
        raise RuntimeError("reply tokens have no key: the process calls "
                           "kartabl.reply_tokens.configure(settings.secret_key) at its start")
    return _key_holder.get()


def _mac(reply_id: int, nonce: str) -> str:
    msg = f"{reply_id}.{nonce}".encode()
    return hmac.new(_key(), msg, hashlib.sha256).hexdigest()[:MAC_HEX]


def _bare(value: str) -> str:
    return value.strip().removeprefix("<").removesuffix(">").strip()


def make_message_id(reply_id: int, domain: str) -> str:
    """A new signed Message-ID for reply ``reply_id``, in ``domain`` (one of ours)."""
    if reply_id <= 0:
        raise ValueError("a reply token needs a stored reply (a positive id)")
    domain = domain.strip().lower()
    if not _DOMAIN.match(domain):  # it goes into a header: nothing but a hostname
        raise ValueError(f"not a domain for a Message-ID: {domain!r}")
    nonce = secrets.token_hex(NONCE_HEX // 2)
    return f"<{PREFIX}{reply_id}.{nonce}.{_mac(reply_id, nonce)}@{domain}>"


def looks_like_ours(value: str) -> bool:
    """Whether ``value`` claims to be one of our reply tokens (with or without <>).
    Case-insensitive on purpose: ``KARTABL.1...`` must not slip past verification as
    "someone else's id"."""
    return _bare(value).lower().startswith(PREFIX)


def verify(value: str) -> int | None:
    """The reply id of a well-formed token signed with our key, else None."""
    if len(value) > 600:
        return None
    match = _TOKEN.match(_bare(value))
    if match is None:
        return None
    reply_id, nonce, mac = int(match[1]), match[2], match[3]
    if not hmac.compare_digest(_mac(reply_id, nonce), mac):
        return None
    return reply_id


def same_token(a: str, b: str) -> bool:
    """Whether two Message-IDs are the same token (the domain compared without case, as
    relays may change it)."""
    la, _, da = _bare(a).rpartition("@")
    lb, _, db = _bare(b).rpartition("@")
    # Plain comparison: both values are public; compare_digest is for the MAC check.
    return bool(la) and la == lb and da.lower() == db.lower()
