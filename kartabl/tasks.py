"""The queue port. The core says *what* should run next (route this message, dispatch this
reply) and ``workers/`` decides *how*: it installs the enqueuer when it sets up the broker.

Tasks carry ids (``route_messages`` a list of them), never objects, and are enqueued only
after the transaction that made the row visible has committed. If no queue is attached (a
CLI command, a unit test), nothing is lost: the sweep finds committed-but-unrouted messages
and approved-but-unsent replies.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Literal

from sqlalchemy.orm import Session

from kartabl.db import after_commit

log = logging.getLogger(__name__)

# The port's names, for the type checker; the actors are registered under them in
# workers.actors.TASKS (derived from the actors' names), checked to agree at broker setup.
TaskName = Literal["route_messages", "dispatch_reply"]
# A JSON-safe payload: one id, or a list of ids for the batch tasks.
Payload = int | list[int]
Enqueuer = Callable[[TaskName, Payload], None]

# Messages routed per ``route_messages`` task: one transaction each, so a failure retries at
# most this many, and a batch never holds its locks for long. A batch costs about seven
# queries whatever its size: routing 200 at a time instead of 100 was 35 % faster on one
# thread and lifted the bench's ingest rate by about a sixth, with no change to p99 at half
# rate (paced ingest commits far smaller batches). Channels commit few at a time anyway.
ROUTE_BATCH = 200

_enqueuer: Enqueuer | None = None


def set_enqueuer(fn: Enqueuer | None) -> None:
    global _enqueuer
    _enqueuer = fn


def enqueue_now(task: TaskName, obj_id: Payload) -> None:
    if _enqueuer is None:
        log.debug("no queue attached; %s(%s) is left to the sweep", task, obj_id)
        return
    _enqueuer(task, obj_id)


def enqueue_after_commit(session: Session, task: TaskName, obj_id: Payload) -> None:
    after_commit(session, lambda: enqueue_now(task, obj_id))
