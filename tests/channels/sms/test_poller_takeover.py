"""Two ``kartabl sms poll`` processes on PostgreSQL: one reads a line's received SMS, the
other stands by and takes over when the first is SIGKILLed (kartabl/locks.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

import config.channels
import config.settings
from channels.sms.standin import KavenegarStandin
from kartabl.models import Message
from tests.channels.sms.conftest import API_KEY, LINE
from tests.channels.takeover import check_one_polls_then_takeover

pytestmark = [pytest.mark.fleet, pytest.mark.parametrize("db_url", ["postgres"], indirect=True)]
TAKEOVER_BOUND_S = 3.0  # the lock passes at once; then one poll_interval_s (0.5 s here)


@pytest.fixture
def channels_file(tmp_path: Path, standin: KavenegarStandin, settings,
                  monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    path = tmp_path / "channels.toml"
    path.write_text(f'''
[sms]
api_key_env = "TEST_KAVENEGAR_KEY"
base_url = "{standin.base_url}"
line = "{LINE}"
poll = true
poll_interval_s = 0.5
''', encoding="utf-8")
    monkeypatch.setenv("TEST_KAVENEGAR_KEY", API_KEY)
    monkeypatch.setenv("KARTABL_CHANNELS_FILE", str(path))
    monkeypatch.setenv("KARTABL_SECRET_KEY", "test-only-secret")
    config.settings.get_settings.cache_clear()
    config.channels.get_channels.cache_clear()
    yield path
    config.channels.get_channels.cache_clear()


def test_one_process_polls_a_line_and_another_takes_over(standin: KavenegarStandin,
                                                         channels_file, db,
                                                         tmp_path: Path) -> None:
    def stored() -> int:
        with db() as s:
            return int(s.scalar(select(func.count()).select_from(Message)) or 0)

    took = check_one_polls_then_takeover(
        ["sms", "poll"], tmp_path,
        polls=lambda: sum(1 for c in list(standin.calls) if c == "receive"),
        deliver=lambda: standin.inbound("09121234567", "سلام", LINE, via="queue"),
        stored=stored, bound_s=TAKEOVER_BOUND_S)
    assert took < TAKEOVER_BOUND_S
