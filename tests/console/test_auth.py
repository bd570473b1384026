"""Sign-in, sessions, CSRF, the login rate limit, API tokens and password resets, through
the real app over both databases (TestClient on https://, as the session cookie is Secure)."""

from __future__ import annotations

import hashlib
import re
import statistics
import time
from collections.abc import Iterator
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, text
from sqlalchemy.orm import Session, sessionmaker

from console import auth
from kartabl.models import (
    ApiToken,
    Event,
    LoginAttempt,
    PasswordReset,
    Person,
    Role,
    WebSession,
    utcnow,
)
from kartabl.passwords import hash_password
from tests import factories as f

PASSWORD = "correct horse battery"


@pytest.fixture
def app_client(db: sessionmaker[Session]) -> Iterator[TestClient]:
    from console.app import create_app

    with TestClient(create_app(), base_url="https://testserver") as c:
        yield c


def _person(db: sessionmaker[Session], username: str, role: Role = Role.AGENT, *,
            real_cost: bool = False) -> int:
    """A person with PASSWORD; its hash is cheap to verify unless ``real_cost`` (the
    production argon2 parameters, for the tests that measure what a check costs)."""
    with db() as s:
        p = f.person(s, username, role)
        p.password_hash = hash_password(PASSWORD) if real_cost else f.quick_hash(PASSWORD)
        p.locale = "en"
        s.commit()
        return p.id


def _sign_in(c: TestClient, username: str, password: str = PASSWORD, **form: str) -> str:
    r = c.post("/login", data={"username": username, "password": password, **form},
               follow_redirects=False)
    assert r.status_code == 303, r.text
    page = c.get("/account")
    match = re.search(r'name="csrf_token" value="([0-9a-f]{64})"', page.text)
    assert match, page.text
    return match.group(1)


def test_login_sets_a_hardened_cookie_and_stores_only_its_hash(app_client, db):
    _person(db, "ava")
    r = app_client.post("/login", data={"username": "ava", "password": PASSWORD},
                        follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/queues"
    cookie = r.headers["set-cookie"]
    for flag in ("HttpOnly", "Secure", "SameSite=lax", "Path=/"):
        assert flag in cookie
    token = app_client.cookies[auth.SESSION_COOKIE]
    with db() as s:
        stored = s.scalars(select(WebSession.token_hash)).all()
    assert stored == [hashlib.sha256(token.encode()).hexdigest()]
    assert app_client.get("/api/v1/me").json()["username"] == "ava"


@pytest.mark.parametrize("target", ["//evil.example/x", "https://evil.example/", "/\\evil"])
def test_login_never_redirects_off_site(app_client, db, target):
    _person(db, "ava")
    r = app_client.post("/login", data={"username": "ava", "password": PASSWORD, "next": target},
                        follow_redirects=False)
    assert r.headers["location"] == "/queues"


def test_login_from_another_site_is_refused(app_client, db):
    _person(db, "ava")
    r = app_client.post("/login", data={"username": "ava", "password": PASSWORD},
                        headers={"Origin": "https://evil.example"}, follow_redirects=False)
    assert r.status_code == 403 and auth.SESSION_COOKIE not in app_client.cookies


def test_an_unknown_username_costs_what_a_known_one_costs(app_client, db):
    """No timing oracle: an unknown username is checked against a dummy argon2 hash."""
    _person(db, "ava", real_cost=True)  # as every production hash: the costs compared

    def median_s(username: str) -> float:
        times = []
        for _ in range(3):  # under the per-address limit of five
            started = time.perf_counter()
            r = app_client.post("/login", data={"username": username, "password": "x" * 9})
            times.append(time.perf_counter() - started)
            assert r.status_code == 400
        return statistics.median(times)

    median_s("nobody-here")  # the dummy hash is made once per process: not measured
    known, unknown = median_s("ava"), median_s("nobody-either")
    assert unknown >= 0.5 * known, (unknown, known)


def test_wrong_password_and_unknown_user_look_alike(app_client, db):
    _person(db, "ava")
    wrong = app_client.post("/login", data={"username": "ava", "password": "nope-nope"})
    unknown = app_client.post("/login", data={"username": "bob", "password": "nope-nope"})
    assert wrong.status_code == unknown.status_code == 400
    for r in (wrong, unknown):
        assert "wrong username or password" in r.text


def test_login_is_rate_limited_per_username_and_address_even_with_the_right_password(
    app_client, db, settings, monkeypatch
):
    # The failures also slow the username down (1 s by default; that wait is the next
    # test's subject): a short one here
    monkeypatch.setenv("KARTABL_LOGIN_SLOW_DOWN_S", "0.05")
    from config.settings import get_settings

    get_settings.cache_clear()
    _person(db, "ava")
    for _ in range(settings.login_max_failures):
        r = app_client.post("/login", data={"username": "ava", "password": "x" * 9})
        assert r.status_code == 400
    r = app_client.post("/login", data={"username": "ava", "password": PASSWORD},
                        follow_redirects=False)
    assert r.status_code == 429 and "too many" in r.text
    assert auth.SESSION_COOKIE not in app_client.cookies
    # The window passes: the failures no longer count.
    with db() as s:
        s.execute(text("UPDATE login_attempt SET at = :t"),
                  {"t": (utcnow() - timedelta(hours=1)).replace(tzinfo=None)})
        s.commit()
    _sign_in(app_client, "ava")


def _from(address: str) -> TestClient:
    """A browser at ``address`` (the address the rate limits count by)."""
    from console.app import create_app

    return TestClient(create_app(), base_url="https://testserver", client=(address, 50000))


def test_failures_from_many_addresses_slow_the_owner_down_but_never_lock_them_out(
    db, settings, monkeypatch
):
    monkeypatch.setenv("KARTABL_LOGIN_SLOW_DOWN_S", "0.4")
    from config.settings import get_settings

    get_settings.cache_clear()
    _person(db, "ava")
    # Given five failures, each from an address of its own
    for i in range(settings.login_max_failures):
        r = _from(f"10.0.0.{i}").post("/login", data={"username": "ava", "password": "x" * 9})
        assert r.status_code == 400, r.text
    # When the owner signs in from a sixth address with the right password
    owner = _from("10.0.0.200")
    started = time.monotonic()
    r = owner.post("/login", data={"username": "ava", "password": PASSWORD},
                                 follow_redirects=False)
    waited = time.monotonic() - started
    # Then they are in, after a wait (the username is slowed down, not locked)
    assert r.status_code == 303, r.text
    assert auth.SESSION_COOKIE in r.cookies
    assert waited >= 0.4
    # And the wait grows with further failures, at most 4 times the setting
    with db() as s:
        s.add_all([LoginAttempt(username="ava", ip=f"10.1.0.{i}", ok=False) for i in range(9)])
        s.commit()
        assert auth.login_delay(s, "ava", settings=get_settings()) == pytest.approx(1.6)
        assert auth.login_delay(s, "bob", settings=get_settings()) == 0


def test_login_is_rate_limited_per_client_address(app_client, db, monkeypatch):
    monkeypatch.setenv("KARTABL_LOGIN_MAX_FAILURES_PER_IP", "3")
    from config.settings import get_settings

    get_settings.cache_clear()
    app_client.app.state.settings = get_settings()  # as the web process reads it at start
    _person(db, "ava")
    for name in ("x1", "x2", "x3"):
        app_client.post("/login", data={"username": name, "password": "x" * 9})
    r = app_client.post("/login", data={"username": "ava", "password": PASSWORD})
    assert r.status_code == 429
    with db() as s:
        assert s.scalar(select(LoginAttempt).where(LoginAttempt.ok.is_(True))) is None


def test_state_changes_need_the_csrf_token(app_client, db):
    _person(db, "ava")
    csrf = _sign_in(app_client, "ava")
    assert app_client.post("/logout", follow_redirects=False).status_code == 403
    assert app_client.post("/api/v1/sessions/revoke", json={}).status_code == 403
    bad = app_client.post("/api/v1/sessions/revoke", json={}, headers={"X-CSRF-Token": "0" * 64})
    assert bad.status_code == 403
    assert app_client.get("/api/v1/me").status_code == 200  # still signed in: nothing changed
    r = app_client.post("/logout", data={"csrf_token": csrf}, follow_redirects=False)
    assert r.status_code == 303
    assert app_client.get("/api/v1/me").status_code == 401


def test_logout_is_not_a_get(app_client, db):
    _person(db, "ava")
    _sign_in(app_client, "ava")
    assert app_client.get("/logout").status_code == 405
    assert app_client.get("/api/v1/me").status_code == 200


def test_csrf_token_of_one_session_does_not_work_for_another(app_client, db):
    from console.app import create_app

    _person(db, "ava")
    csrf_a = _sign_in(app_client, "ava")
    with TestClient(create_app(), base_url="https://testserver") as other:
        _sign_in(other, "ava")
        r = other.post("/api/v1/sessions/revoke", json={}, headers={"X-CSRF-Token": csrf_a})
        assert r.status_code == 403


def test_revoking_every_other_session(app_client, db):
    from console.app import create_app

    _person(db, "ava")
    csrf = _sign_in(app_client, "ava")
    with TestClient(create_app(), base_url="https://testserver") as laptop:
        _sign_in(laptop, "ava")
        r = app_client.post("/api/v1/sessions/revoke", json={"scope": "others"},
                            headers={"X-CSRF-Token": csrf})
        assert r.json() == {"revoked": 1}
        assert laptop.get("/api/v1/me").status_code == 401
    assert app_client.get("/api/v1/me").status_code == 200


def test_an_agent_cannot_revoke_someone_elses_sessions(app_client, db):
    other = _person(db, "bob")
    _person(db, "ava")
    csrf = _sign_in(app_client, "ava")
    r = app_client.post("/api/v1/sessions/revoke", json={"person_id": other},
                        headers={"X-CSRF-Token": csrf})
    assert r.status_code == 403


def test_a_deactivated_person_is_signed_out(app_client, db):
    pid = _person(db, "ava")
    _sign_in(app_client, "ava")
    with db() as s:
        s.get(Person, pid).active = False
        s.commit()
    assert app_client.get("/api/v1/me").status_code == 401
    assert app_client.get("/account", follow_redirects=False).headers["location"].startswith(
        "/login?next=%2Faccount"
    )


def test_api_tokens_are_scoped_hashed_and_revocable(app_client, db):
    _person(db, "ava")
    csrf = _sign_in(app_client, "ava")
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
    _person(db, "ava")
    csrf = _sign_in(app_client, "ava")
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

    _person(db, "root", Role.ADMIN)
    ava = _person(db, "ava")
    csrf = _sign_in(app_client, "root")
    with TestClient(create_app(), base_url="https://testserver") as ava_browser:
        _sign_in(ava_browser, "ava")
        r = app_client.post(f"/api/v1/people/{ava}/password-reset", headers={"X-CSRF-Token": csrf})
        assert r.status_code == 201
        path = "/reset/" + r.json()["url"].rsplit("/reset/", 1)[1]
        assert ava_browser.post(path, data={"password": "short"}).status_code == 400
        assert ava_browser.post(path, data={"password": "a brand new one"}).status_code == 200
        assert ava_browser.get("/api/v1/me").status_code == 401  # every session ended
        assert ava_browser.post(path, data={"password": "and another one"}).status_code == 400
        _sign_in(ava_browser, "ava", "a brand new one")
    with db() as s:
        assert s.scalar(select(PasswordReset.used_at)) is not None
        kinds = set(s.scalars(select(Event.kind)))
    assert {"person.password_reset_issued", "person.password_reset"} <= kinds


def test_a_forged_host_header_does_not_change_the_reset_link(app_client, db, monkeypatch):
    from config.settings import get_settings

    _person(db, "root", Role.ADMIN)
    ava = _person(db, "ava")
    csrf = _sign_in(app_client, "root")
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
    target = _person(db, "bob")
    _person(db, "cora", Role.COORDINATOR)
    csrf = _sign_in(app_client, "cora")
    r = app_client.post(f"/api/v1/people/{target}/password-reset", headers={"X-CSRF-Token": csrf})
    assert r.status_code == 403
    with db() as s:
        assert s.scalar(select(PasswordReset)) is None


def test_pages_redirect_to_login_and_htmx_gets_hx_redirect(app_client):
    r = app_client.get("/account", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/login?next=%2Faccount"
    r = app_client.get("/account", headers={"HX-Request": "true"}, follow_redirects=False)
    assert r.status_code == 401 and r.headers["HX-Redirect"].startswith("/login")


def test_security_headers(app_client):
    r = app_client.get("/login")
    assert "script-src 'self'" in r.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["cache-control"] == "no-store"


def test_persian_is_the_default_and_rtl(app_client):
    page = app_client.get("/login").text
    assert 'lang="fa" dir="rtl"' in page and "ورود" in page
    english = app_client.get("/login", headers={"Accept-Language": "en-US,en;q=0.9"}).text
    assert 'lang="en" dir="ltr"' in english


def test_cli_reset_link_and_revoke(db, session: Session, monkeypatch):
    from typer.testing import CliRunner

    from boot.cli import app as cli
    from config.settings import get_settings

    _person(db, "ava")
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
    _person(db, "ava")
    csrf = _sign_in(app_client, "ava")
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
    _person(db, "ava")
    csrf = _sign_in(app_client, "ava")
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
                                                   "csrf_token": csrf})
    assert bad.status_code == 400 and "coordinator" in bad.text
