"""``make chaos`` in small: the fleet as deployed (web, worker, scheduler and the SMS poller
as separate OS processes, a redis-server of its own) takes inbound messages on every path
and sends replies on every channel through two rounds of PostgreSQL backend terminations and
provider faults; the counters are computed from the stand-ins and the database, and the
ones that must be zero are."""

from __future__ import annotations

import shutil

import psycopg
import pytest

from bench import chaos
from bench.chaos_env import PG_ADMIN, REDIS_SERVER
from tests.conftest import _unavailable

pytestmark = [pytest.mark.fleet, pytest.mark.xdist_group("fleet")]


def test_a_short_chaos_run_counts_and_loses_nothing() -> None:
    if shutil.which(REDIS_SERVER) is None:
        _unavailable("redis-server", FileNotFoundError(REDIS_SERVER))
    try:
        psycopg.connect(PG_ADMIN, connect_timeout=3).close()
    except psycopg.OperationalError as exc:
        _unavailable("PostgreSQL", exc)
    opts = chaos.Options(seconds=10, messages=60, replies=6, worker_kills=0,
                         redis_restarts=0, pg_rounds=2, min_in=60, min_out=3,
                         lines=("web", "worker", "scheduler", "sms"), worker_processes=1)

    result = chaos.run(opts)

    f, tally = result.figures, result.tally
    assert tally.pg_rounds == 2 and tally.pg_backends > 0, tally
    assert sum(tally.provider.values()) >= 2, tally
    # Every path delivered: what was sent is what was counted
    assert f.chaos_in >= 60 and len(result.sent.keys) == f.chaos_in
    assert {"telegram", "sms", "email"} <= set(result.sent.keys.values())
    assert (f.lost, f.duplicated, f.double_routed, f.unrouted) == (0, 0, 0, 0), f.details
    assert (f.double_sent, f.stuck) == (0, 0), f.details
    assert f.out >= 3 and f.out <= len(result.replies.approved), f.details
    assert 0 < f.worst_route_delay_s < 60
    assert result.ok, (result.shortfalls, f.details)
    assert f.line().startswith(f"chaos_in={f.chaos_in} lost=0 duplicated=0 double_routed=0 ")
