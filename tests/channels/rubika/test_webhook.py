"""The webhook: the secret path verified, the update committed (its file fetched), then
200; nothing stored otherwise. Over real HTTP both ways in the last test: the bot registers
its endpoint on the stand-in (``kartabl rubika set-webhook``'s code) and the stand-in POSTs
to a live server."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

import config.settings
from channels.rubika import registration, webhook
from channels.rubika.standin import RubikaStandin, text_update
from channels.webhooks import routers
from config.rubika import RubikaConfig
from kartabl.models import Message
from tests.channels.rubika.conftest import SECRET, TOKEN

URL = f"/webhooks/rubika/shop/{SECRET}"


def app_for(bots: RubikaConfig, db: sessionmaker[Session], files_dir: Path) -> FastAPI:
    settings = config.settings.get_settings().model_copy(
        update={"attachments_dir": files_dir, "attachment_max_bytes": 10_000})
    app = FastAPI()
    app.include_router(routers()["rubika"], prefix="/webhooks/rubika")  # as the console
    app.dependency_overrides[webhook.rubika_config] = lambda: bots
    app.dependency_overrides[webhook.session_factory] = lambda: db
    app.dependency_overrides[webhook.app_settings] = lambda: settings
    return app


@pytest.fixture
def client(bots: RubikaConfig, db: sessionmaker[Session], tmp_path: Path
           ) -> Iterator[TestClient]:
    with TestClient(app_for(bots, db, tmp_path)) as c:
        yield c


def count(db: sessionmaker[Session]) -> int:
    with db() as s:
        return s.scalar(select(func.count()).select_from(Message)) or 0


def post(client: TestClient, update: Any, url: str = URL) -> int:
    return client.post(url, json={"update": update}).status_code


def test_an_update_sent_three_times_is_one_message(client: TestClient, db) -> None:
    update = text_update("b0chat", "u0user", "سلام", message_id="5001")
    assert [post(client, update) for _ in range(2)] == [200, 200]
    assert post(client, update, url=URL + "/receiveUpdate") == 200  # the other URL form
    assert count(db) == 1
    with db() as s:
        msg = s.scalars(select(Message)).one()
        assert (msg.channel, msg.external_id, msg.sender) == ("rubika", "shop:b0chat:5001",
                                                              "u0user")
        assert msg.meta["default_team"] == "support" and msg.meta["chat_id"] == "b0chat"


@pytest.mark.parametrize("url", [
    "/webhooks/rubika/shop/wrong-secret-value-123",
    f"/webhooks/rubika/shop/{SECRET}x",
    f"/webhooks/rubika/shop/{SECRET[:-1]}",
])
def test_a_wrong_secret_is_403_and_stores_nothing(client: TestClient, db, url: str) -> None:
    assert post(client, text_update("b0c", "u0u", "forged"), url=url) == 403
    assert count(db) == 0


def test_unknown_or_polling_bots_and_other_paths_are_404(client: TestClient, db) -> None:
    update = text_update("b0c", "u0u", "hi")
    assert post(client, update, url=f"/webhooks/rubika/nobody/{SECRET}") == 404
    assert post(client, update, url=f"/webhooks/rubika/poller/{SECRET}") == 404
    assert post(client, update, url=f"{URL}/somethingElse") == 404
    assert client.post(f"/webhooks/rubika/poller/{SECRET}/receiveInlineMessage",
                       json={}).status_code == 404
    assert count(db) == 0


@pytest.mark.parametrize("body", [b"{not json", b"[]", b'{"other": 1}', b"\xff\xfe",
                                  b'{"update": {"type": "NewMessage", "chat_id": "b0c"}}',
                                  b'{"update": 5}'])
def test_a_malformed_body_is_400_and_stores_nothing(client: TestClient, db,
                                                    body: bytes) -> None:
    r = client.post(URL, content=body, headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and count(db) == 0


def test_ignored_updates_and_inline_taps_are_acknowledged(client: TestClient, db) -> None:
    assert post(client, {"type": "StartedBot", "chat_id": "b0c"}) == 200
    assert post(client, text_update("g0group", "u0u", "group")) == 200
    r = client.post(URL + "/receiveInlineMessage",
                    json={"inline_message": {"chat_id": "b0c", "message_id": "1",
                                             "sender_id": "u0u", "text": "tap"}})
    assert r.status_code == 200 and count(db) == 0
    forged = client.post("/webhooks/rubika/shop/not-the-secret-0000/receiveInlineMessage",
                         json={"inline_message": {}})
    assert forged.status_code == 403


def test_a_file_is_fetched_and_an_outage_lists_it_rather_than_losing_the_message(
        client: TestClient, standin: RubikaStandin, db, tmp_path: Path) -> None:
    data = b"%PDF-1.4 invoice"
    fid = standin.add_file(data, "invoice.pdf")
    ok = text_update("b0c", "u0u", "", message_id="1",
                     file={"file_id": fid, "file_name": "invoice.pdf", "size": str(len(data))})
    standin.chats.add("b0c")
    assert post(client, ok) == 200
    standin.fail_next("getFile", "server_error", 502)
    late = text_update("b0c", "u0u", "", message_id="2",
                       file={"file_id": fid, "file_name": "again.pdf", "size": "16"})
    assert post(client, late) == 200
    with db() as s:
        first, second = (m.attachments[0] for m in s.scalars(select(Message).order_by(
            Message.id)))
    key = hashlib.sha256(data).hexdigest()
    assert first["storage_key"] == key and (tmp_path / key[:2] / key).read_bytes() == data
    assert second["storage_key"] is None and second["filename"] == "again.pdf"


def test_set_webhook_registers_and_the_standin_delivers_to_a_live_server(
        standin: RubikaStandin, bots: RubikaConfig, db, tmp_path: Path) -> None:
    import uvicorn

    # log_config=None: uvicorn would otherwise reconfigure logging for the whole test process
    # (uvicorn.access stops propagating, and later tests' caplog sees none of its lines)
    server = uvicorn.Server(uvicorn.Config(app_for(bots, db, tmp_path), host="127.0.0.1",
                                           port=0, log_level="warning", log_config=None))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        while not server.started:
            threading.Event().wait(0.02)
        port = server.servers[0].sockets[0].getsockname()[1]
        shop = bots.bot("shop")
        assert shop is not None and registration.check(shop) is None
        # When the bot's endpoint is registered with updateBotEndpoints
        assert registration.register(shop, f"http://127.0.0.1:{port}") == "Done"
        registered = standin.bot(TOKEN).endpoints["ReceiveUpdate"]
        assert registered == f"http://127.0.0.1:{port}{URL}"
        # Then Rubika's POSTs land, once however often they come
        update = text_update("b0live", "u0live", "با وب‌هوک", message_id="77")
        assert [standin.deliver_webhook(TOKEN, update) for _ in range(3)] == [200] * 3
        forged = f"http://127.0.0.1:{port}/webhooks/rubika/shop/not-the-secret-0000"
        assert standin.deliver_webhook(TOKEN, update, url=forged) == 403
        assert count(db) == 1
    finally:
        server.should_exit = True
        thread.join(5)


def test_the_secret_path_is_masked_in_access_logs() -> None:
    from kartabl.logs import redact

    line = f'127.0.0.1 - "POST /webhooks/rubika/shop/{SECRET}/receiveUpdate HTTP/1.1" 200'
    assert SECRET not in redact(line) and "/webhooks/rubika/shop/***" in redact(line)


@pytest.mark.parametrize("secret", ["short", "a/b" * 8, "x" * 15, "space in the secret 123"])
def test_a_webhook_secret_that_is_no_safe_path_segment_is_refused_at_load(secret: str) -> None:
    from config.rubika import RubikaBot

    with pytest.raises(ValueError, match="16 characters") as caught:
        RubikaBot(name="x", token="T", mode="webhook", webhook_secret=secret)
    assert secret not in str(caught.value)


def test_only_webhook_bots_are_registered(bots: RubikaConfig) -> None:
    poller = bots.bot("poller")
    assert poller is not None and "only webhook bots" in (registration.check(poller) or "")
