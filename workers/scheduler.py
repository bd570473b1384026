"""The scheduler process: one sweep every ``sweep_interval_s``, until SIGTERM or SIGINT.

Run it on as many machines as you like. The sweep's work is idempotent, so two sweepers
would only enqueue some no-op duplicates; to avoid even that, each tick on PostgreSQL first
takes a PostgreSQL advisory lock (:mod:`kartabl.locks`) and skips the tick when another
scheduler holds it.

Shutdown is graceful: a signal sets the stop event, the current sweep finishes, the loop ends.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

from sqlalchemy.orm import Session, sessionmaker

from config.settings import Settings
from kartabl import db as kdb
from kartabl import locks
from workers.sweeps import SweepReport, sweep_once

log = logging.getLogger(__name__)

SWEEP_LOCK = "kartabl sweep"


@contextmanager
def sweep_lock(session_factory: sessionmaker[Session]) -> Iterator[bool]:
    """Yield True when this process may sweep now (it holds the lock until the block ends)."""
    with locks.exclusive(session_factory.kw["bind"], SWEEP_LOCK) as mine:
        yield mine


def sweep_tick(session_factory: sessionmaker[Session], settings: Settings) -> SweepReport | None:
    """One guarded sweep: None when another scheduler is sweeping right now."""
    with sweep_lock(session_factory) as mine:
        if not mine:
            log.debug("another scheduler holds the sweep lock; skipping this tick")
            return None
        return sweep_once(session_factory, settings)


def install_signal_handlers(stop: threading.Event) -> None:
    """SIGTERM and SIGINT set ``stop``; only possible from the main thread."""

    def handler(signum: int, _frame: FrameType | None) -> None:
        log.info("signal %s: stopping after the current sweep", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


def run_scheduler(
    stop_event: threading.Event | None = None,
    *,
    settings: Settings,
    handle_signals: bool | None = None,
) -> None:
    """Sweep every ``settings.sweep_interval_s`` until ``stop_event`` is set.

    The enqueuer must be installed first (``workers.broker.setup_broker``), or the sweep's
    re-enqueues go nowhere. Signal handlers are installed when running in the main thread
    (``handle_signals=None``); the embedded app runs this in a thread and sets the event.
    """
    s = settings
    stop = stop_event or threading.Event()
    if handle_signals is None:
        handle_signals = threading.current_thread() is threading.main_thread()
    if handle_signals:
        install_signal_handlers(stop)
    factory = kdb.session_factory()
    log.info("scheduler started", extra={"interval_s": s.sweep_interval_s})
    while not stop.is_set():
        try:
            sweep_tick(factory, s)
        except Exception:
            # A database or broker outage must not end the scheduler: try again next tick.
            log.exception("sweep tick failed")
        stop.wait(s.sweep_interval_s)
    log.info("scheduler stopped")
