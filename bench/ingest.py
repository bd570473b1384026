"""``make bench``: the ingest pipeline as deployed, on PostgreSQL + Redis with real dramatiq
workers (method and figures in bench/README.md and the README's Performance section).

What is measured, in one run on this machine:

1. **noop**: ``N`` sends to a no-op actor on the same Redis broker, consumed by the same
   worker processes, **one message per task**: the queue's cost per message, from the first
   send until the queue is drained (every message acknowledged).
2. **ingest**: ``N`` inbound messages as the providers send them (raw mail, Telegram and
   Bale updates, Kavenegar callbacks; :mod:`bench.ingest_traffic`) through the channels'
   own entry points (the webhook handlers' parse and store, one message per request; the
   IMAP poller's ingest, one commit per fetch batch; :mod:`bench.ingest_feed`); the workers
   match or create the customer, thread (references, reopens), assign under the agents'
   capacity (the rest waits in triage), fail bounced replies, and commit. Rate = messages /
   time from the first input until the last message is routed. Both figures are messages
   per second, so the ratio compares message with message.
3. **latency**: inputs paced at half the measured ingest rate; p99 of
   ``routed_at - created_at`` (inbound commit to assignment).

Every process logs as the fleet does: JSON lines at INFO (to files under a temporary
directory). The last line is ``ingest_msgs_per_s=<x> noop_msgs_per_s=<y> ratio=<x/y>
p99_ms=<z>``.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import logging
import math
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import psycopg
import redis

if TYPE_CHECKING:
    from bench.ingest_feed import Feeder
    from bench.ingest_traffic import Raw

PG_ADMIN = os.environ.get("KARTABL_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("KARTABL_BENCH_REDIS", "redis://127.0.0.1:6379/0")


def say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


@contextmanager
def bench_database() -> Iterator[str]:
    name = f"kartabl_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as c:
        c.execute(f'CREATE DATABASE "{name}"')
    url = PG_ADMIN.rsplit("/", 1)[0] + "/" + name
    try:
        yield url
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True) as c:
            c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def start_workers(env: dict[str, str], processes: int, threads: int,
                  log: Path) -> subprocess.Popen[bytes]:
    from workers.command import worker_argv

    argv = worker_argv(processes, threads)  # exactly what `kartabl worker` runs
    with log.open("ab") as out:  # the workers' log lines are written, as in the fleet
        return subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT,
                                preexec_fn=_own_session_dying_with_us)


def _own_session_dying_with_us() -> None:
    # A process group of their own (stopped as one), and SIGTERM to the master should this
    # process die without its finally (a test's timeout kills it): no orphaned workers.
    os.setsid()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def stop_workers(proc: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        pass
    with contextlib.suppress(ProcessLookupError):  # whatever of the group is left
        os.killpg(proc.pid, signal.SIGKILL)


def wait_ready(proc: subprocess.Popen[bytes], log: Path, processes: int,
               timeout_s: float = 120) -> None:
    """Until each of the ``processes`` dramatiq workers says it is ready for action (in the
    log), so that the timing starts with booted workers: a fixed wait was too short on a
    busy machine (the boot went into the no-op figure) and too long on an idle one."""
    deadline = time.monotonic() + timeout_s
    while log.read_bytes().count(b"Worker process is ready for action.") < processes:
        if proc.poll() is not None:
            raise SystemExit(f"the workers exited ({proc.returncode}) before they were ready")
        if time.monotonic() > deadline:
            raise SystemExit(f"the workers were not ready within {timeout_s:.0f} s")
        time.sleep(0.1)


def drained(r: redis.Redis, ns: str, queue: str) -> bool:
    if r.llen(f"{ns}:{queue}"):
        return False
    return all(r.scard(k) == 0 for k in r.scan_iter(f"{ns}:__acks__.*.{queue}"))


def bench_noop(n: int, r: redis.Redis, ns: str) -> float:
    from workers import actors

    t0 = time.perf_counter()
    for _ in range(n):
        actors.noop.send()
    while not drained(r, ns, actors.noop.queue_name):
        time.sleep(0.02)
    return n / (time.perf_counter() - t0)


def max_message_id(url: str) -> int:
    with psycopg.connect(url) as c:
        row = c.execute("SELECT coalesce(max(id), 0) FROM message").fetchone()
    return int(row[0]) if row else 0


def wait_routed(url: str, after_id: int, expected: int, timeout_s: float = 900) -> None:
    """Until ``expected`` inbound messages with an id above ``after_id`` are routed."""
    deadline = time.monotonic() + timeout_s
    while True:
        with psycopg.connect(url) as c:
            row = c.execute("SELECT count(*) FROM message WHERE id > %s AND direction = 'in'"
                            " AND routed_at IS NOT NULL", (after_id,)).fetchone()
        if row and int(row[0]) >= expected:
            return
        if time.monotonic() > deadline:
            raise SystemExit(f"routing did not finish within {timeout_s:.0f} s")
        time.sleep(0.05)


def bench_ingest(url: str, feeder: Feeder, raws: list[Raw]) -> float:
    first = max_message_id(url)
    t0 = time.perf_counter()
    created = feeder.flat_out(raws)
    stored = time.perf_counter() - t0
    if created != len(raws):
        raise SystemExit(f"{len(raws)} distinct inputs stored {created} new messages")
    wait_routed(url, first, created)
    elapsed = time.perf_counter() - t0
    say(f"ingest: every input stored after {stored:.1f} s, every message routed after"
        f" {elapsed:.1f} s")
    return created / elapsed


def bench_latency(url: str, feeder: Feeder, raws: list[Raw], rate: float) -> float:
    first = max_message_id(url)
    created = feeder.paced(raws, rate)
    wait_routed(url, first, created)
    with psycopg.connect(url) as c:
        row = c.execute(
            "SELECT percentile_cont(0.99) WITHIN GROUP"
            " (ORDER BY extract(epoch FROM routed_at - created_at))"
            " FROM message WHERE id > %s AND direction = 'in'", (first,)
        ).fetchone()
    return float(row[0]) * 1000 if row and row[0] is not None else float("nan")


def describe(url: str, raws: list[Raw]) -> None:
    """What the run did, from the database: so a reader (and the smoke test) can see it
    took the real paths."""
    kinds = Counter(r.kind for r in raws)
    refs = Counter(r.reference for r in raws if r.reference)
    with psycopg.connect(url) as c:
        how = {str(k): int(v) for k, v in c.execute(
            "SELECT data->>'how', count(*) FROM event WHERE kind = 'message.routed'"
            " GROUP BY 1").fetchall()}
        waiting, unfiled, assigned = c.execute(
            "SELECT count(*) FILTER (WHERE assignee_id IS NULL AND team_id IS NOT NULL),"
            " count(*) FILTER (WHERE assignee_id IS NULL AND team_id IS NULL),"
            " count(*) FILTER (WHERE assignee_id IS NOT NULL)"
            " FROM conversation WHERE status = 'open'").fetchone() or (0, 0, 0)
        bounced = c.execute("SELECT count(*) FROM event WHERE kind = 'reply.bounced'"
                            ).fetchone() or (0,)
    say(f"inputs: {dict(Counter(r.channel for r in raws))}; kinds {dict(kinds)};"
        f" references {dict(refs)}")
    say(f"routed: {how}")
    say(f"open conversations: assigned={assigned} waiting_in_triage={waiting}"
        f" (in a team's queue, the team at capacity) no_team={unfiled};"
        f" by_reference={how.get('reference', 0)}"
        f" reopened={how.get('reopened', 0)} bounced_replies={bounced[0]}")


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--messages", type=int, default=20_000)
    ap.add_argument("--customers", type=int, default=3_000)
    ap.add_argument("--preload-customers", type=int, default=0,
                    help="customers already in the database before the run")
    ap.add_argument("--processes", type=int, default=2)
    ap.add_argument("--threads", type=int, default=8)
    ap.add_argument("--webhook-threads", type=int, default=8,
                    help="webhook requests in flight at once (the web process's pool)")
    ap.add_argument("--capacity", type=int, default=20,
                    help="open conversations per agent (the default of `kartabl person add`)")
    ap.add_argument("--assignable-share", type=float, default=0.75,
                    help="agents are added until their capacity covers this share of the"
                    " conversations the run opens; the rest wait in triage")
    ap.add_argument("--history-share", type=float, default=0.3,
                    help="customers with an earlier, answered conversation")
    ap.add_argument("--latency-seconds", type=float, default=10.0)
    args = ap.parse_args()

    from bench.corpus import people

    ns = f"kbench-{uuid.uuid4().hex[:6]}"
    r = redis.Redis.from_url(REDIS_URL)
    with bench_database() as url, tempfile.TemporaryDirectory(prefix="kbench-") as tmp:
        env = {
            **os.environ,
            "KARTABL_DATABASE_URL": url,
            "KARTABL_BROKER": "redis",
            "KARTABL_REDIS_URL": REDIS_URL,
            "KARTABL_REDIS_NAMESPACE": ns,
            # The fleet's logging: JSON lines at INFO, written (not discarded).
            "KARTABL_LOG_LEVEL": "INFO",
            "KARTABL_LOG_FORMAT": "json",
            "KARTABL_SECRET_KEY": "bench",
            "KARTABL_ATTACHMENTS_DIR": str(Path(tmp) / "attachments"),
        }
        os.environ.update(env)
        from boot.kinds import start
        from config.routing import get_routing
        from config.settings import get_settings
        from kartabl import db

        start("web")  # logs, database, broker and signing key, as the web process's
        # This process plays the web process and the IMAP poller: its lines go to a file too.
        for handler in logging.getLogger().handlers:
            if isinstance(handler, logging.StreamHandler):
                handler.setStream(open(Path(tmp) / "producer.log", "a"))  # noqa: SIM115
        persons = people(args.customers)
        teams = len(get_routing().teams)
        say(f"preparing: {args.customers} customers ({sum(len(p.addresses) > 1 for p in persons)}"
            f" on several channels), {args.preload_customers} preloaded")
        from bench.ingest_feed import Entry, Feeder
        from bench.ingest_seed import prepare
        from bench.ingest_traffic import History, traffic

        # The agents are sized from the traffic, and the traffic names the replies the seed
        # makes: draw it once without history to count its conversations (the same draw).
        empty: dict[int, History] = {}
        raws_max = traffic(persons, args.messages, phase=1, history=empty, seed=11)
        conversations = len({r.who for r in raws_max if r.who})
        agents = max(1, math.ceil(args.assignable_share * conversations
                                  / (args.capacity * teams)))
        history = prepare(url, persons, preload=args.preload_customers,
                          history_share=args.history_share, agents_per_team=agents,
                          capacity=args.capacity)
        raws_max = traffic(persons, args.messages, phase=1, history=history, seed=11)
        say(f"agents: {agents} per team x {teams} teams, capacity {args.capacity} each,"
            f" for about {conversations} conversations; {len(history)} customers answered"
            " before")
        proc = start_workers(env, args.processes, args.threads, Path(tmp) / "workers.log")
        feeder = Feeder(Entry(get_settings(), db.session_factory()), args.webhook_threads)
        try:
            wait_ready(proc, Path(tmp) / "workers.log", args.processes)
            noop = bench_noop(args.messages, r, ns)
            say(f"noop: {noop:.0f} msgs/s (one message per task)")
            rate = bench_ingest(url, feeder, raws_max)
            say(f"ingest: {rate:.0f} msgs/s")
            describe(url, raws_max)
            n = max(200, int(rate / 2 * args.latency_seconds))
            raws_paced = traffic(persons, n, phase=2, history=history, seed=99)
            p99 = bench_latency(url, feeder, raws_paced, rate / 2)
            say(f"latency at {rate / 2:.0f} msgs/s: p99 {p99:.0f} ms")
        finally:
            feeder.close()
            stop_workers(proc)
            for key in r.scan_iter(f"{ns}:*"):
                r.delete(key)
            lines = sum(1 for _ in (Path(tmp) / "workers.log").open("rb"))
            say(f"workers wrote log_lines={lines} (JSON, INFO)")
    print(
        f"ingest_msgs_per_s={rate:.1f} noop_msgs_per_s={noop:.1f} "
        f"ratio={rate / noop:.3f} p99_ms={p99:.1f}"
    )


if __name__ == "__main__":
    main()
