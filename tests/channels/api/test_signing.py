"""The signature recipe of the contract, checked against a vector computed outside Python
(``openssl dgst -sha256 -hmac``), and the example client agreeing with the server's code."""

from __future__ import annotations

import pytest

from channels.api import signing
from examples import api_channel_client as client

SECRET = "test-secret-0123456789abcdef0123456789"
BODY = b'{"idempotency_key":"k-1","user":{"id":"u-1"},"text":"hi"}'
TS = 1764806400
# printf '%s' '1764806400.<BODY>' | openssl dgst -sha256 -hmac '<SECRET>'
VECTOR = "sha256=f25885b42e04be51fdfa475fd33c0a0e77cbb95e5cdd2bf908e79a1238a9c416"


def test_the_recipe_matches_openssl() -> None:
    assert signing.signature(SECRET, TS, BODY) == VECTOR
    assert client.sign(SECRET, BODY, now=TS)["X-Kartabl-Signature"] == VECTOR


def test_verify_takes_the_vector_within_five_minutes_only() -> None:
    assert signing.verify(SECRET, str(TS), VECTOR, BODY, now=TS + 300) == TS
    assert signing.verify(SECRET, str(TS), VECTOR, BODY, now=TS - 300) == TS
    with pytest.raises(signing.SignatureRefused, match="replay"):
        signing.verify(SECRET, str(TS), VECTOR, BODY, now=TS + 301)


@pytest.mark.parametrize(("ts", "sig", "reason"), [
    (None, VECTOR, "missing X-Kartabl-Timestamp"),
    (str(TS), None, "missing X-Kartabl-Signature"),
    ("17648064OO", VECTOR, "must be Unix seconds"),
    ("۱۷۶۴۸۰۶۴۰۰", VECTOR, "must be Unix seconds"),  # Persian digits are digits to Python
    (str(TS), VECTOR.upper(), "wrong signature"),
    (str(TS), VECTOR[:-1], "wrong signature"),
    (str(TS + 1), VECTOR, "wrong signature"),
])
def test_what_is_refused(ts: str | None, sig: str | None, reason: str) -> None:
    with pytest.raises(signing.SignatureRefused, match=reason):
        signing.verify(SECRET, ts, sig, BODY, now=TS)


def test_the_example_client_refuses_what_the_server_refuses() -> None:
    headers = signing.headers(SECRET, BODY, now=TS)
    assert client.verify(SECRET, headers, BODY, now=TS + 10) == {
        "idempotency_key": "k-1", "user": {"id": "u-1"}, "text": "hi"}
    for bad, now in ((BODY + b" ", TS), (BODY, TS + 301)):
        with pytest.raises(client.Refused):
            client.verify(SECRET, headers, bad, now=now)
