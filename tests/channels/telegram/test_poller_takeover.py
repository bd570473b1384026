"""Two ``kartabl telegram poll`` processes on PostgreSQL: one calls getUpdates for a bot, the
other stands by and takes over when the first is SIGKILLed (kartabl/locks.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

import config.channels
import config.settings
from channels.telegram.standin import BotApiStandin
from channels.telegram.standin_wire import text_update
from kartabl.models import Message
from tests.channels.takeover import check_one_polls_then_takeover
from tests.channels.telegram.conftest import POLL_TOKEN

pytestmark = [pytest.mark.fleet, pytest.mark.parametrize("db_url", ["postgres"], indirect=True)]
TAKEOVER_BOUND_S = 5.0  # the lock passes at once; then one long poll (1 s here)


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
poll_timeout_s = 1
''', encoding="utf-8")
    monkeypatch.setenv("TEST_POLL_BOT_TOKEN", POLL_TOKEN)
    monkeypatch.setenv("KARTABL_CHANNELS_FILE", str(path))
    monkeypatch.setenv("KARTABL_SECRET_KEY", "test-only-secret")
    config.settings.get_settings.cache_clear()
    config.channels.get_channels.cache_clear()
    yield path
    config.channels.get_channels.cache_clear()


def test_one_process_polls_a_bot_and_another_takes_over(standin: BotApiStandin, channels_file,
                                                        db, tmp_path: Path) -> None:
    def stored() -> int:
        with db() as s:
            return int(s.scalar(select(func.count()).select_from(Message)) or 0)

    took = check_one_polls_then_takeover(
        ["telegram", "poll"], tmp_path,
        polls=lambda: standin.calls.count("getUpdates"),
        deliver=lambda: standin.add_update(POLL_TOKEN, text_update(42, "سلام")),
        stored=stored, bound_s=TAKEOVER_BOUND_S)
    assert took < TAKEOVER_BOUND_S
