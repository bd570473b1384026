"""A webhook or widget body over its cap is refused while it streams in, never read whole.

``request.body()`` reads a chunked body of any size into memory before its length can be
checked: anyone could make a web process hold gigabytes with one unauthenticated POST (no
``Content-Length``, chunks that never end). Served by uvicorn over a real socket: the
request below sends one chunk over the limit and never ends its body; the answer must be a
413 all the same, at once."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest
import uvicorn
from fastapi import FastAPI

from channels.api import webhook as api_webhook
from channels.meta import webhook as meta_webhook
from channels.meta.webhook import MAX_BODY as META_MAX
from channels.rubika import webhook as rubika_webhook
from channels.rubika.webhook import MAX_BODY as RUBIKA_MAX
from channels.webhooks import routers
from config.api_channel import ApiChannelConfig
from config.channels import ChannelsConfig
from config.meta import MetaConfig
from config.rubika import RubikaBot, RubikaConfig
from config.settings import Settings

API_MAX = 4_000


@pytest.fixture(scope="module")
def origin() -> Iterator[tuple[str, int]]:
    app = FastAPI()
    app.state.settings = Settings(secret_key="x" * 40)
    app.state.channels = ChannelsConfig(
        api=[ApiChannelConfig(name="shop", secret="s" * 40, max_body_bytes=API_MAX)],
        meta=MetaConfig(app_secret="a" * 32, verify_token="v" * 16,
                        whatsapp=[{"phone_number_id": "1", "access_token": "t"}]),
        rubika=RubikaConfig(bots=[RubikaBot(name="shop", token="T", mode="webhook",
                                            webhook_secret="r" * 32)]))
    for name in ("api", "meta", "rubika"):
        app.include_router(routers()[name], prefix=f"/webhooks/{name}")
    for module in (api_webhook, meta_webhook, rubika_webhook):  # no database: never reached
        app.dependency_overrides[module.session_factory] = lambda: None
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_config=None))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        while not server.started:
            threading.Event().wait(0.02)
        yield "127.0.0.1", server.servers[0].sockets[0].getsockname()[1]
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.mark.parametrize(("path", "limit"), [
    ("/webhooks/api/shop", API_MAX),
    ("/webhooks/meta", META_MAX),
    ("/webhooks/rubika/shop/" + "r" * 32, RUBIKA_MAX),
])
def test_an_endless_chunked_body_is_413_as_soon_as_it_passes_the_cap(
        origin: tuple[str, int], path: str, limit: int) -> None:
    chunk = b"x" * (limit + 1)
    with socket.create_connection(origin, timeout=5) as sock:
        sock.sendall(f"POST {path} HTTP/1.1\r\nHost: test\r\nContent-Type: application/json"
                     "\r\nTransfer-Encoding: chunked\r\n\r\n".encode()
                     + f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
        # no last chunk: a server that waits for the whole body never answers
        try:
            answer = sock.recv(200)
        except TimeoutError:
            answer = b"(no answer in 5 s: the server was still reading)"
    assert answer.startswith(b"HTTP/1.1 413"), answer
