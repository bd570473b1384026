"""IDOR (threats.md: cross-team reads "through search, AJAX endpoints, IDs guessed in API
calls, and bot tokens"): an agent of team A, signed in by session and again by a full-scope
API token, tries team B's ids on every route that takes one.

The test walks the app's routes: each route (page or API, any method; the token only
under /api/v1, as pages refuse it) with an id in its
path must have a request here, filled with team B's conversation, reply, customer, message
(and attachment key), API token or person. Each answer is 404 or 403, holds none of team B's
words (conftest.SECRETS), and the database is unchanged after it. Ids in bodies and query
strings (merge into, preview a reply, revoke someone's sessions, a token for someone else,
another team's queue) are tried too.

The same agent reaching the same routes with team A's ids is the GET walk
(test_get_is_safe.py: 200 everywhere) and the pages' and API's own tests.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from tests.console.security.conftest import World, changed, leaks, routes, snapshot
from tests.console.security.tables import GET_URLS, REQUESTS, Req, send

# Path parameters that name a row someone owns; a route with one is an IDOR target.
ID_PARAMS = {"cid", "rid", "customer_id", "message_id", "key", "token_id", "person_id",
             "canned_id", "event_id", "nid", "aid", "merge_id"}
# Path parameters that are not ids: a queue's name (team:<id> is tried below), a language,
# a reset link's token (its own secret), a webhook's secret or bot.
OTHER_PARAMS = {"name", "locale", "token", "secret", "bot_name",
                "public_id",  # a website widget's id: public, in the shop's every page
                # a widget's row: no team's, and only an admin's (tests/console/test_widgets.py)
                "widget_id"}

# Ids of team B where the route takes them from the body or the query string (team A's
# own ids in the path).
EXTRA: list[tuple[str, str, Req]] = [
    ("GET", "/api/v1/customers/{customer_id}/merge-preview",
     Req("/api/v1/customers/{w.a.customer}/merge-preview?into={t.customer}")),
    ("GET", "/customers/{customer_id}/merge", Req("/customers/{w.a.customer}/merge?into="
                                                  "{t.customer}")),
    ("POST", "/api/v1/customers/{customer_id}/merge",
     Req("/api/v1/customers/{w.a.customer}/merge", {"into": "{t.customer}"})),
    ("POST", "/customers/{customer_id}/merge",
     Req("/customers/{w.a.customer}/merge", {"into": "{t.customer}"})),
    ("POST", "/conversations/{cid}/preview",
     Req("/conversations/{w.a.conv}/preview", {"reply_id": "{t.pending}", "body": "x"})),
    ("GET", "/messages/{message_id}/attachments/{key}",
     Req("/messages/{w.a.message}/attachments/{t.key}")),
    # team B's reply file through team A's own reply
    ("GET", "/replies/{rid}/attachments/{aid}",
     Req("/replies/{w.a.pending}/attachments/{t.reply_file}")),
    # team B's canned response into team A's own conversation, by id and by shortcut
    ("POST", "/api/v1/conversations/{cid}/canned/expand",
     Req("/api/v1/conversations/{w.a.conv}/canned/expand", {"canned_id": "{t.canned}"})),
    ("POST", "/api/v1/conversations/{cid}/canned/expand",
     Req("/api/v1/conversations/{w.a.conv}/canned/expand",
         {"shortcut": "/sales-secret-canned"})),
    # starting a conversation: team B's customer preselected, or in team B
    ("GET", "/conversations/new", Req("/conversations/new?customer={t.customer}")),
    ("POST", "/api/v1/conversations", Req("/api/v1/conversations", {
        "kind": "phone", "address": "09121110002", "body": "x", "team_id": "{w.team_b}"})),
    # -- merge -- team B's conversation or message through team A's own conversation
    ("GET", "/conversations/{cid}/merge", Req("/conversations/{w.a.conv2}/merge?into={t.conv}")),
    ("POST", "/conversations/{cid}/merge", Req("/conversations/{w.a.conv2}/merge",
                                               {"into": "{t.conv}"})),
    ("POST", "/api/v1/conversations/{cid}/merge", Req("/api/v1/conversations/{w.a.conv2}/merge",
                                                      {"into": "{t.conv}"})),
    ("POST", "/conversations/{cid}/split", Req("/conversations/{w.a.conv}/split",
                                               {"message_id": "{t.message}"})),
    ("POST", "/api/v1/conversations/{cid}/split", Req("/api/v1/conversations/{w.a.conv}/split",
                                                      {"message_id": "{t.message}"})),
    ("GET", "/api/v1/queues/{name}", Req("/api/v1/queues/team:{w.team_b}")),
    ("GET", "/queues", Req("/queues?queue=team:{w.team_b}")),
    ("GET", "/queues/live", Req("/queues/live?queue=team:{w.team_b}")),
    ("POST", "/queues/bulk", Req("/queues/bulk", {"action": "close", "ids": "{t.conv}"})),
    ("POST", "/api/v1/conversations/bulk", Req("/api/v1/conversations/bulk", {
        "action": "close", "ids": ["{t.conv}"]})),
    ("POST", "/api/v1/sessions/revoke",
     Req("/api/v1/sessions/revoke", {"scope": "all", "person_id": "{t.person}"})),
    ("POST", "/api/v1/tokens",
     Req("/api/v1/tokens", {"name": "x", "scopes": ["read"], "person_id": "{t.person}"})),
]
# Listings and searches that take team B's ids as filters, or words of team B's rows
# (never a whole secret: a search page shows its query): 200, without team B's rows.
FILTERS = ["/api/v1/queues/open?team_id={w.team_b}", "/queues?queue=open&team={w.team_b}",
           "/api/v1/customers?q=Secret%20Customer", "/api/v1/customers?q=secret.b",
           "/api/v1/customers?q=tag:vip", "/customers?q=Secret%20Customer",
           "/customers?q=secret.b", "/customers?q=tag:vip",
           "/customers/{w.a.customer}/merge?q=Secret%20Customer",
           "/api/v1/reports?start={w.day_from}&end={w.day_to}", "/reports", "/api/v1/tokens",
           "/account", "/api/v1/queues/approval", "/queues?queue=overdue",
           "/canned", "/api/v1/canned", "/api/v1/canned?q=sales",
           "/search?q=sales%20secret", "/api/v1/search?q=sales%20secret",
           "/search?q=sales&team={w.team_b}", "/api/v1/search?q=sales&team_id={w.team_b}",
           "/queues?queue=open&open={w.b.conv}"]  # the inbox's pane: "not there"


def _id_routes(app: FastAPI) -> set[tuple[str, str]]:
    out = set()
    for r in routes(app):
        unknown = r.params - ID_PARAMS - OTHER_PARAMS
        assert not unknown, f"{r.method} {r.path}: classify the path parameters {unknown}"
        if r.params & ID_PARAMS:
            out.add((r.method, r.path))
    return out


def _requests(app: FastAPI) -> list[tuple[str, str, Req]]:
    """Every id route with its request (team B's ids fill {t.*}), then :data:`EXTRA`."""
    out = []
    for method, path in sorted(_id_routes(app)):
        if method == "GET":
            out += [(method, path, Req(u)) for u in GET_URLS[path]]
        else:
            out.append((method, path, REQUESTS[(method, path)]))
    return out + EXTRA


def test_every_id_route_is_tried(app: FastAPI) -> None:
    ids = _id_routes(app)
    covered = {(m, p) for m, p, _ in _requests(app)}
    assert ids - covered == set()
    assert len(ids) >= 30


def test_an_agent_gets_nothing_of_another_team(app: FastAPI, world: World, sign_in, db) -> None:
    w = world
    callers = {"session": sign_in(world.agent_a), "token": sign_in(world.agent_a, via="token")}
    wrong: dict[str, Any] = {}
    for how, agent in callers.items():
        for method, path, req in _requests(app):
            if how == "token" and not path.startswith("/api/"):
                continue  # a token on a page is 401 (test_tokens_on_pages.py)
            before = snapshot(db)
            r = send(agent, method, req, w, world.b, csrf=agent.csrf or None)
            url = req.fill(w, world.b)[0]
            problem = []
            if r.status_code not in (403, 404):
                problem.append(r.status_code)
            if found := leaks(r.text):
                problem.append(f"leaks {found}")
            if diff := changed(before, snapshot(db)):
                problem.append(f"changed {diff}")
            if problem:
                wrong[f"{how}: {method} {url}"] = problem
        for template in FILTERS:
            url = template.format(w=w)
            if how == "token" and not url.startswith("/api/"):
                continue
            r = agent.request("GET", url)
            if r.status_code != 200 or leaks(r.text):
                wrong[f"{how}: GET {url}"] = (r.status_code, leaks(r.text))
    assert wrong == {}


def test_the_secrets_are_there_to_leak(world: World, sign_in) -> None:
    """Team B's agent sees what team A's may not: the leak check has something to find."""
    agent_b = sign_in(world.agent_b)
    page = agent_b.request("GET", f"/conversations/{world.b.conv}")
    assert page.status_code == 200 and len(leaks(page.text)) >= 3
    assert leaks(agent_b.request("GET", "/account").text) == ["sales-secret-token"]
    for url in ("/customers?q=Secret%20Customer", "/api/v1/customers?q=secret.b",
                "/api/v1/customers?q=tag:vip", f"/api/v1/queues/open?team_id={world.team_b}"):
        assert leaks(agent_b.request("GET", url).text), url
