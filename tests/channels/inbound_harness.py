"""Each polled adapter against its real stand-in, behind one shape the contract test drives
(tests/channels/test_inbound_contract.py): the Dovecot fixture for email, the Bot API
stand-in for Telegram and Bale, the Kavenegar stand-in for SMS. Nothing of a library is
mocked: an outage is the stand-in failing (or the relay to Dovecot switched off), a
database failure is the database refusing the INSERT (:func:`failing_inserts`)."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError

from kartabl.inbound import Batch, Feed, PolledSource


@dataclass
class Harness:
    """One adapter on its stand-in. ``pending``: input the provider still holds
    unacknowledged (None: the provider forgets what it hands out, as Kavenegar's receive
    marks it read)."""

    make_source: Callable[[], PolledSource]  # a fresh adapter, as another process has
    deliver: Callable[[int], None]  # a customer writes message n
    pending: Callable[[], int] | None
    break_source: Callable[[], None]  # the provider becomes unreachable / fails
    mend_source: Callable[[], None]


class Counting:
    """A source whose fetches are counted (each batch asked of the adapter), and whose
    next acknowledgement can be made to fail as if the process died right there."""

    def __init__(self, source: PolledSource) -> None:
        self.source, self.fetches, self.die_at_ack = source, 0, False

    @property
    def name(self) -> str:
        return self.source.name

    @contextlib.contextmanager
    def open(self) -> Iterator[Feed]:
        with self.source.open() as feed:
            yield _CountingFeed(self, feed)


class _CountingFeed:
    def __init__(self, owner: Counting, feed: Feed) -> None:
        self.owner, self.feed = owner, feed

    def batches(self) -> Iterator[Batch]:
        inner = self.feed.batches()
        while True:
            self.owner.fetches += 1  # counted before the adapter fetches
            batch = next(inner, None)
            if batch is None:
                return
            yield batch

    def acknowledge(self, batch: Batch) -> None:
        if self.owner.die_at_ack:
            self.owner.die_at_ack = False
            raise Died("between the commit and the acknowledgement")
        self.feed.acknowledge(batch)

    def wait(self, stop: threading.Event) -> None:
        self.feed.wait(stop)


class Died(Exception):
    """Stands for the process dying at that point (nothing after it runs)."""


def failing_inserts(engine: Engine, times: int) -> AbstractContextManager[list[int]]:
    """The database refuses the next ``times`` INSERTs of messages (an OperationalError, as
    from a restarting server); yields ``[left]``."""
    left = [times]

    def refuse(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if left[0] > 0 and statement.lstrip().upper().startswith("INSERT INTO MESSAGE "):
            left[0] -= 1
            raise OperationalError(statement[:40], {}, Exception("database is restarting"))

    @contextlib.contextmanager
    def armed() -> Iterator[list[int]]:
        event.listen(engine, "before_cursor_execute", refuse)
        try:
            yield left
        finally:
            event.remove(engine, "before_cursor_execute", refuse)

    return armed()
