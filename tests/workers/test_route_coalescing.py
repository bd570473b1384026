"""Routing enqueued in batches (workers/coalesce.py): ids committed within the window leave
as one ``route_messages`` task, a full buffer leaves at once, nothing buffered is lost at a
clean stop, and a failed send is left to the sweep without raising into the committer."""

from __future__ import annotations

import json
import threading
import time

import pytest

from kartabl import ingest
from kartabl.messages import InboundMessage
from tests.workers.worker_helpers import wait_until
from workers.broker import setup_broker
from workers.coalesce import Coalescer


class Sent:
    def __init__(self, fail: bool = False) -> None:
        self.batches: list[list[int]] = []
        self.fail = fail
        self.lock = threading.Lock()

    def __call__(self, ids: list[int]) -> None:
        if self.fail:
            raise ConnectionError("redis is down")
        with self.lock:
            self.batches.append(ids)


def test_ids_added_within_the_window_leave_as_one_batch_in_commit_order():
    sent = Sent()
    c = Coalescer(sent, window_s=0.2, max_ids=100)
    c.add(3)
    c.add([1, 2])
    c.add(7)
    assert sent.batches == []  # still inside the window
    wait_until(lambda: sent.batches, 5, "the window's batch")
    assert sent.batches == [[3, 1, 2, 7]]
    c.add(9)  # the next window is a batch of its own
    wait_until(lambda: len(sent.batches) == 2, 5, "the second batch")
    assert sent.batches[1] == [9]
    c.close()


def test_a_full_buffer_leaves_at_once_and_in_chunks():
    sent = Sent()
    c = Coalescer(sent, window_s=60, max_ids=3)  # a window that never ends in this test
    c.add([1, 2])
    assert sent.batches == []
    c.add([3, 4, 5, 6, 7])  # fills the buffer: sent at once, never more than max_ids a task
    assert sent.batches == [[1, 2, 3], [4, 5, 6], [7]]
    c.close()


def test_close_sends_what_is_buffered_and_later_adds_go_straight_out():
    sent = Sent()
    c = Coalescer(sent, window_s=60, max_ids=100)
    c.add([1, 2])
    c.close()
    assert sent.batches == [[1, 2]]
    c.add(5)  # after close (interpreter exit) no thread is left: sent at once
    assert sent.batches == [[1, 2], [5]]


def test_a_failed_send_is_logged_not_raised(caplog):
    c = Coalescer(Sent(fail=True), window_s=60, max_ids=2)
    c.add([1, 2])  # full: sent in the committer's thread, which must not see the error
    assert "the sweep will" in caplog.text
    c.close()


def test_the_window_and_the_buffer_are_validated():
    with pytest.raises(ValueError):
        Coalescer(Sent(), window_s=0, max_ids=1)
    with pytest.raises(ValueError):
        Coalescer(Sent(), window_s=1, max_ids=0)


@pytest.mark.fleet
@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
def test_commits_within_the_window_reach_redis_as_one_routing_task(
    fleet_settings, db, redis_client
):
    # Given the Redis broker with a 300 ms routing window (the default is 50 ms)
    setup_broker(fleet_settings.model_copy(update={"route_coalesce_ms": 300}))
    ns = fleet_settings.redis_namespace
    # When eight webhook-like commits land from four threads, one message each
    ids: list[int] = []

    def store(i: int) -> None:
        msg = InboundMessage(channel="sms", external_id=f"co-{i}", sender=f"+98912123{i:04d}",
                             text="سلام")
        with db() as session:
            ids.extend(s.message_id for s in ingest.store_many(session, [msg]))

    threads = [threading.Thread(target=store, args=(i,)) for i in range(8)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert time.monotonic() - t0 < 0.3, "the commits took longer than the window"
    # Then one route_messages task carries all eight ids
    wait_until(lambda: redis_client.hlen(f"{ns}:inbound.msgs") > 0, 5, "the routing task")
    time.sleep(0.4)  # nothing else follows
    tasks = [json.loads(raw) for raw in redis_client.hvals(f"{ns}:inbound.msgs")]
    assert [t["actor_name"] for t in tasks] == ["route_messages"]
    assert sorted(tasks[0]["args"][0]) == sorted(ids)
    assert len(ids) == 8


@pytest.mark.fleet
@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
def test_without_a_window_each_commit_is_its_own_task(fleet_settings, db, redis_client):
    setup_broker(fleet_settings.model_copy(update={"route_coalesce_ms": 0}))
    ns = fleet_settings.redis_namespace
    for i in range(3):
        msg = InboundMessage(channel="sms", external_id=f"one-{i}", sender="+989121230001",
                             text="سلام")
        with db() as session:
            ingest.store_many(session, [msg])
        # sent when the commit returns, before the next one
        assert redis_client.hlen(f"{ns}:inbound.msgs") == i + 1
