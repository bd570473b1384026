"""``python -m bench.search``: search inside messages over the console benchmark's cartable
(issue 15: p95 under 200 ms at 1,000,000 conversations and ~3.3M messages, PostgreSQL).

1. **The database**: :mod:`bench.console_seed`'s cartable of ``--n`` conversations
   (1,000,000), seeded into a private database as ``bench.console`` does and dropped at the
   end; or, with ``--reuse``, the database ``kartabl_bench_search_<n>`` kept from an
   earlier ``--reuse`` run (seeded and indexed once, kept); or ``--database URL``.
   ``--rare`` inbound messages get the rare word :data:`RARE` appended first (the seed's
   texts are a dozen samples: every one of their words is common).
2. **The index**: :func:`kartabl.search.reindex` (what ``kartabl search reindex`` runs)
   builds ``search_doc`` from the inbound messages, notes and sent replies; its time and
   ``pg_total_relation_size('search_doc')`` (table and indexes) are reported. Skipped on a
   reused database that has it.
3. **Requests**, one at a time, to the real ``kartabl web`` (as :mod:`bench.console`), signed
   in as the coordinator ``coord1`` (everything) and the agent ``agent01`` (two teams:
   scoped): ``--requests`` searches of each kind per role: a common Persian word
   (:data:`COMMON`, in about a third of the texts), a common English word, stemmed
   (:data:`ENGLISH`), the rare word, and a phone number (each request another customer's,
   in the role's scope, typed as 0912…, +98912… or ۰۹۱۲… in turn). Each answer must be 200
   and show a hit (a marked one for words), else the exit status is 1.

Its line: ``search_common_p95_ms=.. search_english_p95_ms=.. search_rare_p95_ms=..
search_phone_p95_ms=.. agent_common_p95_ms=.. agent_english_p95_ms=.. agent_rare_p95_ms=..
agent_phone_p95_ms=.. conversations=<n> docs=<n> build_s=<s> index_mb=<mb>``; the table
(p50/p95/p99/max, CPU, run-queue wait) goes to stderr.
"""

from __future__ import annotations

import argparse
import os
import random
import secrets
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psycopg

from bench.console import Failed, Sched, Target, Timings, console_database, fetch, sign_in
from bench.console import _scope as scope_sql
from bench.console_seed import AGENT, COORDINATOR, seed
from bench.ingest import PG_ADMIN, REDIS_URL, say
from bench.webhooks import cpu_seconds, free_port, pct, start_web, stop_web, wait_ready

TARGET_MS = 200.0
WARMUP = 3
COMMON = "سفارش"
ENGLISH = "invoices"
RARE = "زعفرانیه"
KINDS = ("common", "english", "rare", "phone")
_HIT = 'class="search-hit"'


@contextmanager
def reused_database(n: int) -> Iterator[tuple[str, bool]]:
    """``kartabl_bench_search_<n>``: (its URL, whether it exists already). Kept."""
    name = f"kartabl_bench_search_{n}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as c:
        exists = c.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if not exists:
            c.execute(f'CREATE DATABASE "{name}"')
    yield PG_ADMIN.rsplit("/", 1)[0] + "/" + name, bool(exists)
    say(f"kept the database {name} (--reuse measures on it again)")


def prepare(url: str, n: int, rare: int, rng: random.Random) -> float:
    """Migrate, seed ``n`` conversations and mark ``rare`` messages with :data:`RARE`."""
    from kartabl.migrate import upgrade

    upgrade(url)
    say(f"seeding {n:,} conversations into {url.rsplit('/', 1)[1]}")
    s = seed(url, n, seed_value=rng.random() * 2 - 1)
    say(f"seeded in {s.seconds:.0f} s: {s.conversations:,} conversations, {s.messages:,} "
        f"messages, {s.replies:,} replies, {s.events:,} events")
    with psycopg.connect(url) as conn:
        total = conn.execute("SELECT count(*) FROM message WHERE direction = 'in'").fetchone()
        step = max(1, int(total[0] if total else 1) // rare)
        conn.execute("UPDATE message SET text = text || ' ' || %s WHERE direction = 'in'"
                     " AND mod(id, %s) = 7", [RARE, step])
    return s.seconds


def build_index(url: str) -> tuple[float, int, float]:
    """Run the reindex; (seconds, documents, size in MB of the table and its indexes)."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn
    from sqlalchemy.orm import Session

    from kartabl import search as index
    from kartabl.db import make_engine

    engine = make_engine(url.replace("postgresql://", "postgresql+psycopg://", 1), pool_size=1)
    t0 = time.monotonic()
    try:
        with Session(engine) as session:
            total = index.count_sources(session)
            with Progress(BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                          console=Console(stderr=True), transient=True) as progress:
                task = progress.add_task("indexing", total=total)
                docs = index.reindex(session, batch=10_000,
                                     progress=lambda k: progress.advance(task, k))
    finally:
        engine.dispose()
    seconds = time.monotonic() - t0
    return seconds, docs, index_mb(url)


def index_mb(url: str) -> float:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT pg_total_relation_size('search_doc')").fetchone()
    return (int(row[0]) if row else 0) / 2**20


def _phones(conn: psycopg.Connection[Any], username: str, n: int) -> list[str]:
    """``n`` phone numbers of customers with an SMS conversation the role may open."""
    rows = conn.execute(f"""
        SELECT i.address FROM conversation c JOIN identity i
          ON i.customer_id = c.customer_id AND i.kind = 'phone'
        WHERE c.channel = 'sms' AND {scope_sql(conn, username)}
        ORDER BY random() LIMIT %s""", [n]).fetchall()
    out = []
    for k, (address,) in enumerate(rows):
        national = "0" + str(address)[3:]
        out.append([national, str(address),
                    national.translate(str.maketrans("0123456789", "۰۱۲۳۴۵۶۷۸۹"))][k % 3])
    return out


def plans(url: str, n: int, rng: random.Random) -> dict[str, dict[str, list[Target]]]:
    """Per role, per kind: the searches to time (after :data:`WARMUP` of each)."""
    out: dict[str, dict[str, list[Target]]] = {}
    with psycopg.connect(url) as conn:
        conn.execute("SELECT setseed(%s)", [rng.random() * 2 - 1])
        for role in (COORDINATOR, AGENT):
            words = {kind: [Target(f"/search?q={quote(word)}", "<mark>")] * (n + WARMUP)
                     for kind, word in (("common", COMMON), ("english", ENGLISH),
                                        ("rare", RARE))}
            phones = _phones(conn, role, n + WARMUP)
            if len(phones) < n + WARMUP:
                raise Failed(f"{role} sees only {len(phones)} SMS conversations")
            words["phone"] = [Target(f"/search?q={quote(p)}", _HIT) for p in phones]
            out[role] = words
    return out


def measure(base: str, todo: dict[str, dict[str, list[Target]]], sched: Sched
            ) -> dict[str, Timings]:
    from rich.console import Console
    from rich.progress import Progress

    results: dict[str, Timings] = {}
    for role, kinds in todo.items():
        client = sign_in(base, role)
        try:
            with Progress(console=Console(stderr=True), transient=True) as progress:
                task = progress.add_task(role, total=sum(len(t) for t in kinds.values()))
                for kind, targets in kinds.items():
                    into = results.setdefault(f"{kind} ({role})", Timings())
                    for k, target in enumerate(targets):
                        fetch(client, target, into if k >= WARMUP else None, sched)
                        progress.advance(task)
        finally:
            client.close()
    return results


def run(url: str, todo: dict[str, dict[str, list[Target]]]) -> dict[str, Timings]:
    with tempfile.TemporaryDirectory(prefix="kbench-search-") as tmp:
        env = {**os.environ, "KARTABL_DATABASE_URL": url, "KARTABL_BROKER": "redis",
               "KARTABL_REDIS_URL": REDIS_URL,
               "KARTABL_REDIS_NAMESPACE": f"kbench-search-{secrets.token_hex(3)}",
               "KARTABL_SECRET_KEY": secrets.token_urlsafe(24),
               "KARTABL_COOKIE_SECURE": "false", "KARTABL_LOG_FORMAT": "json",
               "KARTABL_LOG_LEVEL": "INFO"}
        port, log = free_port(), Path(tmp) / "web.log"
        base = f"http://127.0.0.1:{port}"
        proc = start_web(env, port, log)
        try:
            wait_ready(base, proc, log)
            web0 = cpu_seconds(proc.pid)
            sched = Sched(proc.pid, url)
            results = measure(base, todo, sched)
            sched.conn.close()
            say(f"kartabl web used {cpu_seconds(proc.pid) - web0:.1f} s of CPU")
        finally:
            stop_web(proc)
    return results


def report(results: dict[str, Timings]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="ms per search page: the client's time; the server's CPU (web + "
                  "PostgreSQL); its run-queue wait")
    for column in ("search (role)", "n", "p50", "p95", "p99", "max", "CPU p95", "wait p95",
                   f"p95 < {TARGET_MS:.0f}"):
        table.add_column(column, justify="left" if column.startswith("search") else "right")
    for name, t in results.items():
        cells = [f"{pct(v, q):.1f}" if v else "-" for v, q in (
            (t.client_ms, 0.5), (t.client_ms, 0.95), (t.client_ms, 0.99), (t.client_ms, 1.0),
            (t.cpu_ms, 0.95), (t.wait_ms, 0.95))]
        table.add_row(name, str(len(t.client_ms)), *cells,
                      "yes" if pct(t.client_ms, 0.95) < TARGET_MS else "NO")
    Console(stderr=True, width=150).print(table)


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", "--conversations", dest="n", type=int, default=1_000_000,
                    help="conversations to seed (the issue's figure by default)")
    ap.add_argument("--requests", type=int, default=100, help="timed searches per kind, role")
    ap.add_argument("--rare", type=int, default=50, help="messages given the rare word")
    ap.add_argument("--seed", type=int, default=15)
    ap.add_argument("--reuse", action="store_true",
                    help="seed into kartabl_bench_search_<n> once, keep it, reuse it after")
    ap.add_argument("--keep", action="store_true", help="keep the seeded database")
    ap.add_argument("--database", help="measure on this database (seeded and kept before)")
    ap.add_argument("--reindex", action="store_true", help="rebuild the index even if built")
    args = ap.parse_args()
    if args.n < 1_000 or args.requests < 1:
        ap.error("--n must be at least 1000 and --requests positive")
    rng = random.Random(args.seed)
    try:
        with _database(args) as (url, ready):
            if not ready:
                prepare(url, args.n, args.rare, rng)
            with psycopg.connect(url) as conn:
                row = conn.execute("SELECT count(*), (SELECT count(*) FROM search_doc)"
                                   " FROM conversation").fetchone()
            total, docs = (int(row[0]), int(row[1])) if row else (0, 0)
            build_s, size = 0.0, index_mb(url)
            if docs == 0 or args.reindex:
                build_s, docs, size = build_index(url)
                say(f"index built in {build_s:.0f} s: {docs:,} texts, {size:,.0f} MB "
                    "(search_doc with its indexes)")
            else:
                say(f"the index is there: {docs:,} texts, {size:,.0f} MB")
            results = run(url, plans(url, args.requests, rng))
    except Failed as exc:
        say(f"FAILED: {exc}")
        raise SystemExit(1) from None
    report(results)
    p95 = {name: pct(t.client_ms, 0.95) for name, t in results.items()}
    missed = [name for name, v in p95.items() if not v < TARGET_MS]
    say(f"target p95 < {TARGET_MS:.0f} ms: " + (f"MISSED by {', '.join(missed)}" if missed
        else "met by every search") + "; every answer 200 with a hit")
    values = list(p95.values())
    names = [f"{prefix}_{kind}" for prefix in ("search", "agent") for kind in KINDS]
    print(" ".join(f"{k}_p95_ms={v:.1f}" for k, v in zip(names, values, strict=True))
          + f" conversations={total} docs={docs} build_s={build_s:.0f} index_mb={size:.0f}",
          flush=True)


@contextmanager
def _database(args: argparse.Namespace) -> Iterator[tuple[str, bool]]:
    if args.database:
        yield args.database, True
    elif args.reuse:
        with reused_database(args.n) as (url, exists):
            yield url, exists
    else:
        with console_database(args.keep) as url:
            yield url, False


if __name__ == "__main__":
    main()
