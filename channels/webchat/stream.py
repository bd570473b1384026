"""The visitor's event stream (server-sent events) and the one waker per web process.

A stream sends the visitor's log after the sequence number it is given (``Last-Event-ID``,
or the ``last_event_id`` query parameter on the first connect, which ``EventSource``
cannot give a header), each event with ``id: <seq>``, then the new ones as they are
committed, and a comment line when idle. The browser's reconnect sends the last id it saw,
so nothing is lost or doubled across a reconnect; the widget also drops any event whose
sequence number it has shown.

**Waking.** A commit that writes an event wakes the web processes through the live port
(:mod:`kartabl.live`: Redis pub/sub in the fleet, in-process in the embedded mode). Each
process has one :class:`Waker` (one listener, however many streams): on a wake it writes
the notices not written yet (:func:`channels.webchat.log.sync_notices`: a draft is "being
prepared", a close "closed"), reads which visitors have events past its cursor, and wakes
their streams only. A stream also looks on its own every ``poll_s`` seconds, so a lost
wake (or an event committed out of id order) costs latency, never an event.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
from collections.abc import AsyncIterator, Callable
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from channels.webchat import log as wlog
from kartabl import live
from kartabl.models import WebchatEvent, WebchatVisitor, utcnow

log = logging.getLogger(__name__)

RETRY_MS = 1000  # the browser's reconnect delay
MIN_GAP_S = 0.02  # at most one read per this long, however many wakes
IDLE_S = 2.0  # the waker looks on its own this often


class Waker:
    """This process's listener on the live port, and the streams waiting for it."""

    def __init__(self, sessions: Callable[[], Session]) -> None:
        self._sessions = sessions
        self._lock = threading.Lock()
        self._waiting: dict[int, set[asyncio.Event]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._flag: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._stop: live.Stop | None = None
        self.cursor = 0  # the highest event id read
        self.closing = False  # the process is stopping: every stream ends (and resumes)

    def _ensure_started(self) -> None:
        if self._task is not None:
            return
        self._loop = loop = asyncio.get_running_loop()
        self._flag = flag = asyncio.Event()

        def on_wake() -> None:  # the transport's thread
            with contextlib.suppress(RuntimeError):  # the loop closed: nobody to wake
                loop.call_soon_threadsafe(flag.set)

        self._stop = live.listen(on_wake)
        self._task = loop.create_task(self._run(), name="webchat-waker")

    async def close(self) -> None:
        if self._stop is not None:
            await asyncio.to_thread(self._stop)
            self._stop = None
        if self._task is not None:
            self._task.cancel()
            self._task = None

    def close_soon(self) -> None:
        """End every stream, from a signal handler or any thread: uvicorn waits for open
        responses before it stops, and the browsers resume elsewhere from their last id."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._end_all)

    def _end_all(self) -> None:
        self.closing = True
        with self._lock:
            events = [e for waiting in self._waiting.values() for e in waiting]
        for e in events:
            e.set()

    def subscribe(self, visitor_id: int) -> asyncio.Event:
        self._ensure_started()
        event = asyncio.Event()
        with self._lock:
            self._waiting.setdefault(visitor_id, set()).add(event)
        return event

    def unsubscribe(self, visitor_id: int, event: asyncio.Event) -> None:
        with self._lock:
            waiting = self._waiting.get(visitor_id)
            if waiting is not None:
                waiting.discard(event)
                if not waiting:
                    del self._waiting[visitor_id]

    def _changed(self) -> list[int]:
        with self._sessions() as s:
            if self.cursor == 0:
                self.cursor = int(s.scalar(select(func.max(WebchatEvent.id))) or 0)
            wlog.sync_notices(s)
            rows = s.execute(select(WebchatEvent.id, WebchatEvent.visitor_id)
                             .where(WebchatEvent.id > self.cursor)
                             .order_by(WebchatEvent.id).limit(5000)).all()
        if rows:
            self.cursor = max(r[0] for r in rows)
        return sorted({r[1] for r in rows})

    async def _run(self) -> None:
        assert self._flag is not None
        while True:
            # A look of its own now and then: a draft made where no wake reaches this
            # process (a command) is still noticed.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._flag.wait(), IDLE_S)
            self._flag.clear()
            try:
                changed = await asyncio.to_thread(self._changed)
            except Exception:  # the database blinked: the streams' own looks cover it
                log.warning("webchat: could not read new events", exc_info=True)
                changed = []
            with self._lock:
                events = [e for v in changed for e in self._waiting.get(v, ())]
            for e in events:
                e.set()
            await asyncio.sleep(MIN_GAP_S)


def sse(e: dict[str, Any]) -> str:
    return (f"id: {e['seq']}\nevent: {e['kind']}\n"
            f"data: {json.dumps(e, ensure_ascii=False, separators=(',', ':'))}\n\n")


def mark_seen(sessions: Callable[[], Session], visitor_id: int) -> None:
    """The visitor has a stream open now (the offline continuation's "gone" test)."""
    with sessions() as s:
        s.execute(update(WebchatVisitor).where(WebchatVisitor.id == visitor_id)
                  .values(stream_seen_at=utcnow()))
        s.commit()


async def stream(sessions: Callable[[], Session], waker: Waker, visitor_id: int, after: int,
                 *, life_s: float, heartbeat_s: float, poll_s: float,
                 disconnected: Callable[[], Any], away_s: float = 60.0) -> AsyncIterator[str]:
    """The text of the stream: every event after ``after``, then the live ones. While it
    is open, the visitor's ``stream_seen_at`` is marked at least every third of
    ``away_s`` (the loop turns at least every ``heartbeat_s``, so keep that shorter)."""

    def read(since: int) -> list[dict[str, Any]]:
        with sessions() as s:
            return [wlog.event_json(e) for e in wlog.read_after(s, visitor_id, since)]

    loop = asyncio.get_running_loop()
    ends = loop.time() + life_s
    await asyncio.to_thread(mark_seen, sessions, visitor_id)
    marked = loop.time()
    woken = waker.subscribe(visitor_id)  # before the first read: nothing falls between
    quiet_since = loop.time()
    try:
        yield f"retry: {RETRY_MS}\n\n"
        while True:
            woken.clear()
            rows = await asyncio.to_thread(read, after)
            for e in rows:
                yield sse(e)
                after = e["seq"]
            if rows:
                quiet_since = loop.time()
                if len(rows) >= wlog.READ_BATCH:
                    continue
            now = loop.time()
            if now >= ends or waker.closing or await disconnected():
                return
            if now - marked >= away_s / 3:
                await asyncio.to_thread(mark_seen, sessions, visitor_id)
                marked = now
            if now - quiet_since >= heartbeat_s:
                yield ": ping\n\n"
                quiet_since = now
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(woken.wait(), min(poll_s, heartbeat_s, ends - now))
    finally:
        waker.unsubscribe(visitor_id, woken)
