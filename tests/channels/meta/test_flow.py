"""End to end on the stand-in: a customer's message in by the signed webhook, routed,
answered, approved, and sent by the Send API / Cloud API exactly once; WhatsApp's statuses
then move the reply (delivered, read, failed with the reason), a status that comes before
the send's answer is asked for again rather than lost, and a resent one counts once."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from channels.meta.standin import GraphStandin, instagram_event, whatsapp_event, whatsapp_status
from config.meta import MetaConfig
from kartabl import outbound, workflow
from kartabl.models import Channel, Conversation, Message, Reply, ReplyState, Role
from responders.dispatch import dispatch_reply
from responders.meta import MetaSender
from responders.preview import REPLY_CHECK
from router.batch import route_batch
from tests import factories as f
from tests.channels.meta.conftest import APP_SECRET, IG_ID, URL, WA_ID
from tests.factories import routing_args

RS = ReplyState


@pytest.fixture
def senders(meta_config: MetaConfig) -> Iterator[None]:
    before = outbound.registered()
    made = [outbound.register(MetaSender(ch, meta_config)) for ch in ("instagram", "whatsapp")]
    yield
    for sender in made:
        sender.close()
        outbound.unregister(sender.channel)
    for sender in before.values():
        outbound.register(sender)


def answer(db: sessionmaker[Session], external_id: str, body: str) -> int:
    """Route the stored message, then an agent drafts ``body`` and a coordinator approves
    it; the reply's id."""
    with db() as s:
        mid = s.scalar(select(Message.id).where(Message.external_id == external_id))
        assert mid is not None
        support = f.team(s, "support")  # the account's team (its messages' default_team)
        agent, coord = f.person(s, teams=[support]), f.person(s, role=Role.COORDINATOR)
        s.commit()
        route_batch(s, [mid], **routing_args())
        s.commit()
        conv_id = s.scalar(select(Message.conversation_id).where(Message.id == mid))
        assert conv_id is not None
        reply = workflow.draft(s, agent, conv_id, body, check=REPLY_CHECK)
        workflow.submit(s, agent, reply.id, check=REPLY_CHECK)
        workflow.approve(s, coord, reply.id, check=REPLY_CHECK)
        s.commit()
        return reply.id


def whatsapp_reply_sent(client: TestClient, standin: GraphStandin,
                        db: sessionmaker[Session], external_id: str) -> tuple[int, str]:
    """A customer's WhatsApp message in, answered, approved and sent: the reply's id and
    the wamid the Cloud API gave it."""
    event = whatsapp_event(WA_ID, "989121234567", external_id, "سلام")
    assert standin.deliver(client.post, URL, event, APP_SECRET).status_code == 200
    rid = answer(db, external_id, "سلام، در خدمتم")
    assert dispatch_reply(db, rid) == "sent"
    return rid, standin.sent[-1].message_id


def test_instagram_in_approve_and_the_send_api_called_once(
        client: TestClient, standin: GraphStandin, db, senders, enqueued) -> None:
    event = instagram_event(IG_ID, "2000000000000042", "ig-mid-flow", "سلام، این موجود است؟")
    assert standin.deliver(client.post, URL, event, APP_SECRET).status_code == 200
    rid = answer(db, "ig-mid-flow", "بله، موجود است")
    assert dispatch_reply(db, rid) == "sent"
    assert dispatch_reply(db, rid) == "skipped"  # a second dispatch never calls it again
    [sent] = standin.sent
    assert (sent.account, sent.recipient, sent.text, sent.tag) == (
        IG_ID, "2000000000000042", "بله، موجود است", None)
    with db() as s:
        reply = s.get(Reply, rid)
        assert reply.state == RS.SENT and reply.provider_id == sent.message_id
        conv = s.get(Conversation, reply.conversation_id)
        assert conv.channel == Channel.INSTAGRAM


def test_whatsapp_in_approve_send_then_delivered_and_read(
        client: TestClient, standin: GraphStandin, db, senders, enqueued) -> None:
    event = whatsapp_event(WA_ID, "989121234567", "wamid.FLOW1", "سفارشم کی می‌رسد؟",
                           name="مریم")
    assert standin.deliver(client.post, URL, event, APP_SECRET).status_code == 200
    rid = answer(db, "wamid.FLOW1", "فردا می‌رسد")
    assert dispatch_reply(db, rid) == "sent"
    [sent] = standin.sent
    assert sent.recipient == "989121234567" and sent.body["messaging_product"] == "whatsapp"
    wamid = sent.message_id
    # When WhatsApp reports it sent, then read (its delivered came late), then delivered
    for status in ("sent", "read", "delivered"):
        r = standin.deliver(client.post, URL, whatsapp_status(WA_ID, wamid, status,
                                                              "989121234567"), APP_SECRET)
        assert r.status_code == 200
    with db() as s:
        reply = s.get(Reply, rid)
        assert reply.state == RS.DELIVERED and reply.delivered_at is not None
        assert len(f.events(s, "reply.delivered")) == 1 and len(f.events(s, "reply.read")) == 1


def test_a_failed_whatsapp_status_fails_the_reply_with_the_reason(
        client: TestClient, standin: GraphStandin, db, senders, enqueued) -> None:
    rid, wamid = whatsapp_reply_sent(client, standin, db, "wamid.FLOW2")
    failed = whatsapp_status(WA_ID, wamid, "failed", "989121234567",
                             error=(131026, "Message undeliverable"))
    # a forged status changes nothing
    assert standin.deliver(client.post, URL, failed, APP_SECRET, wrong=True).status_code == 403
    with db() as s:
        assert s.get(Reply, rid).state == RS.SENT
    assert standin.deliver(client.post, URL, failed, APP_SECRET).status_code == 200
    with db() as s:
        reply = s.get(Reply, rid)
        assert reply.state == RS.FAILED
        assert "131026: Message undeliverable" in (reply.error or "")
        [event_] = f.events(s, "reply.failed")
        assert event_.data["provider_id"] == wamid


def test_a_status_that_comes_before_the_send_is_recorded_is_asked_again(
        client: TestClient, standin: GraphStandin, db, senders, enqueued) -> None:
    event = whatsapp_event(WA_ID, "989121234567", "wamid.FLOW3", "سلام")
    assert standin.deliver(client.post, URL, event, APP_SECRET).status_code == 200
    rid = answer(db, "wamid.FLOW3", "سلام، در خدمتم")
    # A status of a message we never sent, with nothing being sent: ignored, as before
    stranger = whatsapp_status(WA_ID, "wamid.NOT-OURS", "delivered", "989121234567")
    assert standin.deliver(client.post, URL, stranger, APP_SECRET).status_code == 200
    standin.slow_next(1.2)  # the Cloud API takes the message; its answer comes late (< 2 s)
    with ThreadPoolExecutor(1) as pool:
        sending = pool.submit(dispatch_reply, db, rid)
        deadline = time.monotonic() + 20
        while not standin.sent:
            assert time.monotonic() < deadline, "the send never reached the stand-in"
            time.sleep(0.02)
        failed = whatsapp_status(WA_ID, standin.sent[0].message_id, "failed", "989121234567",
                                 error=(131026, "Message undeliverable"))
        # When WhatsApp reports it failed before the send's answer reached us
        early = standin.deliver(client.post, URL, failed, APP_SECRET)
        # Then Meta is asked to send it again, and nothing changed meanwhile
        assert early.status_code == 503 and early.headers["Retry-After"] == "10"
        with db() as s:
            assert s.get(Reply, rid).state == RS.SENDING
        assert sending.result(timeout=30) == "sent"
    # When Meta sends it again: the reply fails with the reason, and a third time changes
    # nothing more
    for _ in range(2):
        assert standin.deliver(client.post, URL, failed, APP_SECRET).status_code == 200
    with db() as s:
        reply = s.get(Reply, rid)
        assert reply.state == RS.FAILED and "131026" in (reply.error or "")
        assert len(f.events(s, "reply.failed")) == 1


def test_a_read_status_sent_again_is_recorded_once(
        client: TestClient, standin: GraphStandin, db, senders, enqueued) -> None:
    rid, wamid = whatsapp_reply_sent(client, standin, db, "wamid.FLOW4")
    for status in ("delivered", "read", "read"):  # Meta resends a POST it got no 200 for
        r = standin.deliver(client.post, URL, whatsapp_status(WA_ID, wamid, status,
                                                              "989121234567"), APP_SECRET)
        assert r.status_code == 200
    with db() as s:
        assert s.get(Reply, rid).state == RS.DELIVERED
        assert len(f.events(s, "reply.read")) == 1
