"""``kartabl poll rubika --once`` (its own process) and ``kartabl rubika set-webhook``
against the stand-in, with a channels file."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

import config.channels
import config.settings
from boot.cli import app
from channels.rubika.standin import RubikaStandin, text_update
from kartabl.models import Message
from tests.channels.rubika.conftest import POLL_TOKEN, SECRET, TOKEN

runner = CliRunner()
KARTABL = Path(sys.executable).with_name("kartabl")


@pytest.fixture
def channels_file(tmp_path: Path, standin: RubikaStandin, settings,
                  monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    path = tmp_path / "channels.toml"
    path.write_text(f'''
[[rubika.bots]]
name = "poller"
token_env = "TEST_RUBIKA_POLL_TOKEN"
base_url = "{standin.base_url}"

[[rubika.bots]]
name = "shop"
token_env = "TEST_RUBIKA_SHOP_TOKEN"
base_url = "{standin.base_url}"
mode = "webhook"
webhook_secret_env = "TEST_RUBIKA_SECRET"
''', encoding="utf-8")
    monkeypatch.setenv("TEST_RUBIKA_POLL_TOKEN", POLL_TOKEN)
    monkeypatch.setenv("TEST_RUBIKA_SHOP_TOKEN", TOKEN)
    monkeypatch.setenv("TEST_RUBIKA_SECRET", SECRET)
    monkeypatch.setenv("KARTABL_CHANNELS_FILE", str(path))
    config.settings.get_settings.cache_clear()
    config.channels.get_channels.cache_clear()
    yield path
    config.channels.get_channels.cache_clear()


def test_poll_once_stores_the_updates(standin: RubikaStandin, channels_file, db) -> None:
    standin.add_update(POLL_TOKEN, text_update("b0c1", "u0a", "سلام", message_id="1"))
    standin.add_update(POLL_TOKEN, text_update("b0c2", "u0b", "درود", message_id="2"))
    done = subprocess.run([str(KARTABL), "poll", "rubika", "--once"], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 new" in done.stdout and POLL_TOKEN not in done.stdout + done.stderr
    with db() as s:
        assert s.scalar(select(func.count()).select_from(Message)) == 2


def test_set_webhook_registers_the_webhook_bots_without_printing_the_secret(
        standin: RubikaStandin, channels_file, db) -> None:
    result = runner.invoke(app, ["rubika", "set-webhook", "--base-url",
                                 "https://support.example.ir"])
    assert result.exit_code == 0, result.output
    assert standin.bot(TOKEN).endpoints == {
        "ReceiveUpdate": f"https://support.example.ir/webhooks/rubika/shop/{SECRET}"}
    assert standin.bot(POLL_TOKEN).endpoints == {}  # polling bots are not registered
    assert "shop:registeredathttps://support.example.ir/webhooks/rubika/shop/***" in \
        flat(result.output).replace(" ", "")  # (rich may wrap the line anywhere)
    assert SECRET not in result.output and TOKEN not in result.output


def flat(output: str) -> str:
    """The output without rich's box and line breaks."""
    return " ".join(output.replace("│", " ").split())


def test_set_webhook_problems_are_clear(standin: RubikaStandin, channels_file, db) -> None:
    assert runner.invoke(app, ["rubika", "set-webhook"]).exit_code == 2  # no base URL
    r = runner.invoke(app, ["rubika", "set-webhook", "--base-url", "https://x.ir",
                            "--bot", "poller"])
    assert r.exit_code == 2 and "only webhook bots" in flat(r.output)
    standin.fail_next("updateBotEndpoints", "invalid_access")
    r = runner.invoke(app, ["rubika", "set-webhook", "--base-url", "https://x.ir"])
    assert r.exit_code == 1 and "INVALID_ACCESS" in flat(r.output) and TOKEN not in r.output
    assert standin.bot(TOKEN).endpoints == {}
