"""Automatic mail and bounces: Kartabl never answers them (loop guards)."""

from __future__ import annotations

import pytest

from channels.email.parse import parse
from kartabl.models import MessageKind
from tests.channels.email.mails import OURS, fixture, literal, mail, raw


def test_a_plain_customer_mail_is_a_message() -> None:
    msg = parse(raw(mail("hi")), our_addresses=OURS)
    assert msg.kind == MessageKind.MESSAGE
    assert "auto" not in msg.meta


@pytest.mark.parametrize("headers,reason", [
    ({"Auto-Submitted": "auto-replied"}, "auto-submitted: auto-replied"),
    ({"Auto-Submitted": "auto-generated; owner-email=x@y"}, "auto-submitted: auto-generated"),
    ({"Precedence": "bulk"}, "precedence: bulk"),
    ({"Precedence": "junk"}, "precedence: junk"),
    ({"Precedence": "list"}, "precedence: list"),
    ({"X-Autoreply": "yes"}, "x-autoreply"),
    ({"X-Autorespond": "Out of office"}, "x-autorespond"),
    ({"X-Auto-Response-Suppress": "All"}, "x-auto-response-suppress"),
    ({"X-Auto-Response-Suppress": "DR, OOF, AutoReply"}, "x-auto-response-suppress"),
    ({"List-Id": "<news.shop.example>"}, "mailing list"),
    ({"List-Unsubscribe": "<https://shop.example/unsub>"}, "mailing list"),
])
def test_automatic_mail_headers(headers: dict[str, str], reason: str) -> None:
    msg = parse(raw(mail("I am away", headers=headers)), our_addresses=OURS)
    assert msg.kind == MessageKind.AUTO_REPLY
    assert msg.meta["auto"] == reason


@pytest.mark.parametrize("headers", [
    {"Auto-Submitted": "no"},
    {"Precedence": "first-class"},
    {"X-Auto-Response-Suppress": "DR, RN"},
])
def test_headers_that_do_not_make_mail_automatic(headers: dict[str, str]) -> None:
    assert parse(raw(mail("hi", headers=headers))).kind == MessageKind.MESSAGE


def test_our_own_address_is_never_answered() -> None:
    msg = parse(raw(mail("loop?", sender="Support <Support@Kartabl.Example>")),
                our_addresses=OURS)
    assert msg.kind == MessageKind.AUTO_REPLY
    assert msg.meta["from_own_address"] is True


def test_our_own_address_with_a_reply_token_is_still_ours() -> None:
    msg = parse(raw(mail("x", sender="support+r41.abc@kartabl.example")), our_addresses=OURS)
    assert msg.meta["from_own_address"] is True


def test_dsn_bounce_fixture_gives_the_original_message_id_and_reason() -> None:
    msg = parse(fixture("dsn_bounce.eml"), our_addresses=OURS)
    assert msg.kind == MessageKind.BOUNCE
    assert msg.meta["bounced_message_ids"] == ["<reply-77.e5f6@kartabl.example>"]
    assert msg.meta["bounce_reason"].startswith("5.1.1 smtp; 550 5.1.1")
    assert msg.meta["bounced_recipients"] == ["nobody@customer.example"]


def test_rfc822_headers_bounce() -> None:
    data = literal(
        "From: MAILER-DAEMON@mx.example.net\nTo: support@kartabl.example\n"
        "Subject: failure notice\nMIME-Version: 1.0\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="b"',
        b"--b\r\nContent-Type: text/plain\r\n\r\nfailed\r\n"
        b"--b\r\nContent-Type: message/delivery-status\r\n\r\n"
        b"Reporting-MTA: dns; mx.example.net\r\n\r\n"
        b"Final-Recipient: rfc822; gone@example.net\r\nAction: failed\r\nStatus: 5.2.2\r\n\r\n"
        b"--b\r\nContent-Type: text/rfc822-headers\r\n\r\n"
        b"From: support@kartabl.example\r\nMessage-ID: <reply-9.zz@kartabl.example>\r\n\r\n"
        b"--b--\r\n",
    )
    msg = parse(data, our_addresses=OURS)
    assert msg.kind == MessageKind.BOUNCE
    assert msg.meta["bounced_message_ids"] == ["<reply-9.zz@kartabl.example>"]
    assert msg.meta["bounce_reason"] == "5.2.2"


def test_empty_return_path_is_a_bounce_and_in_reply_to_is_the_fallback_id() -> None:
    msg = parse(raw(mail("Your mail could not be delivered",
                         headers={"Return-Path": "<>",
                                  "In-Reply-To": "<reply-3.aa@kartabl.example>"})))
    assert msg.kind == MessageKind.BOUNCE
    assert msg.meta["bounced_message_ids"] == ["<reply-3.aa@kartabl.example>"]


def test_text_only_mailer_daemon_bounce_finds_the_quoted_message_id() -> None:
    body = ("Hi. This is the qmail-send program. I'm afraid I wasn't able to deliver.\n\n"
            "--- Below this line is a copy of the message.\n\n"
            "From: support@kartabl.example\nDate: Thu, 5 Oct 2023\n"
            "Message-ID: <reply-12.bb@kartabl.example>\n\nYour order")
    msg = parse(raw(mail(body, sender="MAILER-DAEMON@mail.example.net",
                         subject="failure notice")))
    assert msg.kind == MessageKind.BOUNCE
    assert msg.meta["bounced_message_ids"] == ["<reply-12.bb@kartabl.example>"]


def test_vacation_reply_with_empty_return_path_is_an_auto_reply_not_a_bounce() -> None:
    # RFC 3834 auto-responders send with a null envelope sender: that alone must not mark
    # our reply as failed.
    msg = parse(raw(mail("I am on leave", headers={
        "Return-Path": "<>", "Auto-Submitted": "auto-replied"})))
    assert msg.kind == MessageKind.AUTO_REPLY


def test_read_receipt_is_automatic() -> None:
    data = literal(
        "From: customer@example.com\nSubject: Read: order\nMIME-Version: 1.0\n"
        'Content-Type: multipart/report; report-type=disposition-notification; boundary="b"',
        b"--b\r\nContent-Type: text/plain\r\n\r\nread\r\n--b\r\n"
        b"Content-Type: message/disposition-notification\r\n\r\nDisposition: manual-action/"
        b"MDN-sent-manually; displayed\r\n--b--\r\n",
    )
    msg = parse(data)
    assert msg.kind == MessageKind.AUTO_REPLY and msg.meta["auto"] == "read receipt"
