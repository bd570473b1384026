"""A page route takes a signed-in session only (issue 12, High: a narrow API token sent as
``Authorization: Bearer`` to an HTML route acted with all of its owner's powers and needed
no CSRF token: it minted a full-scope token through ``POST /account/tokens``, approved a
colleague's reply, closed conversations).

The test walks ``app.routes``: every route outside ``/api/v1`` is a page route (401 with a
token, and nothing changes) unless it is listed in :data:`OWN_CREDENTIALS` with the reason
it reads no person's credentials; a route that is neither fails the test. Each page route
is sent its valid request (tables.GET_URLS, tables.REQUESTS, :data:`UNSIGNED`) with the
admin's full-scope token, and the few documented attacks again with a ``reports``-only
token. The ``/api/v1`` twins keep answering per scope.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from sqlalchemy import select

from console import auth
from kartabl.models import ApiToken, Person
from tests.console.security.conftest import Caller, World, changed, routes, snapshot
from tests.console.security.tables import GET_URLS, REQUESTS, STATIC_URLS, UNSAFE, Req, send

# Routes outside /api/v1 that read no person's credentials: a bearer header there is not
# a person's token.
OWN_CREDENTIALS = {
    # Providers call them, authenticated by a secret in the path or their own header.
    ("POST", "/webhooks/sms/receive/{secret}"),
    ("POST", "/webhooks/telegram/{bot_name}"),
    ("POST", "/webhooks/api/{name}"),  # signed with the API channel's secret (HMAC)
    ("POST", "/webhooks/api/{name}/status"),
    ("GET", "/webhooks/meta"), ("POST", "/webhooks/meta"),  # Meta: verify token, signature
    ("POST", "/webhooks/rubika/{bot_name}/{secret}"),
    ("POST", "/webhooks/rubika/{bot_name}/{secret}/receiveUpdate"),
    ("POST", "/webhooks/rubika/{bot_name}/{secret}/receiveInlineMessage"),
    # Prometheus: KARTABL_METRICS_TOKEN, when set (tests/console/test_probes.py).
    ("GET", "/metrics"),
    # The website widget's CORS preflights: no credentials of any kind.
    ("OPTIONS", "/widget/{public_id}/session"),
    ("OPTIONS", "/widget/{public_id}/messages"),
    ("OPTIONS", "/widget/{public_id}/events"),
    ("OPTIONS", "/widget/{public_id}/rating"),
}
# The unsafe page routes no session signs (so tables.REQUESTS has none): valid requests,
# which would sign in or set a password if they got through.
UNSIGNED: dict[tuple[str, str], Req] = {
    ("POST", "/login"): Req("/login", {"username": "root", "password": "whatever-it-is"}),
    ("POST", "/reset/{token}"): Req("/reset/{w.reset_token}", {"password": "a brand new one"}),
    ("POST", "/widget/{public_id}/session"): Req("/widget/wnone/session", {"locale": "fa"}),
    ("POST", "/widget/{public_id}/messages"): Req("/widget/wnone/messages", {
        "client_id": "c-12345678", "text": "x"}),
    ("POST", "/widget/{public_id}/rating"): Req("/widget/wnone/rating", {"seq": 1, "score": 5}),
}


def _page_requests(app: FastAPI) -> tuple[list[tuple[str, Req]], set[tuple[str, str]]]:
    """(method, request) for every page route, and the routes nobody classified."""
    out: list[tuple[str, Req]] = [("GET", Req(u)) for u in STATIC_URLS]
    unknown = set()
    for r in routes(app):
        key = (r.method, r.path)
        if r.path.startswith("/api/v1/") or key in OWN_CREDENTIALS:
            continue
        if r.method == "GET" and r.path in GET_URLS:
            out += [("GET", Req(u)) for u in GET_URLS[r.path]]
        elif r.method in UNSAFE and (req := REQUESTS.get(key) or UNSIGNED.get(key)):
            out.append((r.method, req))
        else:
            unknown.add(key)
    return out, unknown


def _token(db: Any, person_id: int, scopes: list[str]) -> str:
    with db() as s:
        person = s.get(Person, person_id)
        new = auth.create_api_token(s, person, name="page-walk", scopes=scopes)
        s.commit()
        return new.token


def test_every_route_is_api_page_or_its_own(app: FastAPI) -> None:
    pages, unknown = _page_requests(app)
    assert unknown == set(), "routes neither /api/v1, a page with a request, nor listed"
    assert len(pages) > 60
    assert {(r.method, r.path) for r in routes(app)} >= OWN_CREDENTIALS, "gone: unlist them"


def test_a_token_on_any_page_route_gets_401_and_changes_nothing(
    app: FastAPI, world: World, sign_in, db
) -> None:
    admin = sign_in(world.admin, via="token")  # every scope an admin has
    pages, _ = _page_requests(app)
    before = snapshot(db)
    wrong: dict[str, Any] = {}
    for method, req in pages:
        r = send(admin, method, req, world, world.a)
        if r.status_code != 401:
            wrong[f"{method} {req.url}"] = (r.status_code, r.text[:120])
    assert wrong == {}
    assert changed(before, snapshot(db)) == []
    with db() as s:  # the walk never reached a route: the token was not even looked up
        assert s.scalar(select(ApiToken.last_used_at)
                        .where(ApiToken.name == "security-test")) is None


def test_a_reports_token_cannot_mint_approve_or_close_through_pages(
    app: FastAPI, world: World, sign_in, db
) -> None:
    # Given a coordinator's token narrowed to reports
    token = _token(db, world.coord, ["reports"])
    caller = Caller(sign_in(world.coord).client, world.coord, bearer=token)
    caller.client.cookies.clear()
    before = snapshot(db)
    # When it tries the three attacks through the pages
    attacks = [("POST", "/account/tokens"), ("POST", "/replies/{rid}/approve"),
               ("POST", "/conversations/{cid}/close")]
    answers = [send(caller, m, REQUESTS[(m, p)], world, world.a) for m, p in attacks]
    # Then each is 401 and nothing changed
    assert [r.status_code for r in answers] == [401, 401, 401]
    assert "only under /api/v1" in answers[0].json()["detail"]
    assert changed(before, snapshot(db)) == []
    # And the /api/v1 twins answer per scope: the report, but no approval and no token.
    assert caller.request("GET", f"/api/v1/reports?start={world.day_from}"
                                 f"&end={world.day_to}").status_code == 200
    assert send(caller, "POST", REQUESTS[("POST", "/api/v1/replies/{rid}/approve")],
                world, world.a).status_code == 403
    assert send(caller, "POST", REQUESTS[("POST", "/api/v1/tokens")],
                world, world.a).status_code == 403
    assert changed(before, snapshot(db)) == []


def test_a_session_still_reaches_the_pages(world: World, sign_in) -> None:
    """The 401 is the token's: the same page with the session cookie answers."""
    coord = sign_in(world.coord)
    assert coord.request("GET", "/account").status_code == 200
    coord.client.headers["Authorization"] = "Bearer kt_x"
    assert coord.request("GET", "/account").status_code == 401  # a token is never ignored
