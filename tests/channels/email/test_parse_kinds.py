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


def test_daemon_text_bounce_uses_in_reply_to_as_the_fallback_id() -> None:
    msg = parse(raw(mail("Your mail could not be delivered", subject="Undelivered Mail",
                         sender="MAILER-DAEMON@mx.example.net",
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


OUR_TOKEN = "<reply-41.c0ffee@kartabl.example>"


@pytest.mark.parametrize("headers,reason", [
    ({"Auto-Submitted": "auto-generated"}, "auto-submitted: auto-generated"),  # Exchange OOF
    ({"Precedence": "bulk"}, "precedence: bulk"),
])
def test_out_of_office_with_empty_return_path_does_not_fail_our_reply(
    headers: dict[str, str], reason: str,
) -> None:
    # A null envelope sender is what every RFC 3834 responder uses; without a delivery
    # report it says nothing about our reply, which was delivered (the reply is to it).
    msg = parse(raw(mail("I am out of the office until Sunday.", subject="Automatic reply: x",
                         headers={"Return-Path": "<>", "In-Reply-To": OUR_TOKEN, **headers})),
                our_addresses=OURS)
    assert msg.kind == MessageKind.AUTO_REPLY
    assert msg.meta["auto"] == reason
    assert "bounced_message_ids" not in msg.meta


def test_empty_return_path_alone_is_automatic_but_not_a_bounce() -> None:
    msg = parse(raw(mail("hi", headers={"Return-Path": "<>", "In-Reply-To": OUR_TOKEN})))
    assert msg.kind == MessageKind.AUTO_REPLY
    assert msg.meta["auto"] == "empty return-path"
    assert "bounced_message_ids" not in msg.meta


def test_read_receipt_with_empty_return_path_and_our_headers_is_not_a_bounce() -> None:
    # RFC 8098: a read receipt names our Message-ID (Original-Message-ID and the attached
    # headers) although the reply was delivered and read.
    data = literal(
        "Return-Path: <>\nFrom: customer@example.com\nTo: support@kartabl.example\n"
        f"Subject: Read: Your order\nIn-Reply-To: {OUR_TOKEN}\nMIME-Version: 1.0\n"
        'Content-Type: multipart/report; report-type=disposition-notification; boundary="b"',
        b"--b\r\nContent-Type: text/plain\r\n\r\nYour message was read.\r\n"
        b"--b\r\nContent-Type: message/disposition-notification\r\n\r\n"
        b"Reporting-UA: mail.example.com; Outlook\r\n"
        b"Final-Recipient: rfc822; customer@example.com\r\n"
        b"Original-Message-ID: " + OUR_TOKEN.encode() + b"\r\n"
        b"Disposition: manual-action/MDN-sent-manually; displayed\r\n"
        b"--b\r\nContent-Type: text/rfc822-headers\r\n\r\n"
        b"From: support@kartabl.example\r\nMessage-ID: " + OUR_TOKEN.encode() + b"\r\n\r\n"
        b"--b--\r\n",
    )
    msg = parse(data, our_addresses=OURS)
    assert msg.kind == MessageKind.AUTO_REPLY
    assert msg.meta["auto"] == "read receipt"
    assert "bounced_message_ids" not in msg.meta


def _attached_original(sender: str, subject: str, extra: str = "") -> bytes:
    return literal(
        f"Return-Path: <>\nFrom: {sender}\nTo: support@kartabl.example\nSubject: {subject}\n"
        f"{extra}MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"b\"",
        b"--b\r\nContent-Type: text/plain\r\n\r\nDelivery has failed to these recipients.\r\n"
        b"--b\r\nContent-Type: message/rfc822\r\n\r\n"
        b"From: support@kartabl.example\r\nMessage-ID: " + OUR_TOKEN.encode() + b"\r\n"
        b"Subject: Your order\r\n\r\nbody\r\n--b--\r\n",
    )


@pytest.mark.parametrize("sender,subject", [
    ("postmaster@mx.example.net", "Notice"),
    ("Microsoft Outlook <MicrosoftExchange329e71ec@example.net>", "Undeliverable: Your order"),
    ("mx@example.net", "Delivery Status Notification (Failure)"),
    ("mx@example.net", "Mail delivery failed: returning message to sender"),
    ("mx@example.net", "Returned mail: see transcript for details"),
    # Persian "your message was not delivered"
    ("mx@example.net", "=?utf-8?b?2b7bjNin2YUg2LTZhdinINiq2K3ZiNuM2YQg2YbYtNiv?="),
])
def test_empty_return_path_with_an_attached_original_and_dsn_signs_is_a_bounce(
    sender: str, subject: str,
) -> None:
    msg = parse(_attached_original(sender, subject), our_addresses=OURS)
    assert msg.kind == MessageKind.BOUNCE
    assert msg.meta["bounced_message_ids"] == [OUR_TOKEN]


def test_attached_original_without_dsn_signs_is_not_a_bounce() -> None:
    # A customer's auto-responder that attaches the mail it answers.
    msg = parse(_attached_original("customer@example.com", "Re: Your order",
                                   "Auto-Submitted: auto-generated\n"), our_addresses=OURS)
    assert msg.kind == MessageKind.AUTO_REPLY
    assert "bounced_message_ids" not in msg.meta


def test_mailer_daemon_bounce_saying_auto_replied_is_still_a_bounce() -> None:
    # Exim and Postfix put Auto-Submitted: auto-replied on their own bounces.
    msg = parse(_attached_original("Mail Delivery System <Mailer-Daemon@mx.example.net>",
                                   "Mail delivery failed", "Auto-Submitted: auto-replied\n"),
                our_addresses=OURS)
    assert msg.kind == MessageKind.BOUNCE
    assert msg.meta["bounced_message_ids"] == [OUR_TOKEN]
