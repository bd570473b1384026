"""The fleet: PostgreSQL, Redis and real ``dramatiq`` worker processes.

Skipped with a reason when PostgreSQL or Redis is unreachable (required in CI, see
tests/conftest.py). Each test has its own database contents and Redis namespace, and kills
every worker it started.
"""

from __future__ import annotations

import dramatiq
import pytest

from kartabl import ingest, tasks
from kartabl.errors import InputError
from kartabl.messages import InboundMessage
from tests.workers.worker_helpers import (
    conversations_per_customer,
    needs_router,
    routed_events,
    unrouted,
    wait_until,
)
from workers.broker import setup_broker
from workers.deadletters import count_dead_letters, list_dead_letters, requeue
from workers.status import queue_depths, queue_status
from workers.sweeps import sweep_once

# PostgreSQL only: the fleet never runs on SQLite.
pytestmark = [pytest.mark.fleet, pytest.mark.parametrize("db_url", ["postgres"], indirect=True)]

# Three customers writing twice each on SMS.
SENDERS = ["+989121230001", "+989121230002", "+989121230003"]


def _inject(db, prefix: str) -> list[int]:
    msgs = [
        InboundMessage(channel="sms", external_id=f"{prefix}-{i}", sender=SENDERS[i % 3],
                       text=f"سلام {i}")
        for i in range(6)
    ]
    with db() as session:
        return [s.message_id for s in ingest.store_many(session, msgs)]


def _drained(client, ns: str) -> bool:
    # Every message of the queue acked: none waiting, none held by any worker (alive or not).
    return client.hlen(f"{ns}:inbound.msgs") == 0 and not list(
        client.scan_iter(match=f"{ns}:__acks__.*.inbound")
    )


def test_a_real_worker_routes_injected_messages(fleet_settings, db, worker_procs):
    needs_router()
    setup_broker(fleet_settings)
    # Given a dramatiq worker process on Redis
    proc = worker_procs.spawn()
    # When six messages from three customers are stored
    ids = _inject(db, "fleet")
    # Then every one is routed exactly once, one conversation per customer
    wait_until(lambda: unrouted(db) == 0, 30, "routing\n" + worker_procs.logs())
    assert routed_events(db) == {i: 1 for i in ids}
    assert sorted(conversations_per_customer(db).values()) == [1, 1, 1]
    # And a SIGTERM to the master stops it cleanly
    assert worker_procs.stop(proc) == 0, worker_procs.logs()


def test_worker_killed_mid_route_loses_nothing_and_routes_once(
    fleet_settings, db, worker_procs, redis_client, tmp_path
):
    needs_router()
    ns = fleet_settings.redis_namespace
    setup_broker(fleet_settings)
    marks = tmp_path / "marks"
    marks.mkdir()
    # Given a worker whose routes stall just before commit (rows flushed, not committed)
    doomed = worker_procs.spawn("slow_route_hook", env={
        "KARTABL_TEST_ROUTE_DELAY_S": "60", "KARTABL_TEST_MARK_DIR": str(marks),
    })
    ids = _inject(db, "kill")
    wait_until(lambda: len(list(marks.iterdir())) >= 1, 30, "a route to start\n"
               + worker_procs.logs())

    # When the whole worker (master and child) is SIGKILLed mid-route
    worker_procs.kill(doomed)

    # Then nothing was committed, and Redis holds the fetched messages in a dead worker's
    # ack set, where dramatiq alone would leave them until maintenance notices
    assert unrouted(db) == 6
    assert list(redis_client.scan_iter(match=f"{ns}:__acks__.*.inbound"))

    # When the sweep runs, and a fresh worker starts; it also does Redis maintenance on every
    # command and presumes a worker dead after 5 s, so the killed worker's messages are
    # redelivered for real during this test
    report = sweep_once(db, fleet_settings.model_copy(update={"sweep_grace_s": 0}))
    assert report.messages == 6
    worker_procs.spawn(env={
        "KARTABL_REDIS_HEARTBEAT_TIMEOUT_MS": "5000",
        "KARTABL_REDIS_MAINTENANCE_CHANCE": "1000000",
    })

    # Then every message is routed, exactly once, one conversation per customer
    wait_until(lambda: unrouted(db) == 0, 30, "the sweep's routes\n" + worker_procs.logs())
    # And once Redis has redelivered the killed worker's messages too, still exactly once
    wait_until(lambda: _drained(redis_client, ns), 30, "the redelivery\n" + worker_procs.logs())
    assert routed_events(db) == {i: 1 for i in ids}
    assert sorted(conversations_per_customer(db).values()) == [1, 1, 1]

    # And any later redelivery is just as harmless
    for mid in ids:
        tasks.enqueue_now("route_messages", [mid])
    wait_until(lambda: _drained(redis_client, ns), 30, "the duplicates\n" + worker_procs.logs())
    assert routed_events(db) == {i: 1 for i in ids}
    assert sorted(conversations_per_customer(db).values()) == [1, 1, 1]


def test_dead_letters_are_listed_and_requeued(fleet_settings, db):
    broker = setup_broker(fleet_settings)

    def always_fails(n: int) -> None:
        raise ValueError(f"boom {n}")

    def refuses(n: int) -> None:
        raise InputError(f"bad input {n}")

    # Given an actor that always fails with no retries, and one whose error is permanent
    fails = dramatiq.actor(always_fails, broker=broker, queue_name="deadtest", max_retries=0)
    permanent = dramatiq.actor(refuses, broker=broker, queue_name="deadtest", max_retries=5,
                               throws=(InputError,))
    worker = dramatiq.Worker(broker, queues={"deadtest"}, worker_threads=1, worker_timeout=100)
    worker.start()
    try:
        # When each processes a message
        fails.send(7)
        permanent.send(8)
        wait_until(lambda: count_dead_letters(broker) == 2, 15, "two dead letters")
    finally:
        worker.stop()

    # Then both are listed, with their arguments and the error that killed them
    letters = {d.actor: d for d in list_dead_letters(broker)}
    assert letters["always_fails"].args == (7,)
    assert letters["always_fails"].queue == "deadtest"
    assert letters["always_fails"].error == "ValueError: boom 7"
    assert letters["always_fails"].failed_at is not None
    assert letters["refuses"].error == "InputError: bad input 8"

    # When one is requeued by id
    assert requeue(broker, letters["always_fails"].message_id) == 1
    # Then it is back on its queue, with a fresh retry budget, and no longer dead
    assert queue_depths(broker)["deadtest"]["ready"] == 1
    [data] = broker.client.hvals(f"{broker.namespace}:deadtest.msgs")
    options = dramatiq.Message.decode(data).options
    assert "retries" not in options and "traceback" not in options and "error" not in options
    assert [d.actor for d in list_dead_letters(broker)] == ["refuses"]
    # And "all" takes the rest; an unknown id changes nothing
    assert requeue(broker, "no-such-id") == 0
    assert requeue(broker, None) == 1
    assert count_dead_letters(broker) == 0
    assert queue_depths(broker)["deadtest"]["ready"] == 2


def test_status_reports_queue_depth_and_backlog(fleet_settings, db):
    broker = setup_broker(fleet_settings)
    # Given six stored messages and no worker running
    _inject(db, "status")
    # When the status is asked, once the routing window (KARTABL_ROUTE_COALESCE_MS) has
    # passed and the task left this process
    wait_until(lambda: queue_depths(broker)["inbound"]["ready"] > 0, 5, "the routing task")
    with db() as session:
        status = queue_status(broker, session, fleet_settings)
    # Then the queue holds them (one route_messages task: ingest enqueues per batch) and the
    # database counts them as unrouted
    assert status["broker"] == "redis"
    assert status["queues"]["inbound"] == {"ready": 1, "in_flight": 0, "delayed": 0}
    assert status["queues"]["outbound"] == {"ready": 0, "in_flight": 0, "delayed": 0}
    assert (status["unrouted"], status["unsent"], status["dead_letters"]) == (6, 0, 0)
