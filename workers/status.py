"""What is waiting, and where: for ``kartabl status`` and the web's ``/readyz``.

Queue figures come from the broker; backlog figures come from the database, which is the
source of truth (a message can be unrouted with an empty queue: that is the sweep's job).

On Redis, per queue:

- ``ready``: ``LLEN <ns>:<queue>``, waiting for a worker;
- ``in_flight``: fetched by a worker (running or prefetched) but not acked yet, i.e. the
  queue's message hash minus the ready list;
- ``delayed``: retries and delayed sends waiting for their eta (``<ns>:<queue>.DQ.msgs``;
  the DQ list alone would miss the ones workers have prefetched).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import dramatiq
from dramatiq.brokers.redis import RedisBroker
from dramatiq.brokers.stub import StubBroker
from dramatiq.common import dq_name
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from channels import health
from channels.email.state import failing_mailboxes, quarantined_count
from config.settings import Settings
from kartabl.models import Direction, Message, Reply, ReplyState, utcnow
from workers.broker import queue_names
from workers.deadletters import count_dead_letters


def queue_depths(broker: dramatiq.Broker) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    if isinstance(broker, RedisBroker):
        ns, client = broker.namespace, broker.client
        for q in queue_names(broker):
            pipe = client.pipeline(transaction=False)
            pipe.llen(f"{ns}:{q}")
            pipe.hlen(f"{ns}:{q}.msgs")
            pipe.hlen(f"{ns}:{dq_name(q)}.msgs")
            ready, stored, delayed = (int(x) for x in pipe.execute())
            out[q] = {"ready": ready, "in_flight": max(stored - ready, 0), "delayed": delayed}
    elif isinstance(broker, StubBroker):
        for q in queue_names(broker):
            main, delay = broker.queues[q], broker.queues[dq_name(q)]
            ready = main.qsize()
            out[q] = {
                "ready": ready,
                "in_flight": max(main.unfinished_tasks - ready, 0),
                "delayed": delay.unfinished_tasks,
            }
    else:
        raise TypeError(f"queue status is not supported on {type(broker).__name__}")
    return out


def backlog(session: Session, settings: Settings) -> dict[str, int]:
    s = settings

    def count(*where: Any) -> int:
        return int(session.scalar(select(func.count()).where(*where)) or 0)

    stale = utcnow() - timedelta(seconds=s.sending_stale_s)
    return {
        "unrouted": count(Message.direction == Direction.IN, Message.routed_at.is_(None)),
        "unsent": count(Reply.state == ReplyState.APPROVED),
        "sending": count(Reply.state == ReplyState.SENDING),
        "sending_stale": count(Reply.state == ReplyState.SENDING, Reply.sending_at < stale),
        # Bad mail kept aside and not re-imported yet (`kartabl email quarantine`).
        "quarantined": quarantined_count(session),
    }


def queue_status(
    broker: dramatiq.Broker, session: Session, settings: Settings
) -> dict[str, Any]:
    """Queue depths, database backlog and dead letters in one dict (JSON-ready)::

        {"broker": "redis", "queues": {"inbound": {"ready": 0, "in_flight": 2, "delayed": 0},
         ...}, "unrouted": 2, "unsent": 0, "sending": 0, "sending_stale": 0, "quarantined": 0,
         "dead_letters": 0, "mailboxes_failing": [], "pollers_failing": []}

    Raises the broker's or the database's error when either is unreachable (/readyz turns
    that into a 503).
    """
    return {
        "broker": "redis" if isinstance(broker, RedisBroker) else "stub",
        "queues": queue_depths(broker),
        **backlog(session, settings),
        "dead_letters": count_dead_letters(broker),
        # IMAP mailboxes in an outage: [{"name", "failing_since", "last_error"}].
        "mailboxes_failing": failing_mailboxes(session),
        # Every polled source in an outage (mailboxes, bots, SMS lines), by the runner.
        "pollers_failing": health.failing(session),
    }
