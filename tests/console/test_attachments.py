"""Attachment downloads: scoped, always a download unless a real raster image is asked for
inline, never HTML or SVG in our origin (threats: XSS through mail attachments)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from channels.email.attachments import store_payloads
from console.pages.attachments import inline_image_urls
from kartabl.models import Role
from tests import factories as f

PASSWORD = "correct horse battery"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
HTML = b"<script>alert(document.cookie)</script>"
SVG = b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>'


@dataclass
class Seeded:
    message_id: int
    unrouted_id: int
    keys: dict[str, str]


@pytest.fixture
def seeded(db: sessionmaker[Session], settings, tmp_path: Path, monkeypatch) -> Seeded:
    monkeypatch.setenv("KARTABL_ATTACHMENTS_DIR", str(tmp_path / "att"))
    from config.settings import get_settings

    get_settings.cache_clear()
    files = {"png": PNG, "html": HTML, "svg": SVG, "fake_png": HTML + b" ", "gone": b"never"}
    keys = {name: hashlib.sha256(data).hexdigest() for name, data in files.items()}
    store_payloads({k: files[n] for n, k in keys.items() if n != "gone"}, tmp_path / "att")
    with db() as s:
        team_a, team_b = f.team(s, "a"), f.team(s, "b")
        for name, role, teams in (("ana", Role.AGENT, [team_a]), ("bob", Role.AGENT, [team_b]),
                                  ("cora", Role.COORDINATOR, [])):
            f.person(s, name, role, teams=teams).password_hash = f.quick_hash(PASSWORD)
        conv = f.conversation(s, team=team_a)
        msg = f.inbound(s, conv)
        msg.attachments = [
            {"filename": "عکس.png", "content_type": "image/png", "size": len(PNG),
             "storage_key": keys["png"]},
            {"filename": "page.html", "content_type": "text/html", "size": 40,
             "storage_key": keys["html"]},
            {"filename": "logo.svg", "content_type": "image/svg+xml", "size": 60,
             "storage_key": keys["svg"]},
            {"filename": "photo.png", "content_type": "image/png", "size": 41,
             "storage_key": keys["fake_png"]},
            {"filename": "big.bin", "content_type": "application/octet-stream", "size": 5,
             "storage_key": keys["gone"]},
        ]
        unrouted = f.inbound(s, conv)
        unrouted.conversation_id = None
        unrouted.attachments = [dict(msg.attachments[0])]
        s.commit()
        return Seeded(msg.id, unrouted.id, keys)


@pytest.fixture
def client(seeded: Seeded) -> Iterator[TestClient]:
    from console.app import create_app

    with TestClient(create_app(), base_url="https://testserver") as c:
        yield c


def _sign_in(c: TestClient, username: str) -> None:
    r = c.post("/login", data={"username": username, "password": PASSWORD},
               follow_redirects=False)
    assert r.status_code == 303


def _url(seeded: Seeded, name: str, inline: bool = False, message_id: int | None = None) -> str:
    mid = seeded.message_id if message_id is None else message_id
    return f"/messages/{mid}/attachments/{seeded.keys[name]}" + ("?inline=1" if inline else "")


def test_html_and_svg_always_download_as_opaque_bytes(client, seeded):
    _sign_in(client, "ana")
    for name in ("html", "svg"):
        for inline in (False, True):
            r = client.get(_url(seeded, name, inline))
            assert r.status_code == 200
            assert r.headers["content-type"] == "application/octet-stream"
            assert r.headers["content-disposition"].startswith("attachment;")
            assert r.headers["x-content-type-options"] == "nosniff"
            assert "sandbox" in r.headers["content-security-policy"]


def test_a_real_png_may_show_inline_with_its_persian_name(client, seeded):
    _sign_in(client, "ana")
    r = client.get(_url(seeded, "png", inline=True))
    assert r.status_code == 200 and r.content == PNG
    assert r.headers["content-type"] == "image/png"
    assert r.headers["content-disposition"].startswith("inline;")
    assert "filename*=UTF-8''%D8%B9%DA%A9%D8%B3.png" in r.headers["content-disposition"]
    assert client.get(_url(seeded, "png")).headers["content-disposition"].startswith("attachment;")


def test_html_claiming_to_be_png_is_not_shown_inline(client, seeded):
    _sign_in(client, "ana")
    r = client.get(_url(seeded, "fake_png", inline=True))
    assert r.headers["content-disposition"].startswith("attachment;")


def test_another_teams_agent_gets_404(client, seeded):
    _sign_in(client, "bob")
    assert client.get(_url(seeded, "png")).status_code == 404
    assert client.get(_url(seeded, "png", message_id=seeded.unrouted_id)).status_code == 404


def test_unrouted_messages_are_for_coordinators(client, seeded):
    _sign_in(client, "ana")
    assert client.get(_url(seeded, "png", message_id=seeded.unrouted_id)).status_code == 404
    client.cookies.clear()
    _sign_in(client, "cora")
    assert client.get(_url(seeded, "png", message_id=seeded.unrouted_id)).status_code == 200


def test_only_keys_listed_on_the_message_open(client, seeded):
    _sign_in(client, "cora")
    # The HTML file is stored, but not listed on the unrouted message.
    assert client.get(_url(seeded, "html", message_id=seeded.unrouted_id)).status_code == 404
    assert client.get(f"/messages/{seeded.message_id}/attachments/..%2f..%2fetc").status_code == 404
    assert client.get(_url(seeded, "gone")).status_code == 404  # listed, bytes not stored


def test_signed_out_is_sent_to_login(client, seeded):
    r = client.get(_url(seeded, "png"), follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/login")


def test_inline_image_urls_rewrites_only_attachment_sources():
    key = "a" * 64
    html = f'<p><img src="attachment:{key}" alt="x"><img src="attachment:zz"></p>'
    out = inline_image_urls(html, 7)
    assert f'src="/messages/7/attachments/{key}?inline=1"' in out
    assert 'src="attachment:zz"' in out  # not a key: left for the browser to ignore
