"""Sign-in, sessions, CSRF, the login rate limit and the pages' guards, through the real app
over both databases (TestClient on https://, as the session cookie is Secure). API tokens and
password resets: test_auth_credentials.py."""

from __future__ import annotations

import hashlib
import re
import statistics
import time
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, text

from console import auth
from kartabl.models import (
    LoginAttempt,
    Person,
    WebSession,
    utcnow,
)
from tests.console.conftest import PASSWORD, add_person, sign_in


def test_login_sets_a_hardened_cookie_and_stores_only_its_hash(app_client, db):
    add_person(db, "ava")
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
    add_person(db, "ava")
    r = app_client.post("/login", data={"username": "ava", "password": PASSWORD, "next": target},
                        follow_redirects=False)
    assert r.headers["location"] == "/queues"


def test_login_from_another_site_is_refused(app_client, db):
    add_person(db, "ava")
    r = app_client.post("/login", data={"username": "ava", "password": PASSWORD},
                        headers={"Origin": "https://evil.example"}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/login?")
    assert auth.SESSION_COOKIE not in app_client.cookies
    # The sign-in page says why, and keeps no username the other site chose.
    page = app_client.get(r.headers["location"])
    assert 'data-refused="csrf"' in page.text and 'value="ava"' not in page.text


def refused_code(r) -> str:
    """A refused sign-in answers 303 back to /login (post/redirect/get), which says why:
    the code of the notice it shows, "" for none."""
    assert r.history and r.history[0].status_code == 303, (r.status_code, r.text[:200])
    assert r.url.path == "/login" and r.status_code == 200
    found = re.search(r'data-refused="([a-z_]*)"', r.text)
    return found[1] if found else ""


def test_an_unknown_username_costs_what_a_known_one_costs(app_client, db):
    """No timing oracle: an unknown username is checked against a dummy argon2 hash."""
    add_person(db, "ava", real_cost=True)  # as every production hash: the costs compared

    def median_s(username: str) -> float:
        times = []
        for _ in range(3):  # under the per-address limit of five
            started = time.perf_counter()
            r = app_client.post("/login", data={"username": username, "password": "x" * 9})
            times.append(time.perf_counter() - started)
            assert refused_code(r) == "login_wrong"
        return statistics.median(times)

    median_s("nobody-here")  # the dummy hash is made once per process: not measured
    known, unknown = median_s("ava"), median_s("nobody-either")
    assert unknown >= 0.5 * known, (unknown, known)


def test_wrong_password_and_unknown_user_look_alike(app_client, db):
    add_person(db, "ava")
    wrong = app_client.post("/login", data={"username": "ava", "password": "nope-nope"})
    unknown = app_client.post("/login", data={"username": "bob", "password": "nope-nope"})
    assert refused_code(wrong) == refused_code(unknown) == "login_wrong"
    for r, name in ((wrong, "ava"), (unknown, "bob")):
        assert "نام کاربری یا گذرواژه نادرست است." in r.text  # the sign-in page reads Persian
        # the username as typed is kept, the password never
        assert f'value="{name}"' in r.text and "nope-nope" not in r.text
        # a reload shows the same page and submits nothing
        again = app_client.get(r.url)
        assert 'data-refused="login_wrong"' in again.text


def test_a_forged_or_foreign_sign_in_notice_shows_nothing(app_client, db):
    from console.pages.signin import NOTICE_COOKIE

    app_client.cookies.set(NOTICE_COOKIE, "eyJjIjoibG9naW5fd3JvbmciLCJ1IjoieCJ9.00",
                           path="/login")
    page = app_client.get("/login", params={"refused": "login_limited"})
    assert "data-refused" not in page.text and 'id="login-error"' not in page.text


def test_an_expired_or_non_ascii_sign_in_notice_shows_nothing(app_client, db, settings,
                                                              monkeypatch):
    import time as real_time

    from console.pages import signin

    app_client.cookies.clear()
    # A notice this server signed, older than it lives
    then = real_time.time() - signin.NOTICE_S - 5
    monkeypatch.setattr(signin.time, "time", lambda: then)
    old = signin._notice_cookie(settings, "login_wrong", "ava")
    monkeypatch.undo()
    page = app_client.get("/login", headers={"cookie": f"{signin.NOTICE_COOKIE}={old}"})
    assert page.status_code == 200 and "data-refused" not in page.text
    # A cookie with bytes outside ASCII (a header is latin-1): no 500, just no notice
    raw = f"{signin.NOTICE_COOKIE}=eyJjIjoibG9naW5fd3JvbmcifQ.\xe9\xe9".encode("latin-1")
    page = app_client.get("/login", headers={"cookie": raw})
    assert page.status_code == 200 and "data-refused" not in page.text


def test_login_is_rate_limited_per_username_and_address_even_with_the_right_password(
    app_client, db, settings, monkeypatch
):
    # The failures also slow the username down (1 s by default; that wait is the next
    # test's subject): a short one here
    monkeypatch.setenv("KARTABL_LOGIN_SLOW_DOWN_S", "0.05")
    from config.settings import get_settings

    get_settings.cache_clear()
    add_person(db, "ava")
    for _ in range(settings.login_max_failures):
        r = app_client.post("/login", data={"username": "ava", "password": "x" * 9})
        assert refused_code(r) == "login_wrong"
    r = app_client.post("/login", data={"username": "ava", "password": PASSWORD})
    assert refused_code(r) == "login_limited"
    assert "تلاش‌های ناموفق بیش از اندازه بوده است" in r.text
    assert auth.SESSION_COOKIE not in app_client.cookies
    # The window passes: the failures no longer count.
    with db() as s:
        s.execute(text("UPDATE login_attempt SET at = :t"),
                  {"t": (utcnow() - timedelta(hours=1)).replace(tzinfo=None)})
        s.commit()
    sign_in(app_client, "ava")


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
    add_person(db, "ava")
    # Given five failures, each from an address of its own
    for i in range(settings.login_max_failures):
        r = _from(f"10.0.0.{i}").post("/login", data={"username": "ava", "password": "x" * 9})
        assert refused_code(r) == "login_wrong"
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
    add_person(db, "ava")
    for name in ("x1", "x2", "x3"):
        app_client.post("/login", data={"username": name, "password": "x" * 9})
    r = app_client.post("/login", data={"username": "ava", "password": PASSWORD})
    assert refused_code(r) == "login_limited"
    with db() as s:
        assert s.scalar(select(LoginAttempt).where(LoginAttempt.ok.is_(True))) is None


def test_state_changes_need_the_csrf_token(app_client, db):
    add_person(db, "ava")
    csrf = sign_in(app_client, "ava")
    assert app_client.post("/logout", follow_redirects=False).status_code == 403
    assert app_client.post("/api/v1/sessions/revoke", json={}).status_code == 403
    bad = app_client.post("/api/v1/sessions/revoke", json={}, headers={"X-CSRF-Token": "0" * 64})
    assert bad.status_code == 403
    assert app_client.get("/api/v1/me").status_code == 200  # still signed in: nothing changed
    r = app_client.post("/logout", data={"csrf_token": csrf}, follow_redirects=False)
    assert r.status_code == 303
    assert app_client.get("/api/v1/me").status_code == 401


def test_logout_is_not_a_get(app_client, db):
    add_person(db, "ava")
    sign_in(app_client, "ava")
    assert app_client.get("/logout").status_code == 405
    assert app_client.get("/api/v1/me").status_code == 200


def test_csrf_token_of_one_session_does_not_work_for_another(app_client, db):
    from console.app import create_app

    add_person(db, "ava")
    csrf_a = sign_in(app_client, "ava")
    with TestClient(create_app(), base_url="https://testserver") as other:
        sign_in(other, "ava")
        r = other.post("/api/v1/sessions/revoke", json={}, headers={"X-CSRF-Token": csrf_a})
        assert r.status_code == 403


def test_revoking_every_other_session(app_client, db):
    from console.app import create_app

    add_person(db, "ava")
    csrf = sign_in(app_client, "ava")
    with TestClient(create_app(), base_url="https://testserver") as laptop:
        sign_in(laptop, "ava")
        r = app_client.post("/api/v1/sessions/revoke", json={"scope": "others"},
                            headers={"X-CSRF-Token": csrf})
        assert r.json() == {"revoked": 1}
        assert laptop.get("/api/v1/me").status_code == 401
    assert app_client.get("/api/v1/me").status_code == 200


def test_an_agent_cannot_revoke_someone_elses_sessions(app_client, db):
    other = add_person(db, "bob")
    add_person(db, "ava")
    csrf = sign_in(app_client, "ava")
    r = app_client.post("/api/v1/sessions/revoke", json={"person_id": other},
                        headers={"X-CSRF-Token": csrf})
    assert r.status_code == 403


def test_a_deactivated_person_is_signed_out(app_client, db):
    pid = add_person(db, "ava")
    sign_in(app_client, "ava")
    with db() as s:
        s.get(Person, pid).active = False
        s.commit()
    assert app_client.get("/api/v1/me").status_code == 401
    assert app_client.get("/account", follow_redirects=False).headers["location"].startswith(
        "/login?next=%2Faccount"
    )



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

