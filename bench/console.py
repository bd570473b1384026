"""``python -m bench.console``: server time of the console's triage queue page and of a
conversation page, with 1,000,000 conversations in PostgreSQL (issue 5: p95 under 100 ms).

1. **Seeding** (:mod:`bench.console_seed`, timed apart): a private, migrated database
   ``kartabl_bench_console_<random>`` gets ``--conversations`` (1,000,000) conversations
   with their customers, identities, messages, replies and audit events, then ``VACUUM
   ANALYZE``. Dropped at the end unless ``--keep``; ``--database URL`` measures again on a
   kept one.
2. **The real web process**: ``kartabl web`` (one uvicorn worker, as in the Procfile) on a
   free port, on that database, Redis as the broker, JSON access logs at INFO to a file;
   only ``KARTABL_COOKIE_SECURE=false`` differs from the fleet (plain HTTP to 127.0.0.1).
3. **Sign-in** through the login form as the coordinator ``coord1`` and as the agent
   ``agent01`` (two teams: scoped queries), each with one keep-alive httpx client.
4. **Requests**, one at a time (latency, not throughput). Per role: ``--requests`` loads of
   ``/queues?queue=triage`` (open and unassigned; the agent's scoped to their teams);
   ``--requests`` conversation pages, each a different conversation drawn uniformly among
   those the role may open; and, apart, ``--requests / 10`` long ones (over 60 messages).
   Uniform draws almost never meet one (0.03 % of the seed), but they are the worst case a
   reader meets. Five loads of the queue and of five other conversations warm the process
   first (templates, pool); no timed conversation was requested before. The database is
   as the seeding left it: here it fits in the OS page cache, not in shared buffers.

A request's time runs from just before the client sends it to when it has read the whole
body, on localhost: server time plus 1-2 ms of httpx, an upper bound. Alongside: the CPU the
web process's threads and the database's backends used for it, and their run-queue wait
(``/proc/<pid>/schedstat``): on a machine shared with other work the wait shows how much of
the time was spent waiting for a core; and ``Server-Timing`` (``app;dur=<ms>``) if the app
sends it. Each answer must be 200 and show what it must (the queue's newest conversation;
the conversation's customer address), else the exit status is 1. A p95 over 100 ms is
reported on stderr, not an error.

Its line: ``console_triage_p95_ms=.. console_conversation_p95_ms=..
console_long_conversation_p95_ms=.. agent_triage_p95_ms=.. agent_conversation_p95_ms=..
agent_long_conversation_p95_ms=.. conversations=<n> seed_s=<s>`` (``seed_s`` 0 with
``--database``); the table (p50/p95/p99/max, CPU, wait per page and role) goes to stderr.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import secrets
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg

from bench.console_seed import AGENT, COORDINATOR, PASSWORD, seed
from bench.ingest import PG_ADMIN, REDIS_URL, say
from bench.webhooks import (
    cpu_seconds,
    free_port,
    machine_jiffies,
    pct,
    start_web,
    stop_web,
    wait_ready,
)

QUEUE_PATH = "/queues?queue={queue}"
CONVERSATION_PATH = "/conversations/{id}"
TARGET_MS = 100.0
WARMUP = 5
_DUR = re.compile(r"dur=([0-9.]+)")


@dataclass
class Timings:
    """One page for one role: client times, the server side's CPU and run-queue wait, and
    the app's Server-Timing when it sends one."""

    client_ms: list[float] = field(default_factory=list)
    cpu_ms: list[float] = field(default_factory=list)
    wait_ms: list[float] = field(default_factory=list)
    server_ms: list[float] = field(default_factory=list)


class Sched:
    """On-CPU and run-queue time (ns) of the web process's threads and of the PostgreSQL
    backends of the bench database, from Linux's ``/proc/<pid>/schedstat``. On a machine
    shared with other work, a request's run-queue wait is the time the server was ready
    but another process had the cores: reported, so a disturbed run can be read."""

    def __init__(self, web_pid: int, url: str) -> None:
        self.web = web_pid
        self.conn = psycopg.connect(url, autocommit=True)

    def files(self) -> list[Path]:
        backends = self.conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
            " AND pid <> pg_backend_pid()").fetchall()
        return [*Path(f"/proc/{self.web}/task").glob("*/schedstat"),
                *(Path(f"/proc/{pid}/schedstat") for (pid,) in backends)]

    @staticmethod
    def sample(files: list[Path]) -> tuple[int, int]:
        run = wait = 0
        for f in files:
            try:
                on_cpu, queued, _ = f.read_text().split()
            except (OSError, ValueError):
                continue  # not Linux, or a thread that has just ended
            run, wait = run + int(on_cpu), wait + int(queued)
        return run, wait


@dataclass
class Target:
    path: str
    must_show: str  # a fragment the page cannot be right without


class Failed(Exception):
    pass


@contextmanager
def console_database(keep: bool) -> Iterator[str]:
    name = f"kartabl_bench_console_{secrets.token_hex(4)}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as c:
        c.execute(f'CREATE DATABASE "{name}"')
    url = PG_ADMIN.rsplit("/", 1)[0] + "/" + name
    try:
        yield url
    finally:
        if keep:
            say(f"kept the database: {url} (measure again with --database {url})")
        else:
            with psycopg.connect(PG_ADMIN, autocommit=True) as c:
                c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# -- what to request ---------------------------------------------------------------------------

# A conversation as its page must show it: the customer's address on the conversation's
# channel (the customer panel lists every identity). The kinds follow kartabl's identities.
_PICK = """
    SELECT c.id, i.address FROM conversation c
    JOIN identity i ON i.customer_id = c.customer_id AND i.kind =
         CASE c.channel WHEN 'sms' THEN 'phone' ELSE c.channel END
    WHERE {scope} AND c.id {long} (SELECT id FROM long_conversation)
    ORDER BY random() LIMIT %(n)s
"""
# Long: more than 60 messages in and out (the seed's ordinary ones have at most 40).
_LONG = """CREATE TEMP TABLE long_conversation AS
    SELECT conversation_id AS id FROM message GROUP BY conversation_id HAVING count(*) > 60"""


@dataclass
class Plan:
    """What one role requests: its queue page, and conversations it may open."""

    role: str
    queue: Target
    pages: list[Target]  # picked uniformly among the role's conversations
    long_pages: list[Target]


def _scope(conn: psycopg.Connection[Any], username: str) -> str:
    """can_access as SQL, for picking conversations the role may open."""
    row = conn.execute("SELECT id, role FROM person WHERE username = %s", [username]).fetchone()
    if row is None:
        raise Failed(f"no person {username!r} in the database")
    if row[1] != "agent":
        return "true"
    pid = int(row[0])
    return (f"(c.assignee_id = {pid} OR c.team_id IN "
            f"(SELECT team_id FROM team_member WHERE person_id = {pid}))")


def _newest(url: str, username: str, queue: str) -> Target:
    """The queue page, and the row it must show first: asked of the console's own service
    (``list_queue``, one row), so the check follows the queue's definition."""
    from sqlalchemy import select
    from sqlalchemy.orm import Session

    from console.queues import Filters, list_queue
    from kartabl.db import make_engine
    from kartabl.models import Person

    engine = make_engine(url, pool_size=1)
    try:
        with Session(engine) as session:
            person = session.scalars(select(Person).where(Person.username == username)).one()
            rows = list_queue(session, person, queue, Filters(limit=1)).rows
    finally:
        engine.dispose()
    if not rows:
        raise Failed(f"the {queue} queue of {username} is empty: nothing to check the page by")
    return Target(QUEUE_PATH.format(queue=queue),
                  f'data-conversation-id="{rows[0].conversation_id}"')


def plans(url: str, n: int, rng: random.Random) -> list[Plan]:
    """Per role: ``n`` + warm-up distinct conversations uniformly, and ``n / 10`` long ones
    (as many as the role may open), none requested twice."""
    out = []
    with psycopg.connect(url) as conn:
        conn.execute("SELECT setseed(%s)", [rng.random() * 2 - 1])
        conn.execute(_LONG)
        for role, queue in ((COORDINATOR, "triage"), (AGENT, "triage")):
            scope = _scope(conn, role)
            picked = []
            for long, count in (("NOT IN", n + WARMUP), ("IN", max(1, n // 10))):
                rows = conn.execute(_PICK.format(scope=scope, long=long), {"n": count})
                picked.append([Target(CONVERSATION_PATH.format(id=cid), str(address))
                               for cid, address in rows])
            out.append(Plan(role, _newest(url, role, queue), picked[0], picked[1]))
    return out


# -- requests ----------------------------------------------------------------------------------


def sign_in(base: str, username: str) -> httpx.Client:
    client = httpx.Client(base_url=base, timeout=30)
    answer = client.post("/login", data={"username": username, "password": PASSWORD,
                                         "next": "/queues"})
    if answer.status_code != 303 or "kartabl_session" not in client.cookies:
        raise Failed(f"sign-in as {username}: {answer.status_code} {answer.text[:300]}")
    return client


def server_timing(header: str) -> float | None:
    """``dur`` of the ``app`` metric of a Server-Timing header (else of its first metric)."""
    metrics = [m.strip() for m in header.split(",") if m.strip()]
    for metric in sorted(metrics, key=lambda m: not m.startswith("app;")):
        match = _DUR.search(metric)
        if match:
            return float(match[1])
    return None


def fetch(client: httpx.Client, target: Target, into: Timings | None,
          sched: Sched | None = None) -> None:
    files = sched.files() if sched else []
    run0, wait0 = Sched.sample(files)
    t0 = time.perf_counter()
    answer = client.get(target.path)
    body = answer.text  # read in full before the clock stops (httpx reads eagerly)
    elapsed = (time.perf_counter() - t0) * 1000
    run1, wait1 = Sched.sample(files)
    if answer.status_code != 200:
        raise Failed(f"GET {target.path}: {answer.status_code} {body[:300]}")
    if target.must_show not in body:
        raise Failed(f"GET {target.path}: 200 but {target.must_show!r} is not on the page")
    if into is not None:
        into.client_ms.append(elapsed)
        if files:
            into.cpu_ms.append((run1 - run0) / 1e6)
            into.wait_ms.append((wait1 - wait0) / 1e6)
        server = server_timing(answer.headers.get("server-timing", ""))
        if server is not None:
            into.server_ms.append(server)


def measure(client: httpx.Client, plan: Plan, n: int, sched: Sched) -> dict[str, Timings]:
    from rich.console import Console
    from rich.progress import Progress

    for target in [plan.queue] * WARMUP + plan.pages[:WARMUP]:
        fetch(client, target, None)
    queue = "triage queue"
    timed = {queue: [plan.queue] * n, "conversation": plan.pages[WARMUP:],
             "long conversation": plan.long_pages}
    out = {f"{name} ({plan.role})": Timings() for name in timed}
    with Progress(console=Console(stderr=True), transient=True) as progress:
        task = progress.add_task(plan.role, total=sum(len(t) for t in timed.values()))
        for (name, targets), into in zip(timed.items(), out.values(), strict=True):
            for target in targets:
                fetch(client, target, into, sched)
                progress.advance(task)
            say(f"  {name} ({plan.role}): {len(targets)} pages")
    return out


def report(results: dict[str, Timings]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="ms per page: the client's time (send to last byte); the server's CPU "
                  "(web + PostgreSQL); its run-queue wait (summed over its threads)")
    columns = ("page (role)", "n", "p50", "p95", "p99", "max", "CPU p50", "CPU p95",
               "wait p95", "Server-Timing p95", f"p95 < {TARGET_MS:.0f}")
    for column in columns:
        table.add_column(column, justify="left" if column.startswith("page") else "right")
    for name, t in results.items():
        cells = [f"{pct(v, q):.1f}" if v else "-" for v, q in (
            (t.client_ms, 0.5), (t.client_ms, 0.95), (t.client_ms, 0.99), (t.client_ms, 1.0),
            (t.cpu_ms, 0.5), (t.cpu_ms, 0.95), (t.wait_ms, 0.95), (t.server_ms, 0.95))]
        table.add_row(name, str(len(t.client_ms)), *cells,
                      "yes" if pct(t.client_ms, 0.95) < TARGET_MS else "NO")
    Console(stderr=True, width=150).print(table)


def run(url: str, n: int, rng: random.Random) -> dict[str, Timings]:
    todo = plans(url, n, rng)
    ns = f"kbench-console-{secrets.token_hex(3)}"
    with tempfile.TemporaryDirectory(prefix="kbench-console-") as tmp:
        env = {
            **os.environ,
            "KARTABL_DATABASE_URL": url,
            "KARTABL_BROKER": "redis",
            "KARTABL_REDIS_URL": REDIS_URL,
            "KARTABL_REDIS_NAMESPACE": ns,
            "KARTABL_SECRET_KEY": secrets.token_urlsafe(24),
            "KARTABL_COOKIE_SECURE": "false",  # plain HTTP to 127.0.0.1
            "KARTABL_LOG_FORMAT": "json",
            "KARTABL_LOG_LEVEL": "INFO",
        }
        port, log = free_port(), Path(tmp) / "web.log"
        base = f"http://127.0.0.1:{port}"
        proc = start_web(env, port, log)
        try:
            wait_ready(base, proc, log)
            say(f"kartabl web (one uvicorn worker) ready on :{port}; per role {WARMUP} warm-up "
                f"loads of each page, then {n} queue pages, {n} conversation pages and the "
                "long conversations, one request at a time")
            results: dict[str, Timings] = {}
            web0, client0, wall0 = cpu_seconds(proc.pid), time.process_time(), time.monotonic()
            busy0, total0 = machine_jiffies()
            sched = Sched(proc.pid, url)
            for plan in todo:
                client = sign_in(base, plan.role)
                try:
                    results.update(measure(client, plan, n, sched))
                finally:
                    client.close()
            sched.conn.close()
            wall, busy1, total1 = time.monotonic() - wall0, *machine_jiffies()
            web, own = cpu_seconds(proc.pid) - web0, time.process_time() - client0
        finally:
            stop_web(proc)
    # One request at a time: the web process should be the only busy thing. Whatever else
    # runs on the machine is reported, not subtracted, so a disturbed run can be told apart.
    busy = 100 * (busy1 - busy0) / max(1, total1 - total0)
    say(f"over {wall:.0f} s: kartabl web used {web:.1f} s of CPU, the client {own:.1f} s; the "
        f"machine's {os.cpu_count()} cores were {busy:.0f} % busy (PostgreSQL, the web, the "
        f"client and anything else; one core is {100 / (os.cpu_count() or 1):.0f} %)")
    return results


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--conversations", type=int, default=1_000_000,
                    help="conversations to seed (the issue's figure by default)")
    ap.add_argument("--requests", type=int, default=300, help="timed loads per page and role")
    ap.add_argument("--seed", type=int, default=5)
    ap.add_argument("--keep", action="store_true", help="keep the seeded database")
    ap.add_argument("--database", help="measure on this database, kept by an earlier --keep")
    args = ap.parse_args()
    if args.conversations < 1_000 or args.requests < 1:
        ap.error("--conversations must be at least 1000 and --requests positive")
    rng = random.Random(args.seed)

    from kartabl.migrate import upgrade

    seeded_s = 0.0
    try:
        kept = nullcontext(args.database) if args.database else None
        with kept or console_database(args.keep) as url:
            if not args.database:
                upgrade(url)
                say(f"seeding {args.conversations:,} conversations into {url.rsplit('/', 1)[1]}")
                s = seed(url, args.conversations, seed_value=rng.random() * 2 - 1)
                seeded_s = s.seconds
                say(f"seeded in {s.seconds:.0f} s: {s.conversations:,} conversations "
                    f"({s.open:,} open, {s.unassigned:,} of them without a person, {s.no_team:,} "
                    f"without a team either), {s.customers:,} customers, "
                    f"{s.messages:,} messages, {s.replies:,} replies ({s.pending:,} pending "
                    f"approval), {s.events:,} events; {len(s.long_ids)} long conversations")
            with psycopg.connect(url) as conn:
                row = conn.execute("SELECT count(*) FROM conversation").fetchone()
                total = int(row[0]) if row else 0
            results = run(url, args.requests, rng)
    except Failed as exc:
        say(f"FAILED: {exc}")
        raise SystemExit(1) from None
    report(results)
    p95 = [pct(t.client_ms, 0.95) for t in results.values()]
    missed = [name for name, v in zip(results, p95, strict=True) if not v < TARGET_MS]
    say(f"target p95 < {TARGET_MS:.0f} ms: " + (f"MISSED by {', '.join(missed)}" if missed
        else "met by every page") + "; every answer 200 with the expected content")
    names = ["console_triage", "console_conversation", "console_long_conversation",
             "agent_triage", "agent_conversation", "agent_long_conversation"]
    print(" ".join(f"{k}_p95_ms={v:.1f}" for k, v in zip(names, p95, strict=True))
          + f" conversations={total} seed_s={seeded_s:.0f}", flush=True)


if __name__ == "__main__":
    main()
