"""``python -m bench.webhooks`` end to end, small: the real ``kartabl web`` on PostgreSQL and
Redis (skipped with a reason when they are not reachable, required in CI), its line parsed."""

from __future__ import annotations

import os
import random
import re
import subprocess
import sys
from pathlib import Path

import pytest
import redis

from bench.webhooks import pct
from bench.webhooks_load import Req, plan_with_retries
from tests.conftest import PG_ADMIN, REDIS_URL

ROOT = Path(__file__).resolve().parents[2]
LINE = re.compile(r"^webhook_reqs_per_s=([\d.]+) p50_ms=([\d.]+) p99_ms=([\d.]+) "
                  r"committed=(\d+) expected=(\d+)$")


@pytest.mark.fleet
def test_the_bench_commits_one_message_per_distinct_webhook(
    pg_url: str, redis_client: redis.Redis
) -> None:
    # Given PostgreSQL and Redis (the fixtures skip, or fail in CI, when they are missing)
    env = {**os.environ, "KARTABL_BENCH_PG": PG_ADMIN, "KARTABL_BENCH_REDIS": REDIS_URL}
    # When the bench sends 60 requests (6 of them retries) at concurrency 4
    run = subprocess.run(
        [sys.executable, "-m", "bench.webhooks", "--requests", "60", "--concurrency", "4"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=90,
    )
    # Then it succeeds, and its last stdout line says every distinct message was committed
    assert run.returncode == 0, run.stderr[-3000:]
    match = LINE.match(run.stdout.strip().splitlines()[-1])
    assert match, run.stdout
    rate, p50, p99 = (float(match[i]) for i in (1, 2, 3))
    committed, expected = int(match[4]), int(match[5])
    assert rate > 0 and 0 < p50 <= p99
    assert committed == expected == 60 - 6 + 2 * 4  # the warm-up's 8 are messages too
    assert "non-200 answers: 0" in run.stderr


def test_retries_come_after_the_first_answers_and_percentiles_are_observed() -> None:
    originals = [Req("/x", b"", {}, ("sms", f"kv:{i}")) for i in range(100)]
    plan = plan_with_retries(originals, 10, 4, random.Random(1))
    assert len(plan) == 110 and plan.count(None) == 10
    assert None not in plan[:16]  # 4 × concurrency originals first, so some are answered
    assert [r for r in plan if r is not None] == originals
    assert pct([5.0, 1.0, 3.0], 0.5) == 3.0 and pct([float(i) for i in range(1, 101)], 0.99) == 99
