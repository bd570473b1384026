"""Seeding for ``bench.console``: a cartable of ``n`` conversations, loaded with set-based SQL
(the statements are in :mod:`bench.console_sql`).

Everything is generated inside PostgreSQL (``INSERT ... SELECT`` over ``generate_series``,
``random()`` after ``setseed``), so 1,000,000 conversations and their messages load in a few
minutes on two cores; nothing goes through the ORM row by row. What it holds:

- 10 teams; 50 agents (5 per team; every fifth one is also in the next team), 5
  coordinators and an admin, all with the password :data:`PASSWORD`;
- ``0.3 n`` customers (named, some not), each with 1 to 3 identities on different channels
  (email, phone, Telegram, Bale); their conversations are skewed (a few customers write a
  lot, as in a real inbox) and on one of their channels;
- ``n`` conversations over two years, ids growing with time. Recent ones are mostly open,
  older ones mostly closed (about 6 % open overall). Open: 5 % with neither person nor
  team, 15 % referred to a team alone (together: triage, open and unassigned), the rest
  assigned to an agent; closed: almost all assigned;
- 1 to 20 inbound messages each (mean ~1.8), and ``max(10, n / 3333)`` long conversations
  of 40 to 200 inbound messages spread over weeks (assigned, round the teams); email
  bodies with sanitised HTML, a few with attachments listed;
- a reply for most inbound messages, in every state: earlier replies sent (SMS:
  delivered), the last one of an open conversation draft, pending approval, approved,
  sending, failed, rejected or sent; an outbound message for every sent reply;
- the audit events the workflow writes: ``message.routed`` for every inbound message,
  ``conversation.assigned`` / ``referred`` (with a note) / ``note`` / ``closed``, and
  ``reply.submitted`` / ``approved`` / ``rejected`` / ``sent`` / ``failed``.

Messages, replies and events are inserted in time order (ids follow time, as in production),
so one conversation's rows are spread over the table, not stored side by side.

Loading speed without changing what is measured: the secondary indexes and unique
constraints of the big tables are dropped before the load and recreated from their own
definitions after it (checked identical to the migrated schema), and foreign-key triggers
are off for the loading session only (``session_replication_role = replica``; the rows are
consistent by construction). Then ``VACUUM ANALYZE``, as autovacuum would have left it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import psycopg

from bench import console_sql as sql
from bench.console_sql import AGENTS_PER_TEAM, FIRST_AGENT_ID
from bench.ingest import say

PASSWORD = "bench-console-password"  # a throwaway database's password
COORDINATOR, AGENT = "coord1", "agent01"
BIG_TABLES = ["customer", "identity", "conversation", "message", "reply", "event"]
TEAMS = [("sales", "فروش"), ("billing", "صورتحساب"), ("support", "پشتیبانی"),
         ("returns", "مرجوعی"), ("shipping", "ارسال"), ("accounts", "حساب‌ها"),
         ("technical", "فنی"), ("vip", "مشتریان ویژه"), ("complaints", "شکایات"),
         ("partners", "همکاران")]


@dataclass(frozen=True, slots=True)
class Seeded:
    conversations: int
    customers: int
    messages: int
    replies: int
    events: int
    open: int
    unassigned: int  # open, no person (the team's to pick up, or nobody's)
    no_team: int  # open, neither person nor team
    pending: int
    long_ids: list[int]
    seconds: float


def _people(cur: psycopg.Cursor[Any], now: datetime) -> None:
    from kartabl.passwords import hash_password

    digest = hash_password(PASSWORD)  # one argon2 hash for everyone: it is slow on purpose
    people: list[tuple[int, str, str, str]] = [(1, "admin", "مدیر", "admin")]
    people += [(1 + k, f"coord{k}", f"هماهنگ‌کننده {k}", "coordinator") for k in range(1, 6)]
    members: list[tuple[int, int]] = []
    for j in range(len(TEAMS) * AGENTS_PER_TEAM):
        pid, team = FIRST_AGENT_ID + j, 1 + j // AGENTS_PER_TEAM
        people.append((pid, f"agent{j + 1:02d}", f"کارشناس {j + 1}", "agent"))
        members.append((team, pid))
        if j % AGENTS_PER_TEAM == 0:  # also in the next team: a scope of two teams
            members.append((team % len(TEAMS) + 1, pid))
    cur.executemany(
        "INSERT INTO team (id, name, title, created_at) VALUES (%s, %s, %s, %s)",
        [(i + 1, name, title, now) for i, (name, title) in enumerate(TEAMS)],
    )
    cur.executemany(
        "INSERT INTO person (id, username, display_name, email, role, password_hash, available,"
        " capacity, locale, can_merge, active, created_at)"
        " VALUES (%s, %s, %s, NULL, %s, %s, true, 1000000, 'fa', false, true, %s)",
        [(pid, user, display, role, digest, now) for pid, user, display, role in people],
    )
    cur.executemany("INSERT INTO team_member (team_id, person_id) VALUES (%s, %s)", members)


def _drop_secondary_indexes(cur: psycopg.Cursor[Any]) -> list[str]:
    """Drop the big tables' unique constraints and plain indexes (not the primary keys);
    returns the statements that recreate them, read from the catalog."""
    restore: list[str] = []
    for name, table, definition in cur.execute(
        "SELECT conname, conrelid::regclass::text, pg_get_constraintdef(oid) FROM pg_constraint"
        " WHERE contype = 'u' AND conrelid::regclass::text = ANY(%s)", [BIG_TABLES]
    ).fetchall():
        restore.append(f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}')
        cur.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
    for name, definition in cur.execute(
        "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public'"
        " AND tablename = ANY(%s) AND indexname NOT IN (SELECT conname FROM pg_constraint)",
        [BIG_TABLES],
    ).fetchall():
        restore.append(str(definition))
        cur.execute(f'DROP INDEX "{name}"')
    return restore


def _index_definitions(cur: psycopg.Cursor[Any]) -> list[str]:
    return sorted(str(d) for (d,) in cur.execute(
        "SELECT indexdef FROM pg_indexes WHERE schemaname = 'public' ORDER BY indexname"))


def seed(url: str, n: int, *, seed_value: float = 0.42,
         progress: Callable[[str], None] | None = None) -> Seeded:
    """Load ``n`` conversations (and everything around them) into the migrated, empty
    database at ``url``. ``progress`` is told each phase as it starts."""
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    now = datetime.now(UTC).replace(tzinfo=None)  # the schema stores naive UTC
    params = {"n": n, "c": max(1, n * 3 // 10), "now": now,
              "long_step": max(2, n // max(10, n // 3333))}
    phases: list[tuple[str, list[str]]] = [
        ("customers and identities", sql.customers_sql()),
        ("conversation plan", [sql.plan_sql()]),
        ("conversations", [sql.conversations_sql()]),
        ("replies", [sql.replies_sql()]),
        ("messages", [sql.messages_sql()]),
        ("events", sql.events_sql()),
    ]
    started = time.perf_counter()
    with psycopg.connect(url, autocommit=True) as conn, Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), TextColumn("{task.completed}/"
        "{task.total}"), TimeElapsedColumn(), console=Console(stderr=True), transient=True,
    ) as bar:
        cur = conn.cursor()
        task = bar.add_task("seeding", total=len(phases) + 3)
        # For this loading session only: no fsync wait per statement, room to sort in memory,
        # and no foreign-key trigger per row (the generated rows are consistent).
        cur.execute("SET synchronous_commit = off")
        cur.execute("SET work_mem = '256MB'")
        cur.execute("SET maintenance_work_mem = '512MB'")
        cur.execute("SET session_replication_role = replica")
        cur.execute("SELECT setseed(%s)", [seed_value])
        schema_before = _index_definitions(cur)
        restore = _drop_secondary_indexes(cur)
        with conn.transaction():
            _people(cur, now)
        for name, statements in phases:
            bar.update(task, description=name)
            if progress:
                progress(name)
            t0 = time.perf_counter()
            for statement in statements:
                cur.execute(statement, params)
            bar.advance(task)
            say(f"  {name}: {time.perf_counter() - t0:.1f} s")
        bar.update(task, description="indexes and constraints")
        t0 = time.perf_counter()
        for statement in restore:
            cur.execute(statement)
        if _index_definitions(cur) != schema_before:
            raise SystemExit("seeding: the recreated indexes differ from the migrated schema")
        bar.advance(task)
        say(f"  indexes and constraints ({len(restore)}): {time.perf_counter() - t0:.1f} s")
        bar.update(task, description="sequences and ANALYZE")
        t0 = time.perf_counter()
        for table in [*BIG_TABLES, "person", "team"]:
            cur.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'),"
                        f" (SELECT max(id) FROM {table}))")
        cur.execute("VACUUM ANALYZE")  # visibility map too: index-only scans as in production
        bar.advance(task)
        say(f"  VACUUM ANALYZE: {time.perf_counter() - t0:.1f} s")
        counts = cur.execute(
            """SELECT (SELECT count(*) FROM conversation), (SELECT count(*) FROM customer),
                      (SELECT count(*) FROM message), (SELECT count(*) FROM reply),
                      (SELECT count(*) FROM event),
                      (SELECT count(*) FROM conversation WHERE status = 'open'),
                      (SELECT count(*) FROM conversation WHERE status = 'open'
                         AND assignee_id IS NULL),
                      (SELECT count(*) FROM conversation WHERE status = 'open'
                         AND assignee_id IS NULL AND team_id IS NULL),
                      (SELECT count(*) FROM reply WHERE state = 'pending_approval')"""
        ).fetchone()
        long_ids = [int(i) for (i,) in cur.execute(
            "SELECT id FROM conv_plan WHERE is_long ORDER BY id").fetchall()]
        bar.advance(task)
    assert counts is not None
    c = [int(v) for v in counts]
    return Seeded(c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7], c[8], long_ids,
                  time.perf_counter() - started)
