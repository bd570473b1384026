"""CSRF on every state change (threats.md: state changes on GET make CSRF possible; the
issue: "CSRF protection on every state change").

The test walks ``app.routes``: every POST/PUT/PATCH/DELETE route that signs its caller in
through the session cookie (it depends on :func:`console.deps.optional_principal`) must be
in :data:`REQUESTS`, and is sent by a signed-in admin with no CSRF token, with a wrong one
(as header and as form field) and with another session's: 403 every time, and not one row
of the database changes. Then the same request with the right token gets past the check, so
the 403 was the token's. A new unsafe route that is neither cookie-signed nor a listed
exemption fails the test until someone decides which it is.

Pages and API alike: the API's own table (tests/console/api/test_api_access.py) checks its
routes with the header missing; this one covers the pages too, the form field, and a
token that belongs to someone else.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from tests.console.security.conftest import World, changed, routes, snapshot
from tests.console.security.tables import EXEMPT, REQUESTS, UNSAFE, send


def unsafe_routes(app: FastAPI) -> tuple[set[tuple[str, str]], set[tuple[str, str]]]:
    """(cookie-signed, neither cookie-signed nor exempt) unsafe routes."""
    signed, unknown = set(), set()
    for r in routes(app):
        if r.method not in UNSAFE:
            continue
        key = (r.method, r.path)
        if r.cookie_auth:
            signed.add(key)
        elif key not in EXEMPT:
            unknown.add(key)
    return signed, unknown


def test_every_unsafe_route_is_classified(app: FastAPI) -> None:
    signed, unknown = unsafe_routes(app)
    assert unknown == set(), "unsafe routes neither cookie-signed nor exempt: classify them"
    assert signed - set(REQUESTS) == set(), "cookie-signed unsafe routes without a request"
    assert set(REQUESTS) - signed == set(), "requests for routes that are gone"
    assert len(signed) >= 35
    # An exempt route must really not read the session: else it needs the CSRF check.
    exempt_signed = {(r.method, r.path) for r in routes(app) if r.cookie_auth} & EXEMPT
    assert exempt_signed == set()


CSRF_REFUSAL = "the CSRF token is missing or wrong"  # console.deps: pages and API alike


def _is_csrf_refusal(r: Any) -> bool:
    if r.status_code != 403:
        return False
    if r.headers.get("content-type", "").startswith("application/json"):
        return CSRF_REFUSAL in r.json()["detail"]
    return CSRF_REFUSAL in r.text


def test_every_cookie_signed_change_needs_the_csrf_token(
    app: FastAPI, world: World, sign_in, db
) -> None:
    signed, _ = unsafe_routes(app)
    admin = sign_in(world.admin)
    other = sign_in(world.coord)  # a valid token, of another session
    before = snapshot(db)
    wrong: dict[str, Any] = {}
    for method, path in sorted(signed):
        req = REQUESTS[(method, path)]
        attempts = {
            "none": send(admin, method, req, world, world.a),
            "wrong header": send(admin, method, req, world, world.a, csrf="0" * 64),
            "other session's": send(admin, method, req, world, world.a, csrf=other.csrf),
        }
        if not path.startswith("/api/"):
            attempts["wrong field"] = send(admin, method, req, world, world.a, csrf="0" * 64,
                                           csrf_in="form")
            attempts["other session's field"] = send(admin, method, req, world, world.a,
                                                     csrf=other.csrf, csrf_in="form")
        for how, r in attempts.items():
            if not _is_csrf_refusal(r):
                wrong[f"{method} {path} ({how})"] = (r.status_code, r.text[:200])
    assert wrong == {}
    assert changed(before, snapshot(db)) == []

    # With its own token, each request gets past the check (a fresh session each: some of
    # them sign out or revoke sessions). The workflow may still refuse the step itself.
    refused = {}
    for method, path in sorted(signed):
        fresh = sign_in(world.admin)
        how = "form" if not path.startswith("/api/") else "header"
        r = send(fresh, method, REQUESTS[(method, path)], world, world.a, csrf=fresh.csrf,
                 csrf_in=how)
        if _is_csrf_refusal(r) or r.status_code >= 500:
            refused[f"{method} {path}"] = (r.status_code, r.text[:200])
    assert refused == {}


def test_a_bearer_token_needs_no_csrf_token_but_a_cookie_never_rides_along(
    app: FastAPI, world: World, sign_in, db
) -> None:
    """A request with a bad bearer token is refused (401) even with a valid session cookie:
    the cookie is never the fallback, so a cross-site request cannot add a header to skip
    the CSRF check."""
    admin = sign_in(world.admin)
    before = snapshot(db)
    for method, path in (("POST", "/api/v1/conversations/{cid}/notes"),
                         ("POST", "/conversations/{cid}/notes")):
        req = REQUESTS[(method, path)]
        url, body = req.fill(world, world.a)
        kw: dict[str, Any] = {"json": body} if url.startswith("/api/") else {"data": body}
        r = admin.client.request(method, url, headers={"Authorization": "Bearer kt_forged"},
                                 follow_redirects=False, **kw)
        assert r.status_code == 401, (url, r.status_code)
    assert changed(before, snapshot(db)) == []
