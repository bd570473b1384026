"""The presence port (kartabl/presence.py), one contract over both stores: this process's
memory (the embedded mode) and the broker's Redis (the fleet, workers/presence.py)."""

from __future__ import annotations

import queue
import time
import uuid
from collections.abc import Iterator

import pytest
import redis

from kartabl.presence import LocalPresence, Presence, State
from tests.conftest import REDIS_URL
from workers.presence import RedisPresence

EXPIRY = 45.0


@pytest.fixture(params=["local", "redis"])
def store(request: pytest.FixtureRequest) -> Iterator[Presence]:
    if request.param == "local":
        yield LocalPresence()
        return
    client = request.getfixturevalue("redis_client")
    ns = f"kt-presence-{uuid.uuid4().hex[:8]}"
    yield RedisPresence(REDIS_URL, ns)
    for key in client.scan_iter(f"{ns}:*"):
        client.delete(key)


def test_a_beat_tells_whether_the_others_would_see_a_change(store: Presence) -> None:
    now = 1_000_000.0
    assert store.beat(7, 1, State.VIEWING, now=now, expiry_s=EXPIRY)  # someone new
    assert not store.beat(7, 1, State.VIEWING, now=now + 15, expiry_s=EXPIRY)  # the same
    assert store.beat(7, 1, State.DRAFTING, now=now + 20, expiry_s=EXPIRY)  # another state
    assert not store.beat(7, 1, State.DRAFTING, now=now + 35, expiry_s=EXPIRY)
    # back after a gap longer than the expiry: new again to the others
    assert store.beat(7, 1, State.DRAFTING, now=now + 100, expiry_s=EXPIRY)


def test_drafting_keeps_its_start_while_it_goes_on(store: Presence) -> None:
    now = 2_000_000.0
    store.beat(7, 1, State.DRAFTING, now=now, expiry_s=EXPIRY)
    store.beat(7, 1, State.DRAFTING, now=now + 15, expiry_s=EXPIRY)
    [entry] = store.present(7, now=now + 16, expiry_s=EXPIRY)
    assert (entry.state, entry.seen_at, entry.drafting_since) == (
        State.DRAFTING, now + 15, now)
    store.beat(7, 1, State.VIEWING, now=now + 30, expiry_s=EXPIRY)
    [entry] = store.present(7, now=now + 31, expiry_s=EXPIRY)
    assert (entry.state, entry.drafting_since) == (State.VIEWING, None)
    store.beat(7, 1, State.DRAFTING, now=now + 40, expiry_s=EXPIRY)  # a new start
    assert store.present(7, now=now + 41, expiry_s=EXPIRY)[0].drafting_since == now + 40


def test_stale_entries_expire_and_rooms_are_apart(store: Presence) -> None:
    now = 3_000_000.0
    store.beat(7, 1, State.VIEWING, now=now, expiry_s=EXPIRY)  # a laptop closed after this
    store.beat(7, 2, State.DRAFTING, now=now + 40, expiry_s=EXPIRY)
    store.beat(8, 3, State.VIEWING, now=now + 40, expiry_s=EXPIRY)
    assert [e.person_id for e in store.present(7, now=now + 44, expiry_s=EXPIRY)] == [1, 2]
    assert [e.person_id for e in store.present(7, now=now + 46, expiry_s=EXPIRY)] == [2]
    # dropped for good, not only hidden: a later read with a longer expiry has it no more
    assert [e.person_id for e in store.present(7, now=now + 46, expiry_s=1e9)] == [2]
    assert [e.person_id for e in store.present(8, now=now + 46, expiry_s=EXPIRY)] == [3]


def test_leave_forgets_at_once(store: Presence) -> None:
    now = 4_000_000.0
    store.beat(7, 1, State.VIEWING, now=now, expiry_s=EXPIRY)
    assert store.leave(7, 1)
    assert not store.leave(7, 1)
    assert store.present(7, now=now, expiry_s=EXPIRY) == []


def test_a_published_change_reaches_every_listener(store: Presence) -> None:
    got: queue.Queue[tuple[int, int]] = queue.Queue()
    stop = store.listen(lambda c, p: got.put((c, p)))
    try:
        # A Redis subscription is up a moment after listen(): publish until it is heard.
        deadline = time.monotonic() + 5
        while got.empty() and time.monotonic() < deadline:
            store.publish(7, 1)
            time.sleep(0.1)
        assert got.get(timeout=1) == (7, 1)
    finally:
        stop()


def test_the_redis_hash_of_a_room_expires_by_itself(redis_client: redis.Redis) -> None:
    ns = f"kt-presence-{uuid.uuid4().hex[:8]}"
    store = RedisPresence(REDIS_URL, ns)
    store.beat(7, 1, State.VIEWING, now=time.time(), expiry_s=EXPIRY)
    ttl = redis_client.ttl(f"{ns}:presence:7")
    assert 0 < int(ttl) <= 2 * EXPIRY  # type: ignore[arg-type]
    redis_client.delete(f"{ns}:presence:7")
