"""The whole path on both databases: a visitor writes, the router routes it, an agent drafts
(the visitor sees "being prepared", never the draft), a reviewer approves, the real outbox
sends it by the widget's sender, and the visitor's stream has it once; the delivery poll
marks it delivered; a close is a "closed" event."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import select

from channels.webchat.log import sync_notices
from kartabl import workflow
from kartabl.models import Message, Reply, ReplyState, Role
from kartabl.outbound import get_sender, register, registered, unregister
from responders.dispatch import dispatch_reply, poll_delivery
from responders.preview import REPLY_CHECK
from responders.webchat import WebchatSender
from router.route import route_message
from tests.channels.webchat.conftest import Chat
from tests.factories import person, routing_args


@pytest.fixture
def webchat_sender(db) -> Iterator[WebchatSender]:
    before = registered().get("webchat")
    unregister("webchat")
    sender = register(WebchatSender(db))
    yield sender
    unregister("webchat")
    if before is not None:
        register(before)


def test_visitor_to_agent_and_back(chat: Chat, db, webchat_sender: WebchatSender) -> None:
    assert get_sender("webchat") is webchat_sender
    token = chat.visitor()
    assert chat.post(token, "سفارش ۱۲ کجاست؟").status_code == 200
    with db() as s:
        mid = s.scalars(select(Message.id)).one()
        outcome = route_message(s, mid, **routing_args())
        assert outcome is not None and outcome.conversation_id is not None
        conv = outcome.conversation_id
        boss = person(s, role=Role.ADMIN)
        reply = workflow.draft(s, boss, conv, "فردا ارسال می‌شود.", check=REPLY_CHECK)
        s.commit()
        sync_notices(s)
        workflow.submit(s, boss, reply.id, check=REPLY_CHECK)
        s.commit()
        rid = reply.id
    assert [e["kind"] for e in chat.events(token)] == ["message", "preparing"]
    with db() as s:
        approver = person(s, role=Role.COORDINATOR)
        workflow.approve(s, approver, rid, check=REPLY_CHECK)
        s.commit()
    dispatch_reply(db, rid)
    dispatch_reply(db, rid)  # a redelivered job: nothing twice
    events = chat.events(token)
    assert [(e["kind"], e.get("text")) for e in events] == [
        ("message", "سفارش ۱۲ کجاست؟"), ("preparing", None), ("reply", "فردا ارسال می‌شود.")]
    poll_delivery(db)
    with db() as s:
        assert s.get(Reply, rid).state == ReplyState.DELIVERED  # type: ignore[union-attr]
        workflow.close(s, approver, conv)
        s.commit()
        # (the app's waker may have written it already: woken by the close's commit)
        sync_notices(s)
        assert sync_notices(s) == 0
    assert [e["kind"] for e in chat.events(token, 3)] == ["closed"]
