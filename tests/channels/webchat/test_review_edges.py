"""Edges found in review (issue 16): what an outside caller can make the endpoints do."""

from __future__ import annotations

from sqlalchemy import func, select

from channels.webchat.admin import parse_origins
from kartabl.models import Message, WebchatVisitor
from tests.channels.webchat.conftest import Chat


def _count(db, model) -> int:  # type: ignore[no-untyped-def]
    with db() as s:
        return int(s.scalar(select(func.count()).select_from(model)) or 0)


def test_a_foreign_origin_is_refused_before_the_body_is_read(chat: Chat, db) -> None:
    # The README: "a POST from any other origin, or without an Origin, is 403 before
    # anything is read". A body that is not JSON, or over the cap, must not change that.
    for what in ("session", "messages"):
        for headers in ({"Origin": "https://evil.example"}, {}):
            r = chat.client.post(chat.url(what), content=b"{not json",
                                 headers={**headers, "Content-Type": "application/json"})
            assert r.status_code == 403, (what, headers, r.status_code, r.text)
            r = chat.client.post(chat.url(what), content=b"x" * 70_000, headers=headers)
            assert r.status_code == 403, (what, headers, r.status_code, r.text)
    assert _count(db, WebchatVisitor) == 0


def test_a_nul_character_in_a_message_is_no_server_error(chat: Chat, db) -> None:
    # PostgreSQL refuses U+0000 in text and JSON columns: a visitor's NUL must not be a 500
    token = chat.visitor()
    r = chat.post(token, "سلام\x00hello", name="Sa\x00ra")
    assert r.status_code in (200, 400), (r.status_code, r.text)
    if r.status_code == 200:
        with db() as s:
            texts = list(s.scalars(select(Message.text)))
        assert texts and all("\x00" not in t for t in texts)


def test_an_origin_with_its_default_port_is_the_origin_browsers_send() -> None:
    # Browsers send Origin without the scheme's default port (RFC 6454): an admin who types
    # it must not end with a widget no browser can reach.
    assert parse_origins("https://Shop.example:443\nhttp://shop.example:80/") == [
        "https://shop.example", "http://shop.example"]
    assert parse_origins("https://shop.example:8443") == ["https://shop.example:8443"]


def test_a_reply_with_files_is_refused_never_shown_without_them(chat: Chat, db) -> None:
    # The widget shows text only: a reply's files silently left behind while the reply
    # shows "delivered" is a failed send shown as sent (threats.md)
    import pytest

    from kartabl.errors import PermanentDeliveryError
    from kartabl.messages import OutboundAttachment, OutboundMessage
    from kartabl.models import Channel, WebchatEvent
    from responders.webchat import WebchatSender

    chat.visitor()
    with db() as s:
        key = s.scalars(select(WebchatVisitor.key)).one()
    msg = OutboundMessage(
        reply_id=7, conversation_id=1, channel=Channel.WEBCHAT, recipient=key,
        text="the invoice is attached", idempotency_key="7",
        attachments=(OutboundAttachment("invoice.pdf", "application/pdf", 10, "ab" * 32),))
    with pytest.raises(PermanentDeliveryError, match="file"):
        WebchatSender(db).send(msg)
    assert _count(db, WebchatEvent) == 0


def test_the_visitor_token_in_the_streams_url_is_masked_in_access_logs() -> None:
    # EventSource carries the token in the URL, and uvicorn's access log prints URLs: the
    # token reads the visitor's chat, so a log reader must not get it
    import logging

    import channels.webchat.routes  # noqa: F401  (what registers the mask)
    from kartabl import logs

    token = "vAbCdEfGhIjKlMnOpQrStUvWx.0123456789abcdef0123456789abcdef"
    record = logging.LogRecord(
        "uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5", "GET", f"/widget/w1/events?visitor={token}&last_event_id=3", "1.1",
         200), None)
    assert logs.SECRETS.filter(record)
    line = record.getMessage()
    assert token not in line and token[:12] not in line and "last_event_id=3" in line, line
