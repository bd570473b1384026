"""Every word localised (issue 14): refusals, router reasons, template names and dates in
the reader's language, mixed-direction strings isolated, and post/redirect/get after a
refused form (a reload submits nothing)."""

from __future__ import annotations

import re
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from console.i18n import catalog
from console.pages._ui import route_reason
from console.refusals import refusal, refusal_text
from console.templating import text_dir
from kartabl import audit, workflow
from kartabl.errors import IllegalTransition
from kartabl.models import Event, Person, Reply
from responders.preview import REPLY_CHECK
from tests.console.pages.conftest import World, post_refused, sign_in

Db = sessionmaker[Session]
ROOT = Path(__file__).resolve().parents[3]


def _pending(db: Db, cid: int, author: int) -> int:
    with db() as s:
        actor = s.get(Person, author)
        reply = workflow.draft(s, actor, cid, "پاسخ آزمایشی", check=REPLY_CHECK)
        workflow.submit(s, actor, reply.id, check=REPLY_CHECK)
        s.commit()
        return reply.id


def _error(page: str) -> str:
    """The refusal paragraph of a page."""
    found = re.search(r'<p class="error flash" id="action-error" role="alert">(.*?)</p>', page,
                      re.S)
    assert found, page[-1500:]
    return found.group(1)


def _rows(db: Db) -> tuple[int, int]:
    with db() as s:
        return (s.scalar(select(func.count()).select_from(Event)) or 0,
                s.scalar(select(func.count()).select_from(Reply)) or 0)


def test_close_refusal_is_a_sentence_in_each_language_and_english_for_the_log() -> None:
    exc = IllegalTransition("close", "pending_approval", "reply 7 awaits approval",
                            code="close_pending", params={"item": "conversation", "reply": 7})
    assert str(exc).startswith("cannot close: the item is in state 'pending_approval'")
    r = refusal(exc)
    assert refusal_text("en", r) == ("This conversation cannot be closed while reply 7 "
                                     "awaits approval: approve or reject it first.")
    fa = refusal_text("fa", r)
    assert "تا پاسخ ۷ در انتظار تأیید است این گفتگو بسته نمی‌شود" in fa
    assert "pending_approval" not in fa and "cannot" not in fa


def test_an_illegal_step_names_the_step_and_state_in_the_readers_words() -> None:
    r = refusal(IllegalTransition("approve", "draft", "reply 3",
                                  params={"item": "reply", "id": 3}))
    assert refusal_text("en", r) == "Cannot approve the reply: the reply is Draft."
    assert refusal_text("fa", r) == "«تأیید پاسخ» اکنون ممکن نیست: پاسخ در وضعیت «پیش‌نویس» است."


def test_every_error_code_in_the_code_has_a_sentence_in_both_languages() -> None:
    codes: set[str] = set()
    for folder in ("kartabl", "console", "responders", "router"):
        for path in (ROOT / folder).rglob("*.py"):
            codes |= set(re.findall(r'\bcode="([a-z_]+)"', path.read_text(encoding="utf-8")))
    codes |= {"illegal", "too_long_sms", "too_long_chat"}  # defaults and computed codes
    assert len(codes) > 20
    for locale in ("fa", "en"):
        missing = sorted(c for c in codes if f"error.{c}" not in catalog(locale))
        assert missing == [], locale


def test_refused_close_redirects_and_a_reload_submits_nothing(client: TestClient, world: World,
                                                                db: Db) -> None:
    # Given a reply awaiting approval on a conversation, and a Persian coordinator
    rid = _pending(db, world.conv_support, world.ali)
    csrf = sign_in(client, "reza")
    here = f"/conversations/{world.conv_support}"
    before = _rows(db)
    # When she tries to close it: a 303 to a GET page that says why, in Persian
    r = client.post(f"{here}/close", data={"csrf_token": csrf}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith(f"{here}?failed=")
    page = client.get(r.headers["location"])
    assert page.status_code == 200
    shown = _error(page.text)
    assert f"تا پاسخ {str(rid).translate(str.maketrans('0123456789', '۰۱۲۳۴۵۶۷۸۹'))} در انتظار" \
        in shown
    assert "cannot" not in shown and "pending_approval" not in shown
    # Then reloading (the browser repeats the GET) shows the same and changes nothing
    again = client.get(r.headers["location"])
    assert 'id="action-error"' in again.text and _rows(db) == before
    # The API still answers in English, for integrations and logs
    api = client.post(f"/api/v1/conversations/{world.conv_support}/close",
                      headers={"X-CSRF-Token": csrf})
    assert api.status_code == 409
    assert api.json()["detail"].startswith("cannot close: the item is in state 'pending_approval'")


def test_the_kept_refusal_is_the_sessions_own(client: TestClient, world: World, db: Db) -> None:
    """A ?failed= link shows nothing to another session, and nothing once replaced."""
    csrf = sign_in(client, "ali")
    here = f"/conversations/{world.conv_support}"
    location = client.post(f"{here}/notes", data={"csrf_token": csrf, "text": " "},
                           follow_redirects=False).headers["location"]
    assert "یادداشت نباید خالی باشد." in client.get(location).text
    other = TestClient(client.app, base_url="https://testserver")
    sign_in(other, "reza")
    assert 'id="action-error"' not in other.get(location).text
    post_refused(client, f"{here}/refer", {"csrf_token": csrf, "note": ""}, here)
    assert 'id="action-error"' not in client.get(location).text  # replaced by the later one


def test_english_refusal_for_an_english_reader(client: TestClient, world: World, db: Db) -> None:
    csrf = sign_in(client, "maryam")  # reads English
    here = f"/conversations/{world.conv_triage}"
    text = post_refused(client, f"{here}/refer", {"csrf_token": csrf, "note": "x"}, here)
    assert "Choose a person or a team." in text


def test_router_reason_is_worded_and_its_rule_isolated(client: TestClient, world: World,
                                                       db: Db) -> None:
    assert route_reason("en", ("no available member", "billing words")) == (
        "no available member · rule <bdi>billing words</bdi>")
    assert route_reason("fa", ("team 'x' does not exist", None)) == "تیم <bdi>x</bdi> وجود ندارد"
    with db() as s:
        audit.record(s, "conversation.triaged", conversation_id=world.conv_triage,
                     team_id=world.support, assignee_id=None, rule="billing words",
                     reason="no available member")
        s.commit()
    sign_in(client, "reza")  # Persian
    page = client.get(f"/conversations/{world.conv_triage}").text
    assert ('<bdi class="muted route-reason">(هیچ عضو آزادی نبود · قاعدهٔ '
            '<bdi>billing words</bdi>)</bdi>') in page
    assert "no available member" not in page


def test_note_starting_with_a_mention_keeps_its_direction(client: TestClient, world: World,
                                                          db: Db) -> None:
    assert text_dir("@ali لطفاً پیگیری کن") == "rtl"
    assert text_dir("@ali please call back") == "ltr"
    assert text_dir("۱۲۳") == "auto"
    csrf = sign_in(client, "ali")
    here = f"/conversations/{world.conv_support}"
    client.post(f"{here}/notes", data={"csrf_token": csrf, "text": "@ali لطفاً پیگیری کن"})
    page = client.get(here).text
    assert '<div class="note-text" dir="rtl">@ali لطفاً پیگیری کن</div>' in page


def test_names_and_dates_are_isolated_in_an_english_page(client: TestClient, world: World,
                                                         db: Db) -> None:
    with db() as s:
        ali = s.get(Person, world.ali)
        assert ali is not None
        ali.display_name = "علی"
        s.commit()
    _pending(db, world.conv_support, world.ali)
    sign_in(client, "maryam")  # English
    page = client.get(f"/conversations/{world.conv_support}").text
    assert "Reply by <bdi>علی</bdi>" in page
    # the date after the Persian name is an isolated, left-to-right <time>, ISO in English
    assert re.search(r'<bdi>علی</bdi></b>\s*<span class="muted">· <time datetime="[0-9T:+.-]+" '
                     r'dir="ltr">20\d\d-\d\d-\d\d \d\d:\d\d</time>', page)


def test_template_names_are_localised(client: TestClient, world: World) -> None:
    sign_in(client, "ali")  # Persian
    page = client.get(f"/conversations/{world.conv_support}").text
    assert '<option value="greeting">سلام و امضا</option>' in page
    assert ">greeting<" not in page


def test_a_refusal_without_a_page_of_its_own_leads_to_refused(client: TestClient, world: World,
                                                                db: Db) -> None:
    # Given a merge form sent with an id that is not one (refused before any page is chosen)
    csrf = sign_in(client, "maryam")  # English
    r = client.post(f"/customers/{world.customer_support}/merge",
                    data={"csrf_token": csrf, "into": "abc"}, follow_redirects=False)
    # Then it is a 303 to /refused, whose GET says why: the general sentence in English
    # words, the English detail isolated beside it; a reload shows it again
    assert r.status_code == 303 and r.headers["location"].startswith("/refused?failed=")
    for _ in range(2):
        page = client.get(r.headers["location"])
        assert page.status_code == 400
        assert "The form was not accepted." in page.text
        assert '<bdi class="detail" dir="ltr" lang="en">into must be an id' in page.text
    # and someone else's browser is shown nothing of it
    other = TestClient(client.app, base_url="https://testserver")
    sign_in(other, "reza")
    assert "into must be an id" not in other.get(r.headers["location"]).text


def test_every_reason_the_router_writes_has_words() -> None:
    """The router's reasons are audit data in English; the page words each (a new reason in
    router/placement.py needs its catalog entry, else it shows in English, isolated)."""
    from console.pages._ui import ROUTE_REASONS

    source = (ROOT / "router" / "placement.py").read_text(encoding="utf-8")
    written = set(re.findall(r'return (?:None|previous|slots\[0\]\[1\]), "([a-z ]+)"', source))
    written |= set(re.findall(r'reason = "([a-z ]+)"', source))
    written |= set(re.findall(r'team, rule = str\(default\), "([a-z ]+)"', source))
    assert {"no available member", "least loaded", "no rule matched", "inbox default"} <= written
    assert written <= set(ROUTE_REASONS), written - set(ROUTE_REASONS)
    for key in ROUTE_REASONS.values():
        assert f"route.{key}" in catalog("fa") and f"route.{key}" in catalog("en")
