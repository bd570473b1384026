"""The [[telegram.bots]] section: tokens from the environment, never shown; Bale's
differences in one place."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from config.channels import ChannelsConfig
from config.telegram import KINDS, BotConfig, TelegramConfig
from kartabl.models import Channel

TOKEN = "123456:ABC-config-secret-token"


def test_token_from_the_environment_never_in_reprs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHOP_BOT_TOKEN", TOKEN)
    monkeypatch.setenv("SHOP_BOT_SECRET", "hook-secret")
    cfg = ChannelsConfig.model_validate({"telegram": {"bots": [
        {"name": "shop", "token_env": "SHOP_BOT_TOKEN", "webhook_secret_env": "SHOP_BOT_SECRET"},
    ]}})
    bot = cfg.telegram.bots[0]
    assert bot.token.get_secret_value() == TOKEN
    assert bot.webhook_secret.get_secret_value() == "hook-secret"
    for text in (repr(cfg), str(cfg), repr(bot), str(bot.model_dump())):
        assert TOKEN not in text and "hook-secret" not in text


def test_a_missing_variable_or_token_is_refused_without_leaking(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOPE_TOKEN", raising=False)
    with pytest.raises(ValidationError, match="NOPE_TOKEN"):
        BotConfig(name="a", token_env="NOPE_TOKEN", mode="polling")
    with pytest.raises(ValidationError, match="token"):
        BotConfig(name="a", mode="polling")
    with pytest.raises(ValidationError, match="webhook_secret") as err:
        BotConfig(name="a", token=TOKEN)  # a webhook without a secret
    assert TOKEN not in str(err.value)
    assert TOKEN[-12:] not in str(err.value)  # not even the end that a repr keeps


def test_kinds_bale_is_the_same_adapter_with_its_url_and_channel() -> None:
    tg = BotConfig(name="t", token=TOKEN, mode="polling")
    bale = BotConfig(name="b", kind="bale", token=TOKEN, mode="polling")
    assert (tg.channel, tg.effective_base_url) == (Channel.TELEGRAM, "https://api.telegram.org/bot")
    assert (bale.channel, bale.effective_base_url) == (Channel.BALE, "https://tapi.bale.ai/bot")
    assert set(KINDS) == {"telegram", "bale"}
    local = BotConfig(name="l", token=TOKEN, mode="polling", base_url="http://127.0.0.1:9/bot")
    assert local.effective_base_file_url == "http://127.0.0.1:9/file/bot"
    with pytest.raises(ValidationError, match="/bot"):
        BotConfig(name="x", token=TOKEN, mode="polling", base_url="http://127.0.0.1:9/")


def test_bot_names_are_unique() -> None:
    bot = {"name": "shop", "token": TOKEN, "mode": "polling"}
    with pytest.raises(ValidationError, match="unique"):
        TelegramConfig.model_validate({"bots": [bot, {**bot, "kind": "bale"}]})
