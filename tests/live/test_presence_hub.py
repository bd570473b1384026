"""Presence pushes in one web process (the embedded mode: kartabl.presence in memory): the
hub hands a change to the streams opened for that conversation's page, not to the person
who changed it, nor to streams of other pages; the SSE text carries the id only."""

from __future__ import annotations

import asyncio

from sqlalchemy.orm import Session, sessionmaker

from console.live import Hub, Viewer, presence_note
from kartabl import presence


def test_a_change_reaches_the_pages_of_that_conversation_only(db: sessionmaker[Session]) -> None:
    presence.set_store(None)

    async def run() -> list[list[object]]:
        hub = Hub(db, idle_s=60)
        await hub.start()
        try:
            on_page = hub.subscribe(Viewer(1, True, frozenset()), conversation=7)
            changer = hub.subscribe(Viewer(2, False, frozenset({3})), conversation=7)
            elsewhere = hub.subscribe(Viewer(4, True, frozenset()), conversation=8)
            no_page = hub.subscribe(Viewer(5, True, frozenset()))
            presence.publish(7, 2)  # person 2 came to conversation 7
            await asyncio.sleep(0.05)  # the listener hands it to the loop
            return [[c.queue.get_nowait() for _ in range(c.queue.qsize())]
                    for c in (on_page, changer, elsewhere, no_page)]
        finally:
            await hub.stop()

    assert asyncio.run(run()) == [[7], [], [], []]
    assert presence_note(7) == 'event: presence\ndata: {"conversation":7}\n\n'
