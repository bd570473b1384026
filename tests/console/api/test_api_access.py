"""Who may call what, for every route of the JSON API, from one table (:data:`CASES`):

- unsigned: 401, for every route;
- a cookie-signed change without its X-CSRF-Token header: 403, nothing stored;
- a token without the route's scope: 403 naming the scope; with that scope alone, every
  GET is answered (200) and changes nothing;
- IDOR: an agent of team A on team B's conversation, reply, customer, queue, token and
  person gets the status in the table, nothing changes, and no answer carries team B's data.

:func:`test_every_api_route_is_in_the_table` walks ``app.routes`` and fails when an
``/api/v1`` route has no case here, so a new endpoint cannot skip these checks. Each check is
one loop over the table per test (one world, not one per row), reporting every failing row.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any

from fastapi import FastAPI, routing
from sqlalchemy.orm import Session, sessionmaker

from console import auth
from tests.console.api.conftest import SECRETS, Api, World, snapshot

TODAY = date.today()
RANGE = f"start={TODAY.replace(day=1).isoformat()}&end={TODAY.isoformat()}"


@dataclass(frozen=True)
class Case:
    method: str
    route: str  # the route's path as declared (what app.routes lists)
    url: str  # formatted with w=World: team B's things for the IDOR check
    body: Any = None
    scope: str | None = None  # the token scope it needs (None: any signed-in caller)
    idor: int = 404  # what an agent of team A gets on team B's thing


C, R, CU = "/api/v1/conversations", "/api/v1/replies", "/api/v1/customers"
CASES: list[Case] = [
    # queues: agents get their own scope (200, without team B's rows), or 403 for B's queue
    Case("GET", "/api/v1/queues", "/api/v1/queues", scope="read", idor=200),
    *(Case("GET", "/api/v1/queues/{name}", f"/api/v1/queues/{name}", scope="read", idor=200)
      for name in ("triage", "approval", "mine", "open", "overdue", "open?team_id={w.team_b}",
                   "scheduled")),
    Case("GET", "/api/v1/queues/{name}", "/api/v1/queues/team:{w.team_b}", scope="read",
         idor=403),
    # the conversation and its steps
    Case("GET", C + "/{cid}", C + "/{w.conv_b}", scope="read"),
    Case("POST", C + "/{cid}/assign", C + "/{w.conv_b}/assign", {"person_id": "{w.agent_a}"},
         scope="act"),
    Case("POST", C + "/{cid}/refer", C + "/{w.conv_b}/refer",
         {"person_id": "{w.agent_a}", "note": "mine now"}, scope="act"),
    Case("POST", C + "/{cid}/close", C + "/{w.conv_b2}/close", scope="act"),
    Case("POST", C + "/bulk", C + "/bulk", {"action": "close", "ids": ["{w.conv_b2}"]},
         scope="act"),
    Case("POST", C + "/{cid}/reopen", C + "/{w.conv_b}/reopen", scope="act"),
    Case("POST", C + "/{cid}/notes", C + "/{w.conv_b}/notes", {"text": "peek"}, scope="act"),
    Case("POST", C + "/{cid}/waiting", C + "/{w.conv_b2}/waiting", scope="act"),
    Case("POST", C + "/{cid}/snooze", C + "/{w.conv_b2}/snooze",
         {"until": "2030-01-01T09:00:00+00:00"}, scope="act"),
    Case("POST", C + "/{cid}/resume", C + "/{w.conv_b}/resume", scope="act"),
    Case("POST", C + "/{cid}/replies", C + "/{w.conv_b}/replies", {"body": "hi"}, scope="act"),
    Case("POST", C + "/{cid}/preview", C + "/{w.conv_b}/preview", {"body": "hi"},
         scope="read"),
    # starting one: in team B (403: teams are no secret), or to team B's customer's address
    Case("POST", C, C, {"kind": "phone", "address": "09121110003", "body": "hi",
                        "team_id": "{w.team_b}"}, scope="act", idor=403),
    Case("POST", C, C, {"kind": "email", "address": "secret.b@example.ir", "subject": "s",
                        "body": "hi"}, scope="act", idor=403),
    # replies (approve and reject need the review scope, which no agent's token can carry)
    Case("GET", R + "/{rid}", R + "/{w.pending_b}", scope="read"),
    Case("PATCH", R + "/{rid}", R + "/{w.draft_b}", {"body": "changed"}, scope="act"),
    Case("POST", R + "/{rid}/submit", R + "/{w.draft_b}/submit", scope="act"),
    Case("POST", R + "/{rid}/approve", R + "/{w.pending_b}/approve", scope="review", idor=403),
    Case("POST", R + "/{rid}/reject", R + "/{w.pending_b}/reject", {"comment": "no"},
         scope="review", idor=403),
    # scheduled send (console/api/schedule.py)
    Case("PUT", R + "/{rid}/schedule", R + "/{w.draft_b}/schedule",
         {"send_at": "2027-06-01T10:00:00+03:30"}, scope="act"),
    Case("DELETE", R + "/{rid}/schedule", R + "/{w.pending_b}/schedule", scope="act"),
    Case("POST", R + "/{rid}/send-now", R + "/{w.pending_b}/send-now", scope="act"),
    Case("POST", R + "/{rid}/back-to-draft", R + "/{w.pending_b}/back-to-draft", scope="act"),
    Case("POST", "/api/v1/preview", "/api/v1/preview", {"channel": "sms", "body": "hi"},
         scope="read", idor=200),
    # customers: search finds nothing of team B; the rest is 404
    *(Case("GET", CU, CU + "?q=" + q, scope="read", idor=200)
      for q in ("Secret Customer B", "secret.b@example.ir", "tag:vip")),
    Case("GET", CU + "/{customer_id}", CU + "/{w.customer_b}", scope="read"),
    # search inside messages: nothing of team B, even asked for by team
    *(Case("GET", "/api/v1/search", "/api/v1/search?q=" + q, scope="read", idor=200)
      for q in ("secret text", "sales secret", "secret&team_id={w.team_b}")),
    Case("POST", CU + "/{customer_id}/tags", CU + "/{w.customer_b}/tags", {"tag": "x"},
         scope="customers"),
    Case("DELETE", CU + "/{customer_id}/tags", CU + "/{w.customer_b}/tags?tag=vip",
         scope="customers"),
    Case("POST", CU + "/{customer_id}/identities", CU + "/{w.customer_b}/identities",
         {"kind": "email", "address": "new@example.ir"}, scope="customers"),
    Case("GET", CU + "/{customer_id}/merge-preview",
         CU + "/{w.customer_b}/merge-preview?into={w.customer_a}", scope="read"),
    Case("GET", CU + "/{customer_id}/merge-preview",
         CU + "/{w.customer_a}/merge-preview?into={w.customer_b}", scope="read"),
    Case("POST", CU + "/{customer_id}/merge", CU + "/{w.customer_b}/merge",
         {"into": "{w.customer_a}"}, scope="merge"),
    Case("POST", CU + "/{customer_id}/merge", CU + "/{w.customer_a}/merge",
         {"into": "{w.customer_b}"}, scope="merge"),
    # the cartable's counts (no row in them): any reader
    Case("GET", "/api/v1/status", "/api/v1/status", scope="read", idor=200),
    # reports: an agent's own scope
    Case("GET", "/api/v1/reports", "/api/v1/reports?" + RANGE, scope="reports", idor=200),
    Case("GET", "/api/v1/reports.csv", "/api/v1/reports.csv?" + RANGE, scope="reports",
         idor=200),
    # canned responses: team B's is not there for team A's agent; managing them needs the
    # coordinators' review scope (403 for an agent before any lookup)
    Case("GET", "/api/v1/canned", "/api/v1/canned", scope="read", idor=200),
    Case("GET", "/api/v1/canned/{canned_id}", "/api/v1/canned/{w.canned_b}", scope="read"),
    Case("POST", "/api/v1/canned", "/api/v1/canned", {"name": "n", "shortcut": "n",
         "body_en": "x", "team_id": "{w.team_b}"}, scope="review", idor=403),
    Case("PATCH", "/api/v1/canned/{canned_id}", "/api/v1/canned/{w.canned_b}", {"name": "n"},
         scope="review", idor=403),
    Case("DELETE", "/api/v1/canned/{canned_id}", "/api/v1/canned/{w.canned_b}",
         scope="review", idor=403),
    Case("POST", C + "/{cid}/canned/expand", C + "/{w.conv_b}/canned/expand",
         {"shortcut": "sales-canned"}, scope="act"),
    Case("POST", C + "/{cid}/canned/expand", C + "/{w.conv_a}/canned/expand",
         {"canned_id": "{w.canned_b}"}, scope="act"),
    # merging and splitting conversations (console/api/merge.py): 404 on team B's
    Case("POST", C + "/{cid}/merge", C + "/{w.conv_b2}/merge", {"into": "{w.conv_b}"},
         scope="act"),
    Case("POST", C + "/{cid}/merge", C + "/{w.conv_a}/merge", {"into": "{w.conv_b}"},
         scope="act"),
    Case("POST", C + "/{cid}/split", C + "/{w.conv_b}/split", {"message_id": "{w.conv_b}"},
         scope="act"),
    Case("POST", "/api/v1/merges/{merge_id}/undo", "/api/v1/merges/99999/undo", scope="act"),
    # notifications: one's own only (another's is a 404 like a missing one)
    Case("GET", "/api/v1/notifications", "/api/v1/notifications", scope="read", idor=200),
    Case("POST", "/api/v1/notifications/{nid}/read", "/api/v1/notifications/{w.notice_b}/read",
         scope="read"),
    Case("POST", "/api/v1/notifications/read-all", "/api/v1/notifications/read-all",
         scope="read", idor=200),
    # the account routes (console/api/account.py): one's own only
    Case("GET", "/api/v1/me", "/api/v1/me", idor=200),
    Case("GET", "/api/v1/tokens", "/api/v1/tokens", idor=200),
    Case("POST", "/api/v1/tokens", "/api/v1/tokens",
         {"name": "x", "scopes": ["read"], "person_id": "{w.agent_b}"}, idor=403),
    Case("DELETE", "/api/v1/tokens/{token_id}", "/api/v1/tokens/{b_token}"),
    Case("POST", "/api/v1/sessions/revoke", "/api/v1/sessions/revoke",
         {"scope": "all", "person_id": "{w.agent_b}"}, idor=403),
    Case("POST", "/api/v1/people/{person_id}/password-reset",
         "/api/v1/people/{w.agent_b}/password-reset", idor=403),
]
# Unsigned on purpose: none (/api/v1/status needs sign-in since issue 12: counts are not
# public either).
PUBLIC: set[tuple[str, str]] = set()


def _fill(value: Any, w: World, b_token: int) -> Any:
    if isinstance(value, str):
        text = value.format(w=w, b_token=b_token)
        return int(text) if value.startswith("{") and text.isdigit() else text
    if isinstance(value, dict):
        return {k: _fill(v, w, b_token) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, w, b_token) for v in value]
    return value


def _b_token(db: sessionmaker[Session], w: World) -> int:
    from sqlalchemy import select

    from kartabl.models import ApiToken

    with db() as s:
        return s.scalars(select(ApiToken.id).where(ApiToken.person_id == w.agent_b)).one()


def _call(caller: Api, case: Case, w: World, b_token: int) -> Any:
    return caller.request(case.method, _fill(case.url, w, b_token),
                          _fill(case.body, w, b_token))


def _api_routes(app: FastAPI) -> dict[tuple[str, str], str]:
    """(method, path) -> the endpoint's module, for every /api/v1 route of the app. FastAPI
    0.16x keeps included routers nested in ``app.routes``; ``iter_route_contexts`` flattens
    them (older versions list the routes themselves)."""
    contexts: Any = getattr(routing, "iter_route_contexts", lambda routes: routes)(app.routes)
    found = {}
    for r in contexts:
        path, methods = getattr(r, "path", None), getattr(r, "methods", None) or set()
        if isinstance(path, str) and path.startswith("/api/v1"):
            for m in methods - {"HEAD"}:
                found[(m, path)] = r.endpoint.__module__
    return found


def test_every_api_route_is_in_the_table(app: FastAPI) -> None:
    routes = _api_routes(app)
    covered = {(c.method, c.route) for c in CASES}
    assert len(routes) > 30
    assert set(routes) - covered - PUBLIC == set(), "API routes without access cases"
    assert covered - set(routes) == set(), "cases for routes that no longer exist"
    # every route of the cartable's own modules declares the scope it needs
    ours = {key for key, module in routes.items() if module in (
        "console.api.conversations", "console.api.customers", "console.api.reports",
        "console.api.bulk")}
    assert len(ours) == 26
    assert all(c.scope for c in CASES if (c.method, c.route) in ours)


def test_unsigned_calls_get_401_everywhere(client, world, db) -> None:
    b_token = _b_token(db, world)
    before = snapshot(db)
    anonymous = Api(client)
    wrong = []
    for case in CASES:
        r = _call(anonymous, case, world, b_token)
        if r.status_code != 401 or "sign in" not in r.json()["detail"]:
            wrong.append((case.method, case.url, r.status_code, r.text[:200]))
        bad = Api(client, {"Authorization": "Bearer kt_not-a-token"})
        r = _call(bad, case, world, b_token)
        if r.status_code != 401 or r.headers.get("www-authenticate") != "Bearer":
            wrong.append(("bad token", case.method, case.url, r.status_code))
    assert wrong == []
    assert snapshot(db) == before


def test_the_status_is_counts_only_and_not_public(client, world, api) -> None:
    assert client.get("/api/v1/status").status_code == 401
    r = api(world.agent_a, "read").get("/api/v1/status")
    assert r.status_code == 200 and r.json()["messages_in"] >= 1
    assert not any(s in r.text for s in SECRETS)


def test_a_cookie_signed_change_without_the_csrf_header_is_refused(browser, world, db) -> None:
    b_token = _b_token(db, world)
    no_csrf = browser("maryam", csrf=False)  # a coordinator: allowed everything else
    before = snapshot(db)
    wrong = []
    for case in CASES:
        if case.method == "GET":
            continue
        r = _call(no_csrf, case, world, b_token)
        if r.status_code != 403 or "CSRF" not in r.json()["detail"]:
            wrong.append((case.method, case.url, r.status_code, r.text[:200]))
    assert wrong == []
    assert snapshot(db) == before
    # the same session reads without the header (a GET changes nothing)
    assert no_csrf.get(f"/api/v1/conversations/{world.conv_b}").status_code == 200


def test_a_token_without_the_scope_is_refused_and_with_it_alone_is_not(api, world, db) -> None:
    b_token = _b_token(db, world)
    every = sorted(auth.SCOPES)
    without = {s: api(world.coord, *[x for x in every if x != s]) for s in every}
    only = {s: api(world.coord, s) for s in every}
    before = snapshot(db)
    wrong = []
    for case in CASES:
        if case.scope is None:
            continue
        r = _call(without[case.scope], case, world, b_token)
        if r.status_code != 403 or f"lacks the {case.scope!r} scope" not in r.json()["detail"]:
            wrong.append(("without", case.method, case.url, r.status_code, r.text[:200]))
    assert wrong == []
    assert snapshot(db) == before  # refused before anything ran
    for case in CASES:
        if case.scope is None or case.method != "GET":
            continue
        r = _call(only[case.scope], case, world, b_token)
        if r.status_code != 200:
            wrong.append(("only", case.method, case.url, r.status_code, r.text[:200]))
    assert wrong == []
    assert snapshot(db) == before  # and every GET, answered, changed nothing


def _idor(caller: Api, world: World, db: sessionmaker[Session], b_token: int) -> list[Any]:
    wrong = []
    for case in CASES:
        r = _call(caller, case, world, b_token)
        leaked = [s for s in SECRETS if s in r.text]
        if r.status_code != case.idor or leaked:
            wrong.append((case.method, case.url, r.status_code, leaked, r.text[:200]))
    return wrong


def test_an_agent_of_team_a_cannot_reach_team_b_by_token(api, world, db) -> None:
    b_token = _b_token(db, world)
    agent_a = api(world.agent_a)  # every scope an agent's token may have, merge included
    before = snapshot(db)
    assert _idor(agent_a, world, db, b_token) == []
    assert snapshot(db) == before


def test_an_agent_of_team_a_cannot_reach_team_b_in_the_browser(browser, world, db) -> None:
    """The same table by session cookie with the CSRF header, and the same answers: where
    a token is refused as a token (a new token, a password reset), the session is refused
    as an agent (only an admin makes tokens for others or resets passwords)."""
    b_token = _b_token(db, world)
    agent_a = browser("ali")
    before = snapshot(db)
    assert _idor(agent_a, world, db, b_token) == []
    assert snapshot(db) == before


def test_team_b_never_appears_in_any_listing_or_count_of_team_a(api, world) -> None:
    coord, agent_a = api(world.coord), api(world.agent_a)
    mine = {world.conv_a}
    queues = agent_a.get("/api/v1/queues").json()
    names = [q["name"] for q in queues]
    assert names == ["triage", "approval", "mine", f"team:{world.team_a}", "open", "overdue",
                     "scheduled", "waiting", "snoozed"]
    counts = {q["name"]: q["count"] for q in queues}
    assert counts == {"triage": 0, "approval": 0, "mine": 1, f"team:{world.team_a}": 1,
                      "open": 1, "overdue": 1, "scheduled": 0, "waiting": 0, "snoozed": 0}
    for name in names:
        rows = agent_a.get(f"/api/v1/queues/{name}").json()["rows"]
        assert {r["conversation_id"] for r in rows} <= mine, name
    # the control: a coordinator sees team B's conversation in the same queues
    listed: Callable[[str], set[int]] = lambda name: {  # noqa: E731
        r["conversation_id"] for r in coord.get(f"/api/v1/queues/{name}").json()["rows"]}
    assert world.conv_b in listed("open") & listed("overdue") & listed("approval")
    assert world.conv_b in listed(f"team:{world.team_b}")
    assert world.conv_b2 in listed("triage")  # team B's, unassigned: B's agents pick it up
    hits = coord.get("/api/v1/customers", params={"q": "Secret Customer B"}).json()
    assert [h["id"] for h in hits] == [world.customer_b]
    assert agent_a.get("/api/v1/customers", params={"q": "Secret Customer B"}).json() == []
