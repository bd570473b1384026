"""The queues' names and the broker the actors are declared on.

A module of its own, below both :mod:`workers.broker` (which builds the broker and makes it
current) and :mod:`workers.actors` (which declares its actors on the current broker when it
is imported), so neither imports the other's half and the import order cannot matter.
"""

from __future__ import annotations

import dramatiq

# Separate queues so that ops can scale routing and sending apart (``-Q inbound`` on some
# machines, ``-Q outbound`` on others) and a slow provider never delays routing.
INBOUND = "inbound"
OUTBOUND = "outbound"

_current: dramatiq.Broker | None = None


def make_current(broker: dramatiq.Broker) -> None:
    """Make ``broker`` the global one, before any actor module is imported:
    ``@dramatiq.actor`` binds to it at import time."""
    global _current
    dramatiq.set_broker(broker)
    _current = broker


def current_broker() -> dramatiq.Broker:
    """The broker made by :func:`workers.broker.setup_broker`; actor modules declare their
    actors on it."""
    if _current is None:
        raise RuntimeError(
            "no Kartabl broker: call workers.broker.setup_broker() before importing an actor "
            "module (the dramatiq CLI does it: `dramatiq boot.worker workers.actors ...`)"
        )
    return _current
