"""The scheduler: one sweep per tick, one sweeper at a time on PostgreSQL, prompt shutdown."""

from __future__ import annotations

import threading
import time

from sqlalchemy import text

from kartabl import db as kdb
from kartabl.locks import lock_key
from tests.workers.worker_helpers import add_unqueued_message, wait_until
from workers.broker import setup_broker
from workers.scheduler import SWEEP_LOCK, run_scheduler, sweep_tick


def test_tick_skips_while_another_scheduler_holds_the_lock(settings, db):
    setup_broker(settings)
    with db() as session:
        add_unqueued_message(session, "tick-1", "+989121114444", age_s=60)
    if db.kw["bind"].dialect.name != "postgresql":
        # SQLite is the single-process embedded mode: no lock, every tick sweeps
        assert sweep_tick(db, settings).messages == 1
        return
    # Given another scheduler holding the sweep lock
    with kdb.engine().connect() as other:
        assert other.scalar(text("SELECT pg_try_advisory_lock(:k)"), {"k": lock_key(SWEEP_LOCK)})
        # When this one ticks; Then it skips the sweep
        assert sweep_tick(db, settings) is None
        other.scalar(text("SELECT pg_advisory_unlock(:k)"), {"k": lock_key(SWEEP_LOCK)})
        other.commit()
    # And once the lock is free, it sweeps (and releases the lock after)
    assert sweep_tick(db, settings).messages == 1
    assert sweep_tick(db, settings).messages == 1


def test_run_scheduler_sweeps_every_tick_and_stops_promptly(settings, db):
    broker = setup_broker(settings)  # stub, no worker: each sweep re-enqueues the message
    with db() as session:
        add_unqueued_message(session, "loop-1", "+989121115555", age_s=60)
    stop = threading.Event()
    fast = settings.model_copy(update={"sweep_interval_s": 0.05})
    thread = threading.Thread(target=run_scheduler, args=(stop,), kwargs={"settings": fast})
    # Given a running scheduler; Then it sweeps tick after tick
    thread.start()
    wait_until(lambda: broker.queues["inbound"].qsize() >= 2, 10, "two sweeps")
    # When it is told to stop; Then it returns within a tick
    t0 = time.monotonic()
    stop.set()
    thread.join(5)
    assert not thread.is_alive()
    assert time.monotonic() - t0 < 2
