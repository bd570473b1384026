"""Engine and session.

SQLite (embedded mode): WAL, a busy timeout and foreign keys are set on every connection,
and every transaction is ``BEGIN IMMEDIATE``. A deferred SQLite transaction that reads and
then writes fails with "database is locked" whatever the timeout, and almost every
transaction here writes; taking the write lock up front turns that into a short wait.

PostgreSQL (fleet): psycopg 3 with a pool; row claims use ``FOR UPDATE SKIP LOCKED``.

Work that must happen only once the data is durable (enqueueing a task, acknowledging a
channel) is registered with :func:`after_commit` and runs after the outermost commit.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from config.settings import Settings

log = logging.getLogger(__name__)

_engine: Engine | None = None
_factory: sessionmaker[Session] | None = None
_target: tuple[str, int] | None = None  # (database URL, pool size) given by configure


def make_engine(url: str, *, pool_size: int = 10) -> Engine:
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})
        _sqlite_setup(engine)
        return engine
    return create_engine(url, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True)


def _sqlite_setup(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event emit BEGIN itself (the driver's own is deferred).
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def configure(settings: Settings) -> sessionmaker[Session]:
    """Point this process at ``settings``' database: the process edge calls this once at its
    start (``boot.kinds.start``); the core never reads settings itself. The engine is made on
    first use. Called again with the same database it changes nothing (threads keep their
    pool); with another one (tests) the old engine is disposed."""
    global _target
    target = (settings.database_url, settings.db_pool_size)
    if target != _target:
        reset()
        _target = target
    return _connect()


def _connect() -> sessionmaker[Session]:
    global _engine, _factory
    if _factory is None:
        if _target is None:
            raise RuntimeError("the database is not configured: the process calls "
                               "kartabl.db.configure(settings) at its start")
        url, pool_size = _target
        _engine = make_engine(url, pool_size=pool_size)
        _factory = sessionmaker(_engine, expire_on_commit=False)
    return _factory


def reset() -> None:
    """Forget the engine and its pool (dramatiq's forked children must not share the
    parent's sockets): the next use connects again, to the same configured database."""
    global _engine, _factory
    if _engine is not None:
        _engine.dispose()
    _engine = None
    _factory = None


def deconfigure() -> None:
    """Forget the engine and the database too (tests: nothing reaches a previous test's)."""
    global _target
    reset()
    _target = None


def engine() -> Engine:
    _connect()
    assert _engine is not None
    return _engine


def session_factory() -> sessionmaker[Session]:
    return _connect()


@contextmanager
def session_scope() -> Iterator[Session]:
    """A session whose transaction commits on success and rolls back on error."""
    with session_factory()() as session, session.begin():
        yield session


def is_sqlite(session: Session) -> bool:
    return session.get_bind().dialect.name == "sqlite"


DialectInsert = Callable[..., postgresql.Insert | sqlite.Insert]


def dialect_insert(session_or_bind: Session | Engine | Connection) -> DialectInsert:
    """The ``insert`` of the database in use: both dialects' offer ``ON CONFLICT DO
    NOTHING`` (the generic ``sqlalchemy.insert`` does not), each under its own import."""
    bind = session_or_bind.get_bind() if isinstance(session_or_bind, Session) else session_or_bind
    return postgresql.insert if bind.dialect.name == "postgresql" else sqlite.insert


# -- after-commit hooks ------------------------------------------------------------------------


def after_commit(session: Session, fn: Callable[[], None]) -> None:
    """Run ``fn`` once the session's outermost transaction has committed; drop it on rollback."""
    session.info.setdefault("after_commit", []).append(fn)


@event.listens_for(Session, "after_commit")
def _run_after_commit(session: Session) -> None:
    hooks: list[Callable[[], None]] = session.info.pop("after_commit", [])
    for fn in hooks:
        try:
            fn()
        except Exception:
            # The data is committed; a failed enqueue is repaired by the sweep.
            log.exception("after-commit hook failed; the sweep will retry the work")


@event.listens_for(Session, "after_rollback")
def _drop_after_commit(session: Session) -> None:
    session.info.pop("after_commit", None)
