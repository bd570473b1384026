"""The actors. Each carries an id, opens a session, calls the core, and closes the session.

Import this module only after :func:`workers.broker.setup_broker` has made a broker current
(:mod:`workers.queues`; the dramatiq CLI does so when it is given ``boot.worker`` first).
The core modules are imported inside the actor bodies: a worker process pays for them on
first use, and this module stays importable by processes that only enqueue.

Retry policy, and why:

- The database is the source of truth and the sweep re-enqueues whatever is unfinished, so
  dramatiq's retries only need to bridge *short* troubles (a deadlock victim, a PostgreSQL
  failover, a provider's 429). Long retry chains would just duplicate the sweep.
- Errors that retrying cannot fix (bad input, an illegal workflow step, a permanently
  undeliverable reply) are ``throws=``: they fail at once, into the dead letters.
- The actors are idempotent (routing skips a routed message,
  ``dispatch_reply`` skips a reply it cannot claim), so a redelivery, a sweep re-enqueue or
  dramatiq's duplicated delayed messages (#431) are harmless.
"""

from __future__ import annotations

import logging

import dramatiq

from kartabl import db as kdb
from kartabl.errors import InputError, PermanentDeliveryError, RetryableDeliveryError, WorkflowError
from workers.queues import INBOUND, OUTBOUND, current_broker

log = logging.getLogger(__name__)

_broker = current_broker()
_PERMANENT = (InputError, WorkflowError, PermanentDeliveryError)
# About one batch transaction here (tens of ms): the holder of the customer has usually
# committed by then, and a message that finds it busy again only costs another short trip.
_BUSY_DELAY_MS = 50


# Routing is local work on our own database: retry quickly (1 s, 2 s, 4 s ... capped at 30 s)
# and give up after 5 attempts (about a minute); the sweep takes over after sweep_grace_s.
# A batch (what ingest and the sweep enqueue) is one transaction, so a failure retries the
# whole batch, whose messages routed meanwhile are skipped.
@dramatiq.actor(
    broker=_broker, queue_name=INBOUND, max_retries=5, min_backoff=1_000, max_backoff=30_000,
    throws=_PERMANENT,
)
def route_messages(message_ids: list[int]) -> None:
    from config.routing import get_routing
    from config.settings import get_settings
    from router.batch import route_batch

    def later(busy: list[int]) -> None:
        # Their customers were locked by another batch: come back once it has committed.
        route_messages.send_with_options(args=(busy,), delay=_BUSY_DELAY_MS)

    with kdb.session_factory()() as session:
        # The actor is the worker's edge: it reads the settings (cached) and hands them on.
        outcomes = route_batch(session, message_ids, routing=get_routing(),
                               reopen_window=get_settings().reopen_window, defer=later)
    log.debug("routed %d of %d messages", len(outcomes), len(message_ids))


# Sending waits on a provider: back off from 5 s to 10 min over 10 attempts (about 40 min
# in all), or exactly as long as the provider asked (retry_after_s). A reply whose retries
# run out is still 'approved' in the database, so the sweep offers it again later.
@dramatiq.actor(
    broker=_broker, queue_name=OUTBOUND, max_retries=10, min_backoff=5_000,
    max_backoff=600_000, throws=_PERMANENT,
)
def dispatch_reply(reply_id: int) -> None:
    from responders.dispatch import dispatch_reply as dispatch

    try:
        result = dispatch(kdb.session_factory(), reply_id)
    except RetryableDeliveryError as exc:
        if exc.retry_after_s is None:
            raise  # the Retries middleware applies the exponential backoff
        raise dramatiq.Retry(str(exc), delay=int(exc.retry_after_s * 1000)) from exc
    log.debug("reply %s: %s", reply_id, result)


# The benchmark's baseline: the cost of the queue alone, on the routing queue's path.
@dramatiq.actor(broker=_broker, queue_name=INBOUND, max_retries=0)
def noop() -> None:
    return None


# The registry of the tasks the core may enqueue (kartabl.tasks.TaskName), keyed by the
# actor's own name: derived, so a renamed actor cannot drift from it. The broker looks the
# core's task names up here, and checks at setup that every TaskName has its actor
# (tests/workers/test_task_registry.py checks it too).
TASKS: dict[str, dramatiq.Actor[..., None]] = {
    a.actor_name: a for a in (route_messages, dispatch_reply)
}
# Tasks whose payload is a list of ids: a process gathers its sends for a short window into
# one task (workers/coalesce.py) instead of one per commit.
BATCHED = frozenset({route_messages.actor_name})
ALL = (*TASKS.values(), noop)  # every actor, for binding to a (new) broker
