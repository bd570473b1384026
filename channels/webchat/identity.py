"""Who the visitor is: the anonymous visitor token, the site's signed identity, and the
pre-chat form's contact.

**The visitor token** is ``<visitor key>.<MAC>``: the key is random (``v`` + 24 URL-safe
characters), the MAC an HMAC-SHA256 under a key derived from the process's secret key
(``KARTABL_SECRET_KEY``), so a visitor cannot step into another visitor's chat by guessing
or editing a token. It travels as an HttpOnly cookie scoped to ``/widget`` (SameSite=None,
Secure when served over https) and, because browsers that block third-party cookies never
send that cookie from the shop's page, also as the ``X-Kartabl-Visitor`` header (and the
``visitor`` query parameter of the event stream, which ``EventSource`` cannot give
headers); the script keeps it in the shop origin's ``localStorage``.

**A signed identity** comes from a site that knows its signed-in user: ``identity`` (a
phone number or an email address, as the site has it) and ``identity_hmac``, the
lower-case hex HMAC-SHA256 of exactly that string under the widget's secret. It is checked
in constant time before anything else; a wrong one is refused (403) and nothing is stored.
Only then is it normalised (:mod:`router.identity`, as the SMS and email channels do) and
the visitor's messages are that customer's: their SMS, email and Telegram history.

**The pre-chat form's contact** (``contact``) is not verified: anyone can type anyone's
number. It is kept as a hint for staff and for the reply path (the offline continuation
by SMS or email, to come), never as an identity: the visitor stays an anonymous customer
of their own, so typing someone's number shows no one's history and moves no one's
conversations (threats.md, "customer merge as takeover"). Joining them is a person's
decision (``kartabl customer link``, audited), as for a phone number shared on Telegram.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from pydantic import SecretStr

from router.identity import normalize_email, normalize_phone

_PURPOSE = b"kartabl webchat visitor token v1"
KEY_PREFIX = "v"
MAC_HEX = 32


@dataclass(frozen=True, slots=True)
class Contact:
    kind: str  # phone | email
    address: str  # normalised


def new_visitor_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(18)


class VisitorTokens:
    """Signs and checks visitor tokens with a key derived from the process's secret."""

    def __init__(self, secret: SecretStr) -> None:
        self._key = hmac.new(secret.get_secret_value().encode(), _PURPOSE,
                             hashlib.sha256).digest()

    def __repr__(self) -> str:
        return "<VisitorTokens>"

    def _mac(self, key: str) -> str:
        return hmac.new(self._key, key.encode(), hashlib.sha256).hexdigest()[:MAC_HEX]

    def sign(self, key: str) -> str:
        return f"{key}.{self._mac(key)}"

    def key_of(self, token: str | None) -> str | None:
        """The visitor key a token carries, or None when it is not one of ours."""
        if not token or len(token) > 200:
            return None
        key, _, mac = token.rpartition(".")
        if not key.startswith(KEY_PREFIX) or not hmac.compare_digest(
                mac.encode(), self._mac(key).encode()):
            return None
        return key


def identity_mac(secret: str, identity: str) -> str:
    """What the site computes: hex HMAC-SHA256 of the identity under the widget's secret."""
    return hmac.new(secret.encode(), identity.encode(), hashlib.sha256).hexdigest()


def identity_ok(secret: str, identity: str, given_mac: str) -> bool:
    """Whether ``given_mac`` signs ``identity`` (constant time; case of the hex ignored)."""
    return hmac.compare_digest(identity_mac(secret, identity).encode(),
                               given_mac.strip().lower().encode())


def contact_of(text: str) -> Contact:
    """A phone number or an email address, normalised; :class:`ValueError` otherwise."""
    text = text.strip()
    if "@" in text:
        return Contact("email", normalize_email(text))
    return Contact("phone", normalize_phone(text))
