"""``python -m bench.live`` end to end, small: the real ``kartabl web`` on PostgreSQL and
Redis, 20 streams and 5 events; every stream gets every event, its line parsed."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import redis

from tests.conftest import PG_ADMIN, REDIS_URL

ROOT = Path(__file__).resolve().parents[2]
LINE = re.compile(r"^live_clients=(\d+) events=(\d+) p50_ms=([\d.]+) p99_ms=([\d.]+) "
                  r"max_ms=([\d.]+) delivered=(\d+) expected=(\d+)$")


@pytest.mark.fleet
def test_every_stream_gets_every_event(pg_url: str, redis_client: redis.Redis) -> None:
    env = {**os.environ, "KARTABL_BENCH_PG": PG_ADMIN, "KARTABL_BENCH_REDIS": REDIS_URL}
    run = subprocess.run(
        [sys.executable, "-m", "bench.live", "--clients", "20", "--events", "5"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    match = LINE.match(run.stdout.strip().splitlines()[-1])
    assert match, run.stdout
    clients, events, delivered, expected = (int(match[i]) for i in (1, 2, 6, 7))
    assert (clients, events) == (20, 5)
    assert delivered == expected == 100
    # Woken by Redis, not found by the process's own poll (set to ten minutes by the bench)
    assert float(match[5]) < 5_000
