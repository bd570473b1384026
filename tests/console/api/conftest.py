"""The JSON API through the real app, over both databases (TestClient on https://: the
session cookie is Secure).

``world`` seeds two teams, A (support) and B (sales), and the people and rows every API
test needs: an agent of each team, two coordinators, team B's conversation with a draft and
a pending reply, a second customer of team B (to merge), team A's conversation and one in
triage. Team B's rows carry distinctive text (:data:`SECRETS`), so a response that leaks
them to an agent of team A is caught by a substring test.

``api(person_id, *scopes)`` signs in with a fresh API token (cheap: no password hashing);
``browser(username)`` signs in through ``POST /login`` like a person (one argon2 check) and
sends the CSRF header on changes unless told not to.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from config.settings import Settings, get_settings
from console import auth
from kartabl import notifications
from kartabl.models import (
    ApiToken,
    CannedResponse,
    Channel,
    Conversation,
    Customer,
    Event,
    Identity,
    PasswordReset,
    Person,
    Reply,
    ReplyState,
    Role,
    WebSession,
    utcnow,
)
from tests import factories as f
from tests.factories import enqueued  # noqa: F401  (a fixture: the tasks enqueued)

PASSWORD = "correct horse battery"
# What only team B's rows say: no answer to an agent of team A may contain any of it.
SECRETS = ("sales-secret-subject", "sales-secret-text", "Secret Customer B",
           "secret.b@example.ir", "sales-secret-draft", "sales-secret-pending",
           "sales-secret-token")


@pytest.fixture(scope="session")
def password_hash() -> str:
    return f.quick_hash(PASSWORD)  # cheap to verify at each sign-in (tests/factories.py)


@pytest.fixture(scope="session")
def app() -> FastAPI:
    """One app for the run: it holds no database state (each request asks kartabl.db for
    the current test's session factory)."""
    from console.app import create_app

    return create_app()


@dataclass(frozen=True)
class World:
    team_a: int
    team_b: int
    coord: int  # a coordinator with the merge permission
    coord2: int  # a second coordinator (approves coord's replies)
    agent_a: int  # team A, with the merge permission (so a refusal is about scope alone)
    agent_a2: int  # team A, no merge permission
    agent_b: int  # team B
    conv_a: int  # team A, held by agent_a, over SMS
    conv_b: int  # team B, held by agent_b, over email
    conv_b2: int  # team B, another customer (the one to merge with)
    conv_triage: int  # no team, nobody, over Telegram
    customer_a: int
    customer_b: int
    customer_b2: int
    draft_b: int  # agent_b's draft on conv_b
    pending_b: int  # agent_b's reply on conv_b, awaiting approval
    canned_b: int  # team B's canned response (/sales-canned)
    notice_b: int  # agent_b's notification (a referral to them, its note team B's words)


@pytest.fixture
def world(db: sessionmaker[Session], password_hash: str) -> World:
    with db() as s:
        a, b = f.team(s, "support"), f.team(s, "sales")
        coord = f.person(s, "maryam", Role.COORDINATOR)
        coord2 = f.person(s, "reza", Role.COORDINATOR)
        agent_a = f.person(s, "ali", teams=[a])
        agent_a2 = f.person(s, "sina", teams=[a])
        agent_b = f.person(s, "bahar", teams=[b])
        coord.can_merge = agent_a.can_merge = True
        for p in (coord, coord2, agent_a, agent_a2, agent_b):
            p.password_hash = password_hash
            p.locale = "en"
        conv_a = f.conversation(s, channel=Channel.SMS, team=a, assignee=agent_a,
                                subject="support-subject", text="support-text")
        conv_b = f.conversation(s, team=b, assignee=agent_b, subject="sales-secret-subject",
                                text="sales-secret-text", sender="secret.b@example.ir")
        conv_b.customer.display_name = "Secret Customer B"
        conv_b2 = f.conversation(s, team=b, subject="sales-other")
        conv_triage = f.conversation(s, channel=Channel.TELEGRAM, subject="triage-subject")
        draft = Reply(conversation_id=conv_b.id, author_id=agent_b.id, state=ReplyState.DRAFT,
                      channel=Channel.EMAIL, body="sales-secret-draft")
        pending = Reply(conversation_id=conv_b.id, author_id=agent_b.id,
                        state=ReplyState.PENDING_APPROVAL, channel=Channel.EMAIL,
                        body="sales-secret-pending")
        s.add_all([draft, pending])
        conv_b.customer.tags = ["vip"]
        # Both past the targets: the overdue queue would list them, in scope or not.
        conv_a.opened_at = conv_b.opened_at = utcnow() - timedelta(days=2)
        auth.create_api_token(s, agent_b, name="sales-secret-token", scopes=["read"])
        canned_b = CannedResponse(name="sales-secret-subject", shortcut="sales-canned",
                                  team_id=b.id, body_fa="sales-secret-text",
                                  body_en="sales-secret-text")
        s.add(canned_b)
        s.flush()
        (notice_b,) = notifications.notify(
            s, "referred", [agent_b.id], actor=s.get(Person, coord.id), conversation=conv_b,
            text="sales-secret-text")
        s.commit()
        return World(a.id, b.id, coord.id, coord2.id, agent_a.id, agent_a2.id, agent_b.id,
                      conv_a.id, conv_b.id, conv_b2.id, conv_triage.id, conv_a.customer_id,
                      conv_b.customer_id, conv_b2.customer_id, draft.id, pending.id,
                      canned_b.id, notice_b.id)


class Api:
    """A signed-in caller: JSON in, :class:`httpx.Response` out."""

    def __init__(self, client: TestClient, headers: dict[str, str] | None = None) -> None:
        self.client = client
        self.headers = headers or {}

    def request(self, method: str, path: str, json: Any = None, **kw: Any) -> httpx.Response:
        headers = {**self.headers, **kw.pop("headers", {})}
        return self.client.request(method, path, json=json, headers=headers, **kw)

    def get(self, path: str, **kw: Any) -> httpx.Response:
        return self.request("GET", path, **kw)

    def post(self, path: str, json: Any = None, **kw: Any) -> httpx.Response:
        return self.request("POST", path, json, **kw)

    def patch(self, path: str, json: Any = None, **kw: Any) -> httpx.Response:
        return self.request("PATCH", path, json, **kw)

    def delete(self, path: str, **kw: Any) -> httpx.Response:
        return self.request("DELETE", path, **kw)


@pytest.fixture(autouse=True)
def _app_settings(app: FastAPI, settings: Settings) -> None:
    """The app is shared by the run; it reads its settings when made, as a process does at
    start: give it this test's (each test has its own database and directories)."""
    app.state.settings = get_settings()


@pytest.fixture
def client(app: FastAPI, db: sessionmaker[Session]) -> Iterator[TestClient]:
    """A client that never signs in by cookie (tokens go in headers)."""
    with TestClient(app, base_url="https://testserver") as c:
        yield c


@pytest.fixture
def api(client: TestClient, db: sessionmaker[Session]) -> Callable[..., Api]:
    """``api(person_id, *scopes)``: a caller with a new API token of those scopes (default:
    every scope the person's role allows)."""

    def make(person_id: int, *scopes: str) -> Api:
        with db() as s:
            person = s.get(Person, person_id)
            assert person is not None
            wanted = list(scopes) or sorted(auth.role_scopes(person))
            new = auth.create_api_token(s, person, name="test", scopes=wanted)
            s.commit()
        return Api(client, {"Authorization": f"Bearer {new.token}"})

    return make


@pytest.fixture
def browser(app: FastAPI, db: sessionmaker[Session]) -> Iterator[Callable[..., Api]]:
    """``browser(username, csrf=True)``: a person signed in through the login form, in a
    client of their own; with ``csrf`` it sends the X-CSRF-Token header as the pages do."""
    opened: list[TestClient] = []

    def make(username: str, *, csrf: bool = True) -> Api:
        c = TestClient(app, base_url="https://testserver")
        c.__enter__()
        opened.append(c)
        r = c.post("/login", data={"username": username, "password": PASSWORD},
                   follow_redirects=False)
        assert r.status_code == 303, r.text
        cookie = c.cookies[auth.SESSION_COOKIE]
        csrf_header = {"X-CSRF-Token": auth.csrf_token(cookie, settings=get_settings())}
        return Api(c, csrf_header if csrf else {})

    yield make
    for c in opened:
        c.__exit__(None, None, None)


def snapshot(db: sessionmaker[Session]) -> dict[str, list[Any]]:
    """Everything a refused request must leave as it was (a token's last use aside)."""
    with db() as s:
        def rows(*cols: Any) -> list[Any]:
            return [tuple(r) for r in s.execute(select(*cols).order_by(cols[0]))]

        c, r, cu, i = Conversation, Reply, Customer, Identity
        return {
            "conversations": rows(c.id, c.status, c.team_id, c.assignee_id, c.customer_id,
                                  c.resolved_at),
            "replies": rows(r.id, r.state, r.body, r.original_body, r.review_comment,
                            r.approved_by_id, r.template),
            "customers": rows(cu.id, cu.display_name, cu.tags, cu.merged_into_id),
            "identities": rows(i.id, i.customer_id, i.kind, i.address),
            "events": rows(Event.id, Event.kind),
            "tokens": rows(ApiToken.id, ApiToken.revoked_at),
            "sessions": rows(WebSession.id, WebSession.revoked_at),
            "resets": rows(PasswordReset.id),
        }
