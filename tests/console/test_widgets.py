"""The website widgets' console pages: an admin makes and edits a widget and copies its
snippet; nobody else sees a widget or its secret, or changes one; a bad origin is refused
with the form kept; every change is audited."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient
from sqlalchemy import select

from kartabl.models import Event, Role, Widget
from tests.console.conftest import add_person, sign_in

FORM = {"name": "فروشگاه", "origins": "https://Shop.example/\nhttps://www.shop.example:8443",
        "color": "#0A7D5A", "text_color": "#ffffff", "greeting_fa": "سلام!",
        "greeting_en": "Hi!", "ask_phone": "1", "active": "1"}


def test_an_admin_creates_a_widget_and_copies_its_snippet(app_client: TestClient, db) -> None:
    add_person(db, "root", Role.ADMIN)
    csrf = sign_in(app_client, "root")
    r = app_client.post("/widgets", data={**FORM, "csrf_token": csrf}, follow_redirects=False)
    assert r.status_code == 303
    with db() as s:
        w = s.scalars(select(Widget)).one()
        assert w.origins == ["https://shop.example", "https://www.shop.example:8443"]
        assert (w.color, w.ask_phone, w.ask_email) == ("#0a7d5a", True, False)
        assert re.fullmatch(r"[0-9a-f]{64}", w.secret) and re.fullmatch(r"w[0-9a-f]{16}",
                                                                          w.public_id)
        kinds = [e.kind for e in s.scalars(select(Event))]
        assert "widget.created" in kinds
    page = app_client.get(r.headers["location"])
    assert page.status_code == 200
    assert f"/widget/{w.public_id}/loader.js" in page.text and w.secret in page.text
    assert "script-src http://" in page.text  # the CSP line, with Kartabl's own address
    # editing: a bad origin is refused, the form keeps what was typed, nothing changes
    bad = {**FORM, "origins": "https://*.shop.example", "csrf_token": csrf}
    r = app_client.post(f"/widgets/{w.id}", data=bad, follow_redirects=False)
    assert r.status_code == 400 and "*.shop.example" in r.text
    with db() as s:
        assert s.get(Widget, w.id).origins == ["https://shop.example",  # type: ignore[union-attr]
                                               "https://www.shop.example:8443"]


def test_nobody_else_sees_or_changes_a_widget(app_client: TestClient, db) -> None:
    add_person(db, "maryam", Role.COORDINATOR)
    with db() as s:
        w = Widget(public_id="wsecret", name="shop", secret="the-secret-" * 4,
                   origins=["https://shop.example"])
        s.add(w)
        s.commit()
    csrf = sign_in(app_client, "maryam")
    for url in ("/widgets", "/widgets/new", f"/widgets/{w.id}"):
        page = app_client.get(url)
        assert page.status_code == 200 and "widget-only-admins" in page.text
        assert "the-secret-" not in page.text and "wsecret" not in page.text
    r = app_client.post(f"/widgets/{w.id}", data={**FORM, "csrf_token": csrf},
                        follow_redirects=False)
    assert r.status_code == 403
    assert app_client.post("/widgets", data={**FORM, "csrf_token": csrf},
                           follow_redirects=False).status_code == 403
    with db() as s:
        assert [x.name for x in s.scalars(select(Widget))] == ["shop"]
