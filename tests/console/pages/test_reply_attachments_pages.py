"""Files on replies through the console's forms: attached in the composer and the edit form
(multipart), shown to the approver with a download link before approving, listed under the
sent reply; refused by post/redirect/get (text kept) when too large or on SMS; downloads
only within the reader's scope."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from kartabl import outbound
from kartabl.models import Channel, Reply, ReplyAttachment, ReplyState
from responders.dispatch import dispatch_reply
from responders.sandbox import SandboxSender
from tests.console.pages.conftest import World, sign_in

Db = sessionmaker[Session]
PDF = b"%PDF-1.4\n" + b"p" * 900 + b"\n%%EOF\n"
NAME = "فاکتور ۱۲.pdf"


@pytest.fixture
def files_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    from config.settings import get_settings

    monkeypatch.setenv("KARTABL_ATTACHMENTS_DIR", str(tmp_path / "att"))
    monkeypatch.setenv("KARTABL_REPLY_FILE_MAX_BYTES", "2000")
    monkeypatch.setenv("KARTABL_REPLY_FILES_MAX_BYTES", "3000")
    get_settings.cache_clear()
    yield tmp_path / "att"
    get_settings.cache_clear()


@pytest.fixture
def app_client(db: Db, files_dir: Path) -> Iterator[TestClient]:
    from console.app import create_app

    with TestClient(create_app(), base_url="https://testserver") as c:
        yield c


@pytest.fixture
def second_client(db: Db, files_dir: Path) -> Iterator[TestClient]:
    from console.app import create_app

    with TestClient(create_app(), base_url="https://testserver") as c:
        yield c


def files_of(db: Db, rid: int) -> list[ReplyAttachment]:
    with db() as s:
        rows = list(s.scalars(select(ReplyAttachment).where(ReplyAttachment.reply_id == rid)
                              .order_by(ReplyAttachment.id)))
        s.expunge_all()
        return rows


def replies(db: Db, cid: int) -> list[Reply]:
    with db() as s:
        rows = list(s.scalars(select(Reply).where(Reply.conversation_id == cid)))
        s.expunge_all()
        return rows


def test_an_agent_attaches_and_the_approver_sees_the_file_before_approving(
        app_client: TestClient, second_client: TestClient, world: World, db: Db,
        files_dir: Path) -> None:
    cid = world.conv_sales  # email, held by bob's team
    csrf = sign_in(app_client, "bob")
    r = app_client.post(f"/conversations/{cid}/replies",
                        data={"csrf_token": csrf, "body": "Invoice attached.", "then": "save"},
                        files=[("files", (NAME, PDF, "application/pdf")),
                               ("files", ("", b"", "application/octet-stream"))],
                        follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].endswith("done=drafted")
    [draft] = replies(db, cid)
    [row] = files_of(db, draft.id)
    assert (row.filename, row.content_type, row.size) == (NAME, "application/pdf", len(PDF))
    key = hashlib.sha256(PDF).hexdigest()
    assert (files_dir / key[:2] / key).read_bytes() == PDF
    page = app_client.get(f"/conversations/{cid}").text
    assert f'id="remove-file-{row.id}"' in page and NAME in page

    # the author submits, adding a second file from the edit form
    r = app_client.post(f"/replies/{draft.id}/submit",
                        data={"csrf_token": csrf, "body": "Invoice attached."},
                        files=[("files", ("notes.txt", "سلام".encode(), "text/plain"))],
                        follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].endswith("done=submitted")
    assert [(f.filename, f.content_type) for f in files_of(db, draft.id)] == [
        (NAME, "application/pdf"), ("notes.txt", "text/plain")]

    # the coordinator sees both, with working download links, in the approval panel
    sign_in(second_client, "maryam")
    page = second_client.get(f"/conversations/{cid}").text
    panel = page[page.index('id="approval"'):page.index('id="approve-button-')]
    assert f'id="review-files-{draft.id}"' in panel
    link = f"/replies/{draft.id}/attachments/{row.id}"
    assert link in panel and NAME in panel
    got = second_client.get(link)
    assert got.status_code == 200 and got.content == PDF
    assert got.headers["content-disposition"].startswith("attachment;")
    assert "sandbox" in got.headers["content-security-policy"]

    # another team's agent gets nothing, as if it did not exist
    sign_in(app_client, "ali")
    assert app_client.get(link).status_code == 404


def test_a_too_large_file_is_refused_and_the_text_kept(app_client: TestClient, world: World,
                                                       db: Db) -> None:
    cid = world.conv_sales
    csrf = sign_in(app_client, "bob")  # reads English
    r = app_client.post(f"/conversations/{cid}/replies",
                        data={"csrf_token": csrf, "body": "my careful text", "then": "save"},
                        files=[("files", ("big.pdf", b"%PDF" + b"x" * 2500, "application/pdf"))],
                        follow_redirects=False)
    assert r.status_code == 303 and "failed=" in r.headers["location"]
    page = app_client.get(r.headers["location"]).text
    assert "at most" in page and "per file" in page and "big.pdf" in page
    assert "my careful text" in page  # nothing typed is lost
    assert replies(db, cid) == []  # the draft was rolled back with its files


def test_files_on_an_sms_reply_are_refused_in_persian(app_client: TestClient, world: World,
                                                      db: Db) -> None:
    cid = world.conv_support  # SMS, held by ali (reads Persian)
    csrf = sign_in(app_client, "ali")
    page = app_client.get(f"/conversations/{cid}").text
    assert 'id="reply-files-sms"' in page and 'type="file"' not in page
    r = app_client.post(f"/conversations/{cid}/replies",
                        data={"csrf_token": csrf, "body": "متن من", "then": "save"},
                        files=[("files", ("a.pdf", PDF, "application/pdf"))],
                        follow_redirects=False)
    assert r.status_code == 303 and "failed=" in r.headers["location"]
    shown = app_client.get(r.headers["location"]).text
    assert "پیامک نمی‌تواند فایل ببرد" in shown and "متن من" in shown
    assert replies(db, cid) == []


def test_the_edit_form_removes_a_file(app_client: TestClient, world: World, db: Db) -> None:
    cid = world.conv_sales
    csrf = sign_in(app_client, "bob")
    app_client.post(f"/conversations/{cid}/replies",
                    data={"csrf_token": csrf, "body": "two files", "then": "save"},
                    files=[("files", ("a.txt", b"first", "text/plain")),
                           ("files", ("b.txt", b"second", "text/plain"))])
    [draft] = replies(db, cid)
    first, _ = files_of(db, draft.id)
    r = app_client.post(f"/replies/{draft.id}/edit",
                        data={"csrf_token": csrf, "body": "one file", "remove_file": str(first.id)},
                        files=[("files", ("", b"", "application/octet-stream"))],
                        follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].endswith("done=edited")
    assert [f.filename for f in files_of(db, draft.id)] == ["b.txt"]


def test_the_sent_reply_lists_its_files_in_the_timeline(app_client: TestClient,
                                                        second_client: TestClient,
                                                        world: World, db: Db) -> None:
    cid = world.conv_sales
    csrf = sign_in(app_client, "bob")
    app_client.post(f"/conversations/{cid}/replies",
                    data={"csrf_token": csrf, "body": "Invoice attached.", "then": "submit"},
                    files=[("files", (NAME, PDF, "application/pdf"))])
    [draft] = replies(db, cid)
    assert draft.state == ReplyState.PENDING_APPROVAL
    coord_csrf = sign_in(second_client, "maryam")
    r = second_client.post(f"/replies/{draft.id}/approve", data={"csrf_token": coord_csrf},
                           follow_redirects=False)
    assert r.headers["location"].endswith("done=approved")
    before = outbound.registered()
    outbound.register(SandboxSender(Channel.EMAIL, session_factory=db))
    try:
        assert dispatch_reply(db, draft.id) == "sent"
    finally:
        outbound.unregister(Channel.EMAIL)
        if "email" in before:
            outbound.register(before["email"])
    page = app_client.get(f"/conversations/{cid}").text
    block = page[page.index(f'id="reply-sent-files-{draft.id}"'):]
    link = re.search(r'href="(/messages/\d+/attachments/[0-9a-f]{64})"', block)
    assert link is not None and NAME in block[:link.end() + 200]
    assert app_client.get(link.group(1)).content == PDF
