"""Routing enqueued in batches: the ids that committed transactions hand to
``route_messages`` are gathered for a short window and sent as one task.

Why: a webhook request commits one message, and the batch router's cost is about seven
queries per *transaction*, whatever its size (router/batch.py). One task per message made
routing the fleet's bottleneck (103 msgs/s against 333 msgs/s stored, bench.ingest on an
idle machine): every message paid the customer lookup and lock, the team lock, the events'
insert and a commit of its own. Gathered for ``window_s``, messages committed by the web
process's concurrent requests share one routing transaction, and the batch grows with the
load (nearly empty when traffic is light, so latency only grows by at most the window).

What a batch costs in safety: nothing the sweep does not already cover. The ids are
committed before they reach the buffer (this runs after commit), so a process that dies
with ids still buffered loses only their enqueue, which the sweep repairs after
``sweep_grace_s``, exactly as for a lost Redis job. A failed send is logged and left to the
sweep in the same way. ``close()`` (at process exit) sends what is buffered.
"""

from __future__ import annotations

import atexit
import logging
import threading
import time
from collections.abc import Callable

log = logging.getLogger(__name__)


class Coalescer:
    """Thread-safe buffer of ids, flushed by a daemon thread ``window_s`` after the first
    id arrives, or at once when ``max_ids`` are waiting. Ids keep their commit order."""

    def __init__(self, send: Callable[[list[int]], None], *, window_s: float,
                 max_ids: int) -> None:
        if window_s <= 0 or max_ids < 1:
            raise ValueError("a coalescer needs a positive window and room for one id")
        self._send = send
        self._window_s = window_s
        self._max_ids = max_ids
        self._ids: list[int] = []
        self._first_at = 0.0
        self._cond = threading.Condition()
        self._closed = False
        self._thread: threading.Thread | None = None

    def add(self, ids: int | list[int]) -> None:
        batch = [ids] if isinstance(ids, int) else list(ids)
        if not batch:
            return
        with self._cond:
            if self._closed:  # after close (process exit): no thread left to flush
                full = batch
            else:
                if not self._ids:
                    self._first_at = time.monotonic()
                self._ids += batch
                full = self._take() if len(self._ids) >= self._max_ids else []
                if self._thread is None:
                    self._thread = threading.Thread(
                        target=self._run, name="route-coalescer", daemon=True)
                    self._thread.start()
                self._cond.notify()
        self._deliver(full)

    def _take(self) -> list[int]:
        ids, self._ids = self._ids, []
        return ids

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._ids and not self._closed:
                    self._cond.wait()
                if self._closed:
                    return
                due = self._first_at + self._window_s - time.monotonic()
                if due > 0:
                    self._cond.wait(due)  # more may arrive; a full buffer is sent by add()
                    continue
                ids = self._take()
            self._deliver(ids)

    def _deliver(self, ids: list[int]) -> None:
        for start in range(0, len(ids), self._max_ids):
            chunk = ids[start : start + self._max_ids]
            try:
                self._send(chunk)
            except Exception:
                # Committed rows: the sweep re-enqueues them after sweep_grace_s.
                log.exception("routing of %d committed messages not enqueued; the sweep"
                              " will", len(chunk))

    def close(self) -> None:
        """Send what is buffered and stop the thread (idempotent)."""
        with self._cond:
            self._closed = True
            ids = self._take()
            self._cond.notify_all()
        self._deliver(ids)
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=1)


def coalescing(send: Callable[[list[int]], None], *, window_s: float,
               max_ids: int) -> Coalescer:
    """A coalescer that also flushes at interpreter exit (a clean stop loses nothing)."""
    coalescer = Coalescer(send, window_s=window_s, max_ids=max_ids)
    atexit.register(coalescer.close)
    return coalescer
