"""Fixtures for the queue tests: an embedded worker, and real dramatiq worker subprocesses
on Redis. Plain helpers live in worker_helpers.py."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from sqlalchemy.orm import Session, sessionmaker

from config.settings import Settings
from tests.workers.worker_helpers import DRAMATIQ, HERE, ROOT
from workers.embedded import EmbeddedWorker

# -- embedded ----------------------------------------------------------------------------------


@pytest.fixture
def embedded(settings: Settings, db: sessionmaker[Session]) -> Iterator[EmbeddedWorker]:
    """StubBroker plus an in-process worker, on this test's database (SQLite or PostgreSQL)."""
    runner = EmbeddedWorker.start(settings.model_copy(update={"broker": "stub"}), threads=2)
    yield runner
    runner.stop()


@pytest.fixture
def sandbox_senders(db: sessionmaker[Session]) -> Iterator[None]:
    """Sandbox senders for the channels that have none, removed after the test."""
    from kartabl.outbound import unregister
    from responders.sandbox import install

    added = install(db)
    yield
    for sender in added:
        unregister(sender.channel)


# -- fleet -------------------------------------------------------------------------------------


@pytest.fixture
def fleet_settings(settings: Settings, redis_client: redis.Redis) -> Iterator[Settings]:
    """This test's settings with the Redis broker; its private namespace is wiped after."""
    yield settings.model_copy(update={"broker": "redis"})
    keys = list(redis_client.scan_iter(match=f"{settings.redis_namespace}:*", count=1000))
    if keys:
        redis_client.delete(*keys)


class WorkerProcs:
    """Real ``dramatiq`` CLI processes, each in a process group of its own."""

    def __init__(self, logdir: Path) -> None:
        self.logdir = logdir
        self.procs: list[subprocess.Popen[bytes]] = []

    def spawn(self, *modules: str, threads: int = 2, env: dict[str, str] | None = None
              ) -> subprocess.Popen[bytes]:
        full_env = {
            **os.environ, "KARTABL_BROKER": "redis", "KARTABL_SECRET_KEY": "test-only-secret",
            "KARTABL_LOG_FORMAT": "console", **(env or {}),
        }
        # -Q goes last: it would swallow any module named after it.
        cmd = [
            str(DRAMATIQ), "boot.worker", "workers.actors", *modules,
            "-p", "1", "-t", str(threads), "--path", str(ROOT), str(HERE),
            "-Q", "inbound", "outbound",
        ]
        log = (self.logdir / f"worker-{len(self.procs)}.log").open("wb")
        proc = subprocess.Popen(cmd, cwd=ROOT, env=full_env, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
        self.procs.append(proc)
        return proc

    def kill(self, proc: subprocess.Popen[bytes]) -> None:
        """SIGKILL the whole group: master and children, no chance to requeue anything."""
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)

    def stop(self, proc: subprocess.Popen[bytes]) -> int:
        """Graceful: SIGTERM to the master only (two SIGTERMs would make a child exit at once)."""
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                return proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill(proc)
        return proc.wait()

    def logs(self) -> str:
        return "\n".join(p.read_text(errors="replace")[-3000:]
                         for p in sorted(self.logdir.glob("worker-*.log")))


@pytest.fixture
def worker_procs(tmp_path: Path) -> Iterator[WorkerProcs]:
    procs = WorkerProcs(tmp_path)
    try:
        yield procs
    finally:
        for proc in procs.procs:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
