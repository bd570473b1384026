"""Long polling over real HTTP: the offset moves only after the batch is committed."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from channels.runner import Runner
from channels.telegram.poller import BotSource
from channels.telegram.standin import BotApiStandin
from channels.telegram.standin_wire import text_update
from config.telegram import TelegramConfig
from kartabl.models import ChannelCursor, Message
from tests.channels.telegram.conftest import POLL_TOKEN


def count(db: sessionmaker[Session]) -> int:
    with db() as s:
        return s.scalar(select(func.count()).select_from(Message)) or 0


@pytest.fixture
def source(bots: TelegramConfig, db: sessionmaker[Session]) -> BotSource:
    bot = bots.bot("poller")
    assert bot is not None
    return BotSource(bot, db)


@pytest.fixture
def poller(source: BotSource, db: sessionmaker[Session]) -> Runner:
    return Runner(source, db, backoff_base_s=0.05, backoff_cap_s=0.2)


def test_a_pass_stores_the_batch_then_advances_the_offset(
        standin: BotApiStandin, poller: Runner, source: BotSource, db) -> None:
    ids = [standin.add_update(POLL_TOKEN, text_update(42 + i, f"پیام {i}"))["update_id"]
           for i in range(3)]
    standin.add_update(POLL_TOKEN, text_update(50, "in a group", chat_type="group"))
    result = poller.poll_once()
    assert (result.fetched, result.created, result.skipped) == (4, 3, 1)
    assert count(db) == 3
    assert source.offset() == ids[-1] + 2  # past the ignored group update too
    with db() as s:
        assert s.get(ChannelCursor, "telegram:poller") is not None
    # The next pass sends the offset, which confirms the batch: nothing comes back.
    assert poller.poll_once().fetched == 0


def test_a_crash_between_store_and_cursor_stores_nothing_twice(
        standin: BotApiStandin, poller: Runner, source: BotSource, db,
        monkeypatch: pytest.MonkeyPatch) -> None:
    for i in range(3):
        standin.add_update(POLL_TOKEN, text_update(60 + i, f"پیام {i}"))

    def crash(offset: int) -> None:
        raise RuntimeError("killed between the commit and the cursor update")

    # Given the process dies after committing the batch, before moving the cursor
    with monkeypatch.context() as m:
        m.setattr(source, "_advance", crash)
        with pytest.raises(RuntimeError):
            poller.poll_once()
    assert count(db) == 3 and source.offset() == 0
    # When it polls again: Telegram resends the unconfirmed batch
    again = poller.poll_once()
    # Then nothing is stored twice, and the offset now moves
    assert (again.fetched, again.created, again.duplicates) == (3, 0, 3)
    assert count(db) == 3 and source.offset() > 0
    assert poller.poll_once().fetched == 0


def test_a_malformed_update_is_skipped_not_blocking(
        standin: BotApiStandin, poller: Runner, db) -> None:
    standin.add_update(POLL_TOKEN, {"message": {"chat": "nonsense"}})
    standin.add_update(POLL_TOKEN, text_update(70, "after the bad one"))
    result = poller.poll_once()
    assert (result.created, result.skipped) == (1, 1) and count(db) == 1


def test_polling_errors_back_off_until_stopped(
        standin: BotApiStandin, poller: Runner, db) -> None:
    import threading

    standin.fail_next("getUpdates", "server_error", 502, times=1)
    standin.add_update(POLL_TOKEN, text_update(80, "after the outage"))
    stop = poller.stop
    thread = threading.Thread(target=poller.run, daemon=True)
    thread.start()
    for _ in range(100):
        if count(db):
            break
        stop.wait(0.05)
    stop.set()
    thread.join(10)
    assert count(db) == 1 and not thread.is_alive()
