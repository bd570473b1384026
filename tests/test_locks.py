"""kartabl/locks.py on PostgreSQL: a standby waiting on a lock gets it the moment the holder's
session ends, and stops waiting when asked."""

from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import create_engine, text

from kartabl import locks

pytestmark = [pytest.mark.fleet, pytest.mark.parametrize("db_url", ["postgres"], indirect=True)]


def test_a_standby_takes_the_lock_as_soon_as_the_holder_session_ends(db_url, settings):
    engine = create_engine(db_url)
    got_at: list[float] = []
    stop = threading.Event()

    def standby() -> None:
        with locks.waiting_lease(engine, "takeover test", stop, check_s=30.0) as lease:
            if lease:
                got_at.append(time.monotonic())

    # Given a holder, and a standby waiting (with a long check interval)
    with locks.lease(engine, "takeover test") as holder:
        assert holder
        t = threading.Thread(target=standby)
        t.start()
        time.sleep(1.0)
        assert not got_at
        # When the holder's session is terminated by the server (as when its process dies)
        with engine.connect() as admin:
            admin.execute(text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE application_name = :n AND state = 'idle'"),
                {"n": locks.application_name("takeover test")})
        ended = time.monotonic()
        t.join(timeout=10)
    # Then the standby got it at once, not at its next check (30 s; a margin for a loaded
    # machine's thread wake-up)
    assert got_at and got_at[0] - ended < 3.0
    assert not holder.still_held()
    engine.dispose()


def test_a_standby_stops_waiting_when_asked(db_url, settings):
    engine = create_engine(db_url)
    stop = threading.Event()
    outcome: list[bool] = []

    def standby() -> None:
        with locks.waiting_lease(engine, "stop test", stop, check_s=0.2) as lease:
            outcome.append(bool(lease))

    with locks.lease(engine, "stop test") as holder:
        assert holder
        t = threading.Thread(target=standby)
        t.start()
        time.sleep(0.5)
        stop.set()
        t.join(timeout=5)
        assert outcome == [False]
    engine.dispose()
