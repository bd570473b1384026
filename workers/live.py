"""The live port's fleet transport (:mod:`kartabl.live`): a wake is one ``PUBLISH`` on the
broker's Redis, on ``<KARTABL_REDIS_NAMESPACE>:live``; every web process subscribes.

Pub/sub delivers at most once and only to who is connected: that is enough, since a wake
says only "look again" and the events are read from the database. After a lost connection
the listener reconnects and wakes its process once, for whatever was published meanwhile.
"""

from __future__ import annotations

import logging
import threading

import redis

from kartabl.live import OnWake, Stop

log = logging.getLogger(__name__)

RECONNECT_S = 1.0  # between attempts while Redis is away


class RedisTransport:
    def __init__(self, url: str, namespace: str) -> None:
        self.url = url
        self.channel = f"{namespace}:live"
        # One connection for publishing, made when first used (worker processes fork).
        self._client: redis.Redis | None = None

    def __repr__(self) -> str:
        return f"RedisTransport({self.channel!r})"

    def publish(self) -> None:
        if self._client is None:
            self._client = redis.Redis.from_url(self.url, socket_connect_timeout=2,
                                                socket_timeout=2)
        self._client.publish(self.channel, b"1")

    def listen(self, on_wake: OnWake) -> Stop:
        stopped = threading.Event()
        thread = threading.Thread(target=self._listen, args=(on_wake, stopped),
                                  name="live-redis", daemon=True)
        thread.start()

        def stop() -> None:
            stopped.set()
            thread.join(timeout=5)

        return stop

    def _listen(self, on_wake: OnWake, stopped: threading.Event) -> None:
        while not stopped.is_set():
            client = redis.Redis.from_url(self.url, socket_connect_timeout=2)
            pubsub = client.pubsub(ignore_subscribe_messages=True)
            try:
                pubsub.subscribe(self.channel)
                on_wake()  # subscribed: whatever was published before is in the database
                while not stopped.is_set():
                    # A timeout, not listen(): the thread must notice stop() in time.
                    if pubsub.get_message(timeout=0.5) is not None:
                        on_wake()
            except redis.RedisError:
                log.warning("the live channel's Redis is unreachable; retrying", exc_info=True)
                stopped.wait(RECONNECT_S)
            finally:
                pubsub.close()
                client.close()
