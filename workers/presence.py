"""The presence port's fleet store (:mod:`kartabl.presence`): every web process sees the
same entries, on the broker's Redis.

Each conversation with someone on it is one hash, ``<KARTABL_REDIS_NAMESPACE>:presence:<id>``,
a field per person (``state|seen_at|drafting_since``); each beat renews the key's TTL, so
the hash of a conversation everyone left vanishes by itself, and a reader drops the fields
older than the expiry (one closed laptop among readers that keep beating). Changes are
published on ``<namespace>:presence`` as ``<conversation id>:<person id>``; like the live
wakes (:mod:`workers.live`) a lost message costs only latency: the pages see the state at
their next beat.

A beat reads the person's field and then writes it, without a transaction: only that
person's own tabs race on one field, and the worst outcome is a drafting start a beat late
or one extra or missing push.
"""

from __future__ import annotations

import logging
import threading

import redis

from kartabl.presence import Entry, OnChange, State, Stop, beaten, changed

log = logging.getLogger(__name__)

RECONNECT_S = 1.0  # between attempts while Redis is away


class RedisPresence:
    def __init__(self, url: str, namespace: str) -> None:
        self.url = url
        self.prefix = f"{namespace}:presence:"
        self.channel = f"{namespace}:presence"
        # One connection, made when first used (worker processes fork).
        self._client: redis.Redis | None = None

    def __repr__(self) -> str:
        return f"RedisPresence({self.channel!r})"

    def _redis(self) -> redis.Redis:
        if self._client is None:
            self._client = redis.Redis.from_url(self.url, socket_connect_timeout=2,
                                                socket_timeout=2, decode_responses=True)
        return self._client

    def beat(self, conversation_id: int, person_id: int, state: State, *, now: float,
             expiry_s: float) -> bool:
        r = self._redis()
        key = f"{self.prefix}{conversation_id}"
        raw = r.hget(key, str(person_id))
        old = Entry.decode(person_id, raw) if isinstance(raw, str) else None
        new = beaten(old, person_id, state, now, expiry_s)
        pipe = r.pipeline(transaction=True)
        pipe.hset(key, str(person_id), new.encode())
        pipe.expire(key, max(1, int(expiry_s * 2)))
        pipe.execute()
        return changed(old, new, now, expiry_s)

    def leave(self, conversation_id: int, person_id: int) -> bool:
        return bool(self._redis().hdel(f"{self.prefix}{conversation_id}", str(person_id)))

    def present(self, conversation_id: int, *, now: float, expiry_s: float) -> list[Entry]:
        r = self._redis()
        key = f"{self.prefix}{conversation_id}"
        fields: dict[str, str] = r.hgetall(key)  # type: ignore[assignment]  # decoded
        live: list[Entry] = []
        stale: list[str] = []
        for pid, text in fields.items():
            entry = Entry.decode(int(pid), text) if pid.isdigit() else None
            if entry is None or now - entry.seen_at > expiry_s:
                stale.append(pid)
            else:
                live.append(entry)
        if stale:
            r.hdel(key, *stale)
        return sorted(live, key=lambda e: e.seen_at)

    def publish(self, conversation_id: int, person_id: int) -> None:
        self._redis().publish(self.channel, f"{conversation_id}:{person_id}")

    def listen(self, on_change: OnChange) -> Stop:
        stopped = threading.Event()
        thread = threading.Thread(target=self._listen, args=(on_change, stopped),
                                  name="presence-redis", daemon=True)
        thread.start()

        def stop() -> None:
            stopped.set()
            thread.join(timeout=5)

        return stop

    def _listen(self, on_change: OnChange, stopped: threading.Event) -> None:
        while not stopped.is_set():
            client = redis.Redis.from_url(self.url, socket_connect_timeout=2,
                                          decode_responses=True)
            pubsub = client.pubsub(ignore_subscribe_messages=True)
            try:
                pubsub.subscribe(self.channel)
                while not stopped.is_set():
                    # A timeout, not listen(): the thread must notice stop() in time.
                    msg = pubsub.get_message(timeout=0.5)
                    if msg is None:
                        continue
                    cid, _, pid = str(msg.get("data", "")).partition(":")
                    if cid.isdigit() and pid.isdigit():
                        on_change(int(cid), int(pid))
            except redis.RedisError:
                log.warning("the presence channel's Redis is unreachable; retrying",
                            exc_info=True)
                stopped.wait(RECONNECT_S)
            finally:
                pubsub.close()
                client.close()
