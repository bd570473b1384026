"""Fixtures shared by the whole suite.

Every test that takes ``db`` runs twice: on SQLite (embedded mode) and on PostgreSQL (fleet).
PostgreSQL and Redis are required when CI=true or KARTABL_REQUIRE_FLEET=1, and skipped with
a reason elsewhere. Each test run gets its own PostgreSQL database and Redis namespace, so
runs in parallel (two developers, CI) do not see each other's rows; so does each
pytest-xdist worker (``make test`` runs two), as ``RUN_ID`` is drawn per process.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import redis
from sqlalchemy.orm import Session, sessionmaker

import config.routing
import config.settings
from kartabl import db as kdb
from kartabl import reply_tokens, service_clock, tasks
from kartabl.migrate import upgrade
from kartabl.models import Base
from tests.forkserver import ForkServer

PG_ADMIN = os.environ.get("KARTABL_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("KARTABL_TEST_REDIS", "redis://127.0.0.1:6379/0")
REQUIRE_FLEET = os.environ.get("CI") == "true" or os.environ.get("KARTABL_REQUIRE_FLEET") == "1"
RUN_ID = uuid.uuid4().hex[:10]


def _unavailable(what: str, exc: Exception) -> None:
    msg = f"{what} not reachable ({exc})"
    if REQUIRE_FLEET:
        pytest.fail(msg + "; it is required in CI", pytrace=False)
    pytest.skip(msg)


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    name = f"kartabl_test_{RUN_ID}"
    try:
        admin = psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        _unavailable("PostgreSQL", exc)
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        # No wait for the WAL flush at each commit (what is committed is seen all the same;
        # only a crash of the server could lose the last ones): the suite commits thousands
        # of times, and the flushes queue up behind each other on a busy disk.
        admin.execute(f'ALTER DATABASE "{name}" SET synchronous_commit = off')
    url = PG_ADMIN.rsplit("/", 1)[0] + f"/{name}"
    upgrade(url)
    yield url
    kdb.deconfigure()
    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def forkserver() -> Iterator[ForkServer]:
    """This test process's fork server for ``kartabl`` processes (tests/forkserver.py)."""
    server = ForkServer().start()
    yield server
    server.close()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "kartabl.db"
    upgrade(f"sqlite:///{path}")
    return path


# Every sequence back to its start, as TRUNCATE ... RESTART IDENTITY did.
_RESTART_SEQUENCES = (
    "SELECT setval(format('%I.%I', schemaname, sequencename)::regclass, start_value, false)"
    " FROM pg_sequences WHERE schemaname = current_schema()")


def _truncate_pg(url: str) -> None:
    """Empty every table and restart every id, in one transaction. DELETE, children first,
    not TRUNCATE: a test leaves a few rows, and TRUNCATE of the 17 tables (new files for
    each, then their fsync) took ~0.5 s per PostgreSQL test, DELETE a few milliseconds."""
    with psycopg.connect(url.replace("+psycopg", "")) as conn:
        for table in reversed(Base.metadata.sorted_tables):
            conn.execute(f'DELETE FROM "{table.name}"')
        conn.execute(_RESTART_SEQUENCES)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.fleet)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        path = tmp_path / "kartabl.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        return f"sqlite:///{path}"
    url: str = request.getfixturevalue("pg_url")
    _truncate_pg(url)
    return url.replace("postgresql://", "postgresql+psycopg://", 1)


@pytest.fixture
def routing_file(tmp_path: Path) -> Path:
    """The example routing file; tests may overwrite it before the first route."""
    path = tmp_path / "routing.toml"
    shutil.copy(config.settings.DEFAULT_ROUTING_FILE, path)
    return path


@pytest.fixture
def settings(
    db_url: str, routing_file: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[config.settings.Settings]:
    """Settings pointing at this test's database; exported to the environment so that
    subprocesses (workers, CLI) started by the test see the same ones."""
    monkeypatch.setenv("KARTABL_DATABASE_URL", db_url)
    monkeypatch.setenv("KARTABL_ROUTING_FILE", str(routing_file))
    monkeypatch.setenv("KARTABL_REDIS_NAMESPACE", f"kt-{RUN_ID}-{uuid.uuid4().hex[:6]}")
    monkeypatch.setenv("KARTABL_REDIS_URL", REDIS_URL)
    config.settings.get_settings.cache_clear()
    config.routing.get_routing.cache_clear()
    settings = config.settings.get_settings()
    # What boot.kinds.start does at a process's start: the core reads no settings itself.
    kdb.configure(settings)
    reply_tokens.configure(settings.secret_key)
    # The routing file as it is now, read without filling get_routing's cache (tests rewrite
    # the file before their first route); a test that needs the clock to see its rewrite
    # calls service_clock.configure again.
    service_clock.configure(settings, config.routing.load(routing_file))
    yield settings
    tasks.set_enqueuer(None)
    kdb.deconfigure()
    config.settings.get_settings.cache_clear()
    config.routing.get_routing.cache_clear()


@pytest.fixture
def db(settings: config.settings.Settings) -> sessionmaker[Session]:
    return kdb.configure(settings)


@pytest.fixture
def session(db: sessionmaker[Session]) -> Iterator[Session]:
    with db() as s:
        yield s


@pytest.fixture(autouse=True)
def _unconfigured_clock() -> Iterator[None]:
    """Each test starts with the service clock unconfigured, as a process does: a test that
    steps the workflow without configuring it (the ``settings`` fixture does) fails alone,
    not only when it happens to run after one that did (the browser tests, 2026-12-04)."""
    service_clock.deconfigure()
    yield
    service_clock.deconfigure()


@pytest.fixture
def redis_client() -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        _unavailable("Redis", exc)
    yield client
    client.close()


# The files whose tests take tens of seconds each (fleets, benches, browsers, supervisors,
# the API fuzzing), longest first. pytest-xdist hands out work in collection order, so these
# go first: started last, one of them kept a worker busy for 30 s after the others had
# finished (`make test`, 2026-12-03). Only the order changes; every test still runs.
_LONG_FIRST = (
    "tests/bench/",  # with the fleet group: the chaos smoke test
    "tests/fleet/",
    "tests/workers/test_worker_supervisor.py",
    "tests/browser/test_workflow_flow.py",
    "tests/console/test_api_fuzz.py",
    "tests/deploy/test_supervisord.py",
    "tests/console/security/test_get_is_safe.py",
    "tests/channels/telegram/test_poller_takeover.py",
    "tests/workers/test_worker_fleet.py",
    "tests/channels/sms/test_poller_takeover.py",
    "tests/test_run_allinone.py",
    # a module of these runs on one worker (its browser, its web processes: see
    # _share_module_fixtures), a minute of work for test_collision.py
    "tests/live/test_live_fleet.py",
    "tests/browser/",
    "tests/live/",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        path = item.nodeid.split("::", 1)[0]
        return next((i for i, p in enumerate(_LONG_FIRST) if path.startswith(p)),
                    len(_LONG_FIRST))

    items.sort(key=rank)  # stable: a file's tests keep their order, and stay together
    for item in items:
        _share_module_fixtures(item)


def _share_module_fixtures(item: pytest.Item) -> None:
    """Keep a module's tests on one xdist worker when they share a module-scoped fixture
    (two ``kartabl web`` processes, a browser): spread over three workers, each built its
    own, which is most of those tests' time (the live fleet's 28 s set-up, three times)."""
    if item.get_closest_marker("xdist_group") is not None:
        return
    info = getattr(item, "_fixtureinfo", None)
    if info is None:
        return
    if any(d.scope == "module" for defs in info.name2fixturedefs.values() for d in defs):
        item.add_marker(pytest.mark.xdist_group(item.nodeid.split("::", 1)[0]))
