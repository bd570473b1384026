"""``kartabl telegram poll --once`` against the stand-in, with a channels file."""

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
from channels.telegram.standin import BotApiStandin
from channels.telegram.standin_wire import text_update
from kartabl.models import Message
from tests.channels.telegram.conftest import POLL_TOKEN

runner = CliRunner()
KARTABL = Path(sys.executable).with_name("kartabl")


@pytest.fixture
def channels_file(tmp_path: Path, standin: BotApiStandin, settings,
                  monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    path = tmp_path / "channels.toml"
    path.write_text(f'''
[[telegram.bots]]
name = "poller"
token_env = "TEST_POLL_BOT_TOKEN"
base_url = "{standin.base_url}"
mode = "polling"
''', encoding="utf-8")
    monkeypatch.setenv("TEST_POLL_BOT_TOKEN", POLL_TOKEN)
    monkeypatch.setenv("KARTABL_CHANNELS_FILE", str(path))
    config.settings.get_settings.cache_clear()
    config.channels.get_channels.cache_clear()
    yield path
    config.channels.get_channels.cache_clear()


def test_poll_once_stores_the_updates(standin: BotApiStandin, channels_file, db) -> None:
    standin.add_update(POLL_TOKEN, text_update(42, "سلام"))
    standin.add_update(POLL_TOKEN, text_update(43, "درود"))
    # As its own process (logs.configure() would otherwise stay on CliRunner's stream); the
    # environment carries this test's database and channels file.
    done = subprocess.run([str(KARTABL), "telegram", "poll", "--once"], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 new" in done.stdout and POLL_TOKEN not in done.stdout + done.stderr
    with db() as s:
        assert s.scalar(select(func.count()).select_from(Message)) == 2


def test_an_unknown_bot_is_a_clear_error(channels_file, db) -> None:
    result = runner.invoke(app, ["telegram", "poll", "--once", "--bot", "nobody"])
    assert result.exit_code != 0 and "polling" in result.output
