"""Edges found in review (issue 16), on both databases."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import select

from kartabl.models import Message
from tests.channels.api.conftest import message, signed_post

URL = "/webhooks/api/shop"


def test_a_nul_character_is_no_server_error_and_a_resend_is_no_conflict(
        client: TestClient, db) -> None:
    # PostgreSQL refuses U+0000 in text: the system would get a 500 for ever on its resends
    body = message("k-nul", text="سلام\x00 hi")
    body["user"]["name"] = "Sa\x00ra"
    first = signed_post(client, URL, body)
    again = signed_post(client, URL, body)
    assert (first.status_code, again.status_code) == (200, 200), (first.text, again.text)
    assert again.json()["created"] is False
    with db() as s:
        row = s.scalars(select(Message)).one()
        assert "\x00" not in row.text and "\x00" not in row.sender_name
