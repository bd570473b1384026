"""A local Rubika Bot API stand-in (:mod:`channels.rubika.standin`) and bots pointing at it:
the adapter talks real HTTP to it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from channels.rubika.standin import RubikaStandin
from config.rubika import RubikaBot, RubikaConfig

# Distinctive, so a leak into logs or errors cannot hide.
TOKEN = "RUBIKA-very-secret-token-QwErTyUiOp"
POLL_TOKEN = "RUBIKA-polling-secret-AsDfGhJkL"
SECRET = "rubika-webhook-s3cret-value"


@pytest.fixture
def standin() -> Iterator[RubikaStandin]:
    server = RubikaStandin().start()
    server.add_bot(TOKEN, "Shop")
    server.add_bot(POLL_TOKEN, "Poller")
    yield server
    server.stop()


@pytest.fixture
def bots(standin: RubikaStandin) -> RubikaConfig:
    url = standin.base_url
    return RubikaConfig(bots=[
        RubikaBot(name="shop", token=TOKEN, base_url=url, mode="webhook",
                  webhook_secret=SECRET, team="support", timeout_s=2.0),
        RubikaBot(name="poller", token=POLL_TOKEN, base_url=url, limit=2,
                  poll_interval_s=0.1, timeout_s=2.0),
    ])


@pytest.fixture
def poller(bots: RubikaConfig) -> RubikaBot:
    bot = bots.bot("poller")
    assert bot is not None
    return bot
