"""``GET /live``: the signed-in person's live events as server-sent events
(:mod:`console.live`).

Signed in by the session cookie, like the pages (a bearer token is refused before any route
runs: :mod:`console.boundary`), and checked without touching the session: an open tab must
not keep an idle session alive. A stream ends after ``Hub.stream_s`` (5 minutes); the browser
reconnects with its ``Last-Event-ID`` (nothing is missed), signed in again: a revoked session,
a deactivated person or a change of team takes effect within that time. Signed out, the
answer is 401, on which the browser's EventSource stops for good.

A new stream starts after ``Last-Event-ID`` (a reconnect), else after ``?since=`` (the cursor
the page was rendered with: what happened while it loaded is not lost), else from now.
A conversation page adds ``?conversation=<id>``: its stream also carries the presence
changes of that conversation (``event: presence``), when the reader may see it. The inbox
opens its stream again (``?since=`` its last event) when its pane shows another
conversation, so the check is made again for each.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.concurrency import run_in_threadpool

from config.settings import Settings
from console import auth
from console.deps import app_settings
from console.live import Client, Cursor, Hub, Replay, Viewer, presence_note, reset, sse
from kartabl.models import Conversation
from kartabl.workflow import can_access

router = APIRouter(include_in_schema=False)

HEARTBEAT_S = 15.0  # a comment line this often: proxies keep the stream, dead peers show
RETRY_MS = 1000  # how long the browser waits before reconnecting


def _viewer(hub: Hub, cookie: str | None, settings: Settings,
            conversation: int | None = None) -> tuple[Viewer, int | None] | None:
    """Who the stream is for, and the page's conversation when they may see it."""
    with hub.session() as s:
        found = auth.session_person(s, cookie, settings=settings)
        if found is None:
            s.rollback()
            return None
        person = found[1]
        viewer = Viewer.of(s, person)
        conv = s.get(Conversation, conversation) if conversation is not None else None
        shown = conv.id if conv is not None and can_access(person, conv) else None
        s.rollback()  # never commit last_seen_at: streaming is not activity
        return viewer, shown


def hub_of(request: Request) -> Hub:
    hub: Hub = request.app.state.live
    return hub


@router.get("/live")
async def live_stream(request: Request, since: str = "", conversation: str = "") -> Response:
    hub = hub_of(request)
    page = int(conversation) if conversation.isascii() and conversation.isdigit() \
        and len(conversation) < 19 else None
    found = await run_in_threadpool(_viewer, hub, request.cookies.get(auth.SESSION_COOKIE),
                                    app_settings(request), page)
    if found is None:
        return JSONResponse({"detail": "sign in first"}, status_code=401)
    viewer, shown = found
    start = Cursor.parse(request.headers.get("last-event-id") or since)
    client = hub.subscribe(viewer, shown)  # before the replay: nothing falls between the two
    try:
        replay = await run_in_threadpool(hub.replay, viewer, start) if start else None
    except BaseException:
        hub.unsubscribe(client)
        raise
    return StreamingResponse(
        _stream(hub, client, replay), media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})


async def _stream(hub: Hub, client: Client, replay: Replay | None) -> AsyncIterator[str]:
    loop = asyncio.get_running_loop()
    ends = loop.time() + hub.stream_s
    seen = replay.cursor if replay is not None and replay.complete else None
    try:
        yield f"retry: {RETRY_MS}\n\n"
        if replay is not None and not replay.complete:
            # From the hub's cursor: what came after it reaches this stream (subscribed).
            yield reset(hub.cursor.text())
        for sse_id, e in replay.events if replay is not None else ():
            yield sse(sse_id, e)
        while not client.dropped:
            left = ends - loop.time()
            if left <= 0:
                return
            try:
                item = await asyncio.wait_for(client.queue.get(), min(HEARTBEAT_S, left))
            except TimeoutError:
                yield ": ping\n\n"
                continue
            if item is None:
                return
            if isinstance(item, int):
                yield presence_note(item)
                continue
            sse_id, e = item
            if seen is not None and seen.covers(e.id):
                continue  # already in the replay
            yield sse(sse_id, e)
    finally:
        hub.unsubscribe(client)
