"""Files in replies, in a real Chromium, in Persian and in English: an agent attaches a PDF
to an email reply and a photo to a Telegram reply in the composer and submits them; a
coordinator sees each file (name, link) in the approval panel before approving; the
server (``kartabl run --no-demo``: its worker sends) delivers them to the local SMTP server
as a MIME part and to the Bot API stand-in as a sendPhoto upload, bytes intact; the sent
reply's timeline lists the file. Screenshots: ``test_reply_files_<locale>--*.png``."""

from __future__ import annotations

import hashlib
import struct
import time
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select

from channels.telegram.standin import BotApiStandin, Sent
from kartabl.models import Channel, Person, Reply, ReplyState, Role, Team, TeamMember
from tests import factories as f
from tests.browser.conftest import LiveServer
from tests.browser.test_workflow_flow import new_page, password_hash, sign_in, t  # noqa: F401
from tests.responders import smtp_server as smtp

T = 15_000
SEND_TIMEOUT_S = 20.0
TOKEN = "9100003:BROWSER-files-token-WsXcDe"
PDF = b"%PDF-1.4\n" + b"browser test file " * 200 + b"\n%%EOF\n"
NAMES = {"fa": ("فاکتور خرید.pdf", "عکس بسته.png"), "en": ("invoice.pdf", "parcel photo.png")}
TEXTS = {"fa": ("فاکتور پیوست است.", "عکس بسته‌ی شما"),
         "en": ("The invoice is attached.", "A photo of your parcel")}


def png(width: int, height: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))
    raw = b"".join(b"\x00" + b"\x7f" * width for _ in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0,
                                                                0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


PHOTO = png(120, 80)


@pytest.fixture
def smtp_box() -> Iterator[smtp.SmtpServer]:
    server = smtp.start()
    yield server
    server.controller.stop()


@pytest.fixture
def bot_api() -> Iterator[BotApiStandin]:
    server = BotApiStandin().start()
    server.add_bot(TOKEN, "shop_bot")
    yield server
    server.stop()


@pytest.fixture
def kartabl_command() -> list[str]:
    return ["run", "--no-demo"]  # its in-process worker dispatches the approved replies


@pytest.fixture
def kartabl_env(tmp_path: Path, smtp_box: smtp.SmtpServer, bot_api: BotApiStandin
                ) -> dict[str, str]:
    channels = tmp_path / "channels.toml"
    channels.write_text(f"""
[[email.mailboxes]]
name = "support"
address = "support@kartabl.example"
team = "support"

[email.mailboxes.smtp]
host = "127.0.0.1"
port = {smtp_box.port}
security = "plain"
timeout_s = 2
data_timeout_s = 4

[[telegram.bots]]
name = "shop"
kind = "telegram"
token = "{TOKEN}"
base_url = "{bot_api.base_url}"
mode = "webhook"
webhook_secret = "browser-files-secret"
team = "support"
timeout_s = 3
""", encoding="utf-8")
    return {"KARTABL_CHANNELS_FILE": str(channels), "KARTABL_SWEEP_INTERVAL_S": "0.25",
            "KARTABL_SWEEP_GRACE_S": "0.5"}


def wait_for(what: str, check: Callable[[], object], server: LiveServer) -> object:
    deadline = time.monotonic() + SEND_TIMEOUT_S
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.1)
    pytest.fail(f"{what} not within {SEND_TIMEOUT_S} s:\n"
                f"{server.log.read_text(errors='replace')[-3000:]}")


def attach_and_submit(p: Page, server: LiveServer, cid: int, locale: str, text: str,
                      name: str, mime: str, data: bytes) -> None:
    p.goto(f"{server.url}/conversations/{cid}")
    expect(p.locator('label[for="draft-files"]')).to_have_text(t(locale, "reply_files.add"))
    p.locator("#draft-body").fill(text)
    p.locator("#draft-files").set_input_files(files=[
        {"name": name, "mimeType": mime, "buffer": data}])
    p.locator("#draft-submit-button").click()
    expect(p.locator("#flash")).to_have_text(t(locale, "flash.submitted"), timeout=T)


def approve_seeing_the_file(p: Page, server: LiveServer, cid: int, rid: int, locale: str,
                            name: str, data: bytes, shot: Callable[..., Path]) -> None:
    p.goto(f"{server.url}/conversations/{cid}")
    files = p.locator(f"#review-files-{rid}")
    expect(files).to_contain_text(name, timeout=T)
    expect(files.locator("h3")).to_have_text(t(locale, "reply_files.title", n="۱" if locale
                                                == "fa" else "1"))
    link = files.locator("a.reply-file-link")
    href = link.get_attribute("href")
    assert href is not None
    got = p.request.get(server.url + href)
    assert got.status == 200 and got.body() == data  # what the approver opens is the file
    shot(f"reply_files_{locale}--approving-{rid}", of=p)
    p.locator(f"#approve-button-{rid}").click()
    expect(p.locator("#flash")).to_have_text(t(locale, "flash.approved"), timeout=T)


@pytest.mark.parametrize("locale", ["fa", "en"])
def test_reply_files(locale: str, live_server: LiveServer, new_page: Callable[[str], Page],  # noqa: F811
                     smtp_box: smtp.SmtpServer, bot_api: BotApiStandin,
                     screenshot: Callable[..., Path]) -> None:
    pdf_name, photo_name = NAMES[locale]
    mail_text, chat_text = TEXTS[locale]
    # Given an agent holding an email and a Telegram conversation, and a coordinator
    with live_server.session() as s:
        team = Team(name="frontdesk", title="frontdesk")
        coordinator = Person(username="maryam", role=Role.COORDINATOR, locale=locale,
                             password_hash=password_hash())
        agent = Person(username="ali", role=Role.AGENT, locale=locale,
                       password_hash=password_hash())
        s.add_all([team, coordinator, agent])
        s.flush()
        s.add(TeamMember(team_id=team.id, person_id=agent.id))
        mail_conv = f.conversation(s, channel=Channel.EMAIL, team=team, assignee=agent,
                                   sender="customer@example.ir")
        chat_conv = f.conversation(s, channel=Channel.TELEGRAM, team=team, assignee=agent,
                                   sender="424242")
        mail_cid, chat_cid = mail_conv.id, chat_conv.id

    # 1. The agent attaches a file to each reply in the composer and submits
    agent_page = new_page(locale)
    sign_in(agent_page, live_server, locale, "ali")
    attach_and_submit(agent_page, live_server, mail_cid, locale, mail_text, pdf_name,
                      "application/pdf", PDF)
    attach_and_submit(agent_page, live_server, chat_cid, locale, chat_text, photo_name,
                      "image/png", PHOTO)
    screenshot(f"reply_files_{locale}--submitted", of=agent_page)
    with live_server.session() as s:
        mail_rid, chat_rid = (s.scalars(select(Reply.id).where(Reply.conversation_id == c))
                              .one() for c in (mail_cid, chat_cid))

    # 2. The coordinator sees each file before approving, and approves
    coord = new_page(locale)
    sign_in(coord, live_server, locale, "maryam")
    approve_seeing_the_file(coord, live_server, mail_cid, mail_rid, locale, pdf_name, PDF,
                            screenshot)
    approve_seeing_the_file(coord, live_server, chat_cid, chat_rid, locale, photo_name, PHOTO,
                            screenshot)

    # 3. The files reach the providers, bytes intact
    mails = wait_for("the mail", smtp_box.messages, live_server)
    assert isinstance(mails, list)
    [mail] = mails
    [part] = [p for p in mail.iter_attachments()]
    assert part.get_filename() == pdf_name and part.get_content() == PDF
    assert part.get_content_type() == "application/pdf"
    sent = wait_for("the photo", lambda: bot_api.sent, live_server)
    assert isinstance(sent, list)
    [photo] = sent
    assert isinstance(photo, Sent) and photo.method == "sendPhoto"
    assert photo.chat_id == "424242" and photo.text == chat_text  # the text as its caption
    assert photo.file is not None and photo.file.data == PHOTO
    assert hashlib.sha256(photo.file.data).hexdigest() == hashlib.sha256(PHOTO).hexdigest()

    # 4. The sent replies list their files in the timeline
    for cid, rid, name in ((mail_cid, mail_rid, pdf_name), (chat_cid, chat_rid, photo_name)):
        wait_for("sent", lambda rid=rid: _sent(live_server, rid), live_server)
        agent_page.goto(f"{live_server.url}/conversations/{cid}")
        listed = agent_page.locator(f"#reply-sent-files-{rid}")
        expect(listed).to_contain_text(name, timeout=T)
        expect(listed.locator("h4")).to_have_text(t(locale, "reply_files.sent",
                                                    n="۱" if locale == "fa" else "1"))
    screenshot(f"reply_files_{locale}--sent", of=agent_page)


def _sent(server: LiveServer, rid: int) -> bool:
    with server.session() as s:
        reply = s.get(Reply, rid)
        return reply is not None and reply.state in (ReplyState.SENT, ReplyState.DELIVERED)
