"""Long polling over real HTTP: the offset moves only after the batch is committed."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from channels.telegram.poller import BotPoller
from channels.telegram.standin import BotApiStandin, text_update
from config.telegram import TelegramConfig
from kartabl.models import ChannelCursor, Message
from tests.channels.telegram.conftest import POLL_TOKEN


def count(db: sessionmaker[Session]) -> int:
    with db() as s:
        return s.scalar(select(func.count()).select_from(Message)) or 0


@pytest.fixture
def poller(bots: TelegramConfig, db: sessionmaker[Session]) -> BotPoller:
    bot = bots.bot("poller")
    assert bot is not None
    return BotPoller(bot, db)


def test_a_pass_stores_the_batch_then_advances_the_offset(
        standin: BotApiStandin, poller: BotPoller, db) -> None:
    ids = [standin.add_update(POLL_TOKEN, text_update(42 + i, f"پیام {i}"))["update_id"]
           for i in range(3)]
    standin.add_update(POLL_TOKEN, text_update(50, "in a group", chat_type="group"))
    result = poller.poll_once()
    assert (result.updates, result.created, result.ignored) == (4, 3, 1)
    assert count(db) == 3
    assert poller.offset() == ids[-1] + 2  # past the ignored group update too
    with db() as s:
        assert s.get(ChannelCursor, "telegram:poller") is not None
    # The next pass sends the offset, which confirms the batch: nothing comes back.
    assert poller.poll_once().updates == 0


def test_a_crash_between_store_and_cursor_stores_nothing_twice(
        standin: BotApiStandin, poller: BotPoller, db,
        monkeypatch: pytest.MonkeyPatch) -> None:
    for i in range(3):
        standin.add_update(POLL_TOKEN, text_update(60 + i, f"پیام {i}"))

    def crash(offset: int) -> None:
        raise RuntimeError("killed between the commit and the cursor update")

    # Given the process dies after committing the batch, before moving the cursor
    with monkeypatch.context() as m:
        m.setattr(poller, "_advance", crash)
        with pytest.raises(RuntimeError):
            poller.poll_once()
    assert count(db) == 3 and poller.offset() == 0
    # When it polls again: Telegram resends the unconfirmed batch
    again = poller.poll_once()
    # Then nothing is stored twice, and the offset now moves
    assert (again.updates, again.created, again.duplicates) == (3, 0, 3)
    assert count(db) == 3 and poller.offset() > 0
    assert poller.poll_once().updates == 0


def test_a_malformed_update_is_skipped_not_blocking(
        standin: BotApiStandin, poller: BotPoller, db) -> None:
    standin.add_update(POLL_TOKEN, {"message": {"chat": "nonsense"}})
    standin.add_update(POLL_TOKEN, text_update(70, "after the bad one"))
    result = poller.poll_once()
    assert (result.created, result.ignored) == (1, 1) and count(db) == 1


def test_polling_errors_back_off_until_stopped(
        standin: BotApiStandin, poller: BotPoller, db) -> None:
    import threading

    standin.fail_next("getUpdates", "server_error", 502, times=1)
    standin.add_update(POLL_TOKEN, text_update(80, "after the outage"))
    stop = threading.Event()
    thread = threading.Thread(target=poller.run, args=(stop,), daemon=True)
    thread.start()
    for _ in range(100):
        if count(db):
            break
        stop.wait(0.05)
    stop.set()
    thread.join(10)
    assert count(db) == 1 and not thread.is_alive()
