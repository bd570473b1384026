"""``python -m bench.search`` end to end, small: 2,000 conversations seeded into PostgreSQL,
the index built, the real ``kartabl web`` on Redis, a few searches of each kind per role,
the line parsed. The bench itself fails on an answer that is not 200 or shows no hit."""

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
LINE = re.compile(
    r"^search_common_p95_ms=([\d.]+) search_english_p95_ms=([\d.]+) "
    r"search_rare_p95_ms=([\d.]+) search_phone_p95_ms=([\d.]+) agent_common_p95_ms=([\d.]+) "
    r"agent_english_p95_ms=([\d.]+) agent_rare_p95_ms=([\d.]+) agent_phone_p95_ms=([\d.]+) "
    r"conversations=(\d+) docs=(\d+) build_s=(\d+) index_mb=(\d+)$"
)


@pytest.mark.fleet
def test_the_search_bench_finds_every_kind_for_both_roles(
    pg_url: str, redis_client: redis.Redis
) -> None:
    env = {**os.environ, "KARTABL_BENCH_PG": PG_ADMIN, "KARTABL_BENCH_REDIS": REDIS_URL}
    run = subprocess.run(
        [sys.executable, "-m", "bench.search", "--n", "2000", "--requests", "4"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=240,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert "every answer 200 with a hit" in run.stderr
    match = LINE.match(run.stdout.strip().splitlines()[-1])
    assert match, run.stdout
    assert all(float(match[i]) > 0 for i in range(1, 9))
    assert int(match[9]) == 2000
    # every inbound message and sent reply of the seed is a text of the index
    assert int(match[10]) > 2 * 2000
    assert "index built in" in run.stderr
