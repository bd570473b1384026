"""Live events for the console: one :class:`Hub` per web process reads each committed event
row once and pushes it to the connected people who may see it (``GET /live``,
:mod:`console.pages.live`).

The event rows are the log (:mod:`kartabl.audit`); a commit only wakes the hub
(:mod:`kartabl.live`: Redis pub/sub in the fleet, in-process in the embedded mode), and the
hub also looks on its own every ``KARTABL_LIVE_POLL_S`` seconds, should a wake be lost.

**The cursor.** Ids are handed out at insert, but transactions commit in any order: 101 can
be visible before 100 is. A cursor is therefore the highest id read *and* the ids below it
not seen yet (gaps), each kept for :data:`GAP_GRACE_S` seconds (a rolled-back insert leaves a
gap for ever). Every pushed event carries the cursor as it stood after that event as its SSE
id (``"105"``, or ``"105:100,103"`` with gaps): a browser that reconnects sends it back as
``Last-Event-ID`` and gets everything it may see after it, late commits included.

**Who sees what.** The rule of the pages (:func:`kartabl.workflow.can_access`): admins and
coordinators every event; an agent the events of conversations assigned to them or held by
one of their teams (as the conversation stands when the event is read), and the assignment
or referral that took one away from them or their team (their queue must drop it); never an
event without a conversation. A notification's event (``notification.created``,
:mod:`kartabl.notifications`) reaches its one recipient and nobody else, reviewers included.
A payload carries ids and the event's kind only.

**Presence** (:mod:`kartabl.presence`) travels beside the events: a change on a conversation
is pushed, as ``event: presence`` with the conversation's id only and no SSE id (it is not
part of the log, nothing to resume), to the streams opened by that conversation's page
(``/live?conversation=``, allowed when the stream opened), never to the person who changed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from kartabl import db as kdb
from kartabl import live
from kartabl import presence as kpresence
from kartabl.models import Conversation, Event, Person, Reply, TeamMember
from kartabl.notifications import EVENT as NOTIFICATION
from kartabl.workflow.access import REVIEWERS

log = logging.getLogger(__name__)

GAP_GRACE_S = 30.0  # how long an id below the cursor may still turn up (a slow commit)
MAX_GAP_RUN = 1000  # a longer run of missing ids is a sequence jump, not commits in flight
MAX_GAPS = 200  # in a cursor sent back by a browser (the header is the browser's to send)
BATCH = 500  # rows per read
# At most one read per this long, however many commits wake the hub: at a busy fleet's
# commit rate a read per commit would be hundreds a second per web process.
MIN_GAP_S = 0.02
REPLAY_ROWS = 5 * BATCH  # at most this many rows read for a reconnecting browser
QUEUE_SIZE = 2000  # events waiting for one slow client before it is dropped (it resumes)


def _call_soon(loop: asyncio.AbstractEventLoop, fn: Callable[..., object],
               *args: object) -> None:
    """``fn(*args)`` on ``loop`` from another thread, unless the loop has closed: a wake
    can be on its way from the transport's thread while the hub stops, and a stopped hub
    has nobody to wake."""
    try:
        loop.call_soon_threadsafe(fn, *args)
    except RuntimeError:  # "Event loop is closed"
        if not loop.is_closed():
            raise


@dataclass(frozen=True, slots=True)
class LiveEvent:
    id: int
    kind: str
    conversation_id: int | None
    reply_id: int | None
    actor_id: int | None
    team_id: int | None  # the conversation's, when read
    assignee_id: int | None
    reply_author_id: int | None
    from_team: int | None = None  # an assignment's or a referral's: who held it before
    from_person: int | None = None
    for_person: int | None = None  # a notification's recipient: theirs alone

    def payload(self) -> str:
        return json.dumps({
            "id": self.id, "kind": self.kind, "conversation": self.conversation_id,
            "reply": self.reply_id, "actor": self.actor_id, "assignee": self.assignee_id,
            "reply_author": self.reply_author_id,
        }, separators=(",", ":"))


@dataclass(frozen=True, slots=True)
class Viewer:
    """Who a stream is for, as they were when it opened (a stream lives a few minutes)."""

    person_id: int
    reviewer: bool
    team_ids: frozenset[int]

    @classmethod
    def of(cls, session: Session, person: Person) -> Viewer:
        teams = session.scalars(select(TeamMember.team_id)
                                .where(TeamMember.person_id == person.id))
        return cls(person.id, person.role in REVIEWERS, frozenset(teams))

    def may_see(self, e: LiveEvent) -> bool:
        if e.kind == NOTIFICATION:
            return e.for_person == self.person_id
        if self.reviewer:
            return True
        if e.conversation_id is None:
            return False
        return self.person_id in (e.assignee_id, e.from_person) or bool(
            {e.team_id, e.from_team} & self.team_ids)


@dataclass
class Cursor:
    last: int
    gaps: dict[int, float] = field(default_factory=dict)  # id -> when it was first missed

    def text(self) -> str:
        if not self.gaps:
            return str(self.last)
        return f"{self.last}:" + ",".join(str(g) for g in sorted(self.gaps))

    @classmethod
    def parse(cls, text: str | None) -> Cursor | None:
        """A cursor sent back by a browser, or None when it is not one of ours."""
        if not text or len(text) > 4000:
            return None
        head, _, tail = text.strip().partition(":")
        try:
            last = int(head)
            gaps = [int(g) for g in tail.split(",")] if tail else []
        except ValueError:
            return None
        if last < 0 or len(gaps) > MAX_GAPS or any(not 0 < g < last for g in gaps):
            return None
        now = time.monotonic()
        return cls(last, {g: now for g in gaps})

    def copy(self) -> Cursor:
        return Cursor(self.last, dict(self.gaps))

    def advance(self, event_id: int, now: float) -> None:
        if event_id in self.gaps:
            del self.gaps[event_id]
        elif event_id > self.last:
            if event_id - self.last - 1 <= MAX_GAP_RUN:
                self.gaps.update((g, now) for g in range(self.last + 1, event_id))
            self.last = event_id

    def expire(self, now: float) -> None:
        old = [g for g, at in self.gaps.items() if now - at > GAP_GRACE_S]
        for g in old:
            del self.gaps[g]

    def covers(self, event_id: int) -> bool:
        """Has an event with this id been read already?"""
        return event_id <= self.last and event_id not in self.gaps


def read_after(session: Session, cursor: Cursor, limit: int = BATCH) -> list[LiveEvent]:
    """The events after ``cursor`` (its gaps included), oldest first, with what deciding
    who sees them needs."""
    after = Event.id > cursor.last
    where = or_(after, Event.id.in_(sorted(cursor.gaps))) if cursor.gaps else after
    rows = session.execute(
        select(Event.id, Event.kind, Event.conversation_id, Event.reply_id, Event.actor_id,
               Conversation.team_id, Conversation.assignee_id, Reply.author_id,
               Event.data["from_team"].as_integer(), Event.data["from_person"].as_integer(),
               Event.data["for_person"].as_integer())
        .outerjoin(Conversation, Conversation.id == Event.conversation_id)
        .outerjoin(Reply, Reply.id == Event.reply_id)
        .where(where).order_by(Event.id).limit(limit))
    return [LiveEvent(*row) for row in rows]


def newest_id(session: Session) -> int:
    return int(session.scalar(select(func.max(Event.id))) or 0)


# One pushed event: (SSE id, event), a presence change (the conversation's id), or None to
# end the stream.
Item = tuple[str, LiveEvent] | int | None


@dataclass(eq=False)
class Client:
    viewer: Viewer
    queue: asyncio.Queue[Item] = field(default_factory=lambda: asyncio.Queue(QUEUE_SIZE))
    dropped: bool = False  # fell behind by QUEUE_SIZE: the stream ends, the browser resumes
    conversation: int | None = None  # the page's, when its reader may see it (presence)


class Hub:
    """This process's one reader of new events, and its connected clients."""

    def __init__(self, sessions: Callable[[], Session] | None = None, *,
                 idle_s: float = 5.0) -> None:
        self._sessions = sessions
        self.idle_s = idle_s
        # A stream's life: then the browser reconnects, and is signed in again.
        self.stream_s = 300.0
        self.clients: set[Client] = set()
        self.cursor = Cursor(0)
        self._wake: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self._stop_listening: live.Stop | None = None
        self._stop_presence: kpresence.Stop | None = None
        self.reads = 0  # database reads, for the tests and the bench
        self._placed = False  # the cursor is at the newest event as of start

    @property
    def running(self) -> bool:
        """Reading, from a known cursor (what a page may be rendered with)."""
        return self._task is not None and self._placed

    def session(self) -> Session:
        return (self._sessions or kdb.session_factory())()

    async def start(self) -> None:
        self._loop = loop = asyncio.get_running_loop()
        self._wake = wake = asyncio.Event()
        try:
            self.cursor = Cursor(await asyncio.to_thread(self._newest))
            self._placed = True
        except Exception:  # the database is away: serve anyway (/readyz says so), place later
            log.warning("live events: the database did not answer; will place the cursor "
                        "when it does", exc_info=True)

        def on_wake() -> None:  # from the transport's thread
            _call_soon(loop, wake.set)

        self._stop_listening = live.listen(on_wake)

        def on_presence(conversation_id: int, person_id: int) -> None:  # any thread
            _call_soon(loop, self.presence_changed, conversation_id, person_id)

        self._stop_presence = kpresence.store().listen(on_presence)
        self._task = asyncio.create_task(self._run(), name="live-hub")

    async def stop(self) -> None:
        """End every stream and stop reading (the process is stopping)."""
        if self._stop_listening is not None:
            await asyncio.to_thread(self._stop_listening)
            self._stop_listening = None
        if self._stop_presence is not None:
            await asyncio.to_thread(self._stop_presence)
            self._stop_presence = None
        if self._task is not None:
            self._task.cancel()
            self._task = None
        self.close_streams()

    def close_soon(self) -> None:
        """:meth:`close_streams` from any thread or a signal handler."""
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self.close_streams)

    def close_streams(self) -> None:
        for client in list(self.clients):
            self._end(client)

    def subscribe(self, viewer: Viewer, conversation: int | None = None) -> Client:
        client = Client(viewer, conversation=conversation)
        self.clients.add(client)
        return client

    def unsubscribe(self, client: Client) -> None:
        self.clients.discard(client)

    def _newest(self) -> int:
        with self.session() as s:
            return newest_id(s)

    def _read(self, cursor: Cursor) -> list[LiveEvent]:
        self.reads += 1
        with self.session() as s:
            return read_after(s, cursor)

    async def _run(self) -> None:
        assert self._wake is not None
        while True:
            with contextlib.suppress(TimeoutError):  # then a look of its own (a lost wake)
                await asyncio.wait_for(self._wake.wait(), self.idle_s)
            self._wake.clear()
            try:
                await self.pump()
            except Exception:  # the database blinked: the next wake or tick reads again
                log.warning("could not read new events", exc_info=True)
            await asyncio.sleep(MIN_GAP_S)  # the wakes meanwhile make one read

    async def pump(self) -> None:
        """Read what is new and hand each event to the clients who may see it."""
        if not self._placed:
            self.cursor = Cursor(await asyncio.to_thread(self._newest))
            self._placed = True
            return
        while True:
            self.cursor.expire(time.monotonic())
            rows = await asyncio.to_thread(self._read, self.cursor.copy())
            now = time.monotonic()
            for e in rows:
                self.cursor.advance(e.id, now)
                self._fan_out(self.cursor.text(), e)
            if len(rows) < BATCH:
                return

    def _fan_out(self, sse_id: str, e: LiveEvent) -> None:
        for client in list(self.clients):
            if client.dropped or not client.viewer.may_see(e):
                continue
            try:
                client.queue.put_nowait((sse_id, e))
            except asyncio.QueueFull:
                client.dropped = True
                log.info("a live client fell behind; it will resume from its last event")

    def presence_changed(self, conversation_id: int, person_id: int) -> None:
        """Tell the pages of ``conversation_id`` (but the changer's own) to look who is there.
        A full queue skips it: the page sees the state at its next beat anyway."""
        for client in list(self.clients):
            if (client.conversation == conversation_id and not client.dropped
                    and client.viewer.person_id != person_id):
                with contextlib.suppress(asyncio.QueueFull):
                    client.queue.put_nowait(conversation_id)

    def _end(self, client: Client) -> None:
        client.dropped = True
        self.clients.discard(client)
        with contextlib.suppress(asyncio.QueueFull):  # full: it sees ``dropped`` next
            client.queue.put_nowait(None)

    def replay(self, viewer: Viewer, since: Cursor) -> Replay:
        """What ``viewer`` may see after ``since`` (a browser's ``Last-Event-ID``), with
        the cursor after each, and where that leaves it; at most :data:`REPLAY_ROWS` rows
        read (a browser back after hours need not be told each step: it is told to fetch
        everything again, :attr:`Replay.complete` false). Blocking: run it in a thread."""
        cursor = since.copy()
        shown: list[tuple[str, LiveEvent]] = []
        read = 0
        with self.session() as s:
            while True:
                cursor.expire(time.monotonic())
                rows = read_after(s, cursor.copy())
                read += len(rows)
                now = time.monotonic()
                for e in rows:
                    cursor.advance(e.id, now)
                    if viewer.may_see(e):
                        shown.append((cursor.text(), e))
                if len(rows) < BATCH:
                    return Replay(shown, cursor, complete=True)
                if read >= REPLAY_ROWS:
                    return Replay([], cursor, complete=False)


@dataclass(frozen=True, slots=True)
class Replay:
    events: list[tuple[str, LiveEvent]]  # (SSE id, event), oldest first
    cursor: Cursor  # after the last row read
    complete: bool  # false: too much was missed, the page should fetch everything again


def sse(sse_id: str, e: LiveEvent) -> str:
    """One event in the text/event-stream format (the payload is one line of JSON)."""
    return f"id: {sse_id}\nevent: kartabl\ndata: {e.payload()}\n\n"


def presence_note(conversation_id: int) -> str:
    """"Who is on this conversation changed": no SSE id (nothing to resume), the id only."""
    return f"event: presence\ndata: {{\"conversation\":{conversation_id}}}\n\n"


def reset(sse_id: str) -> str:
    """"Fetch everything again": a replay was too long to send (:meth:`Hub.replay`)."""
    return f"id: {sse_id}\nevent: reset\ndata: {{}}\n\n"

