"""The live port: a committed event *wakes* the web processes, which read it from the
database and push it to the people who may see it (:mod:`console.live`).

The event rows (:mod:`kartabl.audit`) are the durable log; a wake carries nothing but "look
again", so a lost wake costs only latency (the web processes also look on their own every
few seconds), and nobody can learn anything from the channel. How a wake travels is not the
core's business: ``workers/`` installs the transport with the broker (Redis pub/sub in the
fleet, :mod:`workers.live`); without one (the embedded mode, a CLI command, a unit test) it
stays in this process (:class:`LocalTransport`), which is exactly the embedded mode's need:
the console and the workers share the process.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Protocol

from sqlalchemy.orm import Session

from kartabl.db import after_commit

log = logging.getLogger(__name__)

OnWake = Callable[[], None]
Stop = Callable[[], None]


class Transport(Protocol):
    """How a wake reaches every web process."""

    def publish(self) -> None:
        """Tell every listener (in every process) to look for new events."""

    def listen(self, on_wake: OnWake) -> Stop:
        """Call ``on_wake`` (from any thread) on every wake until the returned stop is
        called. Also called once the listener (re)connects: a wake may have been missed."""


class LocalTransport:
    """Wakes the listeners of this process only."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._listeners: list[OnWake] = []

    def publish(self) -> None:
        with self._lock:
            listeners = list(self._listeners)
        for fn in listeners:
            try:
                fn()
            except Exception:  # one broken listener must not keep the others asleep
                log.exception("a live listener failed on wake")

    def listen(self, on_wake: OnWake) -> Stop:
        with self._lock:
            self._listeners.append(on_wake)

        def stop() -> None:
            with self._lock:
                if on_wake in self._listeners:
                    self._listeners.remove(on_wake)

        return stop


_transport: Transport = LocalTransport()


def set_transport(transport: Transport | None) -> None:
    """Install ``transport`` (``None``: back to this process only)."""
    global _transport
    _transport = transport if transport is not None else LocalTransport()


def transport() -> Transport:
    return _transport


def wake() -> None:
    try:
        _transport.publish()
    except Exception:  # the event is committed; listeners look again on their own soon
        log.warning("could not publish a live wake", exc_info=True)


def wake_after_commit(session: Session) -> None:
    """Wake the listeners once ``session`` commits (once per transaction, however many
    events it wrote); nothing on rollback."""
    hooks = session.info.get("after_commit", ())
    if wake not in hooks:
        after_commit(session, wake)


def listen(on_wake: OnWake) -> Stop:
    return _transport.listen(on_wake)
