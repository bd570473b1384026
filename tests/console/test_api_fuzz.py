"""The JSON API fuzzed against its own OpenAPI description (schemathesis): no 500 errors,
and every answer as the description says (response schema conformance).

The schema is the app's ``/openapi.json``, loaded through ASGI (no server). Every ``/api/v1``
operation gets requests generated from its description, valid ones and invalid ones, as a
coordinator with a full-scope API token (all of the person's scopes, merge included),
against seeded data: half of the path ids are real (the seed's conversations, replies,
customers, tokens, people; and 2**31, 2**63, past the databases' integers) so the handlers
run past the lookup, half are whatever Hypothesis draws. Bounded: :data:`EXAMPLES` cases
per operation and mode, derandomized (the same cases on every run), no shrinking; every
failing operation is reported at the end with a curl command to reproduce it.

The generated requests really change things (they assign, close, merge, revoke): only the
caller's own token is restored when a case revokes it, so the rest of the run stays signed in.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import hypothesis
import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, Phase, given
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance
from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from console import auth
from kartabl import workflow
from kartabl.models import ApiToken, Channel, Role
from responders.preview import REPLY_CHECK
from tests import factories as f
from tests.factories import enqueued  # noqa: F401  (a fixture: approvals enqueue a send)

EXAMPLES = {GenerationMode.POSITIVE: 12, GenerationMode.NEGATIVE: 6}
CHECKS = [not_a_server_error, response_schema_conformance]
BEYOND = [2**31, 2**63]  # past PostgreSQL's integer keys; past SQLite's


@pytest.fixture
def app() -> FastAPI:
    from console.app import create_app

    return create_app()


def _seed(db: sessionmaker[Session]) -> tuple[str, int, dict[str, list[Any]]]:
    """Two teams with conversations, replies in every reviewable state, customers, people
    and tokens. Returns the coordinator's token, its id, and real ids per path parameter."""
    with db() as s:
        a, b = f.team(s, "support"), f.team(s, "sales")
        coord = f.person(s, "maryam", Role.COORDINATOR)
        coord.can_merge = True
        agent_a = f.person(s, "ali", teams=[a])
        agent_b = f.person(s, "bahar", teams=[b])
        convs = [f.conversation(s, team=a, assignee=agent_a, subject="<b>hi</b> {{7*7}}"),
                 f.conversation(s, channel=Channel.SMS, team=a, assignee=agent_a),
                 f.conversation(s, channel=Channel.TELEGRAM, team=b, assignee=agent_b),
                 f.conversation(s, channel=Channel.BALE), f.conversation(s, team=b)]
        replies = []
        for conv, author in ((convs[0], agent_a), (convs[1], agent_a), (convs[2], agent_b)):
            pending = workflow.draft(s, author, conv.id, "pending ۱۲۳ {{ body }}",
                                     check=REPLY_CHECK)
            workflow.submit(s, author, pending.id, check=REPLY_CHECK)
            drafted = workflow.draft(s, author, conv.id, "a draft", check=REPLY_CHECK)
            replies += [pending.id, drafted.id]
        tokens = [auth.create_api_token(s, p, name=f"t-{p.username}", scopes=["read"]).row.id
                  for p in (agent_a, agent_b)]
        own = auth.create_api_token(s, coord, name="fuzz", scopes=sorted(auth.role_scopes(coord)))
        s.commit()
        people = [coord.id, agent_a.id, agent_b.id]
        ids: dict[str, list[Any]] = {
            "cid": [c.id for c in convs], "rid": replies,
            "customer_id": [c.customer_id for c in convs], "token_id": tokens,
            "person_id": people}
        for values in ids.values():
            values += BEYOND  # the databases' integer limits: a 4xx, never a 500
        # Queue names: the real ones, and teams past the databases' integers.
        ids["name"] = ["triage", "approval", "mine", "open", "overdue", f"team:{a.id}",
                       *(f"team:{n}" for n in BEYOND)]
        return own.token, own.row.id, ids


def _operations(app: FastAPI) -> list[Any]:
    schema = schemathesis.openapi.from_asgi("/openapi.json", app).include(
        path_regex="^/api/v1/")
    return [result.ok() for result in schema.get_all_operations()]


def test_every_api_route_is_in_the_description(app: FastAPI) -> None:
    """What the fuzzing covers: every /api/v1 route is an operation of the description."""
    from tests.console.security.conftest import routes

    described = {(op.method.upper(), op.path) for op in _operations(app)}
    served = {(r.method, r.path) for r in routes(app) if r.path.startswith("/api/v1/")}
    assert served == described
    assert len(described) >= 30


@pytest.fixture
def seeded(db: sessionmaker[Session], enqueued: list[tuple[str, int]],  # noqa: F811
           ) -> Iterator[tuple[str, int, dict[str, list[Any]]]]:
    yield _seed(db)


def _fuzz(op: Any, mode: GenerationMode, ids: dict[str, list[Any]],
          headers: dict[str, str], after_call: Any) -> tuple[int, str | None]:
    """Run one operation's generated cases: (calls made, the first failure or None)."""
    found: list[str] = []
    calls = 0

    @given(case=op.as_strategy(generation_mode=mode), data=st.data())
    @hypothesis.settings(
        max_examples=EXAMPLES[mode], derandomize=True, database=None, deadline=None,
        phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck),
    )
    def run(case: Any, data: st.DataObject) -> None:
        nonlocal calls
        for name in case.path_parameters or {}:
            if name in ids and data.draw(st.booleans()):
                case.path_parameters[name] = data.draw(st.sampled_from(ids[name]))
        calls += 1
        try:
            # An exception in a handler comes out of the ASGI call (it is a 500 in a server).
            response = case.call(headers=headers)
            case.validate_response(response, checks=CHECKS, headers=headers)
        except (Exception, BaseExceptionGroup) as exc:  # each failure is reported; go on
            found.append(f"{type(exc).__name__}: {exc}"[:2500]
                         + f"\n{case.as_curl_command(headers)}")
        else:
            if response.status_code == 401:
                found.append("the fuzzing token stopped working")
        after_call()

    try:
        run()
    except hypothesis.errors.Unsatisfiable:
        # Nothing to make invalid: the operation takes no parameter and no body (GET /me).
        assert mode is GenerationMode.NEGATIVE and calls == 0
    return calls, found[0] if found else None


def test_fuzzing_the_api_finds_no_server_error(
    db: sessionmaker[Session], app: FastAPI,
    seeded: tuple[str, int, dict[str, list[Any]]],
) -> None:
    token, token_id, ids = seeded
    headers = {"Authorization": f"Bearer {token}"}

    def keep_signed_in() -> None:
        with db() as s:
            s.execute(update(ApiToken).where(ApiToken.id == token_id).values(revoked_at=None))
            s.commit()

    failures: dict[str, str] = {}
    calls = 0
    for op in _operations(app):
        for mode in EXAMPLES:
            n, failure = _fuzz(op, mode, ids, headers, keep_signed_in)
            calls += n
            if failure:
                failures[f"{op.method.upper()} {op.path} ({mode.value})"] = failure
    assert failures == {}, "\n\n".join(f"{k}:\n{v}" for k, v in failures.items())
    assert calls >= 300
