"""Graceful stops for the long-running channel commands (``kartabl email poll``,
``kartabl telegram poll``): SIGTERM and SIGINT set an event; the work in hand finishes."""

from __future__ import annotations

import signal
import sys
import threading
from types import FrameType


def stop_on_signals() -> threading.Event:
    """An event set by SIGTERM or SIGINT (call from the main thread)."""
    stop = threading.Event()

    def _stop(signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    return stop


def idle_until_stopped(reason: str) -> None:
    """Nothing is configured for this process: say so and wait for the stop signal rather
    than exit, because a Procfile runner (honcho, foreman) stops the whole fleet when one
    of its processes ends."""
    print(f"{reason}; nothing to do, waiting for SIGTERM", file=sys.stderr, flush=True)
    stop_on_signals().wait()
