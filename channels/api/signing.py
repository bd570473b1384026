"""The signature of the generic API channel, the same in both directions.

Like Stripe's webhooks: the sender puts the Unix time in ``X-Kartabl-Timestamp`` and
``sha256=<hex>`` in ``X-Kartabl-Signature``, the hex being HMAC-SHA256, keyed with the
channel's secret (UTF-8), of ``<timestamp>.<raw body>`` (the timestamp's ASCII digits, a
dot, then the body's bytes exactly as sent). The receiver recomputes it over the bytes it
got, compares in constant time (:func:`hmac.compare_digest`), and refuses a timestamp more
than :data:`TOLERANCE_S` away from its own clock, so a captured request cannot be replayed
later (within the window the idempotency key makes a replay harmless: one message).

Signing the timestamp with the body is what makes the replay window hold: an attacker who
changes the timestamp breaks the signature.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from typing import Final

TIMESTAMP_HEADER: Final = "X-Kartabl-Timestamp"
SIGNATURE_HEADER: Final = "X-Kartabl-Signature"
IDEMPOTENCY_HEADER: Final = "Idempotency-Key"
SCHEME: Final = "sha256="
TOLERANCE_S: Final = 300  # five minutes either way: clocks drift, replays must not


class SignatureRefused(ValueError):
    """The request's signature or timestamp is refused; ``str`` says why, never a secret."""


def signature(secret: str, timestamp: int | str, body: bytes) -> str:
    """``sha256=<hex>`` for ``body`` sent at ``timestamp``."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return SCHEME + mac.hexdigest()


def headers(secret: str, body: bytes, *, now: float | None = None) -> dict[str, str]:
    """The two headers that sign ``body``, now."""
    ts = int(time.time() if now is None else now)
    return {TIMESTAMP_HEADER: str(ts), SIGNATURE_HEADER: signature(secret, ts, body)}


def verify(secret: str, timestamp: str | None, given: str | None, body: bytes, *,
           now: float | None = None) -> int:
    """The request's timestamp, when ``given`` signs ``body`` at ``timestamp`` with
    ``secret`` and the timestamp is within :data:`TOLERANCE_S` of ``now``; else
    :class:`SignatureRefused`. The signature is checked before the clock, so a forger
    learns nothing about our time."""
    ts_text = (timestamp or "").strip()
    if not ts_text:
        raise SignatureRefused(f"missing {TIMESTAMP_HEADER}")
    if not given:
        raise SignatureRefused(f"missing {SIGNATURE_HEADER}")
    if not ts_text.isascii() or not ts_text.isdigit() or len(ts_text) > 12:
        raise SignatureRefused(f"{TIMESTAMP_HEADER} must be Unix seconds")
    expected = signature(secret, ts_text, body)
    if not hmac.compare_digest(given.strip().encode(), expected.encode()):
        raise SignatureRefused("wrong signature")
    skew = abs((time.time() if now is None else now) - int(ts_text))
    if skew > TOLERANCE_S:
        raise SignatureRefused(
            f"{TIMESTAMP_HEADER} is {skew:.0f} s away from our clock (at most {TOLERANCE_S}): "
            "a replay, or a wrong clock")
    return int(ts_text)
