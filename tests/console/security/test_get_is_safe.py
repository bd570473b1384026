"""No state change on GET (threats.md, FreeScout: "state changes on GET, which makes CSRF
possible"): a link or an <img> on another site can make a browser GET anything.

Every GET route (and the static files) is called with the seed's real ids, signed in as an
admin, a coordinator and an agent by session, as a coordinator by API token, and by nobody.
After each call every row of every table is as it was (a hash of all rows;
``web_session.last_seen_at``, ``api_token.last_used_at`` and
``webchat_visitor.stream_seen_at`` excepted: they record that the session, token or
widget stream was used, conftest.BOOKKEEPING), and nothing answers 5xx. The signed-in
callers get 200 (303 for the language switch): the walk really reaches each handler.

A GET route missing from :data:`GET_URLS` fails the test: add its URLs there.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select

from kartabl.models import PasswordReset
from tests.console.security.conftest import Caller, World, changed, routes, snapshot
from tests.console.security.tables import GET_URLS, get_urls

REDIRECTS = {"/locale/{locale}"}  # sets a cookie and goes back: 303


def test_every_get_route_has_urls(app: FastAPI) -> None:
    gets = {r.path for r in routes(app) if r.method == "GET"}
    assert gets - set(GET_URLS) == set(), "GET routes the walk does not call: add them"
    assert set(GET_URLS) - gets == set(), "URLs for GET routes that are gone"


def _walk(caller: Caller, world: World, db, *, signed_in: bool) -> dict[str, object]:
    wrong: dict[str, object] = {}
    after = snapshot(db)
    for path, url in get_urls(world, world.a):
        if caller.bearer and not path.startswith("/api/"):
            continue  # tokens are for the API (pages answer 401: test_tokens_on_pages.py)
        before = after
        r = caller.request("GET", url)
        after = snapshot(db)
        expected = 303 if path in REDIRECTS else 200
        if changed(before, after):
            wrong[url] = f"changed {changed(before, after)}"
        elif r.status_code >= 500 or (signed_in and r.status_code != expected):
            wrong[url] = (r.status_code, r.text[:200])
    return wrong


def test_no_get_changes_anything(app: FastAPI, world: World, sign_in, db) -> None:
    callers = {
        "admin": sign_in(world.admin),
        "coordinator": sign_in(world.coord),
        "agent": sign_in(world.agent_a),
        "coordinator's token": sign_in(world.coord, via="token"),
    }
    wrong = {who: w for who, c in callers.items() if (w := _walk(c, world, db, signed_in=True))}
    with TestClient(app, base_url="https://testserver") as anonymous:
        nobody = _walk(Caller(anonymous, 0), world, db, signed_in=False)
    if nobody:
        wrong["nobody"] = nobody
    assert wrong == {}
    # The reset link's form was shown above; showing it did not use it up.
    with db() as s:
        assert s.scalars(select(PasswordReset.used_at)).all() == [None]


def test_the_snapshot_sees_a_change(world: World, db) -> None:
    """The check above is only as good as the snapshot: a one-column change shows."""
    from kartabl.models import Customer

    before = snapshot(db)
    with db() as s:
        customer = s.get(Customer, world.a.customer)
        assert customer is not None
        customer.tags = [*customer.tags, "one more"]
        s.commit()
    assert changed(before, snapshot(db)) == ["customer"]
