"""Route one stored inbound message: recognise the customer, thread, assign, in ONE
transaction that is safe to run any number of times.

This is a batch of one: :func:`router.batch.route_batch` is the single implementation, and
its docstring states the guarantees (idempotence, lock order, automatic mail, rejected
senders). A message already routed, outbound, missing, or locked by a concurrent router
gives None.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.orm import Session

from config.routing import RoutingConfig
from router.batch import RouteOutcome, route_batch

__all__ = ["RouteOutcome", "route_message"]


def route_message(
    session: Session,
    message_id: int,
    *,
    routing: RoutingConfig,
    reopen_window: timedelta,
) -> RouteOutcome | None:
    """Route message ``message_id`` and commit. Returns None when there was nothing to do:
    already routed, outbound, no such message, or being routed right now by another
    transaction. Rolls back and re-raises on error."""
    outcomes = route_batch(session, [message_id], routing=routing, reopen_window=reopen_window)
    return outcomes[0] if outcomes else None
