"""``make bench``: how long a host is without a worker when one worker process is SIGKILLed.

``kartabl worker``'s command line (:func:`workers.command.worker_argv`: the supervisor with
``--processes`` dramatiq workers) runs on PostgreSQL + Redis while a steady trickle of
inbound messages is stored through ingest (routing enqueued after each commit). ``--kills``
times, one dramatiq worker process (the one that consumes, as the OOM killer would pick it)
gets SIGKILL, and the run records:

- **gap**: from the SIGKILL to the next message routed (``routed_at``, the workers' commit
  time) by any worker: how long the host processed nothing;
- **respawn**: from the SIGKILL until a new worker consumes from Redis (a new consumer id in
  dramatiq's ``__heartbeats__``): how long the host ran one worker short.

The line printed last: ``worker_kill_gap_ms p50=<x> max=<y> respawn_ms p50=<a> max=<b>
kills=<n>``.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import redis

# One private database per run, the same way as the ingest benchmark's.
from bench.ingest import REDIS_URL, bench_database, say


def children(pid: int) -> list[int]:
    """The direct children of ``pid`` (Linux /proc)."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(c) for c in (task / "children").read_text().split()]
        except OSError:  # the task or the process is gone
            continue
    return found


def _is_dramatiq(pid: int) -> bool:
    try:
        return b"dramatiq" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def worker_pids(root: int) -> list[int]:
    """The dramatiq worker processes (those that consume) below ``root``: the dramatiq
    processes whose parent is a dramatiq master. Under the supervisor they are its
    grandchildren; under a bare ``dramatiq -p N``, its children."""
    found: list[int] = []
    todo = [root]
    while todo:
        parent = todo.pop()
        for pid in children(parent):
            if _is_dramatiq(pid) and _is_dramatiq(parent):
                found.append(pid)
            todo.append(pid)
    return sorted(found)


def consumer_ids(r: redis.Redis, ns: str) -> set[str]:
    return {str(m) for m in r.zrange(f"{ns}:__heartbeats__", 0, -1)}


class Trickle(threading.Thread):
    """Stores one inbound SMS every ``interval_s`` through ingest, as a channel would."""

    def __init__(self, interval_s: float, prefix: str) -> None:
        super().__init__(name="trickle", daemon=True)
        self.interval_s, self.prefix = interval_s, prefix
        self.stop = threading.Event()
        self.sent = 0

    def run(self) -> None:
        from kartabl import db, ingest
        from kartabl.messages import InboundMessage
        from kartabl.models import Channel

        with db.session_factory()() as s:
            while not self.stop.wait(self.interval_s):
                n = self.sent
                ingest.store_many(s, [InboundMessage(
                    channel=Channel.SMS, external_id=f"{self.prefix}-{n}",
                    sender=f"+98912{n % 50:07d}", text=f"سلام {n}")])
                self.sent += 1


def first_routed_after(url: str, when: datetime, timeout_s: float) -> datetime | None:
    """The earliest ``routed_at`` after ``when``, waiting up to ``timeout_s`` for one."""
    deadline = time.monotonic() + timeout_s
    with psycopg.connect(url, autocommit=True) as c:
        while time.monotonic() < deadline:
            row = c.execute("SELECT min(routed_at) FROM message WHERE routed_at > %s",
                            (when.replace(tzinfo=None),)).fetchone()
            if row and row[0] is not None:
                return row[0] if row[0].tzinfo else row[0].replace(tzinfo=UTC)
            time.sleep(0.02)
    return None


def wait_for(check: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.02)


def start_supervisor(env: dict[str, str], processes: int, threads: int, log: Path
                     ) -> subprocess.Popen[bytes]:
    from workers.command import worker_argv

    with log.open("ab") as out:
        return subprocess.Popen(worker_argv(processes, threads), env=env, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)


def measure(url: str, r: redis.Redis, ns: str, proc: subprocess.Popen[bytes], processes: int,
            kills: int, settle_s: float) -> tuple[list[float], list[float]]:
    gaps: list[float] = []
    respawns: list[float] = []
    for k in range(kills):
        wait_for(lambda: len(worker_pids(proc.pid)) == processes, 60, "every worker to run")
        before = consumer_ids(r, ns)
        victim = worker_pids(proc.pid)[k % processes]
        killed_at = datetime.now(UTC)
        t0 = time.monotonic()
        os.kill(victim, signal.SIGKILL)
        routed = first_routed_after(url, killed_at, 60)
        if routed is None:
            raise SystemExit("no message was routed within 60 s of the kill")
        gaps.append((routed - killed_at).total_seconds() * 1000)
        wait_for(lambda: bool(consumer_ids(r, ns) - before), 60,  # noqa: B023 - waited here
                 "a new worker to consume")
        respawns.append((time.monotonic() - t0) * 1000)
        say(f"kill {k + 1}: gap {gaps[-1]:.0f} ms, respawn {respawns[-1]:.0f} ms")
        time.sleep(settle_s)
    return gaps, respawns


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--processes", type=int, default=2)
    ap.add_argument("--threads", type=int, default=4)
    ap.add_argument("--kills", type=int, default=5)
    ap.add_argument("--interval-ms", type=float, default=50.0, help="between trickled messages")
    ap.add_argument("--settle-s", type=float, default=2.0,
                    help="between a respawn and the next kill")
    args = ap.parse_args()

    ns = f"kbench-kill-{uuid.uuid4().hex[:6]}"
    r = redis.Redis.from_url(REDIS_URL)
    logdir = Path(tempfile.mkdtemp(prefix="kartabl-worker-kill-"))
    with bench_database() as url:
        env = {
            **os.environ, "KARTABL_DATABASE_URL": url, "KARTABL_BROKER": "redis",
            "KARTABL_REDIS_URL": REDIS_URL, "KARTABL_REDIS_NAMESPACE": ns,
            "KARTABL_SECRET_KEY": "bench", "KARTABL_LOG_FORMAT": "json",
            "KARTABL_LOG_LEVEL": "WARNING",
        }
        os.environ.update(env)
        from boot.kinds import start
        from config.routing import get_routing
        from kartabl import db
        from kartabl.migrate import upgrade
        from router.teams import sync_teams

        start("web")  # logs, database, broker and signing key, as a console process's
        upgrade(url)
        with db.session_scope() as s:
            sync_teams(s, get_routing())
        proc = start_supervisor(env, args.processes, args.threads, logdir / "worker.log")
        trickle = Trickle(args.interval_ms / 1000, "trickle")
        try:
            trickle.start()
            wait_for(lambda: first_routed_after(url, datetime(2000, 1, 1, tzinfo=UTC), 0.1)
                     is not None, 60, "the workers to route a first message")
            gaps, respawns = measure(url, r, ns, proc, args.processes, args.kills, args.settle_s)
        finally:
            trickle.stop.set()
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
            for key in r.scan_iter(f"{ns}:*"):
                r.delete(key)
    say(f"worker log: {logdir / 'worker.log'}")
    print(f"worker_kill_gap_ms p50={statistics.median(gaps):.0f} max={max(gaps):.0f} "
          f"respawn_ms p50={statistics.median(respawns):.0f} max={max(respawns):.0f} "
          f"kills={len(gaps)}")


if __name__ == "__main__":
    main()
