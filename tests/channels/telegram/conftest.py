"""A local Bot API stand-in (:mod:`channels.telegram.standin`) and bots pointing at it:
python-telegram-bot talks real HTTP to it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from channels.telegram.standin import BotApiStandin
from config.telegram import BotConfig, TelegramConfig

# Distinctive, so a leak into logs or errors cannot hide.
TOKEN = "7000001:TG-very-secret-token-QwErTy"
POLL_TOKEN = "7000002:TG-polling-secret-AsDfGh"
BALE_TOKEN = "8000001:BALE-secret-token-ZxCvBn"
SECRET = "webhook-s3cret-value"


@pytest.fixture
def standin() -> Iterator[BotApiStandin]:
    server = BotApiStandin().start()
    server.add_bot(TOKEN, "shop_bot")
    server.add_bot(POLL_TOKEN, "poll_bot")
    server.add_bot(BALE_TOKEN, "bale_shop_bot")
    yield server
    server.stop()


@pytest.fixture
def bots(standin: BotApiStandin) -> TelegramConfig:
    url = standin.base_url
    return TelegramConfig(bots=[
        BotConfig(name="shop", token=TOKEN, base_url=url, webhook_secret=SECRET,
                  team="support", timeout_s=2.0),
        BotConfig(name="poller", token=POLL_TOKEN, base_url=url, mode="polling",
                  poll_timeout_s=0, timeout_s=2.0),
        BotConfig(name="bale-shop", kind="bale", token=BALE_TOKEN, base_url=url,
                  webhook_secret=SECRET, timeout_s=2.0),
    ])
