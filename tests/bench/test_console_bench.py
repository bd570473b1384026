"""``python -m bench.console`` end to end, small: 2,000 conversations seeded into PostgreSQL,
the real ``kartabl web`` on Redis (skipped with a reason when they are not reachable,
required in CI), a handful of pages per role, the line parsed. The bench itself fails on a
page that is not 200 or does not show its newest row / the conversation's customer."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import redis

from bench.console_seed import seed
from kartabl.migrate import upgrade
from tests.conftest import PG_ADMIN, REDIS_URL

ROOT = Path(__file__).resolve().parents[2]
LINE = re.compile(
    r"^console_triage_p95_ms=([\d.]+) console_conversation_p95_ms=([\d.]+) "
    r"console_long_conversation_p95_ms=([\d.]+) agent_triage_p95_ms=([\d.]+) "
    r"agent_conversation_p95_ms=([\d.]+) agent_long_conversation_p95_ms=([\d.]+) "
    r"conversations=(\d+) seed_s=(\d+)$"
)


@pytest.mark.fleet
def test_the_bench_serves_every_page_with_its_content(
    pg_url: str, redis_client: redis.Redis
) -> None:
    # Given PostgreSQL and Redis (the fixtures skip, or fail in CI, when they are missing)
    env = {**os.environ, "KARTABL_BENCH_PG": PG_ADMIN, "KARTABL_BENCH_REDIS": REDIS_URL}
    # When the bench seeds 2,000 conversations and loads 8 pages of each kind per role
    run = subprocess.run(
        [sys.executable, "-m", "bench.console", "--conversations", "2000", "--requests", "8"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=180,
    )
    # Then it succeeds: every answer was 200 and showed what it must
    assert run.returncode == 0, run.stderr[-3000:]
    assert "every answer 200 with the expected content" in run.stderr
    # and its last line gives the four p95s over the seeded conversations
    match = LINE.match(run.stdout.strip().splitlines()[-1])
    assert match, run.stdout
    assert all(float(match[i]) > 0 for i in range(1, 7))
    assert int(match[7]) == 2000
    assert "seeded in" in run.stderr and "kartabl_bench_console_" in run.stderr
    # and the database was dropped (no --keep)
    with psycopg.connect(PG_ADMIN) as c:
        left = c.execute("SELECT datname FROM pg_database WHERE datname = %s",
                         [_seeded_name(run.stderr)]).fetchall()
    assert left == []


def _seeded_name(stderr: str) -> str:
    match = re.search(r"into (kartabl_bench_console_[0-9a-f]+)", stderr)
    assert match, stderr[-2000:]
    return match[1]


@pytest.fixture
def empty_db(pg_url: str) -> Iterator[str]:
    """A migrated database of its own: the seed must not land in the suite's shared one."""
    name = f"kartabl_test_seed_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as c:
        c.execute(f'CREATE DATABASE "{name}"')
    url = PG_ADMIN.rsplit("/", 1)[0] + f"/{name}"
    try:
        upgrade(url)
        yield url
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True) as c:
            c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.mark.fleet
def test_the_seed_has_every_shape_the_pages_meet(empty_db: str) -> None:
    # Given a migrated, empty database; when 3,000 conversations are seeded
    s = seed(empty_db, 3000)
    # Then the counts hold together, and every shape a page meets is there
    assert s.conversations == 3000 and s.customers == 900
    assert 0.03 < s.open / s.conversations < 0.10
    assert s.unassigned > s.no_team > 0 and s.pending > 0 and len(s.long_ids) >= 3
    assert s.messages > 2 * s.conversations and s.events > s.messages
    with psycopg.connect(empty_db) as c:
        states = {st for (st,) in c.execute("SELECT DISTINCT state FROM reply")}
        # every conversation has its customer's identity on its channel
        orphans = c.execute(
            "SELECT count(*) FROM conversation c WHERE NOT EXISTS (SELECT 1 FROM identity i"
            " WHERE i.customer_id = c.customer_id AND i.kind ="
            " CASE c.channel WHEN 'sms' THEN 'phone' ELSE c.channel END)").fetchone()
        # a sent reply is an outbound message; and the ids follow time
        unsent = c.execute(
            "SELECT count(*) FROM reply r WHERE r.state IN ('sent', 'delivered') AND NOT EXISTS"
            " (SELECT 1 FROM message m WHERE m.external_id = r.idempotency_key"
            " AND m.direction = 'out')").fetchone()
        disorder = c.execute(
            "SELECT count(*) FROM (SELECT received_at < lag(received_at) OVER (ORDER BY id)"
            " AS back FROM message) m WHERE back").fetchone()
        open_last = c.execute(
            "SELECT count(*) FROM conversation WHERE last_message_at > now() AT TIME ZONE 'utc'"
        ).fetchone()
    assert states == {"draft", "pending_approval", "approved", "sending", "sent", "delivered",
                      "failed", "rejected"}
    assert orphans == (0,) and unsent == (0,) and disorder == (0,) and open_last == (0,)
