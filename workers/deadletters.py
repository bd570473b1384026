"""List and requeue dead-lettered messages.

dramatiq has no API for this (and dramatiq-dashboard pins dramatiq<2). On Redis a dead
letter lives in two keys per queue: ``<ns>:<queue>.XQ``, a sorted set of redis message ids
scored by the time they died, and ``<ns>:<queue>.XQ.msgs``, a hash of id -> encoded message.
They expire after the broker's ``dead_message_ttl`` (7 days). The stub broker keeps them in
``broker.dead_letters_by_queue``.

Requeueing enqueues first and deletes second: a crash in between leaves a duplicate, which
the idempotent actors absorb, never a loss.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import dramatiq
from dramatiq.broker import MessageProxy
from dramatiq.brokers.redis import RedisBroker
from dramatiq.brokers.stub import StubBroker
from dramatiq.common import q_name
from dramatiq.middleware import Middleware

log = logging.getLogger(__name__)

ALL = "all"
# Options that belong to the failed delivery, not to the message: a requeued message starts
# afresh (new redis id, retry budget restored, no stale eta that would park it on a DQ).
_STRIP = ("redis_message_id", "retries", "traceback", "eta", "error", "requeue_timestamp")
_ERROR_CHARS = 500


@dataclass(frozen=True, slots=True)
class DeadLetter:
    # What requeue() takes: the Redis message id (unique per enqueue, so a message retried
    # and dead twice shows twice); on the stub broker, dramatiq's message id.
    message_id: str
    queue: str
    actor: str
    args: tuple[Any, ...]
    failed_at: datetime | None
    error: str  # last line of the recorded error, "" when none was recorded


class DeadLetterErrors(Middleware):
    """Keep the final error with a Redis dead letter.

    The Redis ``nack`` moves the message *as last enqueued* to the XQ, so it carries at best
    the previous attempt's traceback and nothing at all for a ``throws=`` failure. After the
    nack we overwrite the XQ copy with the message as it is now plus an ``error`` option.
    """

    def after_nack(self, broker: dramatiq.Broker, message: MessageProxy) -> None:
        if not isinstance(broker, RedisBroker):
            return
        exc = message._exception
        error = f"{type(exc).__name__}: {exc}" if exc is not None else "failed"
        rid = message.options.get("redis_message_id")
        key = f"{broker.namespace}:{q_name(message.queue_name)}.XQ.msgs"
        if rid is None or not broker.client.hexists(key, rid):
            return
        updated = message._message.copy(options={"error": error[:_ERROR_CHARS]})
        broker.client.hset(key, rid, updated.encode())


def _redis_queues(broker: RedisBroker) -> list[str]:
    # Scan rather than trust the declared queues: a dead letter may belong to a queue this
    # process does not declare (an old actor, a test actor, a renamed queue).
    ns = broker.namespace
    pattern = "".join(f"[{c}]" if c in "*?[]\\" else c for c in ns) + ":*.XQ"
    names = {
        (k.decode() if isinstance(k, bytes) else k)[len(ns) + 1 : -3]
        for k in broker.client.scan_iter(match=pattern, count=500)
    }
    return sorted(names | {q for q in broker.get_declared_queues() if not q.endswith(".DQ")})


def _summary(msg: dramatiq.Message[Any], exc: BaseException | None = None) -> str:
    if exc is not None:
        return f"{type(exc).__name__}: {exc}"[:_ERROR_CHARS]
    text = msg.options.get("error") or msg.options.get("traceback") or ""
    lines = [ln for ln in str(text).strip().splitlines() if ln.strip()]
    return lines[-1][:_ERROR_CHARS] if lines else ""


def _iter_redis(broker: RedisBroker) -> Iterator[tuple[str, float, dramatiq.Message[Any]]]:
    ns = broker.namespace
    for queue in _redis_queues(broker):
        members = broker.client.zrange(f"{ns}:{queue}.XQ", 0, -1, withscores=True)
        if not members:
            continue
        ids = [m.decode() if isinstance(m, bytes) else m for m, _ in members]
        datas = broker.client.hmget(f"{ns}:{queue}.XQ.msgs", ids)
        for rid, (_, score), data in zip(ids, members, datas, strict=True):
            if data is not None:  # expired between the two reads
                yield rid, score, dramatiq.Message.decode(data)


def list_dead_letters(broker: dramatiq.Broker) -> list[DeadLetter]:
    """Every dead letter of every queue, oldest first."""
    out: list[DeadLetter] = []
    if isinstance(broker, RedisBroker):
        for rid, score, msg in _iter_redis(broker):
            out.append(DeadLetter(
                message_id=rid, queue=q_name(msg.queue_name), actor=msg.actor_name,
                args=tuple(msg.args), failed_at=datetime.fromtimestamp(score / 1000, UTC),
                error=_summary(msg),
            ))
        out.sort(key=lambda d: (d.failed_at or datetime.min.replace(tzinfo=UTC), d.message_id))
    elif isinstance(broker, StubBroker):
        for queue, proxies in sorted(broker.dead_letters_by_queue.items()):
            for proxy in proxies:
                out.append(DeadLetter(
                    message_id=proxy.message_id, queue=q_name(queue), actor=proxy.actor_name,
                    args=tuple(proxy.args), failed_at=None,
                    error=_summary(proxy._message, proxy._exception),
                ))
    else:
        raise TypeError(f"dead letters are not supported on {type(broker).__name__}")
    return out


def _fresh(msg: dramatiq.Message[Any]) -> dramatiq.Message[Any]:
    options = {k: v for k, v in msg.options.items() if k not in _STRIP}
    return dataclasses.replace(msg, queue_name=q_name(msg.queue_name), options=options)


def requeue(broker: dramatiq.Broker, which: str | None) -> int:
    """Put dead letters back on their queues: one by id, or every one with ``None`` (or
    ``"all"``). Returns how many were requeued (0 when the id is unknown)."""
    which = which or ALL
    count = 0
    if isinstance(broker, RedisBroker):
        ns = broker.namespace
        for rid, _, msg in list(_iter_redis(broker)):
            if which not in (ALL, rid):
                continue
            queue = q_name(msg.queue_name)
            broker.enqueue(_fresh(msg))
            pipe = broker.client.pipeline()
            pipe.zrem(f"{ns}:{queue}.XQ", rid)
            pipe.hdel(f"{ns}:{queue}.XQ.msgs", rid)
            pipe.execute()
            count += 1
    elif isinstance(broker, StubBroker):
        for proxies in broker.dead_letters_by_queue.values():
            for proxy in list(proxies):
                if which not in (ALL, proxy.message_id):
                    continue
                broker.enqueue(_fresh(proxy._message))
                proxies.remove(proxy)
                count += 1
    else:
        raise TypeError(f"dead letters are not supported on {type(broker).__name__}")
    log.info("requeued dead letters", extra={"which": which, "count": count})
    return count


def count_dead_letters(broker: dramatiq.Broker) -> int:
    """How many dead letters wait, without decoding them."""
    if isinstance(broker, RedisBroker):
        return sum(
            int(broker.client.zcard(f"{broker.namespace}:{q}.XQ")) for q in _redis_queues(broker)
        )
    if isinstance(broker, StubBroker):
        return len(broker.dead_letters)
    raise TypeError(f"dead letters are not supported on {type(broker).__name__}")
