"""Files attached to replies, through the outbox: as MIME parts to the local SMTP server, as
documents and photos to the Bot API stand-in over real HTTP (python-telegram-bot), refused
for SMS; the limits, the sniffed type and the safe name; and one send per claim."""

from __future__ import annotations

import hashlib
import struct
import zlib
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from channels.telegram.standin import BotApiStandin
from config.telegram import BotConfig
from kartabl import outbound, workflow
from kartabl.errors import InputError, OutcomeUnknown, PermanentDeliveryError
from kartabl.messages import OutboundAttachment, OutboundMessage
from kartabl.models import Channel, Message, Reply, ReplyAttachment, ReplyState, Role
from responders import as_sent
from responders.chat_files import CAPTION_MAX, chat_plan, image_size
from responders.dispatch import dispatch_reply, reconcile_stale_sending
from responders.email import SmtpSender
from responders.preview import REPLY_CHECK
from responders.reply_files import Limits, Upload, add, remove, sniff
from responders.telegram import TelegramSender
from tests.factories import conversation, person, team
from tests.responders import smtp_server as smtp

TOKEN = "9100002:FILES-distinctive-token-QaZxSw"
PDF = b"%PDF-1.4\n" + b"x" * 3000 + b"\n%%EOF\n"
PERSIAN_NAME = "فاکتور خرید ۱۲.pdf"


def png(width: int, height: int) -> bytes:
    """A real (tiny) PNG of the given size."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))
    raw = b"".join(b"\x00" + b"\x00" * width for _ in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0,
                                                                0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def drafted(db: sessionmaker[Session], channel: Channel, files: list[Upload], files_dir: Path,
            body: str = "سلام، فاکتور پیوست است.", *, approve: bool = True) -> int:
    """A reply with ``files``, submitted and (by default) approved by a coordinator."""
    with db() as s:
        support = team(s)
        agent = person(s, teams=[support])
        coordinator = person(s, role=Role.COORDINATOR)
        conv = conversation(s, channel=channel, team=support, assignee=agent)
        reply = workflow.draft(s, agent, conv.id, body, check=REPLY_CHECK)
        add(s, agent, reply.id, files, limits=Limits(), directory=files_dir)
        workflow.submit(s, agent, reply.id, check=REPLY_CHECK)
        if approve:
            workflow.approve(s, coordinator, reply.id, check=REPLY_CHECK)
        s.commit()
        return reply.id


def up(name: str, data: bytes) -> Upload:
    return Upload(name, len(data), data)


@pytest.fixture
def files_dir(tmp_path: Path) -> Path:
    return tmp_path / "attachments"


# -- email -------------------------------------------------------------------------------------


@pytest.fixture
def smtp_files(smtp_server: smtp.SmtpServer, files_dir: Path) -> Iterator[SmtpSender]:
    before = outbound.registered()
    sender = SmtpSender(smtp_server.email_config(timeout_s=2.0), attachments_dir=files_dir)
    outbound.register(sender)
    yield sender
    outbound.unregister(Channel.EMAIL)
    if "email" in before:
        outbound.register(before["email"])


def test_an_email_reply_carries_its_files_as_mime_parts(db, smtp_server, smtp_files,
                                                         files_dir) -> None:
    photo = png(40, 30)
    rid = drafted(db, Channel.EMAIL, [up(PERSIAN_NAME, PDF), up("photo.png", photo)], files_dir)

    assert dispatch_reply(db, rid) == "sent"
    assert dispatch_reply(db, rid) == "skipped"  # a second dispatch sends nothing again

    [mail] = smtp_server.messages()
    assert mail.get_content_type() == "multipart/mixed"
    body, *parts = list(mail.iter_parts())
    assert body.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in parts] == ["application/pdf", "image/png"]
    assert [p.get_filename() for p in parts] == [PERSIAN_NAME, "photo.png"]
    assert [p.get_content() for p in parts] == [PDF, photo]
    raw = mail.as_string()
    assert "filename*" in raw and "utf-8''" in raw  # RFC 2231 for the Persian name
    assert all(p.get_content_disposition() == "attachment" for p in parts)
    with db() as s:
        reply = s.get(Reply, rid)
        assert reply is not None and reply.state == ReplyState.SENT
        row = s.scalar(select(Message).where(Message.meta["reply_id"].as_integer() == rid))
        assert row is not None
        sent = as_sent.files(Channel.EMAIL, row.text, row.attachments)
    assert [(f.filename, f.content_type, f.size) for f in sent] == [
        (PERSIAN_NAME, "application/pdf", len(PDF)), ("photo.png", "image/png", len(photo))]
    assert [f.storage_key for f in sent] == [hashlib.sha256(PDF).hexdigest(),
                                             hashlib.sha256(photo).hexdigest()]


def test_a_file_gone_from_storage_fails_the_reply_with_nothing_sent(db, smtp_server,
                                                                    smtp_files,
                                                                    files_dir) -> None:
    rid = drafted(db, Channel.EMAIL, [up("a.pdf", PDF)], files_dir)
    key = hashlib.sha256(PDF).hexdigest()
    (files_dir / key[:2] / key).unlink()
    assert dispatch_reply(db, rid) == "failed"
    assert smtp_server.messages() == []
    with db() as s:
        reply = s.get(Reply, rid)
        assert reply is not None and "no longer stored" in (reply.error or "")


# -- Telegram --------------------------------------------------------------------------------


@pytest.fixture
def standin() -> Iterator[BotApiStandin]:
    server = BotApiStandin().start()
    server.add_bot(TOKEN, "shop_bot")
    yield server
    server.stop()


@pytest.fixture
def telegram(standin: BotApiStandin, files_dir: Path) -> Iterator[TelegramSender]:
    before = outbound.registered()
    cfg = BotConfig(name="shop", token=TOKEN, mode="polling", base_url=standin.base_url,
                    timeout_s=2.0)
    sender = TelegramSender(Channel.TELEGRAM, [cfg], attachments_dir=files_dir)
    outbound.register(sender)
    yield sender
    outbound.unregister(Channel.TELEGRAM)
    if "telegram" in before:
        outbound.register(before["telegram"])


def test_a_short_text_is_the_caption_of_the_first_file(db, standin, telegram,
                                                        files_dir) -> None:
    photo = png(64, 48)
    rid = drafted(db, Channel.TELEGRAM, [up("photo.png", photo), up(PERSIAN_NAME, PDF)],
                  files_dir, body="سلام، عکس و فاکتور")
    assert dispatch_reply(db, rid) == "sent"
    first, second = standin.sent
    assert (first.method, first.text, first.file and first.file.data) == (
        "sendPhoto", "سلام، عکس و فاکتور", photo)
    assert (second.method, second.text) == ("sendDocument", "")
    assert second.file is not None and second.file.data == PDF
    assert second.file.filename == PERSIAN_NAME
    with db() as s:
        reply = s.get(Reply, rid)
        assert reply is not None and reply.state == ReplyState.SENT
        assert reply.provider_id == f"shop:{first.chat_id}:{first.message_id},{second.message_id}"
    assert dispatch_reply(db, rid) == "skipped"
    assert len(standin.sent) == 2  # nothing sent twice


def test_a_long_text_goes_first_then_the_files_without_caption(db, standin, telegram,
                                                               files_dir) -> None:
    body = "متن بلند پاسخ " * 100  # ~1400 characters: more than a caption
    rid = drafted(db, Channel.TELEGRAM, [up("report.pdf", PDF)], files_dir, body=body)
    assert dispatch_reply(db, rid) == "sent"
    text, doc = standin.sent
    assert (text.method, text.text) == ("sendMessage", body.strip())
    assert (doc.method, doc.text) == ("sendDocument", "")
    assert doc.file is not None and doc.file.data == PDF


def test_a_file_refused_after_the_text_went_fails_naming_what_was_sent(db, standin, telegram,
                                                                       files_dir) -> None:
    body = "متن بلند پاسخ " * 100
    rid = drafted(db, Channel.TELEGRAM, [up("report.pdf", PDF)], files_dir, body=body)
    standin.document_max_bytes = 100  # the Bot API answers 413 for a file over its limit
    assert dispatch_reply(db, rid) == "failed"
    assert [s.method for s in standin.sent] == ["sendMessage"]
    with db() as s:
        reply = s.get(Reply, rid)
        assert reply is not None and reply.state == ReplyState.FAILED
        assert "partly sent" in (reply.error or "") and "part 2" in (reply.error or "")
    assert dispatch_reply(db, rid) == "skipped"
    assert len(standin.sent) == 1  # never resent


def test_the_standin_refuses_an_empty_file_as_the_bot_api_does(standin, telegram,
                                                               files_dir) -> None:
    key = hashlib.sha256(b"").hexdigest()
    (files_dir / key[:2]).mkdir(parents=True)
    (files_dir / key[:2] / key).write_bytes(b"")
    msg = OutboundMessage(reply_id=1, conversation_id=1, channel=Channel.TELEGRAM,
                          recipient="4242", text="x", idempotency_key="k-1",
                          attachments=(OutboundAttachment("e.txt", "text/plain", 0, key),))
    with pytest.raises(PermanentDeliveryError, match=r"(?i)file must be non-empty"):
        telegram.send(msg)
    assert standin.sent == []


# -- the plan, the type, the name, the limits, SMS -------------------------------------------


def test_plan_caption_boundary_and_photo_rules() -> None:
    doc = OutboundAttachment("a.pdf", "application/pdf", 10, "k" * 64)
    assert [s.text for s in chat_plan("a" * CAPTION_MAX, [doc])] == ["a" * CAPTION_MAX]
    long_plan = chat_plan("a" * (CAPTION_MAX + 1), [doc])
    assert [(s.kind, s.text) for s in long_plan] == [("text", "a" * (CAPTION_MAX + 1)),
                                                     ("file", "")]
    assert image_size(png(30, 20)) == (30, 20)
    assert image_size(b"not an image") is None


def test_the_type_is_sniffed_from_the_bytes_and_the_name_made_safe(db, files_dir) -> None:
    assert sniff(b"<html><script>alert(1)</script>", "invoice.pdf") == "application/octet-stream"
    assert sniff(b"<svg onload=alert(1)>", "x.svg") == "application/octet-stream"
    assert sniff(PDF, "no-extension") == "application/pdf"
    assert sniff("سلام".encode(), "note.txt") == "text/plain"
    assert sniff(b"\xff\xfe\x00bad", "note.txt") == "application/octet-stream"
    with db() as s:
        support = team(s)
        agent = person(s, teams=[support])
        conv = conversation(s, team=support, assignee=agent)
        reply = workflow.draft(s, agent, conv.id, "x", check=REPLY_CHECK)
        [row] = add(s, agent, reply.id, [up("../../etc/\u202eexe.pdf", b"<html>")],
                    limits=Limits(), directory=files_dir)
        assert (row.filename, row.content_type) == ("exe.pdf", "application/octet-stream")
        # the same bytes again are one file; removing takes the row off the draft
        assert add(s, agent, reply.id, [up("again.pdf", b"<html>")], limits=Limits(),
                   directory=files_dir) == []
        assert remove(s, agent, reply.id, [row.id]) == 1
        assert s.scalars(select(ReplyAttachment)).all() == []


@pytest.mark.parametrize(("files", "code"), [
    ([up("big.pdf", b"%PDF" + b"x" * 200)], "reply_file.too_large"),
    ([up("a.pdf", b"%PDF" + b"a" * 80), up("b.pdf", b"%PDF" + b"b" * 80)],
     "reply_file.total_too_large"),
    ([up(f"{n}.txt", str(n).encode()) for n in range(4)], "reply_file.too_many"),
    ([up("empty.pdf", b"")], "reply_file.empty"),
])
def test_limits_are_refused_with_a_code(db, files_dir, files, code) -> None:
    limits = Limits(per_file=150, per_reply=150, max_files=3)
    with db() as s:
        support = team(s)
        agent = person(s, teams=[support])
        conv = conversation(s, team=support, assignee=agent)
        reply = workflow.draft(s, agent, conv.id, "x", check=REPLY_CHECK)
        with pytest.raises(InputError) as caught:
            add(s, agent, reply.id, files, limits=limits, directory=files_dir)
        assert caught.value.code == code
        assert s.scalars(select(ReplyAttachment)).all() == []
    assert not files_dir.exists()  # nothing stored before the checks passed


def test_sms_refuses_files_at_draft(db, files_dir) -> None:
    with db() as s:
        support = team(s)
        agent = person(s, teams=[support])
        conv = conversation(s, channel=Channel.SMS, team=support, assignee=agent)
        reply = workflow.draft(s, agent, conv.id, "x", check=REPLY_CHECK)
        with pytest.raises(InputError) as caught:
            add(s, agent, reply.id, [up("a.pdf", PDF)], limits=Limits(), directory=files_dir)
        assert caught.value.code == "reply_file.sms"


def test_the_kavenegar_sender_refuses_a_reply_with_files() -> None:
    from responders.sms import KavenegarSender

    msg = OutboundMessage(reply_id=1, conversation_id=1, channel=Channel.SMS,
                          recipient="+989121234567", text="x", idempotency_key="1",
                          attachments=(OutboundAttachment("a.pdf", "application/pdf", 3,
                                                          "k" * 64),))
    sender = object.__new__(KavenegarSender)  # the check comes before any of its state
    with pytest.raises(PermanentDeliveryError, match="cannot carry files"):
        KavenegarSender.send(sender, msg)


def test_files_count_as_chat_messages_at_submit(db, files_dir) -> None:
    # 10 files and a text longer than a caption: 11 chat messages, refused at submit
    from responders.preview import ReplyTooLong

    with db() as s:
        support = team(s)
        agent = person(s, teams=[support])
        conv = conversation(s, channel=Channel.TELEGRAM, team=support, assignee=agent)
        reply = workflow.draft(s, agent, conv.id, "x" * (CAPTION_MAX + 1), check=REPLY_CHECK)
        add(s, agent, reply.id, [up(f"{n}.txt", f"file {n}".encode()) for n in range(10)],
            limits=Limits(), directory=files_dir)
        with pytest.raises(ReplyTooLong) as caught:
            workflow.submit(s, agent, reply.id, check=REPLY_CHECK)
        assert caught.value.params["parts"] == 11
        workflow.update_draft(s, agent, reply.id, "short enough for a caption")
        workflow.submit(s, agent, reply.id, check=REPLY_CHECK)  # 10 messages: fits


def test_an_email_resent_after_an_unknown_outcome_carries_the_same_files(
        db, smtp_server, files_dir, enqueued) -> None:
    # Given an SMTP server whose answer after the data never comes in time
    before = outbound.registered()
    sender = SmtpSender(smtp_server.email_config(timeout_s=0.5, data_timeout_s=0.5),
                        attachments_dir=files_dir)
    outbound.register(sender)
    try:
        rid = drafted(db, Channel.EMAIL, [up(PERSIAN_NAME, PDF)], files_dir)
        smtp_server.recorder.fail("DATA", "stall:1.5")
        with pytest.raises(OutcomeUnknown):
            dispatch_reply(db, rid)
        # When the sweep reconciles it (SMTP cannot be asked: at least once) and it goes again
        assert reconcile_stale_sending(db, older_than=timedelta(0)) == 1
        assert ("dispatch_reply", rid) in enqueued
        assert dispatch_reply(db, rid) == "sent"
    finally:
        outbound.unregister(Channel.EMAIL)
        if "email" in before:
            outbound.register(before["email"])
    # Then both copies are the same mail: one Message-ID, the same file
    first, second = smtp_server.messages()
    assert first["Message-ID"] == second["Message-ID"]
    assert [[p.get_content() for p in m.iter_attachments()] for m in (first, second)] == [
        [PDF], [PDF]]


def test_what_was_sent_lists_the_files_and_which_carried_the_text() -> None:
    listed = [{"filename": "a.png", "content_type": "image/png", "size": 3,
               "storage_key": "a" * 64, "content_id": None},
              {"filename": "b.pdf", "content_type": "application/pdf", "size": 4,
               "storage_key": "b" * 64, "content_id": None},
              {"filename": "not stored", "storage_key": None}]
    short = as_sent.files(Channel.TELEGRAM, "short text", listed)
    assert [(f.filename, f.captioned) for f in short] == [("a.png", True), ("b.pdf", False)]
    long = as_sent.files(Channel.BALE, "x" * (CAPTION_MAX + 1), listed)
    assert [f.captioned for f in long] == [False, False]
    assert [f.captioned for f in as_sent.files(Channel.EMAIL, "short", listed)] == [False, False]


def test_a_bale_reply_sends_its_file_through_bales_bot_api(db, standin, files_dir) -> None:
    # Bale's Bot API is Telegram's: the same sender, its own channel and bots
    before = outbound.registered()
    cfg = BotConfig(name="bale_shop", kind="bale", token=TOKEN, mode="polling",
                    base_url=standin.base_url, timeout_s=2.0)
    outbound.register(TelegramSender(Channel.BALE, [cfg], attachments_dir=files_dir))
    try:
        rid = drafted(db, Channel.BALE, [up("report.pdf", PDF)], files_dir, body="گزارش")
        assert dispatch_reply(db, rid) == "sent"
    finally:
        outbound.unregister(Channel.BALE)
        if "bale" in before:
            outbound.register(before["bale"])
    [doc] = standin.sent
    assert (doc.method, doc.text) == ("sendDocument", "گزارش")
    assert doc.file is not None and doc.file.data == PDF


def test_which_images_go_as_photos() -> None:
    from responders.chat_files import as_photo

    jpeg = (b"\xff\xd8" + b"\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
            + b"\xff\xc0\x00\x11\x08" + struct.pack(">HH", 300, 400) + b"\x03" + b"\x00" * 9)
    assert image_size(jpeg) == (400, 300)

    def att(kind: str, data: bytes) -> OutboundAttachment:
        return OutboundAttachment("x", kind, len(data), hashlib.sha256(data).hexdigest())

    assert as_photo(att("image/jpeg", jpeg), jpeg)
    assert as_photo(att("image/png", png(100, 50)), png(100, 50))
    assert not as_photo(att("image/png", png(420, 20)), png(420, 20))  # sides over 20:1
    assert not as_photo(att("image/png", png(6000, 5000)), png(6000, 5000))  # over 10000
    assert not as_photo(att("image/gif", b"GIF89a..."), b"GIF89a...")  # a document
