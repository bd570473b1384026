"""``make bench``: the ingest pipeline on PostgreSQL + Redis with real dramatiq workers.

What is measured, in one run on this machine:

1. **noop**: ``N`` messages to a no-op actor on the same Redis broker, consumed by the same
   worker processes: enqueue + consume rate, from the first send until the queue is drained
   (every message acknowledged).
2. **ingest**: ``N`` inbound messages through the real pipeline: the producer normalises
   each sender (as a channel adapter does) and stores them in batches (idempotent insert +
   commit, routing enqueued after commit); the workers match or create the customer,
   thread, assign and commit. Rate = N / time from the first store until the last message
   is routed.
3. **latency**: messages paced at half the measured ingest rate; p99 of
   ``routed_at - created_at`` (inbound commit to assignment).

The last line is ``ingest_msgs_per_s=<x> noop_msgs_per_s=<y> ratio=<x/y> p99_ms=<z>``.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
import redis

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


def prepare(url: str, persons: list, preload: int) -> None:
    """Schema, teams, agents, the multi-channel customers' linked identities, and
    ``preload`` extra customers already in the database."""
    from rich.progress import Progress
    from sqlalchemy import insert

    from config.routing import get_routing
    from kartabl import db
    from kartabl.migrate import upgrade
    from kartabl.models import Customer, Identity, Person, Role, Team, TeamMember
    from router.identity import identity_for
    from router.teams import sync_teams

    upgrade(url)
    with db.session_scope() as s:
        sync_teams(s, get_routing())
        for team in s.query(Team).all():
            for k in range(3):
                p = Person(username=f"{team.name}-{k}", role=Role.AGENT, capacity=1_000_000)
                s.add(p)
                s.flush()
                s.add(TeamMember(team_id=team.id, person_id=p.id))
    multi = [p for p in persons if len(p.addresses) > 1]
    with db.session_scope() as s, Progress(transient=True, console=None) as prog:
        task = prog.add_task("linking multi-channel customers", total=len(multi))
        for p in multi:
            c = Customer(display_name=p.name)
            s.add(c)
            s.flush()
            for ch, addr in p.addresses.items():
                kind, norm = identity_for(ch, addr)
                s.add(Identity(customer_id=c.id, kind=kind, address=norm))
            prog.advance(task)
    if preload:
        with db.engine().begin() as conn, Progress(transient=True) as prog:
            task = prog.add_task("preloading customers", total=preload)
            for start in range(0, preload, 5000):
                n = min(5000, preload - start)
                ids = (
                    conn.execute(
                        insert(Customer).returning(Customer.id),
                        [{"display_name": f"old {start + i}", "tags": []} for i in range(n)],
                    )
                    .scalars()
                    .all()
                )
                conn.execute(
                    insert(Identity),
                    [
                        {
                            "customer_id": cid,
                            "kind": "email",
                            "address": f"old{start + i}@example.org",
                        }
                        for i, cid in enumerate(ids)
                    ],
                )
                prog.advance(task, n)


def start_workers(env: dict[str, str], processes: int, threads: int) -> subprocess.Popen[bytes]:
    from workers.command import dramatiq_argv

    argv = dramatiq_argv(processes, threads)
    return subprocess.Popen(
        argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )


def stop_workers(proc: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        os.killpg(proc.pid, signal.SIGKILL)


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


def routed_count(url: str, prefix: str) -> int:
    with psycopg.connect(url) as c:
        row = c.execute(
            "SELECT count(*) FROM message WHERE routed_at IS NOT NULL AND external_id LIKE %s",
            (prefix + "-%",),
        ).fetchone()
    return int(row[0]) if row else 0


def bench_ingest(url: str, persons: list, n: int, batch: int) -> float:
    from bench.corpus import messages, to_inbound
    from kartabl import db, ingest

    raws = list(messages(persons, n, tag="max"))
    t0 = time.perf_counter()
    with db.session_factory()() as s:
        for start in range(0, n, batch):
            ingest.store_many(s, [to_inbound(r) for r in raws[start : start + batch]])
    deadline = time.monotonic() + 600
    while routed_count(url, "max") < n:
        if time.monotonic() > deadline:
            raise SystemExit("ingest did not finish within 10 minutes")
        time.sleep(0.05)
    return n / (time.perf_counter() - t0)


def bench_latency(url: str, persons: list, rate: float, seconds: float) -> float:
    from bench.corpus import messages, to_inbound
    from kartabl import db, ingest

    n = max(200, int(rate * seconds))
    raws = list(messages(persons, n, tag="paced", seed=99))
    per_tick = max(1, int(rate / 50))  # 50 small batches a second
    t0 = time.perf_counter()
    with db.session_factory()() as s:
        for i, start in enumerate(range(0, n, per_tick)):
            due = t0 + i * per_tick / rate
            if (wait := due - time.perf_counter()) > 0:
                time.sleep(wait)
            ingest.store_many(s, [to_inbound(r) for r in raws[start : start + per_tick]])
    while routed_count(url, "paced") < n:
        time.sleep(0.05)
    with psycopg.connect(url) as c:
        row = c.execute(
            "SELECT percentile_cont(0.99) WITHIN GROUP"
            " (ORDER BY extract(epoch FROM routed_at - created_at))"
            " FROM message WHERE external_id LIKE 'paced-%%'"
        ).fetchone()
    return float(row[0]) * 1000 if row and row[0] is not None else float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--messages", type=int, default=20_000)
    ap.add_argument("--customers", type=int, default=3_000)
    ap.add_argument(
        "--preload-customers",
        type=int,
        default=0,
        help="customers already in the database before the run",
    )
    ap.add_argument("--processes", type=int, default=2)
    ap.add_argument("--threads", type=int, default=8)
    ap.add_argument("--batch", type=int, default=200, help="messages per store_many commit")
    ap.add_argument("--latency-seconds", type=float, default=10.0)
    args = ap.parse_args()

    from bench.corpus import people

    ns = f"kbench-{uuid.uuid4().hex[:6]}"
    r = redis.Redis.from_url(REDIS_URL)
    with bench_database() as url:
        env = {
            **os.environ,
            "KARTABL_DATABASE_URL": url,
            "KARTABL_BROKER": "redis",
            "KARTABL_REDIS_URL": REDIS_URL,
            "KARTABL_REDIS_NAMESPACE": ns,
            "KARTABL_LOG_LEVEL": "WARNING",
            "KARTABL_SECRET_KEY": "bench",
        }
        os.environ.update(env)
        from kartabl import logs
        from workers.broker import setup_broker

        logs.configure()
        setup_broker()
        persons = people(args.customers)
        say(
            f"preparing: {args.customers} customers ({sum(len(p.addresses) > 1 for p in persons)} "
            f"on several channels), {args.preload_customers} preloaded"
        )
        prepare(url, persons, args.preload_customers)
        proc = start_workers(env, args.processes, args.threads)
        try:
            time.sleep(3)  # let the worker processes boot before timing
            noop = bench_noop(args.messages, r, ns)
            say(f"noop: {noop:.0f} msgs/s")
            rate = bench_ingest(url, persons, args.messages, args.batch)
            say(f"ingest: {rate:.0f} msgs/s")
            p99 = bench_latency(url, persons, rate / 2, args.latency_seconds)
            say(f"latency at {rate / 2:.0f} msgs/s: p99 {p99:.0f} ms")
        finally:
            stop_workers(proc)
            for key in r.scan_iter(f"{ns}:*"):
                r.delete(key)
    print(
        f"ingest_msgs_per_s={rate:.1f} noop_msgs_per_s={noop:.1f} "
        f"ratio={rate / noop:.3f} p99_ms={p99:.1f}"
    )


if __name__ == "__main__":
    main()
