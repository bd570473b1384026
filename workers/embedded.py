"""The embedded mode's queue: dramatiq's StubBroker with a worker inside this process.

The web console, the pollers and the sweeps share the process with the worker threads, so
nothing but Python is needed on a laptop. The queue lives in memory: whatever is still
queued when the process stops is lost *from the queue* only. The database still says the
message is unrouted, or the reply approved, and the first sweep after a restart re-enqueues
it.

Usage::

    with EmbeddedWorker.start(settings) as runner:
        ...               # store messages; they get routed in the background
        runner.join()     # tests: wait until every queue is empty and idle
"""

from __future__ import annotations

import logging
import time
from types import TracebackType

import dramatiq
from dramatiq.brokers.stub import StubBroker
from dramatiq.errors import QueueJoinTimeout

from config.settings import Settings
from workers.broker import queue_names, setup_broker

log = logging.getLogger(__name__)

# How long an idle worker thread waits for a message before looking again. dramatiq's 1 s
# default makes a test (and a demo) wait up to a second per hop for nothing.
WORKER_TIMEOUT_MS = 100


class EmbeddedWorker:
    """An in-process dramatiq worker over ``broker``."""

    def __init__(self, broker: dramatiq.Broker, *, threads: int) -> None:
        self.broker = broker
        self.worker = dramatiq.Worker(
            broker, worker_threads=threads, worker_timeout=WORKER_TIMEOUT_MS
        )
        self._running = False

    @classmethod
    def start(
        cls, settings: Settings, *, threads: int | None = None,
        broker: dramatiq.Broker | None = None,
    ) -> EmbeddedWorker:
        """Start ``threads`` worker threads (default: settings.worker_threads) on ``broker``,
        the one the process booted with (:func:`boot.start`), else a new one set up from
        ``settings`` (StubBroker unless they say redis)."""
        s = settings
        runner = cls(broker or setup_broker(s), threads=threads or s.worker_threads)
        runner.worker.start()
        runner._running = True
        log.info("embedded worker started", extra={"threads": runner.worker.worker_threads})
        return runner

    def stop(self, timeout_s: float = 30.0) -> None:
        """Stop gracefully: each thread finishes the message it is processing; messages
        fetched but not started go back on their queue."""
        if not self._running:
            return
        self._running = False
        self.worker.stop(timeout=int(timeout_s * 1000))
        log.info("embedded worker stopped")

    def join(self, timeout_s: float = 30.0) -> None:
        """Wait until every queue (delayed ones included) is empty and no message is being
        processed. Tests use it; a dead-lettered message does not make it raise."""
        deadline = time.monotonic() + timeout_s
        if not isinstance(self.broker, StubBroker):
            raise TypeError("join() needs the StubBroker; poll the database on Redis")
        while True:
            for queue in queue_names(self.broker):
                left_ms = int((deadline - time.monotonic()) * 1000)
                if left_ms <= 0:
                    raise TimeoutError(f"queues still busy after {timeout_s} s")
                try:
                    self.broker.join(queue, timeout=left_ms, fail_fast=False)
                except QueueJoinTimeout:
                    raise TimeoutError(f"queue {queue!r} still busy after {timeout_s} s") from None
            # A message processed late in the loop may have enqueued onto a queue joined
            # earlier (a route that auto-approves a reply): go round until all are idle.
            if all(q.unfinished_tasks == 0 for q in self.broker.queues.values()):
                return

    def __enter__(self) -> EmbeddedWorker:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
