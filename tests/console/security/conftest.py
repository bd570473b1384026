"""What the cross-cutting security tests share (threats.md: stored XSS, CSRF, state changes
on GET, IDOR), over both databases.

- :func:`world` seeds two teams. Team A's conversation carries a script payload
  (:func:`evil`) in every field a customer (or a provider, or a person) controls; team B's
  rows carry :data:`SECRETS`, so an answer that leaks them to an agent of team A is caught
  by a substring test.
- :func:`routes` walks the app's routes, so the tests below cover every route that exists
  and fail on one they cannot classify (a new route must be added to their tables).
- :func:`snapshot` hashes every row of every table: "nothing changed" means nothing, not
  just the columns someone thought of. Two columns are bookkeeping and left out:
  ``web_session.last_seen_at`` and ``api_token.last_used_at`` (when a session or a token
  was last used; reading a page or calling the API with a token must update them).
- Signing in makes a session row directly (:func:`console.auth.start_session`, no argon2:
  the login form has its own tests in tests/console/test_auth.py).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from channels.email.attachments import store_payloads
from config.settings import get_settings
from console import auth
from kartabl import audit, notifications, search, workflow
from kartabl.models import (
    Base,
    CannedResponse,
    Channel,
    Conversation,
    Customer,
    Event,
    Identity,
    Message,
    Notification,
    Person,
    Reply,
    ReplyAttachment,
    ReplyState,
    Role,
    utcnow,
)
from kartabl.workflow import merge as wm
from responders.preview import REPLY_CHECK
from tests import factories as f
from tests.factories import enqueued  # noqa: F401  (a fixture: approvals enqueue a send)

Db = sessionmaker[Session]

# Markup in every form a stored XSS has taken in a helpdesk, closing the elements text is
# put in (a <textarea>, the <title>, a quoted attribute) first; template syntax for SSTI.
PAYLOAD = ('</textarea></title>"><script>alert(1)</script><img src=x onerror=alert(1)>'
           "<svg onload=alert(1)> javascript:alert(1) ssti{{7*7}}{{config}}")
SHORT_PAYLOAD = '"><script>alert(1)</script><img src=x onerror=alert(1)>ssti{{7*7}}'


def evil(field: str, *, short: bool = False) -> str:
    """The payload, tagged with the field it was stored in (so a page can be checked for
    each field it shows)."""
    return f"x-{field}-x{SHORT_PAYLOAD if short else PAYLOAD}"


# Incoming mail HTML: shown sanitised, as HTML; the marker paragraph must survive.
MAIL_HTML = (
    '<p>x-html-x safe paragraph</p><script>alert(1)</script>'
    '<img src=x onerror=alert(1)><svg onload=alert(1)><circle r="1"/></svg>'
    '<a href="javascript:alert(1)">js link</a><a href=" JaVaScRiPt:alert(1)">js link 2</a>'
    '<a href="data:text/html,&lt;script&gt;alert(1)&lt;/script&gt;">data link</a>'
    '<a href="/xss-hx" hx-get="/xss-hx/logout" hx-trigger="load">hx link</a>'
    '<iframe src="https://evil.example/"></iframe><object data="x.swf"></object>'
    '<form action="https://evil.example/"><input name="csrf_token"></form>'
    "<style>body{display:none}</style><base href=\"https://evil.example/\">"
    '<meta http-equiv="refresh" content="0;url=https://evil.example/">'
    "<p>{{7*7}} ssti{{7*7}}</p>"
)
# Team B's words: no answer to an agent of team A may contain any of them.
SECRETS = ("sales-secret-subject", "sales-secret-text", "Secret Customer B",
           "secret.b@example.ir", "sales-secret-draft", "sales-secret-pending",
           "sales-secret-token", "sales-secret-file.pdf", "sales-secret-canned",
           "sales-secret-notice", "sales-secret-reply-file", "sales-secret-merged")
ATTACHMENT = b"%PDF-1.4 an attachment\n"
ATTACHMENT_KEY = hashlib.sha256(ATTACHMENT).hexdigest()
ATTACHMENT_B = b"%PDF-1.4 team B's file\n"
ATTACHMENT_KEY_B = hashlib.sha256(ATTACHMENT_B).hexdigest()


@dataclass(frozen=True)
class Ids:
    """The rows a route's parameters point at: team A's (the signed-in agent's own) or
    team B's (the IDOR targets)."""

    conv: int  # open, with a pending reply and a draft
    conv2: int  # the same customer's other conversation
    pending: int  # a reply awaiting approval (by the team's agent)
    draft: int  # a draft of the team's agent
    customer: int
    customer2: int  # another customer of the team (to merge into)
    message: int  # an inbound message with an attachment
    key: str  # that attachment's storage key
    token: int  # an API token of the team's agent
    person: int  # the team's agent
    canned: int  # the team's own canned response
    bulk: int  # the result of a bulk action by the team's agent (a bulk.applied event)
    notice: int  # a notification of the team's agent
    reply_file: int  # a file attached to the pending reply
    merge: int  # a merge into a conversation of customer2 (team A) or conv2 (team B)


@dataclass(frozen=True)
class World:
    team_a: int
    team_b: int
    admin: int  # every right, merge included
    coord: int  # a coordinator with the merge permission
    agent_a: int  # team A
    agent_b: int  # team B
    a: Ids
    b: Ids
    conv_triage: int  # no team, nobody
    reset_token: str  # an unused password reset link of agent_b
    day_from: str  # a report's range (ISO) that holds the seed
    day_to: str
    # -- webchat -- a website widget's visitor token (its widget: "wseed")
    visitor: str = ""
    widget: int = 0  # its row's id


META_VERIFY_TOKEN = "security-verify-token-0123"


@pytest.fixture(scope="session")
def app() -> FastAPI:
    """One app for the run: it holds no database state (each request asks kartabl.db for
    the current test's session factory)."""
    from console.app import create_app

    app = create_app()
    app.state.live.stream_s = 0.0  # a live stream answers what it has and ends: walkable
    # -- webchat -- so does the widget's event stream
    from config.webchat import WebchatConfig

    app.state.channels = app.state.channels.model_copy(
        update={"webchat": WebchatConfig(stream_s=0.01)})
    # -- Meta: a [meta] section, so the webhook's verification GET is walked for real --
    from config.meta import MetaConfig

    app.state.channels = app.state.channels.model_copy(update={"meta": MetaConfig(
        app_secret="security-app-secret", verify_token=META_VERIFY_TOKEN)})
    return app


def _replies(s: Session, conv: int, author: Person, text: str) -> tuple[int, int]:
    """A pending reply and a draft by ``author`` on ``conv``."""
    pending = workflow.draft(s, author, conv, f"{text}-pending", check=REPLY_CHECK)
    workflow.submit(s, author, pending.id, check=REPLY_CHECK)
    drafted = workflow.draft(s, author, conv, f"{text}-draft", check=REPLY_CHECK)
    return pending.id, drafted.id


@pytest.fixture
def world(db: Db, settings: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
          enqueued: list[tuple[str, int]]) -> World:  # noqa: F811
    monkeypatch.setenv("KARTABL_ATTACHMENTS_DIR", str(tmp_path / "att"))
    from config.settings import get_settings

    get_settings.cache_clear()
    store_payloads({ATTACHMENT_KEY: ATTACHMENT, ATTACHMENT_KEY_B: ATTACHMENT_B}, tmp_path / "att")
    with db() as s:
        team_a, team_b = f.team(s, "support"), f.team(s, "sales")
        team_a.title = evil("team")
        admin = f.person(s, "root", Role.ADMIN)
        coord = f.person(s, "maryam", Role.COORDINATOR)
        agent_a = f.person(s, "ali", teams=[team_a])
        agent_b = f.person(s, "bahar", teams=[team_b])
        admin.can_merge = coord.can_merge = True
        agent_a.display_name = evil("person")
        for p in (admin, coord, agent_a, agent_b):
            p.locale = "en"

        # -- team A: a payload in every customer-controlled field --------------------------
        conv = f.conversation(s, channel=Channel.EMAIL, team=team_a, assignee=agent_a,
                              subject=evil("subject"), text=evil("text"),
                              sender='"x-from-x<script>alert(1)</script>"@example.ir')
        customer = s.get(Customer, conv.customer_id)
        assert customer is not None
        customer.display_name = evil("name")
        customer.tags = [evil("tag")]
        ident = s.scalars(select(Identity).where(Identity.customer_id == customer.id)).one()
        ident.display = evil("display")
        s.add(Identity(customer_id=customer.id, kind="telegram", address="7770001",
                       display="@" + evil("tguser")))
        msg = s.scalars(select(Message).where(Message.conversation_id == conv.id)).one()
        msg.sender_name = evil("sender")
        f.mail_html(msg, MAIL_HTML)
        msg.attachments = [{"filename": evil("file"), "content_type": evil("ctype"),
                            "size": len(ATTACHMENT), "storage_key": ATTACHMENT_KEY}]
        # A second message without a sender name: the customer's name stands for them.
        f.inbound(s, conv, text=evil("text2"))
        # The same customer on Telegram: the username as the sender's name and in meta.
        conv2 = f.conversation(s, channel=Channel.TELEGRAM, team=team_a, assignee=agent_a,
                               subject=evil("subject2"), text=evil("tgtext"))
        other = conv2.customer_id
        conv2.customer = customer
        tg = s.scalars(select(Message).where(Message.conversation_id == conv2.id)).one()
        tg.customer_id = customer.id
        tg.sender_name = "@" + evil("tguser")
        tg.meta = {"username": evil("tguser"), "chat_id": 7770001}
        s.flush()
        s.delete(s.scalars(select(Identity).where(Identity.customer_id == other)).one())
        s.delete(s.get(Customer, other))
        other_a = f.conversation(s, team=team_a, subject="a-other")
        customer2 = other_a.customer_id

        workflow.refer(s, coord, conv.id, team_id=team_a.id, person_id=agent_a.id,
                       note=evil("referral"))
        workflow.note(s, agent_a, conv.id, evil("note"))
        rejected = workflow.draft(s, agent_a, conv.id, evil("rejected"), check=REPLY_CHECK)
        workflow.submit(s, agent_a, rejected.id, check=REPLY_CHECK)
        workflow.reject(s, coord, rejected.id, evil("review"))
        edited = workflow.draft(s, agent_a, conv.id, evil("original"), check=REPLY_CHECK)
        workflow.submit(s, agent_a, edited.id, check=REPLY_CHECK)
        workflow.approve(s, coord, edited.id, edited_body=evil("edited"), check=REPLY_CHECK)
        edited.state, edited.error = ReplyState.FAILED, evil("error")
        s.add(Event(kind="reply.failed", actor_id=None, conversation_id=conv.id,
                    reply_id=edited.id, data={"reason": evil("failreason")}))
        pending_a, draft_a = _replies(s, conv.id, agent_a, evil("reply"))
        file_a = ReplyAttachment(reply_id=pending_a, filename=evil("replyfile"),
                                 content_type="application/pdf", size=len(ATTACHMENT),
                                 storage_key=ATTACHMENT_KEY)
        s.add(file_a)
        token_a = auth.create_api_token(s, agent_a, name="a-token", scopes=["read"]).row.id
        # A canned response of team A, stored as it is (the service would refuse the
        # payload's unknown {{ variables }}; pages must show stored rows safely anyway).
        canned_a = CannedResponse(name=evil("canned"), shortcut="a-canned", team_id=team_a.id,
                                  body_fa=evil("cannedfa"), body_en=evil("canneden"))
        s.add(canned_a)
        # The account page lists one's tokens by name.
        auth.create_api_token(s, coord, name=evil("token", short=True), scopes=["read"])

        # -- team B: its secrets ----------------------------------------------------------
        conv_b = f.conversation(s, team=team_b, assignee=agent_b, subject="sales-secret-subject",
                                text="sales-secret-text", sender="secret.b@example.ir")
        conv_b.customer.display_name = "Secret Customer B"
        conv_b.customer.tags = ["vip"]
        msg_b = s.scalars(select(Message).where(Message.conversation_id == conv_b.id)).one()
        msg_b.attachments = [{"filename": "sales-secret-file.pdf", "content_type":
                              "application/pdf", "size": len(ATTACHMENT_B),
                              "storage_key": ATTACHMENT_KEY_B}]
        conv_b2 = f.conversation(s, team=team_b, assignee=agent_b, subject="sales-other",
                                 sender=None)
        conv_b2.customer = conv_b.customer
        conv_b3 = f.conversation(s, team=team_b, subject="sales-third")
        pending_b = Reply(conversation_id=conv_b.id, author_id=agent_b.id,
                          state=ReplyState.PENDING_APPROVAL, channel=Channel.EMAIL,
                          body="sales-secret-pending")
        draft_b = Reply(conversation_id=conv_b.id, author_id=agent_b.id,
                        state=ReplyState.DRAFT, channel=Channel.EMAIL, body="sales-secret-draft")
        s.add_all([pending_b, draft_b])
        s.flush()
        file_b = ReplyAttachment(reply_id=pending_b.id, filename="sales-secret-reply-file.pdf",
                                 content_type="application/pdf", size=len(ATTACHMENT_B),
                                 storage_key=ATTACHMENT_KEY_B)
        s.add(file_b)
        token_b = auth.create_api_token(s, agent_b, name="sales-secret-token",
                                        scopes=["read"]).row.id
        canned_b = CannedResponse(name="sales-secret-canned", shortcut="sales-secret-canned",
                                  team_id=team_b.id, body_fa="sales-secret-canned fa",
                                  body_en="sales-secret-canned en")
        s.add(canned_b)
        triage = f.conversation(s, channel=Channel.SMS, subject="triage-subject")
        conv.opened_at = conv_b.opened_at = utcnow() - timedelta(days=2)  # overdue
        reset = auth.create_password_reset(s, admin, agent_b, settings=get_settings())
        bulk_a, bulk_b = (audit.record(s, "bulk.applied", actor=agent, action="close",
                                       done=[c.id], refused=[])
                          for agent, c in ((agent_a, conv), (agent_b, conv_b)))
        s.flush()
        # agent A's were written by the steps above (the referral, the rejection)
        notice_a = s.scalars(select(Notification.id).where(
            Notification.person_id == agent_a.id).order_by(Notification.id)).first()
        (notice_b,) = notifications.notify(s, "referred", [agent_b.id], actor=coord,
                                           conversation=conv_b, text="sales-secret-notice")
        s.flush()
        merges = []
        for target, text in ((other_a, evil("merged")), (conv_b2, "sales-secret-merged")):
            # older than the target's messages: the queues still preview the target's own
            long_ago = utcnow() - timedelta(days=3)
            source = Conversation(customer_id=target.customer_id, channel=Channel.EMAIL,
                                  subject=text, team_id=target.team_id, opened_at=long_ago,
                                  last_message_at=long_ago)
            s.add(source)
            s.flush()
            f.inbound(s, source, text=text).received_at = long_ago
            merges.append(wm.merge(s, coord, source.id, target.id).id)
        a = Ids(conv.id, conv2.id, pending_a, draft_a, customer.id, customer2, msg.id,
                ATTACHMENT_KEY, token_a, agent_a.id, canned_a.id, bulk_a.id, notice_a,
                file_a.id, merges[0])
        b = Ids(conv_b.id, conv_b2.id, pending_b.id, draft_b.id, conv_b.customer_id,
                conv_b3.customer_id, msg_b.id, ATTACHMENT_KEY_B, token_b, agent_b.id,
                canned_b.id, bulk_b.id, notice_b.id, file_b.id, merges[1])
        # -- webchat -- a widget and a visitor, for the walk of its public endpoints
        from channels.webchat.identity import VisitorTokens
        from kartabl.models import WebchatVisitor, Widget

        widget = Widget(public_id="wseed", name=evil("widget"), secret="s" * 32,
                        origins=["https://shop.example"], greeting_fa=evil("greeting"))
        s.add(widget)
        s.flush()
        s.add(WebchatVisitor(widget_id=widget.id, key="vseedvisitor"))
        visitor = VisitorTokens(get_settings().secret_key).sign("vseedvisitor")
        s.commit()
        search.reindex(s)  # the factories' messages bypass the router, which indexes them
        today = utcnow().date()
        return World(team_a.id, team_b.id, admin.id, coord.id, agent_a.id, agent_b.id, a, b,
                     triage.id, reset, (today - timedelta(days=7)).isoformat(),
                     (today + timedelta(days=1)).isoformat(), visitor, widget.id)


# -- signing in ------------------------------------------------------------------------------


@dataclass
class Caller:
    """A signed-in client: by session cookie (``csrf`` is its token) or by API token."""

    client: TestClient
    person_id: int
    csrf: str = ""
    bearer: str = ""

    def request(self, method: str, url: str, *, json: Any = None,
                data: dict[str, str] | None = None,
                headers: dict[str, str] | None = None) -> Any:
        h = dict(headers or {})
        if self.bearer:
            h["Authorization"] = f"Bearer {self.bearer}"
        return self.client.request(method, url, json=json, data=data, headers=h,
                                   follow_redirects=False)


@pytest.fixture
def sign_in(app: FastAPI, db: Db) -> Iterator[Callable[..., Caller]]:
    """``sign_in(person_id, via="session"|"token", user_agent=...)``: a client of its own."""
    opened: list[TestClient] = []

    def make(person_id: int, *, via: str = "session", user_agent: str = "pytest") -> Caller:
        # The app is shared by the run; it reads its settings when made, as a process does
        # at start: give it this test's (each has its own database and directories).
        app.state.settings = get_settings()
        c = TestClient(app, base_url="https://testserver")
        c.__enter__()
        opened.append(c)
        with db() as s:
            person = s.get(Person, person_id)
            assert person is not None
            if via == "token":
                new = auth.create_api_token(s, person, name="security-test",
                                            scopes=sorted(auth.role_scopes(person)))
                s.commit()
                return Caller(c, person_id, bearer=new.token)
            cookie = auth.start_session(s, person, settings=get_settings(), ip="127.0.0.1",
                                        user_agent=user_agent)
            s.commit()
        c.cookies.set(auth.SESSION_COOKIE, cookie)
        return Caller(c, person_id, csrf=auth.csrf_token(cookie, settings=get_settings()))

    yield make
    for c in opened:
        c.__exit__(None, None, None)


# -- the database, whole ---------------------------------------------------------------------

# Bookkeeping a read must update: when a session or an API token was last used, and what
# of a conversation its reader has seen (the queues' "new" marker, kartabl.notifications),
# and that a widget visitor's event stream is open (the offline continuation's "gone").
BOOKKEEPING = {("web_session", "last_seen_at"), ("api_token", "last_used_at"),
               ("webchat_visitor", "stream_seen_at")}
BOOKKEEPING_TABLES = {"conversation_seen"}


def snapshot(db: Db) -> dict[str, tuple[int, str]]:
    """Every table: (row count, SHA-256 of all its rows in primary-key order)."""
    out: dict[str, tuple[int, str]] = {}
    with db() as s:
        for table in Base.metadata.sorted_tables:
            if table.name in BOOKKEEPING_TABLES:
                continue
            cols = [c for c in table.columns if (table.name, c.name) not in BOOKKEEPING]
            rows = s.execute(select(*cols).order_by(*table.primary_key.columns)).all()
            digest = hashlib.sha256(repr([tuple(r) for r in rows]).encode()).hexdigest()
            out[table.name] = (len(rows), digest)
    return out


def changed(before: dict[str, tuple[int, str]], after: dict[str, tuple[int, str]]) -> list[str]:
    return sorted(t for t in before if before[t] != after.get(t))


# -- the routes ------------------------------------------------------------------------------


@dataclass(frozen=True)
class RouteInfo:
    method: str
    path: str
    module: str
    cookie_auth: bool  # signs in through console.deps.optional_principal (cookie or token)
    params: frozenset[str]  # path parameters


def _depends_on(dependant: Any, target: Callable[..., Any]) -> bool:
    stack = [dependant]
    while stack:
        d = stack.pop()
        if d.call is target:
            return True
        stack.extend(d.dependencies)
    return False


def routes(app: FastAPI) -> list[RouteInfo]:
    """Every (method, path) the app answers, through included routers too (FastAPI
    0.16x keeps them as included-router entries in ``app.routes``)."""
    from fastapi import routing

    from console.deps import optional_principal

    contexts = routing.iter_route_contexts(app.routes) if hasattr(
        routing, "iter_route_contexts") else app.routes
    found = []
    for rc in contexts:
        path, methods = rc.path, rc.methods
        if path is None or not methods:
            continue  # a mount (/static): walked by the GET test by URL
        original = getattr(rc, "original_route", rc)
        dependant = getattr(original, "dependant", None)
        endpoint = getattr(rc, "endpoint", None)
        cookie = dependant is not None and _depends_on(dependant, optional_principal)
        params = frozenset(getattr(original, "param_convertors", {}) or ())
        for m in sorted(methods - {"HEAD"}):
            found.append(RouteInfo(m, path, getattr(endpoint, "__module__", ""), cookie, params))
    return found


def leaks(text: str) -> list[str]:
    return [s for s in SECRETS if s in text]
