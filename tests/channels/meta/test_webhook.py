"""The Meta webhook: the verification GET, the signature over the raw body before any
parsing, every message of a POST stored once, text, images and documents in for both
products (the files fetched from the stand-in as Meta serves them), WhatsApp's statuses
on the replies."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from channels.meta.standin import (
    GraphStandin,
    instagram_event,
    signed,
    whatsapp_event,
    whatsapp_message,
    whatsapp_value,
)
from kartabl.models import Channel, Message
from tests.channels.meta.conftest import APP_SECRET, IG_ID, URL, VERIFY, WA_ID, count

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
PDF = b"%PDF-1.4\n" + b"x" * 300


def test_the_verification_get_echoes_the_challenge_as_plain_text(client: TestClient) -> None:
    r = client.get(URL, params={"hub.mode": "subscribe", "hub.verify_token": VERIFY,
                                "hub.challenge": "1158201444"})
    assert (r.status_code, r.text) == (200, "1158201444")
    assert r.headers["content-type"].startswith("text/plain")
    wrong = client.get(URL, params={"hub.mode": "subscribe", "hub.verify_token": VERIFY + "x",
                                    "hub.challenge": "1158201444"})
    assert wrong.status_code == 403 and "1158201444" not in wrong.text


@pytest.mark.parametrize("forge", ["wrong", "missing", "sha1", "tampered"])
def test_a_wrong_signature_is_403_and_stores_nothing(client: TestClient, db, forge: str,
                                                     standin: GraphStandin) -> None:
    payload = whatsapp_event(WA_ID, "989121234567", "wamid.FORGED1", "forged")
    body, headers = signed(payload, APP_SECRET, wrong=forge == "wrong")
    if forge == "missing":
        headers.pop("X-Hub-Signature-256")
    elif forge == "sha1":  # the old header's format, under the new name
        headers["X-Hub-Signature-256"] = "sha1=" + headers["X-Hub-Signature-256"][7:47]
    elif forge == "tampered":  # signed, then one byte changed: the body is what is signed
        body = body.replace(b"forged", b"Forged")
    r = client.post(URL, content=body, headers=headers)
    assert r.status_code == 403
    assert count(db) == 0


def test_an_unparseable_but_signed_body_is_400_and_a_forged_one_is_403(client, db) -> None:
    body = b'{"object": "instagram", "entry": [{"id": 1, "messaging": [{"message": 3}]'
    sig = "sha256=" + __import__("hmac").new(APP_SECRET.encode(), body, hashlib.sha256).hexdigest()
    assert client.post(URL, content=body, headers={"X-Hub-Signature-256": sig}
                       ).status_code == 400
    assert client.post(URL, content=body, headers={"X-Hub-Signature-256": "sha256=00"}
                       ).status_code == 403
    assert count(db) == 0


def test_a_resent_webhook_with_many_messages_is_stored_once(
        client: TestClient, standin: GraphStandin, db) -> None:
    # Given one POST holding two WhatsApp messages and, in a second entry, an Instagram one
    wa = whatsapp_value(WA_ID, contacts=[{"profile": {"name": "مریم"}, "wa_id": "989121234567"}],
                        messages=[whatsapp_message("wamid.A1", "989121234567", text="سلام"),
                                  whatsapp_message("wamid.A2", "989121234567", text="هستید؟")])
    # When Meta sends it three times (no 200 in time)
    for _ in range(3):
        r = standin.deliver(client.post, URL, wa, APP_SECRET)
        assert r.status_code == 200
    # Then both messages are stored, once each, the customer on their phone number
    assert count(db) == 2
    with db() as s:
        rows = list(s.scalars(select(Message).order_by(Message.id)))
    assert [(m.channel, m.external_id, m.sender, m.text) for m in rows] == [
        (Channel.WHATSAPP, "wamid.A1", "+989121234567", "سلام"),
        (Channel.WHATSAPP, "wamid.A2", "+989121234567", "هستید؟")]
    assert rows[0].sender_name == "مریم" and rows[0].recipient == WA_ID
    assert rows[0].meta["default_team"] == "support"
    assert r.json()["duplicates"] == 2 and r.json()["created"] == 0


def test_instagram_text_image_and_document_in(client, standin: GraphStandin, db,
                                              tmp_path: Path) -> None:
    image = standin.add_media(PNG, "image/png")
    doc = standin.add_media(PDF, "application/pdf")
    for n, (text, atts) in enumerate([("سلام، قیمت؟", []),
                                      (None, [("image", standin.cdn_url(image))]),
                                      (None, [("file", standin.cdn_url(doc)),
                                              ("share", "https://instagram.com/p/x")])]):
        event = instagram_event(IG_ID, "2000000000000042", f"ig-mid-{n}", text,
                                attachments=atts)
        assert standin.deliver(client.post, URL, event, APP_SECRET).status_code == 200
    with db() as s:
        rows = list(s.scalars(select(Message).order_by(Message.id)))
    assert [(m.channel, m.sender, m.recipient) for m in rows] == [
        (Channel.INSTAGRAM, "2000000000000042", IG_ID)] * 3
    assert rows[0].text == "سلام، قیمت؟" and rows[0].meta["human_agent"] is False
    [img] = rows[1].attachments
    assert img["content_type"] == "image/jpeg" and img["size"] == len(PNG)
    assert (tmp_path / "att" / img["storage_key"][:2] / img["storage_key"]).read_bytes() == PNG
    [pdf] = rows[2].attachments
    assert pdf["size"] == len(PDF) and rows[2].text == "[share]"
    assert (tmp_path / "att" / pdf["storage_key"][:2] / pdf["storage_key"]).read_bytes() == PDF


def test_whatsapp_image_and_document_are_fetched_by_media_id_with_the_token(
        client, standin: GraphStandin, db, tmp_path: Path) -> None:
    image = standin.add_media(PNG, "image/png")
    doc = standin.add_media(PDF, "application/pdf")
    big = standin.add_media(b"x" * 60_000, "application/pdf")  # over the test cap of 50 KB
    for wamid, media_id, kind, name in [("wamid.I", image, "image", ""),
                                        ("wamid.D", doc, "document", "فاکتور.pdf"),
                                        ("wamid.B", big, "document", "big.pdf")]:
        event = whatsapp_event(WA_ID, "989121234567", wamid, kind=kind, media_id=media_id,
                               mime_type="image/png" if kind == "image" else "application/pdf",
                               filename=name, caption="این" if kind == "image" else "")
        assert standin.deliver(client.post, URL, event, APP_SECRET).status_code == 200
    with db() as s:
        by_id = {m.external_id: m for m in s.scalars(select(Message))}
    [img] = by_id["wamid.I"].attachments
    assert by_id["wamid.I"].text == "این" and img["content_type"] == "image/png"
    assert (tmp_path / "att" / img["storage_key"][:2] / img["storage_key"]).read_bytes() == PNG
    [pdf] = by_id["wamid.D"].attachments
    assert pdf["filename"] == "فاکتور.pdf" and pdf["size"] == len(PDF)
    [over] = by_id["wamid.B"].attachments  # listed, its bytes not kept
    assert over["storage_key"] is None and over["filename"] == "big.pdf"


def test_a_file_that_cannot_be_fetched_still_stores_the_message(client, standin, db) -> None:
    event = whatsapp_event(WA_ID, "989121234567", "wamid.GONE", kind="image",
                           media_id="123456", mime_type="image/jpeg")  # unknown to Meta
    assert standin.deliver(client.post, URL, event, APP_SECRET).status_code == 200
    with db() as s:
        msg = s.scalars(select(Message)).one()
    assert msg.attachments[0]["storage_key"] is None and msg.meta["media_errors"]


def test_a_forged_event_with_a_file_fetches_nothing(client: TestClient, db,
                                                    standin: GraphStandin) -> None:
    media = standin.add_media(PNG, "image/png")
    event = whatsapp_event(WA_ID, "989121234567", "wamid.F", kind="image", media_id=media,
                           mime_type="image/png")
    assert standin.deliver(client.post, URL, event, APP_SECRET, wrong=True).status_code == 403
    assert standin.media_lookups == 0 and count(db) == 0
    assert standin.deliver(client.post, URL, event, APP_SECRET).status_code == 200
    assert standin.media_lookups == 1 and count(db) == 1


def test_one_unreadable_message_is_refused_alone_and_the_rest_is_stored(
        client: TestClient, standin: GraphStandin, db) -> None:
    # Given one POST with a good WhatsApp message and one whose sender is no phone number,
    # and an Instagram POST with a good event and one without its mid
    wa = whatsapp_value(WA_ID, messages=[whatsapp_message("wamid.B1", "not-a-number", text="x"),
                                         whatsapp_message("wamid.B2", "989121234567",
                                                          text="سلام")])
    r = standin.deliver(client.post, URL, wa, APP_SECRET)
    # Then the POST is answered 200 (Meta would resend a 400 until it dropped all of it),
    # the good message is stored and the answer names the refused one
    assert r.status_code == 200, r.text
    assert r.json()["created"] == 1
    refused = [x.split(":")[0] for x in r.json()["refused"]]
    assert refused == ["entry[0].changes[0].value.messages[0]"]
    ig = instagram_event(IG_ID, "7001", "mid.C1", text="hello")
    ig["entry"][0]["messaging"].insert(0, {"sender": {"id": "7002"}, "message": {"text": "x"}})
    r = standin.deliver(client.post, URL, ig, APP_SECRET)
    assert r.status_code == 200 and r.json()["created"] == 1
    assert r.json()["refused"][0].startswith("entry[0].messaging[0]")
    with db() as s:
        assert sorted(s.scalars(select(Message.external_id))) == ["mid.C1", "wamid.B2"]
