"""API tokens (scopes, hashing, expiry, revocation, the account page) and password resets
(links used once, the host they name, who may issue them, the CLI), through the real app over
both databases. Sign-in and sessions: test_auth.py."""

from __future__ import annotations

import hashlib
import re
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from console import auth
from kartabl.models import (
    ApiToken,
    Event,
    PasswordReset,
    Person,
    Role,
    utcnow,
)
from tests.console.conftest import add_person, sign_in


def test_api_tokens_are_scoped_hashed_and_revocable(app_client, db):
    add_person(db, "ava")
    csrf = sign_in(app_client, "ava")
    r = app_client.post("/api/v1/tokens", json={"name": "crm", "scopes": ["read"]},
                        headers={"X-CSRF-Token": csrf})
    assert r.status_code == 201
    token, token_id = r.json()["token"], r.json()["id"]
    with db() as s:
        row = s.get(ApiToken, token_id)
        assert row.token_hash == hashlib.sha256(token.encode()).hexdigest()
        assert token not in repr(s.execute(text("SELECT * FROM api_token")).all())
    bearer = {"Authorization": f"Bearer {token}"}
    from console.app import create_app

    with TestClient(create_app(), base_url="https://testserver") as integration:
        me = integration.get("/api/v1/me", headers=bearer).json()
        assert me["signed_in_with"] == "token" and me["scopes"] == ["read"]
        # A token cannot mint tokens (a leak must not grow), and no CSRF applies to it.
        r = integration.post("/api/v1/tokens", json={"name": "x", "scopes": ["read"]},
                             headers=bearer)
        assert r.status_code == 403
        app_client.delete(f"/api/v1/tokens/{token_id}", headers={"X-CSRF-Token": csrf})
        assert integration.get("/api/v1/me", headers=bearer).status_code == 401
        assert integration.get("/api/v1/me", headers={"Authorization": "Bearer kt_nope"}
                               ).status_code == 401


def test_an_agent_cannot_hold_the_review_scope(app_client, db):
    add_person(db, "ava")
    csrf = sign_in(app_client, "ava")
    r = app_client.post("/api/v1/tokens", json={"name": "x", "scopes": ["review"]},
                        headers={"X-CSRF-Token": csrf})
    assert r.status_code == 400 and "coordinator" in r.json()["detail"]
    r = app_client.post("/api/v1/tokens", json={"name": "x", "scopes": ["everything"]},
                        headers={"X-CSRF-Token": csrf})
    assert r.status_code == 400
    with db() as s:
        assert s.scalar(select(ApiToken)) is None


def test_password_reset_link_works_once_and_ends_sessions(app_client, db):
    from console.app import create_app

    add_person(db, "root", Role.ADMIN)
    ava = add_person(db, "ava")
    csrf = sign_in(app_client, "root")
    with TestClient(create_app(), base_url="https://testserver") as ava_browser:
        sign_in(ava_browser, "ava")
        r = app_client.post(f"/api/v1/people/{ava}/password-reset", headers={"X-CSRF-Token": csrf})
        assert r.status_code == 201
        path = "/reset/" + r.json()["url"].rsplit("/reset/", 1)[1]
        assert ava_browser.post(path, data={"password": "short"}).status_code == 400
        assert ava_browser.post(path, data={"password": "a brand new one"}).status_code == 200
        assert ava_browser.get("/api/v1/me").status_code == 401  # every session ended
        assert ava_browser.post(path, data={"password": "and another one"}).status_code == 400
        sign_in(ava_browser, "ava", "a brand new one")
    with db() as s:
        assert s.scalar(select(PasswordReset.used_at)) is not None
        kinds = set(s.scalars(select(Event.kind)))
    assert {"person.password_reset_issued", "person.password_reset"} <= kinds


def test_a_forged_host_header_does_not_change_the_reset_link(app_client, db, monkeypatch):
    from config.settings import get_settings

    add_person(db, "root", Role.ADMIN)
    ava = add_person(db, "ava")
    csrf = sign_in(app_client, "root")
    forged = {"X-CSRF-Token": csrf, "Host": "evil.example", "X-Forwarded-Host": "evil.example"}

    def link() -> str:
        r = app_client.post(f"/api/v1/people/{ava}/password-reset", headers=forged)
        assert r.status_code == 201, r.text
        return r.json()["url"]

    # Unset: the configured web address, whatever the request says
    s = get_settings()
    assert link().startswith(f"http://{s.web_host}:{s.web_port}/reset/")
    # Set: KARTABL_BASE_URL
    monkeypatch.setenv("KARTABL_BASE_URL", "https://kartabl.example.ir/console/")
    get_settings.cache_clear()
    app_client.app.state.settings = get_settings()  # as the web process reads it at start
    assert link().startswith("https://kartabl.example.ir/console/reset/")
    assert "evil" not in link()


def test_base_url_must_be_an_address():
    from pydantic import ValidationError

    from config.settings import Settings

    for bad in ("kartabl.example.ir", "javascript:alert(1)", "https://a b"):
        with pytest.raises(ValidationError):
            Settings(base_url=bad)


def test_only_an_admin_issues_reset_links(app_client, db):
    target = add_person(db, "bob")
    add_person(db, "cora", Role.COORDINATOR)
    csrf = sign_in(app_client, "cora")
    r = app_client.post(f"/api/v1/people/{target}/password-reset", headers={"X-CSRF-Token": csrf})
    assert r.status_code == 403
    with db() as s:
        assert s.scalar(select(PasswordReset)) is None



def test_cli_reset_link_and_revoke(db, session: Session, monkeypatch):
    from typer.testing import CliRunner

    from boot.cli import app as cli
    from config.settings import get_settings

    add_person(db, "ava")
    with db() as s:
        person = s.scalar(select(Person).where(Person.username == "ava"))
        auth.start_session(s, person, settings=get_settings())
        s.commit()
    runner = CliRunner()
    r = runner.invoke(cli, ["person", "reset-password", "ava", "--base-url", "https://k.example"])
    assert r.exit_code == 0 and "https://k.example/reset/" in r.output
    monkeypatch.setenv("KARTABL_BASE_URL", "https://kartabl.example.ir")
    get_settings.cache_clear()
    r = runner.invoke(cli, ["person", "reset-password", "ava"])
    assert r.exit_code == 0 and "https://kartabl.example.ir/reset/" in r.output
    r = runner.invoke(cli, ["person", "revoke-sessions", "ava"])
    assert r.exit_code == 0 and "1 session(s)" in r.output
    r = runner.invoke(cli, ["person", "revoke-sessions", "nobody"])
    assert r.exit_code == 2 and "no person named" in r.output


def test_tokens_expire_by_default(app_client, db):
    add_person(db, "ava")
    csrf = sign_in(app_client, "ava")
    r = app_client.post("/api/v1/tokens", json={"name": "crm", "scopes": ["read"]},
                        headers={"X-CSRF-Token": csrf})
    token, token_id = r.json()["token"], r.json()["id"]
    assert r.json()["expires_at"] is not None
    with db() as s:
        s.get(ApiToken, token_id).expires_at = utcnow() - timedelta(seconds=1)
        s.commit()
    r = app_client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 401


def test_account_page_creates_a_token_shown_once_and_revokes_it(app_client, db):
    add_person(db, "ava")
    csrf = sign_in(app_client, "ava")
    page = app_client.get("/account").text
    assert 'value="review"' not in page  # an agent is never offered the review scope
    r = app_client.post("/account/tokens", data={"name": "crm", "scopes": ["read", "act"],
                                                 "csrf_token": csrf})
    token = re.search(r'<code id="new-token">(kt_[^<]+)</code>', r.text).group(1)
    assert token not in app_client.get("/account").text  # shown once
    bearer = {"Authorization": f"Bearer {token}"}
    assert app_client.get("/api/v1/me", headers=bearer).json()["scopes"] == ["act", "read"]
    with db() as s:
        token_id = s.scalar(select(ApiToken.id))
    r = app_client.post(f"/account/tokens/{token_id}/revoke", data={"csrf_token": csrf},
                        follow_redirects=False)
    assert r.status_code == 303
    assert app_client.get("/api/v1/me", headers=bearer).status_code == 401
    bad = app_client.post("/account/tokens", data={"name": "x", "scopes": ["review"],
                                                   "csrf_token": csrf}, follow_redirects=False)
    # post/redirect/get: the refusal is shown by the page the 303 leads to
    assert bad.status_code == 303 and bad.headers["location"].startswith("/account?failed=")
    shown = app_client.get(bad.headers["location"])
    assert 'id="token-error"' in shown.text and "coordinator" in shown.text
