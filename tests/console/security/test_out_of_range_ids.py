"""Ids beyond what the databases store (found by fuzzing the API): a guessed or malformed id
must be a 4xx, not a 500 from the database driver. PostgreSQL's keys are 32-bit
(``integer out of range`` past 2**31 - 1); SQLite's are 64-bit (``OverflowError`` past
2**63 - 1). The JSON API refuses both with a 422 (``PathId``/``RowId`` in
console/api/schemas.py).

Every route that takes an id (the IDOR walk's requests, ids in paths, forms, query strings
and queue names) is called by an admin with each of the two values.
"""

from __future__ import annotations

from fastapi import FastAPI

from tests.console.security.conftest import Ids, World
from tests.console.security.tables import Req, send
from tests.console.security.test_idor import _requests

HUGE = (2**31, 2**63)
# Routes still answering 500 to such an id (none now: the pages' path ids are ``PathId``,
# form and query ids are bounded by ``optional_id``, and a ``team:<id>`` beyond the
# database's integers is no team). A route listed here must answer 500, so the list cannot
# go stale.
KNOWN_500: set[str] = set()
KNOWN_500_POSTGRES: set[str] = set()


def test_ids_beyond_the_database_integers_are_refused(
    app: FastAPI, world: World, sign_in, db
) -> None:
    admin = sign_in(world.admin)
    extra = [("POST", "/conversations/{cid}/assign",
              Req("/conversations/{w.a.conv}/assign", {"person_id": "{t.person}"})),
             ("POST", "/conversations/{cid}/refer",
              Req("/conversations/{w.a.conv}/refer", {"team_id": "{t.person}", "note": "n"})),
             ("GET", "/queues", Req("/queues?queue=open&team={t.person}")),
             ("GET", "/queues", Req("/queues?queue=team:{t.person}")),
             ("GET", "/api/v1/queues/{name}", Req("/api/v1/queues/team:{t.person}")),
             ("GET", "/api/v1/queues", Req("/api/v1/queues?team_id={t.person}")),
             ("GET", "/notifications", Req("/notifications?before={t.person}")),
             ("GET", "/api/v1/notifications", Req("/api/v1/notifications?before={t.person}"))]
    server_errors = set()
    for huge in HUGE:
        ids = Ids(huge, huge, huge, huge, huge, huge, huge, "a" * 64, huge, huge, huge, huge,
                  huge, huge, huge)
        for method, _path, req in [*_requests(app), *extra]:
            url = req.fill(world, ids)[0]
            try:
                status = send(admin, method, req, world, ids, csrf=admin.csrf).status_code
            except Exception:  # the test client re-raises the app's exception: a 500
                status = 500
            if status >= 500:
                server_errors.add(f"{method} {url.replace(str(huge), '<huge>')}")
    known = KNOWN_500 | (KNOWN_500_POSTGRES if db.kw["bind"].dialect.name == "postgresql"
                         else set())
    assert server_errors == {k.format(a=world.a) for k in known}
