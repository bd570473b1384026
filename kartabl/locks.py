"""Named, process-wide exclusive locks for the fleet: PostgreSQL session advisory locks.

Used where several copies of a process may run on several machines but only one should do
a piece of work at a time: the scheduler's sweep tick, and each mailbox's IMAP poller (the
others stand by and take over when the holder dies). A PostgreSQL lock rather than a Redis
one: the database is already the source of truth, and the server releases the lock the
moment its holder's connection dies, so a killed process never blocks the others until a
TTL runs out. SQLite is the single-process embedded mode and needs no lock.

The work done under such a lock is idempotent anyway (the sweep, ingest's unique key): the
lock saves duplicate effort, it is not what keeps the data right.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine, text


def lock_key(name: str) -> int:
    """A stable signed 64-bit key for ``name`` (the same in every process and release)."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


@contextmanager
def exclusive(engine: Engine, name: str) -> Iterator[bool]:
    """Try to take the lock ``name`` without waiting; yield whether this process holds it.
    Held until the block ends (or the connection dies)."""
    if engine.dialect.name != "postgresql":
        yield True
        return
    key = lock_key(name)
    # Autocommit: the lock belongs to the connection, so no transaction stays open (an
    # "idle in transaction" connection would hold back vacuum for as long as the lock).
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        got = bool(conn.scalar(text("SELECT pg_try_advisory_lock(:k)"), {"k": key}))
        try:
            yield got
        finally:
            if got:
                conn.scalar(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
