"""The demo's Instagram and WhatsApp (:mod:`boot.demo_meta`): a demo customer's message
reaches Kartabl by the real, signed webhook; an approved reply leaves by the real sender to
the stand-in, which then reports it delivered and read to the webhook."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from boot import demo_meta
from boot.demo import CUSTOMERS, seed
from boot.demo_meta import DemoMeta
from channels.meta import webhook
from channels.webhooks import routers
from kartabl import outbound, workflow
from kartabl.models import Channel, Identity, Message, Person, Reply, ReplyState
from responders.dispatch import dispatch_reply
from responders.meta import MetaSender
from responders.preview import REPLY_CHECK
from router.route import route_message
from tests import factories as f
from tests.factories import routing_args

ADDRESSES = dict(CUSTOMERS)


@pytest.fixture(params=["sqlite"])
def db_url(request: pytest.FixtureRequest, tmp_path) -> str:
    """SQLite only: the embedded mode's wiring (the adapter has its tests on both)."""
    path = tmp_path / "kartabl.db"
    path.write_bytes(request.getfixturevalue("sqlite_template").read_bytes())
    return f"sqlite:///{path}"


@pytest.fixture
def meta(db: sessionmaker[Session], settings, tmp_path, monkeypatch) -> Iterator[DemoMeta]:
    with db() as s:
        seed(s)
        s.commit()
    monkeypatch.setattr(demo_meta, "STATUS_AFTER_S", 0.05)
    demo = DemoMeta.start()
    app = FastAPI()
    app.include_router(routers()["meta"], prefix="/webhooks/meta")
    app.dependency_overrides[webhook.meta_config] = lambda: demo.config
    app.dependency_overrides[webhook.meta_settings] = lambda: settings.model_copy(
        update={"attachments_dir": tmp_path / "att"})
    app.dependency_overrides[webhook.session_factory] = lambda: db
    before = outbound.registered()
    with TestClient(app) as client:
        demo.post = client.post  # the console's webhook, in process
        demo.webhook_url = "/webhooks/meta"
        senders = [outbound.register(MetaSender(ch, demo.config))
                   for ch in ("instagram", "whatsapp")]
        yield demo
        demo.stop()  # its reports post through this client: stop them before it closes
        for sender in senders:
            sender.close()
            outbound.unregister(sender.channel)
        for sender in before.values():
            outbound.register(sender)


def test_a_demo_whatsapp_message_is_answered_and_reported_read(meta: DemoMeta, db) -> None:
    name = "پریسا نوری"
    meta.customer_writes(Channel.WHATSAPP, name, ADDRESSES[name]["whatsapp"], "سلام")
    with db() as s:
        msg = s.scalars(select(Message).where(Message.channel == Channel.WHATSAPP)).one()
        route_message(s, msg.id, **routing_args())
        s.commit()
        seeded_customer = s.scalars(select(Identity.customer_id).where(
            Identity.kind == "phone", Identity.address == "+989121112233")).one()
        msg = s.get(Message, msg.id)
        assert msg.customer_id == seeded_customer  # the seeded customer, by phone
        maryam = s.scalars(select(Person).where(Person.username == "maryam")).one()
        ali = s.scalars(select(Person).where(Person.username == "ali")).one()
        workflow.assign(s, maryam, msg.conversation_id, person_id=ali.id)
        reply = workflow.draft(s, ali, msg.conversation_id, "سلام نگار", check=REPLY_CHECK)
        workflow.submit(s, ali, reply.id, check=REPLY_CHECK)
        workflow.approve(s, maryam, reply.id, check=REPLY_CHECK)
        s.commit()
        rid = reply.id
    assert dispatch_reply(db, rid) == "sent"
    assert [m.text for m in meta.standin.sent] == ["سلام نگار"]
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:  # the stand-in reports delivered, then read
        with db() as s:
            if f.events(s, "reply.read"):
                break
        time.sleep(0.05)
    with db() as s:
        assert s.get(Reply, rid).state == ReplyState.DELIVERED
        assert len(f.events(s, "reply.delivered")) == len(f.events(s, "reply.read")) == 1


def test_a_demo_instagram_message_waits_for_the_console_then_arrives(meta: DemoMeta,
                                                                     db) -> None:
    meta.webhook_url = ""
    meta.customer_writes(Channel.INSTAGRAM, "Lina", ADDRESSES["Lina"]["instagram"], "hi")
    assert len(meta.pending) == 1
    meta.webhook_url = "/webhooks/meta"
    meta.customer_writes(Channel.INSTAGRAM, "Lina", ADDRESSES["Lina"]["instagram"], "again")
    with db() as s:
        texts = sorted(s.scalars(select(Message.text).where(
            Message.channel == Channel.INSTAGRAM)))
    assert texts == ["again", "hi"] and meta.pending == []
