"""The demo's API channel (:mod:`boot.demo_channels`): a demo customer's message goes from
the external system's stand-in to the console's real webhook, served by uvicorn; the reply
leaves by the real sender to the stand-in, which reports it delivered by the signed status
callback. SQLite only, the embedded mode's wiring."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from boot.demo import DemoDriver, seed
from boot.demo_channels import API_CHANNEL, DemoChannels
from console.app import create_app
from kartabl.models import Channel, Identity, Message, Reply, ReplyState
from responders.dispatch import dispatch_reply
from router.batch import route_batch
from tests.channels.api.flow import approve_reply
from tests.factories import routing_args
from tests.test_demo_channels import make_demo


@pytest.fixture(params=["sqlite"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    path = tmp_path / "kartabl.db"
    path.write_bytes(request.getfixturevalue("sqlite_template").read_bytes())
    return f"sqlite:///{path}"


@pytest.fixture
def demo(db: sessionmaker[Session]) -> Iterator[DemoChannels]:
    with db() as s:
        seed(s)
        s.commit()
    yield from make_demo(deliver_after_s=0.0, fail_ratio=0.0, seed=1)


def test_a_demo_shop_user_writes_and_gets_the_reply_delivered(
        demo: DemoChannels, db: sessionmaker[Session]) -> None:
    # Given the console serving the webhooks with the demo's in-memory channels
    app = create_app()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_config=None))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        while not server.started:
            time.sleep(0.02)
        port = server.servers[0].sockets[0].getsockname()[1]
        demo.serve_callback(app, "127.0.0.1", port)
        # When the demo's shop user writes (only the API channel, through the driver)
        driver = DemoDriver(threading.Event(), seed_=3, channels=demo, only={"api"})
        driver.customer_writes()
        # Then the message is stored as the seeded customer's, by the real webhook
        with db() as s:
            [msg] = s.scalars(select(Message)).all()
            assert (msg.channel, msg.sender) == (Channel.API, f"{API_CHANNEL}:u-1042")
            route_batch(s, [msg.id], **routing_args())
            s.commit()
            s.refresh(msg)
            seeded_customer = s.scalar(select(Identity.customer_id).where(
                Identity.kind == "api", Identity.address == f"{API_CHANNEL}:u-1042"))
            assert msg.customer_id == seeded_customer and msg.conversation_id is not None
            conv_id = msg.conversation_id
        # And an approved reply reaches the shop's system, which reports it delivered
        rid = approve_reply(db, conv_id)
        assert dispatch_reply(db, rid) == "sent"
        assert demo.api_system is not None
        assert [c.body["reply_id"] for c in demo.api_system.received] == [rid]
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with db() as s:
                reply = s.get(Reply, rid)
                assert reply is not None
                if reply.state == ReplyState.DELIVERED:
                    break
            time.sleep(0.05)
        assert reply.state == ReplyState.DELIVERED
    finally:
        server.should_exit = True
        thread.join(timeout=10)
