"""Canned responses in the console (console/pages/canned.py): coordinators manage the
library through its forms, agents read the global ones and their teams' and manage none;
the composer offers ``/shortcut`` and names the wrappers in the reader's language."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from config.settings import get_settings
from console import auth
from kartabl import canned
from kartabl.canned import CannedInput
from kartabl.models import CannedResponse, Person
from tests.console.pages.conftest import World, sign_in

Db = sessionmaker[Session]


def seed(db: Db, world: World) -> dict[str, int]:
    """A global response, one of support (ali's team) and one of sales (bob's)."""
    with db() as s:
        coord = s.get(Person, world.coord)
        assert coord is not None
        ids = {
            "hello": canned.create(s, coord, CannedInput(
                "Hello", "hello", "سلام {{ customer_name }}", "Hello {{ customer_name }}")).id,
            "refund": canned.create(s, coord, CannedInput(
                "Refund", "refund", "بازپرداخت", "Refund", world.support)).id,
            "discount": canned.create(s, coord, CannedInput(
                "sales-only-discount", "discount", "تخفیف", "Discount", world.sales)).id,
        }
        s.commit()
        return ids


def rows(db: Db) -> list[tuple[str, str, int | None, str, str]]:
    with db() as s:
        return [tuple(r) for r in s.execute(  # type: ignore[misc]
            select(CannedResponse.shortcut, CannedResponse.name, CannedResponse.team_id,
                   CannedResponse.body_fa, CannedResponse.body_en)
            .order_by(CannedResponse.shortcut))]


def test_a_coordinator_creates_edits_and_deletes(client: TestClient, world: World,
                                                 db: Db) -> None:
    csrf = sign_in(client, "maryam")
    assert 'id="nav-canned"' in client.get("/queues").text
    form = client.get("/canned/new")
    assert form.status_code == 200 and 'id="canned-form"' in form.text
    r = client.post("/canned", follow_redirects=False, data={
        "csrf_token": csrf, "name": "Shipping", "shortcut": "/Ship", "team_id": str(world.support),
        "body_fa": "سلام {{ customer_name }}،\r\nبسته ارسال شد.",
        "body_en": "Hi {{ customer_name }},\r\nit has shipped."})
    assert r.status_code == 303 and r.headers["location"] == "/canned?done=canned_created"
    assert rows(db) == [("ship", "Shipping", world.support,
                         "سلام {{ customer_name }}،\nبسته ارسال شد.",
                         "Hi {{ customer_name }},\nit has shipped.")]
    listing = client.get(r.headers["location"]).text
    assert "Canned response created." in listing and "/ship" in listing
    assert 'class="canned-uses" data-uses="0"' in listing
    with db() as s:
        cid = s.scalars(select(CannedResponse.id)).one()
    assert "Hi {{ customer_name }}" in client.get(f"/canned/{cid}").text
    r = client.post(f"/canned/{cid}", follow_redirects=False, data={
        "csrf_token": csrf, "name": "Shipped", "shortcut": "shipped", "team_id": "",
        "body_fa": "ارسال شد", "body_en": ""})
    assert r.headers["location"] == "/canned?done=canned_saved"
    assert rows(db) == [("shipped", "Shipped", None, "ارسال شد", "")]
    r = client.post(f"/canned/{cid}/delete", follow_redirects=False, data={"csrf_token": csrf})
    assert r.headers["location"] == "/canned?done=canned_deleted"
    assert rows(db) == []


def test_a_refused_form_says_why_and_keeps_the_text(client: TestClient, world: World,
                                                    db: Db) -> None:
    seed(db, world)
    before = rows(db)
    csrf = sign_in(client, "maryam")
    r = client.post("/canned", data={"csrf_token": csrf, "name": "Again", "shortcut": "hello",
                                     "body_en": "kept text {{ agent_name }}"})
    assert r.status_code == 400
    assert "the shortcut /hello is taken" in r.text and "kept text {{ agent_name }}" in r.text
    r = client.post("/canned", data={"csrf_token": csrf, "name": "Typo", "shortcut": "typo",
                                     "body_en": "Hi {{ custmer_name }}"})
    assert r.status_code == 400 and "unknown variables" in r.text
    assert rows(db) == before


def test_an_agent_reads_global_and_team_responses_and_manages_none(
    client: TestClient, world: World, db: Db,
) -> None:
    ids = seed(db, world)
    before = rows(db)
    csrf = sign_in(client, "ali")  # support, Persian
    listing = client.get("/canned").text
    assert "/hello" in listing and "/refund" in listing
    assert "/discount" not in listing and "sales-only-discount" not in listing
    assert 'id="canned-new"' not in listing
    # another team's response: as if it did not exist
    assert client.get(f"/canned/{ids['discount']}").status_code == 404
    # their own team's: read-only
    own = client.get(f"/canned/{ids['refund']}")
    assert own.status_code == 200 and 'id="canned-view"' in own.text
    assert 'id="canned-form"' not in own.text
    assert 'id="canned-not-yours"' in client.get("/canned/new").text
    # and every change is refused, with nothing stored
    assert client.post("/canned", data={"csrf_token": csrf, "name": "n", "shortcut": "mine",
                                        "body_fa": "x"}).status_code == 403
    assert client.post(f"/canned/{ids['refund']}", data={
        "csrf_token": csrf, "name": "n", "shortcut": "refund", "body_fa": "x"}).status_code == 403
    assert client.post(f"/canned/{ids['refund']}/delete",
                       data={"csrf_token": csrf}).status_code == 403
    assert client.post(f"/canned/{ids['discount']}/delete",
                       data={"csrf_token": csrf}).status_code == 404
    assert rows(db) == before


def test_the_composer_offers_shortcuts_and_counts_uses(client: TestClient, world: World,
                                                      db: Db) -> None:
    ids = seed(db, world)
    sign_in(client, "ali")
    page = client.get(f"/conversations/{world.conv_support}").text
    assert '<script src="/static/canned.js" defer></script>' in page
    assert (f'data-canned-expand="/api/v1/conversations/{world.conv_support}/canned/expand"'
            in page)
    assert 'data-canned-list="/api/v1/canned"' in page
    # the customer wrote "support-text": the page says English, in Persian for ali
    assert ('<span id="customer-language" data-language="en">مشتری به انگلیسی می‌نویسد'
            in page)
    # the wrapper is named in the reader's language (ali reads Persian)
    assert '<option value="greeting">سلام و امضا</option>' in page
    # the composer's calls, with the page's session and CSRF header
    csrf = auth.csrf_token(client.cookies[auth.SESSION_COOKIE], settings=get_settings())
    found = client.get("/api/v1/canned?q=re").json()
    assert [r["shortcut"] for r in found] == ["refund"]
    for _ in range(2):
        r = client.post(f"/api/v1/conversations/{world.conv_support}/canned/expand",
                        json={"canned_id": ids["refund"]}, headers={"X-CSRF-Token": csrf})
        # the customer wrote "support-text": English, whatever the agent reads
        assert r.status_code == 200 and r.json()["text"] == "Refund"
    # without the CSRF header, the expansion is refused and counts nothing
    r = client.post(f"/api/v1/conversations/{world.conv_support}/canned/expand",
                    json={"canned_id": ids["refund"]})
    assert r.status_code == 403
    listing = client.get("/canned").text
    assert f'data-canned-id="{ids["refund"]}"' in listing
    assert 'class="canned-uses" data-uses="2">۲<' in listing  # Persian digits for ali


def test_the_wrapper_is_named_in_english_for_an_english_reader(
    client: TestClient, world: World,
) -> None:
    sign_in(client, "maryam")
    page = client.get(f"/conversations/{world.conv_support}").text
    assert '<option value="greeting">Greeting and signature</option>' in page


def test_the_timeline_names_a_reply_s_wrapper_in_the_reader_s_language(
    client: TestClient, other_client: TestClient, world: World, db: Db,
) -> None:
    from kartabl import workflow
    from responders.preview import REPLY_CHECK

    with db() as s:
        ali = s.get(Person, world.ali)
        workflow.draft(s, ali, world.conv_support, "بسته ارسال شد", template="greeting",
                       check=REPLY_CHECK)
        s.commit()
    sign_in(client, "maryam")  # English
    sign_in(other_client, "reza")  # Persian
    english = client.get(f"/conversations/{world.conv_support}").text
    persian = other_client.get(f"/conversations/{world.conv_support}").text
    # the reply's badge in the timeline (the composer's select names it too)
    badge = '<span class="badge" data-template="greeting">'
    assert badge + "template Greeting and signature</span>" in english
    assert '<span class="badge" data-template="greeting">قالب سلام و امضا</span>' in persian
    assert "template greeting" not in english and "قالب greeting" not in persian
