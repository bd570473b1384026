"""The deterministic key, addresses, threading headers and dates of a parsed mail."""

from __future__ import annotations

from datetime import UTC, datetime

from channels.email.parse import parse
from kartabl.models import Channel
from tests.channels.email.mails import OURS, fixture, mail, raw


def _received(header: str, data: bytes) -> bytes:
    return f"Received: {header}\r\n".encode() + data


def test_same_mail_with_other_received_headers_has_the_same_key() -> None:
    data = fixture("gmail_persian_reply.eml")
    first = parse(_received("from a by b; Tue, 3 Oct 2023 10:31:05 +0330", data))
    second = parse(_received("from c by d; Wed, 4 Oct 2023 01:00:00 +0000", data))
    assert first.external_id == second.external_id
    assert first.external_id.startswith("<CAJx9fYh+persian-reply@mail.gmail.com>#")
    assert len(first.external_id.split("#")[1]) == 16


def test_same_mail_with_crlf_or_lf_line_endings_has_the_same_key() -> None:
    data = raw(mail("line one\nline two"))
    assert parse(data).external_id == parse(data.replace(b"\r\n", b"\n")).external_id


def test_reused_message_id_with_other_content_has_another_key() -> None:
    one = parse(raw(mail("first text", message_id="<same@example.com>")))
    two = parse(raw(mail("second text", message_id="<same@example.com>")))
    assert one.meta["message_id"] == two.meta["message_id"] == "<same@example.com>"
    assert one.external_id != two.external_id


def test_reused_message_id_with_another_subject_has_another_key() -> None:
    one = parse(raw(mail("same", subject="a", message_id="<same@example.com>")))
    two = parse(raw(mail("same", subject="b", message_id="<same@example.com>")))
    assert one.external_id != two.external_id


def test_mail_without_message_id_is_ingested_with_a_key() -> None:
    msg = parse(raw(mail("no id", message_id=None)))
    assert msg.meta["message_id"] is None
    assert msg.external_id.startswith("no-message-id#")
    assert msg.external_id == parse(raw(mail("no id", message_id=None))).external_id


def test_overlong_message_id_is_hashed_in_the_key() -> None:
    long_id = "<" + "x" * 2000 + "@example.com>"
    msg = parse(raw(mail("x", message_id=long_id)))
    assert len(msg.external_id) < 500
    assert msg.meta["message_id"].startswith("<xxxx")


def test_fields_of_a_real_reply() -> None:
    msg = parse(fixture("gmail_persian_reply.eml"), our_addresses=OURS)
    assert msg.channel == Channel.EMAIL
    assert msg.sender == "ali.rezaei@gmail.com"  # normalised: case folded
    assert msg.recipient == "support@kartabl.example"
    assert msg.in_reply_to == "<reply-41.a1b2@kartabl.example>"
    assert msg.references == ("<reply-41.a1b2@kartabl.example>",)
    assert msg.meta["sent_at"] == "2023-10-03T07:00:55+00:00"  # the Date header
    assert len(msg.meta["content_hash"]) == 64


def test_recipient_prefers_our_address_in_cc_or_delivered_to() -> None:
    msg = parse(raw(mail("x", to="friend@example.org",
                         headers={"Cc": "Sales <sales@kartabl.example>"})),
                our_addresses=["support@kartabl.example", "sales@kartabl.example"])
    assert msg.recipient == "sales@kartabl.example"
    msg = parse(raw(mail("x", to="undisclosed-recipients:;",
                         headers={"Delivered-To": "support+r1.x@kartabl.example"})),
                our_addresses=OURS)
    assert msg.recipient == "support+r1.x@kartabl.example"
    assert parse(raw(mail("x", to="Friend <Friend@Example.org>"))).recipient == \
        "friend@example.org"


def test_references_are_capped_to_the_last_twenty() -> None:
    refs = " ".join(f"<r{i}@example.com>" for i in range(100))
    msg = parse(raw(mail("x", headers={"References": refs, "In-Reply-To": "<r99@example.com>"})))
    assert len(msg.references) == 20
    assert msg.references[-1] == "<r99@example.com>" and msg.references[0] == "<r80@example.com>"
    assert msg.in_reply_to == "<r99@example.com>"


def test_the_message_time_is_ours_and_the_date_header_is_metadata() -> None:
    """The Date header is the sender's claim (threats.md, "Trusted headers"): the time is
    when we received the mail (now, or the caller's receipt time, e.g. INTERNALDATE)."""
    before = datetime.now(UTC)
    msg = parse(raw(mail("x")))
    assert before <= msg.received_at <= datetime.now(UTC)
    assert msg.meta["sent_at"] == "2023-10-03T10:30:00+00:00"
    server = datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC)
    assert parse(raw(mail("x")), received_at=server).received_at == server
    # a receipt time ahead of our clock is now: nothing is received in the future
    assert parse(raw(mail("x")), received_at=datetime(2099, 1, 1, tzinfo=UTC)
                 ).received_at <= datetime.now(UTC)


def test_a_future_or_unparseable_date_header_is_only_metadata() -> None:
    before = datetime.now(UTC)
    future = raw(mail("x")).replace(b"Tue, 03 Oct 2023", b"Tue, 03 Oct 2099")
    msg = parse(future)
    assert before <= msg.received_at <= datetime.now(UTC)
    assert msg.meta["sent_at"] == "2099-10-03T10:30:00+00:00"
    broken = raw(mail("x")).replace(b"Tue, 03 Oct 2023 10:30:00 +0000", b"yesterday-ish")
    msg = parse(broken)
    assert msg.received_at >= before and msg.received_at.tzinfo is not None
    assert "sent_at" not in msg.meta


def test_date_without_timezone_is_read_as_utc() -> None:
    data = raw(mail("x")).replace(b"+0000", b"-0000")
    assert parse(data).meta["sent_at"] == "2023-10-03T10:30:00+00:00"
