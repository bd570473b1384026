"""Named, process-wide exclusive locks for the fleet: PostgreSQL session advisory locks.

Used where several copies of a process may run on several machines but only one should do
a piece of work at a time: the scheduler's sweep tick, each mailbox's IMAP poller, each
polling bot and each SMS line (the others stand by and take over when the holder dies:
:func:`lead`, whose standbys wait on the lock itself, so PostgreSQL hands it over the moment
the holder's session ends). A PostgreSQL lock rather than a Redis
one: the database is already the source of truth, and the server releases the lock the
moment its holder's connection dies, so a killed process never blocks the others until a
TTL runs out. SQLite is the single-process embedded mode and needs no lock.

Each lock has a connection of its own, outside the application's pool: a poller holds its
lock for as long as it leads, and ten mailboxes in one process would otherwise keep ten of
the pool's connections checked out for good. A long holder calls
:meth:`Lease.still_held` between pieces of work: when the lock's connection died (a
PostgreSQL restart, a terminated backend) another process may hold the lock already.

The work done under such a lock is idempotent anyway (the sweep, ingest's unique key): the
lock saves duplicate effort, it is not what keeps the data right.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, Engine, create_engine, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.pool import NullPool

log = logging.getLogger(__name__)
_LOCK_NOT_AVAILABLE = "55P03"  # SQLSTATE of a lock wait cut by lock_timeout

_lock_engines: dict[str, Engine] = {}
_lock_engines_guard = threading.Lock()


def lock_key(name: str) -> int:
    """A stable signed 64-bit key for ``name`` (the same in every process and release)."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


def application_name(name: str) -> str:
    """What ``pg_stat_activity`` shows for the lock's connection (PostgreSQL keeps 63
    bytes): an operator can see who holds which lock."""
    return f"kartabl lock: {name}".encode()[:63].decode("utf-8", "ignore")


def _lock_engine(engine: Engine) -> Engine:
    # NullPool: a connection is opened per lock and really closed with it, never parked.
    url = engine.url.render_as_string(hide_password=False)
    with _lock_engines_guard:
        lock_engine = _lock_engines.get(url)
        if lock_engine is None:
            lock_engine = _lock_engines[url] = create_engine(engine.url, poolclass=NullPool)
        return lock_engine


class Lease:
    """The outcome of trying to take a lock: truthy when this process holds it."""

    def __init__(self, conn: Connection | None, held: bool) -> None:
        self._conn, self._held = conn, held

    def __bool__(self) -> bool:
        return self._held

    def still_held(self) -> bool:
        """Whether the lock is still ours: its connection still answers (the server keeps a
        session lock exactly as long as the session). One round trip, so cheap enough to
        ask between passes."""
        if not self._held:
            return False
        if self._conn is None:  # SQLite: no lock to lose
            return True
        try:
            self._conn.scalar(text("SELECT 1"))
        except Exception as exc:
            log.warning("lost a lock's database connection: %s", exc)
            self._held = False
        return self._held


def _lock_connection(engine: Engine, name: str) -> Connection:
    # Autocommit: the lock belongs to the connection, so no transaction stays open (an
    # "idle in transaction" connection would hold back vacuum for as long as the lock).
    conn = _lock_engine(engine).connect().execution_options(isolation_level="AUTOCOMMIT")
    try:
        # Server-side keepalives: the lock outlives a holder whose machine vanished (power
        # loss, a cut network) until the server notices the dead peer; the defaults (the
        # kernel's two hours) would keep the standbys waiting that long. ~25 s here.
        conn.execute(text(
            "SELECT set_config('application_name', :n, false), "
            "set_config('tcp_keepalives_idle', '10', false), "
            "set_config('tcp_keepalives_interval', '5', false), "
            "set_config('tcp_keepalives_count', '3', false)"), {"n": application_name(name)})
    except BaseException:
        conn.close()
        raise
    return conn


@contextmanager
def _holding(conn: Connection, name: str, got: bool) -> Iterator[Lease]:
    """Yield the :class:`Lease`; release the lock and close ``conn`` after the block."""
    held = Lease(conn, got)
    try:
        try:
            yield held
        finally:
            if held:
                try:
                    conn.scalar(text("SELECT pg_advisory_unlock(:k)"), {"k": lock_key(name)})
                except Exception as exc:  # a dead connection released the lock already
                    log.debug("could not unlock %s: %s", name, exc)
    finally:
        try:
            conn.close()
        except Exception as exc:
            log.debug("could not close the connection of lock %s: %s", name, exc)


@contextmanager
def lease(engine: Engine, name: str) -> Iterator[Lease]:
    """Try to take the lock ``name`` without waiting; the :class:`Lease` says whether this
    process holds it. Held until the block ends (or its connection dies)."""
    if engine.dialect.name != "postgresql":
        yield Lease(None, True)
        return
    conn = _lock_connection(engine, name)
    try:
        got = bool(conn.scalar(text("SELECT pg_try_advisory_lock(:k)"), {"k": lock_key(name)}))
    except BaseException:
        conn.close()
        raise
    with _holding(conn, name, got) as held:
        yield held


@contextmanager
def waiting_lease(engine: Engine, name: str, stop: threading.Event, *, check_s: float = 1.0
                  ) -> Iterator[Lease]:
    """Take the lock ``name``, waiting for it until ``stop`` is set (then the lease is
    falsy). The wait is PostgreSQL's own: the server grants the lock the moment its holder's
    session ends, so a standby takes over as soon as the holder dies, not at its next try.
    ``stop`` is looked at every ``check_s`` (the statement's ``lock_timeout``)."""
    if engine.dialect.name != "postgresql":
        yield Lease(None, True)
        return
    conn = _lock_connection(engine, name)
    try:
        key = lock_key(name)
        got = bool(conn.scalar(text("SELECT pg_try_advisory_lock(:k)"), {"k": key}))
        if not got:
            log.info("%s: another process holds it; standing by", name)
            conn.execute(text("SELECT set_config('lock_timeout', :t, false)"),
                         {"t": f"{max(1, int(check_s * 1000))}ms"})
        while not got and not stop.is_set():
            try:
                conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": key})
                got = True
            except OperationalError as exc:
                if getattr(exc.orig, "sqlstate", None) != _LOCK_NOT_AVAILABLE:
                    raise
        if got:
            conn.execute(text("SELECT set_config('lock_timeout', '0', false)"))
    except BaseException:
        conn.close()
        raise
    with _holding(conn, name, got) as held:
        yield held


def lead(engine: Engine, name: str, stop: threading.Event, work: Callable[[Lease], None], *,
         retry_s: float = 1.0) -> None:
    """Do ``work`` while this process holds the lock ``name``, standing by while another
    does, until ``stop`` is set: one process per polled source (a bot, an SMS line), the
    others ready to take over the moment it dies. ``work(lease)`` returns when ``stop`` is
    set or ``lease.still_held()`` turns false; it is called again once the lock is back."""
    while not stop.is_set():
        try:
            with waiting_lease(engine, name, stop, check_s=retry_s) as held:
                if held:
                    log.info("%s: this process holds it", name)
                    work(held)
        except Exception:  # the database is down, or the work failed: try again
            log.warning("%s: lost or could not take the lock; again in %g s", name, retry_s,
                        exc_info=True)
            stop.wait(retry_s)


@contextmanager
def exclusive(engine: Engine, name: str) -> Iterator[bool]:
    """:func:`lease` for short holders that need only a yes or no."""
    with lease(engine, name) as held:
        yield bool(held)
