"""Edges found in review (issue 16): a proxy's 4xx (no Bot API envelope) on ``getFile``
must cost the file, never the webhook's message (Rubika is not known to resend)."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import select

from channels.rubika.standin import RubikaStandin, text_update
from kartabl.models import Message
from tests.channels.rubika.test_webhook import client, post  # noqa: F401  (the fixture)


def test_a_proxys_4xx_on_getfile_lists_the_file_and_stores_the_message(
        client: TestClient, standin: RubikaStandin, db) -> None:  # noqa: F811
    fid = standin.add_file(b"%PDF-1.4 x", "invoice.pdf")
    standin.chats.add("b0c")
    standin.fail_next("getFile", "proxy_error", 403)
    update = text_update("b0c", "u0u", "the invoice", message_id="9",
                         file={"file_id": fid, "file_name": "invoice.pdf", "size": "10"})
    assert post(client, update) == 200
    with db() as s:
        msg = s.scalars(select(Message)).one()
    assert msg.text == "the invoice" and msg.attachments[0]["storage_key"] is None
