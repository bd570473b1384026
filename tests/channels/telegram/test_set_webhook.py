"""``kartabl telegram set-webhook`` and ``allowed_updates``, over real HTTP: python-telegram-bot
against the Bot API stand-in, which behaves as the Bot API documents (setWebhook keeps url,
secret_token and allowed_updates; getWebhookInfo reports them; getUpdates is 409 while a
webhook is set; kinds outside allowed_updates are not delivered)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from fastapi import FastAPI
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker
from telegram.error import Conflict
from typer.testing import CliRunner

import config.channels
import config.settings
from boot.cli import app
from channels.runner import Runner
from channels.telegram.bot import open_bot
from channels.telegram.poller import BotSource
from channels.telegram.standin import BotApiStandin
from channels.telegram.standin_wire import text_update
from channels.webhooks import routers
from config.telegram import BotConfig
from kartabl.models import Message
from tests.channels.telegram.conftest import BALE_TOKEN, POLL_TOKEN, SECRET, TOKEN

runner = CliRunner()
BASE = "https://support.example.ir"


def write_channels(path: Path, standin: BotApiStandin, *, shop_secret: str = "SHOP_SECRET"
                   ) -> Path:
    path.write_text(f'''
[[telegram.bots]]
name = "shop"
token_env = "T_SHOP_TOKEN"
webhook_secret_env = "{shop_secret}"
base_url = "{standin.base_url}"

[[telegram.bots]]
name = "bale-shop"
kind = "bale"
token_env = "T_BALE_TOKEN"
webhook_secret_env = "BALE_SECRET"
base_url = "{standin.base_url}"

[[telegram.bots]]
name = "poller"
token_env = "T_POLL_TOKEN"
mode = "polling"
base_url = "{standin.base_url}"
''', encoding="utf-8")
    return path


@pytest.fixture
def channels_file(tmp_path: Path, standin: BotApiStandin, settings,
                  monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    for name, value in {"T_SHOP_TOKEN": TOKEN, "T_BALE_TOKEN": BALE_TOKEN,
                        "T_POLL_TOKEN": POLL_TOKEN, "SHOP_SECRET": SECRET,
                        "BALE_SECRET": "bale-" + SECRET, "BAD_SECRET": "has spaces/slash"
                        }.items():
        monkeypatch.setenv(name, value)
    path = write_channels(tmp_path / "channels.toml", standin)
    monkeypatch.setenv("KARTABL_CHANNELS_FILE", str(path))
    config.settings.get_settings.cache_clear()
    config.channels.get_channels.cache_clear()
    yield path
    config.channels.get_channels.cache_clear()


def set_webhook(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["telegram", "set-webhook", *args])
    return result.exit_code, " ".join(result.output.split())  # rich wraps long lines


def test_every_webhook_bot_is_registered_with_its_url_secret_and_kinds(
        standin: BotApiStandin, channels_file: Path) -> None:
    code, output = set_webhook("--base-url", BASE + "/")
    assert code == 0, output
    shop, bale, poller = (standin.bot(t) for t in (TOKEN, BALE_TOKEN, POLL_TOKEN))
    # Telegram and Bale bots through the same code; the polling bot is left alone
    assert (shop.webhook_url, shop.webhook_secret, shop.allowed_updates) == (
        f"{BASE}/webhooks/telegram/shop", SECRET, ["message"])
    assert (bale.webhook_url, bale.webhook_secret, bale.allowed_updates) == (
        f"{BASE}/webhooks/telegram/bale-shop", "bale-" + SECRET, ["message"])
    assert poller.webhook_url == "" and "setWebhook" in standin.calls
    # and the command reports what getWebhookInfo says, never a token or a secret
    assert f"shop (telegram): {BASE}/webhooks/telegram/shop, allowed_updates message" in output
    assert "bale-shop (bale)" in output
    for secret in (TOKEN, BALE_TOKEN, SECRET):
        assert secret not in output


def test_one_bot_with_bot(standin: BotApiStandin, channels_file: Path) -> None:
    code, output = set_webhook("--bot", "bale-shop", "--base-url", BASE)
    assert code == 0, output
    assert standin.bot(BALE_TOKEN).webhook_url.endswith("/webhooks/telegram/bale-shop")
    assert standin.bot(TOKEN).webhook_url == ""


def test_the_base_url_defaults_to_the_setting(standin: BotApiStandin, channels_file: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KARTABL_BASE_URL", BASE)
    config.settings.get_settings.cache_clear()
    code, output = set_webhook("--bot", "shop")
    assert code == 0, output
    assert standin.bot(TOKEN).webhook_url == f"{BASE}/webhooks/telegram/shop"


@pytest.mark.parametrize(("args", "message"), [
    (["--bot", "nobody", "--base-url", BASE], "no bot named 'nobody'"),
    (["--bot", "poller", "--base-url", BASE], 'mode = "polling"'),
    ([], "--base-url is required"),
    (["--base-url", "support.example.ir"], "http(s) URL with a host"),
])
def test_clear_errors_exit_2_and_send_nothing(standin: BotApiStandin, channels_file: Path,
                                              args: list[str], message: str) -> None:
    code, output = set_webhook(*args)
    assert code == 2 and message in output, output
    assert standin.calls == []


def test_a_secret_the_bot_api_would_refuse_stops_every_bot(
        standin: BotApiStandin, channels_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given one bot's secret has characters the Bot API refuses in a secret_token
    write_channels(channels_file, standin, shop_secret="BAD_SECRET")
    config.channels.get_channels.cache_clear()
    code, output = set_webhook("--base-url", BASE)
    # Then nothing is registered, not even the other bot: all or nothing
    assert code == 2 and "secret token" in output and "has spaces" not in output
    assert standin.calls == []


def test_a_refusal_by_the_server_is_exit_1(standin: BotApiStandin,
                                          channels_file: Path) -> None:
    standin.fail_next("setWebhook", "status", 400)
    code, output = set_webhook("--bot", "shop", "--base-url", BASE)
    assert code == 1 and "setWebhook refused" in output and TOKEN not in output


def test_the_registered_webhook_delivers_to_the_console(
        standin: BotApiStandin, channels_file: Path, db: sessionmaker[Session]) -> None:
    # Given the webhook routes served as the console serves them, on a real port
    web = FastAPI()
    web.state.channels = config.channels.get_channels()  # what create_app hands the routes
    for name, router in routers().items():
        web.include_router(router, prefix=f"/webhooks/{name}")
    server = uvicorn.Server(uvicorn.Config(web, host="127.0.0.1", port=0, log_config=None))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        while not server.started:
            threading.Event().wait(0.02)
        port = server.servers[0].sockets[0].getsockname()[1]
        # When the command registers the bots at that address
        code, output = set_webhook("--base-url", f"http://127.0.0.1:{port}")
        assert code == 0, output
        # Then Telegram's deliveries reach the right bot, with the secret it registered
        assert standin.deliver_webhook(TOKEN, {"update_id": 5, **text_update(42, "سلام")}) == 200
        assert standin.deliver_webhook(BALE_TOKEN, {"update_id": 5, **text_update(42, "درود")}
                                       ) == 200
        # and a kind outside allowed_updates is not delivered at all
        edited = {"update_id": 6, "edited_message": text_update(42, "ویرایش")["message"]}
        assert standin.deliver_webhook(TOKEN, edited) is None
        with db() as s:
            rows = s.execute(select(Message.channel, Message.external_id)
                             .order_by(Message.channel)).all()
        assert [tuple(r) for r in rows] == [("bale", "bale-shop:5"), ("telegram", "shop:5")]
    finally:
        server.should_exit = True
        thread.join(5)


def test_get_webhook_info_reports_what_set_webhook_stored(standin: BotApiStandin) -> None:
    bot = BotConfig(name="shop", token=TOKEN, base_url=standin.base_url, webhook_secret=SECRET)

    async def run() -> tuple[str, list[str], str]:
        async with open_bot(bot) as client:
            await client.set_webhook(f"{BASE}/webhooks/telegram/shop", secret_token=SECRET,
                                     allowed_updates=["message", "callback_query"])
            info = await client.get_webhook_info()
            # As Telegram: no getUpdates while a webhook is set
            try:
                await client.get_updates(timeout=0)
                conflict = ""
            except Conflict as exc:
                conflict = str(exc)
            return info.url, list(info.allowed_updates or []), conflict

    url, kinds, conflict = asyncio.run(run())
    assert (url, kinds) == (f"{BASE}/webhooks/telegram/shop", ["message", "callback_query"])
    assert "webhook is active" in conflict
    assert standin.bot(TOKEN).webhook_secret == SECRET


def test_the_poller_asks_only_for_the_kinds_it_handles(
        standin: BotApiStandin, db: sessionmaker[Session]) -> None:
    bot = BotConfig(name="poller", token=POLL_TOKEN, base_url=standin.base_url,
                    mode="polling", poll_timeout_s=0, timeout_s=2.0)
    standin.add_update(POLL_TOKEN, text_update(42, "سلام"))
    standin.add_update(POLL_TOKEN, {"edited_message": text_update(42, "ویرایش")["message"]})
    standin.add_update(POLL_TOKEN, {"callback_query": {"id": "1", "data": "x"}})
    result = Runner(BotSource(bot, db), db).poll_once()
    # Only the message was delivered: the other kinds were never asked for
    assert (result.fetched, result.created, result.skipped) == (1, 1, 0)
    assert standin.bot(POLL_TOKEN).allowed_updates == ["message"]
    with db() as s:
        assert s.scalar(select(func.count()).select_from(Message)) == 1
