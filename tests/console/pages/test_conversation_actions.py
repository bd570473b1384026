"""The conversation page's actions through their forms: each changes the stored state and
answers 303 back with a message; workflow refusals are shown on the page; the preview
counts SMS parts and chat messages; reply statuses refresh out of band."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from kartabl import workflow
from kartabl.models import Conversation, Event, Message, Person, Reply, ReplyState
from responders import render as reply_render
from responders.preview import REPLY_CHECK
from tests.console.pages.conftest import World, post_refused, sign_in

Db = sessionmaker[Session]


def draft(db: Db, cid: int, author: int, body: str = "پاسخ آزمایشی", *,
          submit: bool = False) -> int:
    with db() as s:
        actor = s.get(Person, author)
        reply = workflow.draft(s, actor, cid, body, check=REPLY_CHECK)
        if submit:
            workflow.submit(s, actor, reply.id, check=REPLY_CHECK)
        s.commit()
        return reply.id


def conv(db: Db, cid: int) -> Conversation:
    with db() as s:
        found = s.get(Conversation, cid)
        assert found is not None
        s.expunge(found)
        return found


def reply(db: Db, rid: int) -> Reply:
    with db() as s:
        found = s.get(Reply, rid)
        assert found is not None
        s.expunge(found)
        return found


def done(r: Response, cid: int, what: str) -> None:
    assert r.status_code == 303, r.text[-1500:]
    assert r.headers["location"] == f"/conversations/{cid}?done={what}"


def test_coordinator_assigns_from_triage(client: TestClient, world: World, db: Db) -> None:
    csrf = sign_in(client, "maryam")
    cid = world.conv_triage
    page = client.get(f"/conversations/{cid}").text
    assert 'id="handover-form"' in page and 'id="handover-person"' in page
    # The hand-over panel without a note: an assignment
    r = client.post(f"/conversations/{cid}/handover", follow_redirects=False, data={
        "csrf_token": csrf, "person_id": str(world.ali), "team_id": str(world.support),
        "note": ""})
    done(r, cid, "assigned")
    stored = conv(db, cid)
    assert (stored.assignee_id, stored.team_id) == (world.ali, world.support)
    shown = client.get(r.headers["location"]).text
    assert 'id="flash"' in shown and "Assigned." in shown
    assert f'id="conv-assignee" data-assignee-id="{world.ali}"' in shown


def test_assign_to_me(client: TestClient, world: World, db: Db) -> None:
    csrf = sign_in(client, "maryam")
    r = client.post(f"/conversations/{world.conv_triage}/assign", follow_redirects=False,
                    data={"csrf_token": csrf, "person_id": str(world.coord)})
    done(r, world.conv_triage, "assigned")
    assert conv(db, world.conv_triage).assignee_id == world.coord


def test_agent_refers_to_a_team_with_a_note(client: TestClient, world: World, db: Db) -> None:
    csrf = sign_in(client, "ali")
    cid = world.conv_support
    r = client.post(f"/conversations/{cid}/refer", follow_redirects=False, data={
        "csrf_token": csrf, "team_id": str(world.sales), "person_id": "",
        "note": "مشتری فاکتور می‌خواهد"})
    done(r, cid, "referred")
    stored = conv(db, cid)
    assert (stored.team_id, stored.assignee_id) == (world.sales, None)
    with db() as s:
        note = s.scalars(select(Event).where(Event.kind == "conversation.referred")).one()
        assert note.data["note"] == "مشتری فاکتور می‌خواهد"
    # It left the agent's scope with the referral: the page is gone for them now.
    assert client.get(f"/conversations/{cid}").status_code == 404
    coordinator = TestClient(client.app, base_url="https://testserver")
    sign_in(coordinator, "maryam")
    assert "مشتری فاکتور می‌خواهد" in coordinator.get(f"/conversations/{cid}").text


def test_referral_without_a_note_is_refused_on_the_page(client: TestClient, world: World,
                                                        db: Db) -> None:
    csrf = sign_in(client, "ali")
    cid = world.conv_support
    text = post_refused(client, f"/conversations/{cid}/refer", {
        "csrf_token": csrf, "team_id": str(world.sales), "note": "  "}, f"/conversations/{cid}")
    assert "یادداشت ارجاع نباید خالی باشد." in text  # ali reads Persian
    assert conv(db, world.conv_support).team_id == world.support


def test_agent_drafts_submits_and_coordinator_approves_with_an_edit(
    client: TestClient, other_client: TestClient, world: World, db: Db,
    enqueued: list[tuple[str, int]],
) -> None:
    cid = world.conv_support
    csrf = sign_in(client, "ali")
    page = client.get(f"/conversations/{cid}").text
    assert 'id="draft-form"' in page and 'hx-trigger="input changed delay:300ms"' in page
    r = client.post(f"/conversations/{cid}/replies", follow_redirects=False, data={
        "csrf_token": csrf, "body": "سلام،\r\nسفارش شما ارسال شد.", "template": "",
        "then": "save"})
    done(r, cid, "drafted")
    with db() as s:
        rid = s.scalars(select(Reply.id)).one()
    stored = reply(db, rid)
    assert stored.state == ReplyState.DRAFT and stored.body == "سلام،\nسفارش شما ارسال شد."
    page = client.get(f"/conversations/{cid}").text
    assert f'id="edit-form-{rid}"' in page and f'id="submit-button-{rid}"' in page

    r = client.post(f"/replies/{rid}/submit", follow_redirects=False, data={
        "csrf_token": csrf, "body": "سلام، سفارش شما امروز ارسال شد."})
    done(r, cid, "submitted")
    stored = reply(db, rid)
    assert stored.state == ReplyState.PENDING_APPROVAL
    assert stored.body == "سلام، سفارش شما امروز ارسال شد."

    coord_csrf = sign_in(other_client, "maryam")
    page = other_client.get(f"/conversations/{cid}").text
    assert f'id="approve-button-{rid}"' in page
    # The part count is shown beside the approve button, before approval.
    preview = re.search(rf'id="approve-preview-{rid}".*?data-parts="(\d+)"', page, re.S)
    assert preview and preview.group(1) == "1"
    r = other_client.post(f"/replies/{rid}/approve", follow_redirects=False, data={
        "csrf_token": coord_csrf, "edited_body": "سلام، سفارش شما امروز ارسال شد. ممنون!"})
    done(r, cid, "approved")
    stored = reply(db, rid)
    assert stored.state == ReplyState.APPROVED and stored.approved_by_id == world.coord
    assert stored.original_body == "سلام، سفارش شما امروز ارسال شد."
    assert stored.body == "سلام، سفارش شما امروز ارسال شد. ممنون!"
    assert ("dispatch_reply", rid) in enqueued
    shown = other_client.get(f"/conversations/{cid}").text
    assert f'id="reply-edit-{rid}"' in shown  # before/after in the timeline
    assert f'id="reply-state-{rid}" data-reply-state="approved"' in shown


def test_unchanged_approval_is_no_edit(client: TestClient, world: World, db: Db) -> None:
    rid = draft(db, world.conv_support, world.ali, "متن\nدوخطی", submit=True)
    csrf = sign_in(client, "maryam")
    r = client.post(f"/replies/{rid}/approve", follow_redirects=False,
                    data={"csrf_token": csrf, "edited_body": "متن\r\nدوخطی"})
    done(r, world.conv_support, "approved")
    stored = reply(db, rid)
    assert stored.state == ReplyState.APPROVED and stored.original_body is None


def test_draft_and_submit_in_one_step(client: TestClient, world: World, db: Db) -> None:
    csrf = sign_in(client, "ali")
    r = client.post(f"/conversations/{world.conv_support}/replies", follow_redirects=False,
                    data={"csrf_token": csrf, "body": "پاسخ", "then": "submit"})
    done(r, world.conv_support, "submitted")
    with db() as s:
        assert s.scalars(select(Reply.state)).one() == ReplyState.PENDING_APPROVAL


def test_reject_with_a_comment_and_resubmit(client: TestClient, other_client: TestClient,
                                            world: World, db: Db) -> None:
    rid = draft(db, world.conv_support, world.ali, submit=True)
    csrf = sign_in(client, "maryam")
    r = client.post(f"/replies/{rid}/reject", follow_redirects=False,
                    data={"csrf_token": csrf, "comment": "لحن رسمی‌تر"})
    done(r, world.conv_support, "rejected")
    stored = reply(db, rid)
    assert stored.state == ReplyState.REJECTED and stored.review_comment == "لحن رسمی‌تر"
    agent_csrf = sign_in(other_client, "ali")
    page = other_client.get(f"/conversations/{world.conv_support}").text
    assert "لحن رسمی‌تر" in page and 'data-reply-state="rejected"' in page
    r = other_client.post(f"/replies/{rid}/submit", follow_redirects=False,
                          data={"csrf_token": agent_csrf, "body": "با احترام، پاسخ"})
    done(r, world.conv_support, "submitted")
    stored = reply(db, rid)
    assert stored.state == ReplyState.PENDING_APPROVAL and stored.body == "با احترام، پاسخ"


def test_edit_a_draft(client: TestClient, world: World, db: Db) -> None:
    rid = draft(db, world.conv_support, world.ali)
    csrf = sign_in(client, "ali")
    r = client.post(f"/replies/{rid}/edit", follow_redirects=False,
                    data={"csrf_token": csrf, "body": "نسخهٔ دوم"})
    done(r, world.conv_support, "edited")
    assert reply(db, rid).body == "نسخهٔ دوم"


def test_close_and_reopen(client: TestClient, world: World, db: Db) -> None:
    csrf = sign_in(client, "ali")
    cid = world.conv_support
    done(client.post(f"/conversations/{cid}/close", data={"csrf_token": csrf},
                     follow_redirects=False), cid, "closed")
    assert conv(db, cid).status == "closed"
    page = client.get(f"/conversations/{cid}").text
    assert 'id="reopen-button"' in page and 'id="draft-form"' not in page
    done(client.post(f"/conversations/{cid}/reopen", data={"csrf_token": csrf},
                     follow_redirects=False), cid, "reopened")
    assert conv(db, cid).status == "open"


def test_private_note(client: TestClient, world: World, db: Db) -> None:
    csrf = sign_in(client, "ali")
    cid = world.conv_support
    done(client.post(f"/conversations/{cid}/notes", follow_redirects=False,
                     data={"csrf_token": csrf, "text": "تماس تلفنی گرفتم"}), cid, "noted")
    with db() as s:
        note = s.scalars(select(Event).where(Event.kind == "conversation.note")).one()
        assert (note.actor_id, note.data["text"]) == (world.ali, "تماس تلفنی گرفتم")
    assert "تماس تلفنی گرفتم" in client.get(f"/conversations/{cid}").text


def test_workflow_refusals_are_shown_and_change_nothing(client: TestClient, world: World,
                                                        db: Db) -> None:
    rid = draft(db, world.conv_triage, world.coord, submit=True)
    csrf = sign_in(client, "maryam")
    page = client.get(f"/conversations/{world.conv_triage}").text
    assert f'id="approve-button-{rid}"' not in page  # nobody approves their own reply
    here = f"/conversations/{world.conv_triage}"
    text = post_refused(client, f"/replies/{rid}/approve", {"csrf_token": csrf}, here)
    assert "Nobody approves their own reply" in text
    text = post_refused(client, f"{here}/close", {"csrf_token": csrf}, here)
    assert f"cannot be closed while reply {rid} awaits approval" in text
    assert reply(db, rid).state == ReplyState.PENDING_APPROVAL
    assert conv(db, world.conv_triage).status == "open"


def test_agent_cannot_assign(client: TestClient, world: World, db: Db) -> None:
    csrf = sign_in(client, "ali")
    page = client.get(f"/conversations/{world.conv_support}").text
    # no "assign to me"; the hand-over panel is a referral for them: its note is required
    assert 'id="assign-me-form"' not in page
    assert re.search(r'<textarea name="note" id="handover-note"[^>]* required', page)
    here = f"/conversations/{world.conv_support}"
    text = post_refused(client, f"{here}/assign",
                        {"csrf_token": csrf, "person_id": str(world.bob)}, here)
    assert "«واگذاری» فقط کار هماهنگ‌کننده یا مدیر است." in text  # ali reads Persian
    assert conv(db, world.conv_support).assignee_id == world.ali


def test_too_long_sms_is_refused_at_submit_with_its_count(client: TestClient, world: World,
                                                          db: Db) -> None:
    csrf = sign_in(client, "ali")
    body = "س" * 600  # 9 UCS-2 parts; the SMS sender takes at most 8
    here = f"/conversations/{world.conv_support}"
    text = post_refused(client, f"{here}/replies",
                        {"csrf_token": csrf, "body": body, "then": "submit"}, here)
    assert "این پاسخ ۹ پیامک است" in text and "کوتاهش کنید" in text  # ali reads Persian
    assert body in text  # the text typed is kept in the form
    with db() as s:
        assert s.scalars(select(Reply)).all() == []


def test_preview_counts_sms_parts_and_chat_messages(client: TestClient, world: World) -> None:
    csrf = sign_in(client, "maryam")
    sms = client.post(f"/conversations/{world.conv_support}/preview",
                      data={"csrf_token": csrf, "body": "س" * 71})
    assert sms.status_code == 200 and 'data-parts="2"' in sms.text
    assert "2 SMS (UCS-2, 71 characters)" in sms.text
    latin = client.post(f"/conversations/{world.conv_support}/preview",
                        headers={"X-CSRF-Token": csrf}, data={"body": "a" * 160})
    assert 'data-parts="1"' in latin.text and "GSM 7-bit" in latin.text
    chat = client.post(f"/conversations/{world.conv_triage}/preview",
                       data={"csrf_token": csrf, "body": "x " * 2100})
    assert 'data-parts="2"' in chat.text and "Telegram messages: 2" in chat.text
    empty = client.post(f"/conversations/{world.conv_triage}/preview",
                        data={"csrf_token": csrf, "body": ""})
    assert 'data-parts="0"' in empty.text
    assert client.post(f"/conversations/{world.conv_support}/preview",
                       data={"body": "x"}).status_code == 403


@pytest.fixture
def canned(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Reply templates of this test: the default and "greeting", with a variable."""
    for name, text in (("default", "{{ body }}"),
                       ("greeting", "{{ customer_name }} عزیز، سلام.\n{{ body }}")):
        (tmp_path / name).mkdir()
        (tmp_path / name / "sms.txt").write_text(text, encoding="utf-8")
    monkeypatch.setattr(reply_render, "TEMPLATES_DIR", tmp_path)
    reply_render._env.cache_clear()
    yield
    reply_render._env.cache_clear()  # before monkeypatch restores the real folder


def test_canned_template_with_variables(client: TestClient, world: World, db: Db,
                                        canned: None) -> None:
    with db() as s:
        for m in s.scalars(select(Message).where(Message.conversation_id == world.conv_support)):
            m.sender_name = "نرگس"
        s.commit()
    csrf = sign_in(client, "ali")
    page = client.get(f"/conversations/{world.conv_support}").text
    assert '<option value="greeting">greeting</option>' in page  # no title.toml: its name
    shown = client.post(f"/conversations/{world.conv_support}/preview", data={
        "csrf_token": csrf, "body": "بسته فردا می‌رسد.", "template": "greeting"}).text
    assert "نرگس عزیز، سلام." in shown
    r = client.post(f"/conversations/{world.conv_support}/replies", follow_redirects=False,
                    data={"csrf_token": csrf, "body": "بسته فردا می‌رسد.",
                          "template": "greeting"})
    done(r, world.conv_support, "drafted")
    with db() as s:
        assert s.scalars(select(Reply.template)).one() == "greeting"


def test_reply_status_refreshes_out_of_band(client: TestClient, world: World, db: Db) -> None:
    rid = draft(db, world.conv_support, world.ali, submit=True)
    sign_in(client, "maryam")
    page = client.get(f"/conversations/{world.conv_support}").text
    poll = re.search(r'hx-get="(/conversations/\d+/status\?v=[0-9.]+&amp;from=[0-9.]+)" '
                     r'hx-trigger="live"', page)
    assert poll
    url = poll.group(1).replace("&amp;", "&")
    with db() as s:  # the outbox sends it meanwhile
        found = s.get(Reply, rid)
        assert found is not None
        found.state = ReplyState.SENT
        s.commit()
    status = client.get(url).text
    assert f'id="reply-status-{rid}" data-reply-state="sent" hx-swap-oob="true"' in status
    assert 'id="news"' not in status  # a reply's step is no news
    with db() as s:
        event = workflow.note(s, s.get(Person, world.coord), world.conv_support, "later")
        s.commit()
        event_id = event.id
    # Something new is appended to the timeline in place (no reload), with the version the
    # page is at then; asked with that version, nothing is appended again.
    status = client.get(url).text
    assert 'id="news-reload"' not in status
    appended = status.split('<div hx-swap-oob="beforeend:#timeline">', 1)[1]
    assert f'id="event-{event_id}"' in appended and "later" in appended
    version = re.search(r'id="live-version" data-version="([0-9.]+)"', status)
    assert version and version[1] != re.search(r"v=([0-9.]+)", url)[1]
    again = client.get(re.sub(r"v=[0-9.]+", f"v={version[1]}", url)).text
    assert "beforeend:#timeline" not in again and f'id="event-{event_id}"' not in again
    # A version this server did not give out: the page is offered a reload instead.
    assert 'id="news-reload"' in client.get(re.sub(r"v=[0-9.]+", "v=x", url)).text
