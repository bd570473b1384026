"""The hub's cursor against real PostgreSQL: ids are handed out at insert, commits land in
any order, and an event committed late below the cursor is still pushed, and replayed."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy.orm import Session, sessionmaker

from console import live as live_mod
from console.live import GAP_GRACE_S, Cursor, Hub, LiveEvent, Viewer
from kartabl import audit
from kartabl.models import Role
from tests import factories as f

pytestmark = pytest.mark.fleet


@pytest.fixture
def pg(db: sessionmaker[Session], db_url: str) -> sessionmaker[Session]:
    if not db_url.startswith("postgresql"):
        pytest.skip("commits out of id order need concurrent writers: PostgreSQL")
    return db


def drain(q: asyncio.Queue[tuple[str, LiveEvent] | None]) -> list[tuple[str, int]]:
    out = []
    while not q.empty():
        item = q.get_nowait()
        assert item is not None
        out.append((item[0], item[1].id))
    return out


def test_an_event_committed_after_a_later_one_is_still_pushed_and_replayed(pg):
    with pg() as s:
        coord = f.person(s, "coord", Role.COORDINATOR)
        conv = f.conversation(s)
        s.commit()
        viewer = Viewer.of(s, coord)
        conv_id = conv.id
    hub = Hub(pg)
    asyncio.run(hub.pump())  # its first read places the cursor at the newest event
    assert hub.cursor.text() == str(hub._newest())
    client = hub.subscribe(viewer)

    # Given two transactions: the first takes its id, the second takes the next and commits
    slow, quick = pg(), pg()
    first = audit.record(slow, "conversation.note", conversation_id=conv_id, text="slow")
    slow.flush()
    second = audit.record(quick, "conversation.note", conversation_id=conv_id, text="quick")
    quick.commit()
    assert second.id == first.id + 1
    # When the hub reads: only the second is there; the first's id is a gap
    asyncio.run(hub.pump())
    assert drain(client.queue) == [(f"{second.id}:{first.id}", second.id)]
    # Then the first commits and is pushed, below the cursor
    slow.commit()
    asyncio.run(hub.pump())
    assert drain(client.queue) == [(str(second.id), first.id)]
    slow.close()
    quick.close()

    # A browser that had only the second resumes from its id and gets the first
    resumed = Cursor.parse(f"{second.id}:{first.id}")
    assert resumed is not None
    replayed = hub.replay(viewer, resumed)
    assert [e.id for _, e in replayed.events] == [first.id]
    # (without the gap in its cursor it would not have)
    assert hub.replay(viewer, Cursor(second.id)).events == []


def test_a_replay_too_long_tells_the_page_to_fetch_everything(db, monkeypatch):
    with db() as s:
        coord = f.person(s, "coord", Role.COORDINATOR)
        conv = f.conversation(s)
        s.commit()
        viewer = Viewer.of(s, coord)
        start = Cursor(live_mod.newest_id(s))
        audit.record_many(s, [audit.Entry("conversation.note", conversation_id=conv.id)] * 600)
        s.commit()
    hub = Hub(db)
    whole = hub.replay(viewer, start)
    assert whole.complete and len(whole.events) == 600
    monkeypatch.setattr(live_mod, "REPLAY_ROWS", live_mod.BATCH)
    cut = hub.replay(viewer, start)
    assert not cut.complete and cut.events == []


def test_a_gap_that_never_fills_is_forgotten():
    c = Cursor(10)
    c.advance(13, now=100.0)
    assert c.text() == "13:11,12"
    c.expire(now=100.0 + GAP_GRACE_S + 1)
    assert c.text() == "13" and c.covers(12)


TOO_MANY_GAPS = "999:" + ",".join(str(i) for i in range(1, 300))


@pytest.mark.parametrize("text", ["", "abc", "5:7", "5:0", "-3", "5:a", TOO_MANY_GAPS])
def test_a_cursor_not_of_ours_is_refused(text):
    assert Cursor.parse(text) is None


def test_the_filter_of_an_agent():
    agent = Viewer(person_id=7, reviewer=False, team_ids=frozenset({1}))
    def ev(team: int | None, assignee: int | None, conv: int | None = 5,
           from_team: int | None = None, from_person: int | None = None) -> LiveEvent:
        return LiveEvent(1, "k", conv, None, None, team, assignee, None, from_team, from_person)
    assert agent.may_see(ev(1, None))
    assert agent.may_see(ev(2, 7))  # assigned to them in another team
    assert not agent.may_see(ev(2, None))
    assert not agent.may_see(ev(None, None))
    assert not agent.may_see(ev(None, None, conv=None))  # no conversation: reviewers only
    assert Viewer(1, True, frozenset()).may_see(ev(None, None, conv=None))
    assert agent.may_see(ev(2, None, from_team=1))  # referred away from their team
    assert agent.may_see(ev(2, 8, from_person=7))  # taken from them
    assert not agent.may_see(ev(2, 8, from_team=3, from_person=9))


def test_a_wake_after_the_hub_stopped_is_dropped_not_raised() -> None:
    # The transport's thread may still be calling a listener when the hub's loop closes
    # (a process or a test client stopping): nobody is left to wake, and nothing may raise.
    import asyncio

    from console.live import _call_soon

    loop = asyncio.new_event_loop()
    woken: list[int] = []
    _call_soon(loop, woken.append, 1)
    loop.run_until_complete(asyncio.sleep(0))
    assert woken == [1]
    loop.close()
    _call_soon(loop, woken.append, 2)  # raised "Event loop is closed" before
    assert woken == [1]
