"""The whole path over real HTTP, with the example client (``examples/api_channel_client.py``)
as the external system: its signed message reaches the webhook served by uvicorn, is routed,
a reply is approved and leaves through the real outbox to the client's callback receiver,
which gets it once and reports it read. Both databases."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from channels.webhooks import routers
from config.api_channel import ApiChannelConfig
from config.channels import ChannelsConfig
from config.settings import Settings
from examples.api_channel_client import CallbackReceiver, report_status, send_message
from kartabl import outbound
from kartabl.models import Channel, Message, Reply, ReplyState
from responders.api_channel import ApiChannelSender
from responders.dispatch import dispatch_reply
from router.batch import route_batch
from tests.channels.api.conftest import SECRET
from tests.channels.api.flow import approve_reply
from tests.factories import routing_args

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def receiver() -> Iterator[CallbackReceiver]:
    r = CallbackReceiver(SECRET).start()
    yield r
    r.stop()


@pytest.fixture
def live(receiver: CallbackReceiver, files_settings: Settings,
         db: sessionmaker[Session]) -> Iterator[str]:
    """The webhooks as `kartabl web` serves them, on a real port; the channel's callback
    is the example client's receiver. Yields the base URL."""
    config = ApiChannelConfig(name="shop", secret=SECRET, callback_url=receiver.url,
                              team="support")
    app = FastAPI()
    app.state.settings = files_settings
    app.state.channels = ChannelsConfig(api=[config])
    app.include_router(routers()["api"], prefix="/webhooks/api")
    # log_config=None: uvicorn's own would stop its loggers propagating (to caplog) for the
    # rest of this test process
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_config=None))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    before = outbound.registered()
    sender = ApiChannelSender([config])
    outbound.register(sender)
    try:
        while not server.started:
            threading.Event().wait(0.02)
        yield f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sender.close()
        outbound.unregister(Channel.API)
        for s in before.values():
            outbound.register(s)


def test_message_in_reply_out_once_and_reported_read(live: str, receiver: CallbackReceiver,
                                                     db: sessionmaker[Session]) -> None:
    # Given the shop's backend sends a user's message, and resends it (no answer in time)
    for _ in range(2):
        status, answer = send_message(live, "shop", SECRET, key="order-77-msg-1",
                                      user_id="u-1042", text="سلام، سفارش ۷۷ کجاست؟",
                                      name="سارا", files=[("a.txt", "text/plain", b"hi")])
        assert status == 200, answer
    # Then it is one message, and routing gives it a conversation
    with db() as s:
        [msg] = s.scalars(select(Message)).all()
        route_batch(s, [msg.id], **routing_args())
        s.commit()
        s.refresh(msg)
        conv_id = msg.conversation_id
        assert conv_id is not None and len(msg.attachments) == 1
    # When a reply is approved and the outbox sends it (and a redelivered task runs again)
    rid = approve_reply(db, conv_id, body="فردا می‌رسد")
    assert dispatch_reply(db, rid) == "sent"
    assert dispatch_reply(db, rid) == "skipped"
    # Then the client's receiver got it once, signed, addressed to the user
    [got] = receiver.wait(1, timeout=5)
    assert (got["reply_id"], got["user"], got["text"], got["in_reply_to"]) == (
        rid, {"id": "u-1042"}, "فردا می‌رسد", "order-77-msg-1")
    assert len(receiver.replies) == 1
    # And when the client reports it read, the reply is delivered
    assert report_status(live, "shop", SECRET, got["reply_id"], "read")[0] == 200
    with db() as s:
        reply = s.get(Reply, rid)
        assert reply is not None and reply.state == ReplyState.DELIVERED
        assert reply.provider_id == f"shop:{rid}:cb-{rid}"


def test_the_clients_refusals_are_the_contracts(live: str, db) -> None:
    status, answer = send_message(live, "shop", "wrong-" + SECRET, key="k", user_id="u")
    assert status == 403 and answer["detail"] == "signature refused: wrong signature"
    status, answer = send_message(live, "shop", SECRET, key="k", user_id="u")
    assert status == 400 and "needs text or attachments" in answer["detail"]
    with db() as s:
        assert s.scalars(select(Message)).all() == []


def test_the_example_cli_sends_a_message(live: str, db) -> None:
    env = {**os.environ, "KARTABL_API_SECRET": SECRET}
    done = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "api_channel_client.py"), "send", "--url", live,
         "--channel", "shop", "--user", "u-7", "--key", "cli-1", "--text", "از خط فرمان"],
        env=env, capture_output=True, text=True, timeout=30, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith('200 {"ok": true, "created": true}')
    with db() as s:
        [msg] = s.scalars(select(Message)).all()
        assert (msg.sender, msg.text) == ("shop:u-7", "از خط فرمان")
