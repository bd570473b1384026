"""The webhook: verify the secret, commit, then 200; nothing stored otherwise. Updates come
from the stand-in (the bot's setWebhook registers the secret Telegram sends back)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from channels.telegram import webhook
from channels.telegram.standin_wire import text_update
from channels.webhooks import routers
from config.telegram import TelegramConfig
from kartabl.models import Channel, Customer, Identity, Message
from router.batch import route_batch
from tests.channels.telegram.conftest import SECRET
from tests.factories import routing_args

URL = "/webhooks/telegram/shop"
HEADER = "X-Telegram-Bot-Api-Secret-Token"


@pytest.fixture
def client(bots: TelegramConfig, db: sessionmaker[Session]) -> Iterator[TestClient]:
    app = FastAPI()
    app.include_router(routers()["telegram"], prefix="/webhooks/telegram")  # as the console
    app.dependency_overrides[webhook.telegram_config] = lambda: bots
    app.dependency_overrides[webhook.session_factory] = lambda: db
    with TestClient(app) as c:
        yield c


def count(db: sessionmaker[Session]) -> int:
    with db() as s:
        return s.scalar(select(func.count()).select_from(Message)) or 0


def post(client: TestClient, update: Any, secret: str | None = SECRET,
         url: str = URL) -> int:
    headers = {HEADER: secret} if secret is not None else {}
    return client.post(url, json=update, headers=headers).status_code


def test_an_update_retried_three_times_is_one_message(client: TestClient, db) -> None:
    update = {"update_id": 9001, **text_update(42, "سلام")}
    # Given Telegram resends an update (it got no 2xx in time) three times
    assert [post(client, update) for _ in range(3)] == [200, 200, 200]
    # Then there is one message, committed, with the bot's team as its fallback
    assert count(db) == 1
    with db() as s:
        msg = s.scalars(select(Message)).one()
        assert (msg.channel, msg.external_id, msg.sender) == ("telegram", "shop:9001", "42")
        assert msg.meta["default_team"] == "support" and msg.meta["chat_id"] == 42


@pytest.mark.parametrize("secret", ["wrong", "", None, SECRET + "x"])
def test_a_forged_webhook_gets_403_and_stores_nothing(client: TestClient, db,
                                                      secret: str | None) -> None:
    assert post(client, {"update_id": 1, **text_update(42, "forged")}, secret) == 403
    assert count(db) == 0


@pytest.mark.parametrize("body", [b"{not json", b"[]", b'{"update_id": "x"}',
                                  b'{"update_id": 5, "message": {"chat": 1}}', b"\xff\xfe"])
def test_a_malformed_body_gets_400_and_stores_nothing(client: TestClient, db,
                                                      body: bytes) -> None:
    r = client.post(URL, content=body, headers={HEADER: SECRET,
                                               "Content-Type": "application/json"})
    assert r.status_code == 400 and count(db) == 0


def test_unknown_or_polling_bots_are_404(client: TestClient, db) -> None:
    update = {"update_id": 1, **text_update(42, "hi")}
    assert post(client, update, url="/webhooks/telegram/nobody") == 404
    assert post(client, update, url="/webhooks/telegram/poller") == 404
    assert count(db) == 0


def test_ignored_updates_are_acknowledged(client: TestClient, db) -> None:
    assert post(client, {"update_id": 2, **text_update(42, "hi", chat_type="group")}) == 200
    assert post(client, {"update_id": 3, "callback_query": {"id": "q"}}) == 200
    assert count(db) == 0


def test_the_same_user_id_on_bale_and_telegram_is_two_customers(client: TestClient,
                                                                db) -> None:
    assert post(client, {"update_id": 10, **text_update(42, "از تلگرام")}) == 200
    assert post(client, {"update_id": 10, **text_update(42, "از بله")},
                url="/webhooks/telegram/bale-shop") == 200
    with db() as s:
        ids = list(s.scalars(select(Message.id).order_by(Message.id)))
        route_batch(s, ids, **routing_args())
        idents = s.execute(select(Identity.kind, Identity.address, Identity.customer_id)
                           .order_by(Identity.kind)).all()
        assert [(k, a) for k, a, _ in idents] == [("bale", "42"), ("telegram", "42")]
        assert idents[0].customer_id != idents[1].customer_id
        assert s.scalar(select(func.count()).select_from(Customer)) == 2
        channels = set(s.scalars(select(Message.channel)))
        assert channels == {Channel.TELEGRAM, Channel.BALE}


def test_the_standin_delivers_to_a_live_webhook_with_its_secret(
        standin, bots: TelegramConfig, db) -> None:
    # Over real HTTP both ways: the bot registers its webhook on the stand-in with
    # python-telegram-bot, the stand-in POSTs updates with the secret to a live server.
    import asyncio
    import threading

    import uvicorn

    from channels.telegram.bot import open_bot
    from tests.channels.telegram.conftest import TOKEN

    app = FastAPI()
    app.include_router(routers()["telegram"], prefix="/webhooks/telegram")
    app.dependency_overrides[webhook.telegram_config] = lambda: bots
    app.dependency_overrides[webhook.session_factory] = lambda: db
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_config=None))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        while not server.started:
            threading.Event().wait(0.02)
        port = server.servers[0].sockets[0].getsockname()[1]
        shop = bots.bot("shop")
        assert shop is not None

        async def set_hook() -> None:
            async with open_bot(shop) as bot:
                await bot.set_webhook(f"http://127.0.0.1:{port}{URL}", secret_token=SECRET)

        asyncio.run(set_hook())
        update = {"update_id": 77, **text_update(43, "با وب‌هوک")}
        assert [standin.deliver_webhook(TOKEN, update) for _ in range(3)] == [200] * 3
        assert standin.deliver_webhook(TOKEN, update, secret="forged") == 403
        assert count(db) == 1
    finally:
        server.should_exit = True
        thread.join(5)


@pytest.mark.parametrize("date", [10**12, 10**30, -5, 0, 1, "1700000000", 1.5e9, True, None])
def test_an_update_with_a_date_out_of_range_is_400_and_stores_nothing(
        client: TestClient, db, date: Any) -> None:
    """The date is Telegram's (metadata): one that cannot be real is a malformed update,
    never a 500 and never stored (10**30 overflowed datetime before)."""
    update = {"update_id": 77, **text_update(42, "from the future", date=date)}
    r = client.post(URL, json=update, headers={HEADER: SECRET})
    assert r.status_code == 400, r.text
    assert "date" in r.json()["detail"]
    assert count(db) == 0


def test_the_message_time_is_its_arrival_and_telegram_date_is_metadata(
        client: TestClient, db) -> None:
    sent = 1_300_000_000  # 2011: an old date Telegram would never send, but in range
    before = datetime.now(UTC)
    assert post(client, {"update_id": 78, **text_update(42, "old", date=sent)}) == 200
    with db() as s:
        msg = s.scalars(select(Message)).one()
        assert before <= msg.received_at <= datetime.now(UTC)
        assert msg.meta["sent_at"] == "2011-03-13T07:06:40+00:00"
