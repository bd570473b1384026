"""The ``[[rubika.bots]]`` section: the documented example loads, secrets come from the
environment and appear in no repr and no error."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import ValidationError

import config.channels
from config.rubika import RubikaBot, RubikaConfig

EXAMPLE = Path(config.channels.__file__).with_name("channels.example.toml")
TOKEN = "RUBIKA-config-token-ZaQxSwCdE"


def test_the_example_block_loads_with_its_secrets_from_the_environment(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    block = text[text.index("# [[rubika.bots]]"):].split("\n\n")[0]
    path = tmp_path / "channels.toml"
    path.write_text(re.sub(r"(?m)^# ?", "", block), encoding="utf-8")
    monkeypatch.setenv("KARTABL_RUBIKA_SHOP_TOKEN", TOKEN)
    monkeypatch.setenv("KARTABL_RUBIKA_SHOP_WEBHOOK_SECRET", "a-long-enough-secret-42")
    (bot,) = config.channels.load(path).rubika.bots
    assert bot.token.get_secret_value() == TOKEN and bot.mode == "polling"
    assert (bot.base_url, bot.team, bot.limit) == ("https://botapi.rubika.ir/v3", "support", 100)
    assert TOKEN not in repr(bot) and "a-long-enough" not in repr(bot)


def test_a_missing_token_or_variable_is_refused_without_leaking(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOPE_RUBIKA_TOKEN", raising=False)
    with pytest.raises(ValidationError, match="NOPE_RUBIKA_TOKEN"):
        RubikaBot(name="a", token_env="NOPE_RUBIKA_TOKEN")
    with pytest.raises(ValidationError, match="token or token_env"):
        RubikaBot(name="a")
    with pytest.raises(ValidationError, match="base_url") as err:
        RubikaBot(name="a", token=TOKEN, base_url="ftp://x")
    assert TOKEN not in str(err.value) and TOKEN[-8:] not in str(err.value)


def test_bot_names_are_unique() -> None:
    with pytest.raises(ValidationError, match="unique: shop"):
        RubikaConfig(bots=[RubikaBot(name="shop", token="a"), RubikaBot(name="shop", token="b")])
