"""Build the dramatiq broker from settings and plug it into the core.

``setup_broker`` is the one entry point. It

1. builds a :class:`StubBroker` (embedded mode) or a :class:`RedisBroker` (fleet) from
   :mod:`config.settings`, with Kartabl's middleware;
2. makes it the global broker (``dramatiq.set_broker``) *before* any actor module is
   imported, since ``@dramatiq.actor`` binds to the global broker at import time;
3. binds Kartabl's actors to it (re-binding them when a process, typically a test, builds a
   second broker);
4. installs the enqueuer of :mod:`kartabl.tasks`, so that ``enqueue_after_commit`` reaches
   the queue.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, get_args

import dramatiq
from dramatiq.brokers.redis import RedisBroker
from dramatiq.brokers.stub import StubBroker
from dramatiq.middleware import Middleware, default_middleware

from config.settings import Settings
from kartabl import db as kdb
from kartabl import tasks
from workers.deadletters import DeadLetterErrors

if TYPE_CHECKING:
    from dramatiq import Actor

log = logging.getLogger(__name__)

# Separate queues so that ops can scale routing and sending apart (``-Q inbound`` on some
# machines, ``-Q outbound`` on others) and a slow provider never delays routing.
INBOUND = "inbound"
OUTBOUND = "outbound"

_current: dramatiq.Broker | None = None


class DatabaseMiddleware(Middleware):
    """Give every worker process an engine of its own.

    A SQLAlchemy engine's pooled connections must not cross ``fork``: two processes talking
    over one socket corrupt each other's protocol stream. dramatiq's CLI imports the broker
    module after forking, but anything that configured the database in the parent (a
    ``--fork-function``, an embedded launcher) would otherwise leak its pool into the child.
    """

    def after_process_boot(self, broker: dramatiq.Broker) -> None:
        kdb.reset()


def _middleware(prometheus: bool) -> list[Middleware]:
    chain: list[Middleware] = [m() for m in default_middleware]
    chain += [DatabaseMiddleware(), DeadLetterErrors()]
    if prometheus:
        # Not a default in dramatiq 2.x. It serves on dramatiq_prom_port (9191) from a forked
        # process, so it is only wanted under the dramatiq CLI (boot.worker_metrics).
        from dramatiq.middleware.prometheus import Prometheus

        chain.append(Prometheus())
    return chain


def build_broker(settings: Settings, *, prometheus: bool = False) -> dramatiq.Broker:
    """The broker the settings ask for, not yet made global."""
    middleware = _middleware(prometheus)
    if settings.broker == "stub":
        # fail_fast_default=False: a dead letter is an outcome we inspect (status, requeue),
        # not a reason for join() to raise in the middle of the embedded app.
        return StubBroker(middleware=middleware, fail_fast_default=False)
    # maintenance_chance and heartbeat_timeout are chosen in config/settings.py: dramatiq's
    # defaults leave a killed worker's messages parked for ~17 minutes on an idle queue.
    return RedisBroker(
        url=settings.redis_url,
        namespace=settings.redis_namespace,
        maintenance_chance=settings.redis_maintenance_chance,
        heartbeat_timeout=settings.redis_heartbeat_timeout_ms,
        middleware=middleware,
    )


def current_broker() -> dramatiq.Broker:
    """The broker made by :func:`setup_broker`; actor modules declare their actors on it."""
    if _current is None:
        raise RuntimeError(
            "no Kartabl broker: call workers.broker.setup_broker() before importing an actor "
            "module (the dramatiq CLI does it: `dramatiq boot.worker workers.actors ...`)"
        )
    return _current


def bind_actors(broker: dramatiq.Broker, *actors: Actor[..., Any]) -> None:
    """(Re)declare ``actors`` on ``broker``. Actors remember the broker they were declared
    on, so a process that builds a new broker (tests, a restarted embedded runner) must move
    them over, or ``send`` would still go to the old one."""
    for actor in actors:
        actor.broker = broker
        broker.declare_actor(actor)


def setup_broker(settings: Settings, *, prometheus: bool = False) -> dramatiq.Broker:
    """Build the broker from settings, make it global, bind the actors, install the enqueuer."""
    global _current
    s = settings
    broker = build_broker(s, prometheus=prometheus)
    dramatiq.set_broker(broker)
    _current = broker

    # Imported only now: the actors module declares its actors on current_broker().
    from workers import actors

    bind_actors(broker, *actors.ALL)
    missing = set(get_args(tasks.TaskName)) - actors.TASKS.keys()
    if missing:  # fail at start, not at the first enqueue
        raise RuntimeError(f"tasks without an actor: {sorted(missing)}")

    def enqueue(task: tasks.TaskName, obj_id: tasks.Payload) -> None:
        actors.TASKS[task].send(obj_id)

    tasks.set_enqueuer(enqueue)
    log.info("broker ready", extra={"broker": s.broker, "queues": sorted(_canonical(broker))})
    return broker


def _canonical(broker: dramatiq.Broker) -> set[str]:
    return {q for q in broker.get_declared_queues() if not q.endswith(".DQ")}


def queue_names(broker: dramatiq.Broker) -> list[str]:
    """The broker's queues without their delay queues, sorted."""
    return sorted(_canonical(broker))
