"""Build the dramatiq broker from settings and plug it into the core.

``setup_broker`` is the one entry point. It

1. builds a :class:`StubBroker` (embedded mode) or a :class:`RedisBroker` (fleet) from
   :mod:`config.settings`, with Kartabl's middleware;
2. makes it the global broker (``dramatiq.set_broker``) *before* any actor module is
   imported, since ``@dramatiq.actor`` binds to the global broker at import time;
3. binds Kartabl's actors to it (re-binding them when a process, typically a test, builds a
   second broker);
4. installs the enqueuer of :mod:`kartabl.tasks`, so that ``enqueue_after_commit`` reaches
   the queue, and the live transport of :mod:`kartabl.live` (:mod:`workers.live`).

The rest of the queue's knowledge that other layers need is here too, so they never import
dramatiq: :func:`ping` (the console's ``/readyz``) and :func:`rate_limiter` (the SMS
sender's rate across processes, handed to it by the composition, :mod:`boot.kinds`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, get_args

import dramatiq
from dramatiq.brokers.redis import RedisBroker
from dramatiq.brokers.stub import StubBroker
from dramatiq.middleware import Middleware, default_middleware
from dramatiq.rate_limits import RateLimiter, WindowRateLimiter
from dramatiq.rate_limits.backends import RedisBackend, StubBackend

from config.settings import Settings
from kartabl import db as kdb
from kartabl import live, presence, tasks
from workers import queues
from workers.coalesce import Coalescer, coalescing
from workers.deadletters import DeadLetterErrors
from workers.live import RedisTransport
from workers.presence import RedisPresence

if TYPE_CHECKING:
    from dramatiq import Actor

log = logging.getLogger(__name__)

_coalescers: list[Coalescer] = []  # this process's, closed when a new broker is built


class DatabaseMiddleware(Middleware):
    """Give every worker process an engine of its own.

    A SQLAlchemy engine's pooled connections must not cross ``fork``: two processes talking
    over one socket corrupt each other's protocol stream. dramatiq's CLI imports the broker
    module after forking, but anything that configured the database in the parent (a
    ``--fork-function``, an embedded launcher) would otherwise leak its pool into the child.
    """

    def after_process_boot(self, broker: dramatiq.Broker) -> None:
        kdb.reset()


class OnWorkerShutdown(Middleware):
    """Calls ``fn`` once the worker has stopped and its tasks in flight have finished: how
    the composition closes what it opened for the actors (the senders) in a dramatiq worker
    process, which exits without running ``atexit`` hooks (multiprocessing's ``os._exit``)."""

    def __init__(self, fn: Callable[[], None]) -> None:
        self.fn = fn

    def after_worker_shutdown(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        self.fn()


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


def bind_actors(broker: dramatiq.Broker, *actors: Actor[..., Any]) -> None:
    """(Re)declare ``actors`` on ``broker``. Actors remember the broker they were declared
    on, so a process that builds a new broker (tests, a restarted embedded runner) must move
    them over, or ``send`` would still go to the old one."""
    for actor in actors:
        actor.broker = broker
        broker.declare_actor(actor)


def setup_broker(settings: Settings, *, prometheus: bool = False) -> dramatiq.Broker:
    """Build the broker from settings, make it global, bind the actors, install the enqueuer."""
    s = settings
    broker = build_broker(s, prometheus=prometheus)
    queues.make_current(broker)

    # Imported only now: the actors module declares its actors on current_broker().
    from workers import actors

    bind_actors(broker, *actors.ALL)
    missing = set(get_args(tasks.TaskName)) - actors.TASKS.keys()
    if missing:  # fail at start, not at the first enqueue
        raise RuntimeError(f"tasks without an actor: {sorted(missing)}")

    _close_coalescers()  # a process (a test) that builds a second broker
    senders = {name: _gathering_sender(s, actor) if name in actors.BATCHED else _sender(actor)
               for name, actor in actors.TASKS.items()}

    def enqueue(task: tasks.TaskName, obj_id: tasks.Payload) -> None:
        senders[task](obj_id)

    tasks.set_enqueuer(enqueue)
    # Live wakes: across processes on the broker's Redis, in this process on the stub.
    live.set_transport(RedisTransport(s.redis_url, s.redis_namespace)
                       if s.broker == "redis" else None)
    # Who has a conversation open: shared on the same Redis, in this process on the stub.
    presence.set_store(RedisPresence(s.redis_url, s.redis_namespace)
                       if s.broker == "redis" else None)
    log.info("broker ready", extra={"broker": s.broker, "queues": sorted(_canonical(broker))})
    return broker


def _close_coalescers() -> None:
    while _coalescers:
        _coalescers.pop().close()


def _sender(actor: Actor[..., None]) -> Callable[[tasks.Payload], None]:
    def send(payload: tasks.Payload) -> None:
        actor.send(payload)  # looked up at each send: an actor rebound later is the one used

    return send


def _gathering_sender(s: Settings, actor: Actor[..., None]) -> Callable[[tasks.Payload], None]:
    """How this process enqueues a batched task (its payload a list of ids): gathered for
    ``route_coalesce_ms`` on the Redis broker (workers/coalesce.py), at once on the stub
    broker, whose embedded worker and tests expect a send to be queued when it returns."""

    send = _sender(actor)
    if s.broker != "redis" or s.route_coalesce_ms <= 0:
        return send
    coalescer = coalescing(send, window_s=s.route_coalesce_ms / 1000, max_ids=tasks.ROUTE_BATCH)
    _coalescers.append(coalescer)
    return coalescer.add


def ping(broker: dramatiq.Broker | None = None) -> tuple[bool, str]:
    """Whether the broker (default: the global one) answers, and its name: ``(False,
    "redis: ConnectionError")`` when its Redis does not. The stub broker always answers."""
    broker = broker or dramatiq.get_broker()
    if isinstance(broker, RedisBroker):
        try:
            broker.client.ping()
        except Exception as exc:  # any failure means not ready; the reason is reported
            return False, f"redis: {type(exc).__name__}"
        return True, "redis"
    return True, type(broker).__name__


def rate_limiter(settings: Settings, name: str, per_s: int) -> RateLimiter:
    """At most ``per_s`` acquisitions per second under ``name`` across every process: on the
    broker's Redis in the fleet, in this process in the embedded mode (the stub broker).

    Its ``acquire`` raises when that Redis cannot be reached: a caller acquires it before
    anything leaves for a provider, so the failure means "not sent" (the SMS sender:
    :mod:`responders.outcomes`)."""
    backend = (RedisBackend(url=settings.redis_url) if settings.broker == "redis"
               else StubBackend())
    return WindowRateLimiter(backend, f"{settings.redis_namespace}:{name}", limit=per_s,
                             window=1)


def window_limiters(settings: Settings) -> Callable[[str, int, int], RateLimiter]:
    """``make(name, limit, window_s)``: at most ``limit`` acquisitions per sliding
    ``window_s`` seconds under ``name``, across every process (the website widget's
    per-address and per-visitor limits). One backend (one Redis connection pool) for all
    the names: a limiter per name is cheap, a pool per request would not be."""
    backend = (RedisBackend(url=settings.redis_url) if settings.broker == "redis"
               else StubBackend())
    prefix = settings.redis_namespace

    def make(name: str, limit: int, window_s: int) -> RateLimiter:
        return WindowRateLimiter(backend, f"{prefix}:{name}", limit=limit, window=window_s)

    return make


def _canonical(broker: dramatiq.Broker) -> set[str]:
    return {q for q in broker.get_declared_queues() if not q.endswith(".DQ")}


def queue_names(broker: dramatiq.Broker) -> list[str]:
    """The broker's queues without their delay queues, sorted."""
    return sorted(_canonical(broker))
