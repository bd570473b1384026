"""Security of the pages: every state change needs the CSRF token (403 and nothing stored
without it); an agent's attempts on another team's conversation, reply or customer are
404 (IDOR) and change nothing; customer-controlled text is shown as text everywhere."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from kartabl import workflow
from kartabl.models import (
    Channel,
    Conversation,
    Customer,
    Event,
    Identity,
    Message,
    Person,
    Reply,
)
from responders.preview import REPLY_CHECK
from tests import factories as f
from tests.console.pages.conftest import World, sign_in

Db = sessionmaker[Session]


def snapshot(db: Db) -> tuple[object, ...]:
    """Everything an action could change."""
    with db() as s:
        convs = s.execute(select(Conversation.id, Conversation.status, Conversation.team_id,
                                 Conversation.assignee_id).order_by(Conversation.id)).all()
        replies = s.execute(select(Reply.id, Reply.state, Reply.body).order_by(Reply.id)).all()
        customers = s.execute(select(Customer.id, Customer.tags, Customer.merged_into_id)
                              .order_by(Customer.id)).all()
        return (tuple(convs), tuple(replies), tuple(map(tuple, customers)),
                s.scalar(select(func.count()).select_from(Event)),
                s.scalar(select(func.count()).select_from(Identity)))


@dataclass(frozen=True)
class Target:
    conv: int
    reply: int  # a pending reply on conv
    draft: int  # a draft of its agent on conv
    customer: int
    other_customer: int


def targets(db: Db, world: World, *, sales: bool) -> Target:
    """Replies to act on, in support (ali's) or in sales (bob's)."""
    cid, author = (world.conv_sales, world.bob) if sales else (world.conv_support, world.ali)
    with db() as s:
        actor = s.get(Person, author)
        pending = workflow.draft(s, actor, cid, "pending reply", check=REPLY_CHECK)
        workflow.submit(s, actor, pending.id, check=REPLY_CHECK)
        drafted = workflow.draft(s, actor, cid, "a draft", check=REPLY_CHECK)
        s.commit()
        customer = world.customer_sales if sales else world.customer_support
        other = world.customer_support if sales else world.customer_sales
        return Target(cid, pending.id, drafted.id, customer, other)


ACTIONS: dict[str, Callable[[Target, World], tuple[str, dict[str, str]]]] = {
    "assign": lambda t, w: (f"/conversations/{t.conv}/assign", {"person_id": str(w.coord)}),
    "refer": lambda t, w: (f"/conversations/{t.conv}/refer",
                           {"team_id": str(w.support), "note": "n"}),
    "draft": lambda t, w: (f"/conversations/{t.conv}/replies", {"body": "x"}),
    "close": lambda t, w: (f"/conversations/{t.conv}/close", {}),
    "reopen": lambda t, w: (f"/conversations/{t.conv}/reopen", {}),
    "note": lambda t, w: (f"/conversations/{t.conv}/notes", {"text": "x"}),
    "preview": lambda t, w: (f"/conversations/{t.conv}/preview", {"body": "x"}),
    "edit": lambda t, w: (f"/replies/{t.draft}/edit", {"body": "y"}),
    "submit": lambda t, w: (f"/replies/{t.draft}/submit", {}),
    "approve": lambda t, w: (f"/replies/{t.reply}/approve", {"edited_body": "z"}),
    "reject": lambda t, w: (f"/replies/{t.reply}/reject", {"comment": "no"}),
    "tag": lambda t, w: (f"/customers/{t.customer}/tags", {"tag": "vip"}),
    "untag": lambda t, w: (f"/customers/{t.customer}/tags/remove", {"tag": "vip"}),
    "link": lambda t, w: (f"/customers/{t.customer}/link",
                          {"kind": "email", "address": "new@example.ir"}),
    "merge": lambda t, w: (f"/customers/{t.customer}/merge", {"into": str(t.other_customer)}),
}


AUTHOR_ONLY = ("edit", "submit")  # the reply's author (ali) takes these steps


@pytest.mark.parametrize("action", sorted(ACTIONS))
def test_every_action_without_the_csrf_token_is_refused(
    client: TestClient, world: World, db: Db, action: str
) -> None:
    with db() as s:  # an admin with the merge right: every action is allowed but for CSRF
        boss = s.get(Person, world.coord2)
        assert boss is not None
        boss.role, boss.can_merge = f.Role.ADMIN, True
        s.commit()
    t = targets(db, world, sales=False)
    csrf = sign_in(client, "ali" if action in AUTHOR_ONLY else "reza")
    before = snapshot(db)
    url, data = ACTIONS[action](t, world)
    r = client.post(url, data=data, follow_redirects=False)
    assert r.status_code == 403 and "CSRF" in r.text
    r = client.post(url, data={**data, "csrf_token": "0" * 64}, follow_redirects=False)
    assert r.status_code == 403
    assert snapshot(db) == before
    # The same request with the token passes the check (so the 403 was the token's); the
    # workflow may still refuse the step itself (close with a reply pending: 409).
    r = client.post(url, data={**data, "csrf_token": csrf}, follow_redirects=False)
    assert r.status_code in (200, 303, 409), (action, r.status_code, r.text[-800:])


@pytest.mark.parametrize("action", sorted(ACTIONS))
def test_agent_acting_on_another_teams_items_gets_404(
    client: TestClient, world: World, db: Db, action: str
) -> None:
    t = targets(db, world, sales=True)
    csrf = sign_in(client, "ali")
    before = snapshot(db)
    url, data = ACTIONS[action](t, world)
    r = client.post(url, data={**data, "csrf_token": csrf}, follow_redirects=False)
    assert r.status_code == 404, (action, r.status_code)
    assert "sales-secret" not in r.text and "pending reply" not in r.text
    assert snapshot(db) == before


SCRIPT = "<script>alert(1)</script>"
IMG = "<img src=x onerror=alert(1)>"
ESCAPED = ("&lt;script&gt;alert(1)&lt;/script&gt;", "&lt;img src=x onerror=alert(1)&gt;")


def assert_escaped(page: str, *, times: int = 1) -> None:
    assert SCRIPT not in page and IMG not in page and "onerror=alert" not in page.replace(
        "&lt;img src=x onerror=alert(1)&gt;", "")
    for escaped in ESCAPED:
        assert page.count(escaped) >= times, escaped


def test_customer_controlled_text_is_shown_as_text(
    client: TestClient, world: World, db: Db
) -> None:
    evil = f"{SCRIPT}{IMG}"
    with db() as s:
        support = s.get(f.Team, world.support)
        ali = s.get(Person, world.ali)
        conv = f.conversation(s, channel=Channel.EMAIL, team=support, assignee=ali,
                              subject=evil, text=evil)
        customer = s.get(Customer, conv.customer_id)
        assert customer is not None
        customer.display_name = evil
        customer.tags = [evil]
        s.add(Identity(customer_id=customer.id, kind="telegram", address="777", display=evil))
        msg = s.scalars(select(Message).where(Message.conversation_id == conv.id)).one()
        msg.sender_name = evil
        f.mail_html(msg, f"<p>hello</p>{evil}<a href=\"javascript:alert(1)\">x</a>")
        msg.attachments = [{"filename": evil, "content_type": "text/html", "size": 10,
                            "storage_key": "a" * 64}]
        f.conversation(s, team=support, subject="other")  # for the history panel
        s.commit()
        cid, customer_id = conv.id, customer.id
    sign_in(client, "ali")
    page = client.get(f"/conversations/{cid}").text
    # name (title, panel, sender), subject, text, attachment name, tag, identity display
    assert_escaped(page, times=7)
    assert 'id="customer-panel"' in page and "/attachments/" + "a" * 64 in page
    assert "<p>hello</p>" in page  # the sanitised mail HTML is shown as HTML
    assert "javascript:" not in page
    for url in ("/queues?queue=mine", "/queues/live?queue=open", f"/customers/{customer_id}",
                "/customers?q=777", f"/customers/{customer_id}/merge?q=777"):
        shown = client.get(url)
        assert shown.status_code == 200, url
        assert SCRIPT not in shown.text and IMG not in shown.text, url
        assert ESCAPED[0] in shown.text, url
    # A reply and a note typed by staff are text too.
    csrf = sign_in(client, "ali")
    client.post(f"/conversations/{cid}/notes", data={"csrf_token": csrf, "text": evil})
    client.post(f"/conversations/{cid}/replies", data={"csrf_token": csrf, "body": evil})
    preview = client.post(f"/conversations/{cid}/preview",
                          data={"csrf_token": csrf, "body": evil}).text
    assert_escaped(preview)
    assert_escaped(client.get(f"/conversations/{cid}").text, times=3)
