"""Live events across a fleet: two real ``kartabl web`` processes on PostgreSQL and Redis.

A step taken through one web process reaches a browser stream held by the other (the wake
travels by Redis pub/sub; the processes' own poll is set to ten minutes, so only the wake
can bring it in time); a stream that reconnects with its ``Last-Event-ID`` gets every event
it missed; an agent never receives another team's events; a bearer token or no session
gets 401. And the embedded mode (stub broker, SQLite, one process) pushes too.
"""

from __future__ import annotations

import shutil
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import psycopg
import pytest
import redis
from sqlalchemy import func, select
from sqlalchemy.orm import Session

import config.routing
import config.settings
from config.settings import Settings
from console import auth
from kartabl import service_clock, workflow
from kartabl.db import make_engine
from kartabl.migrate import upgrade
from kartabl.models import Event, Person, Role
from tests import factories as f
from tests.conftest import PG_ADMIN, REDIS_URL
from tests.live.helpers import SECRET, Web, sse, web_process, web_processes

pytestmark = [pytest.mark.fleet, pytest.mark.timeout(120)]


@dataclass
class World:
    db_url: str
    coordinator: str  # session cookies
    agent_a: str
    agent_a_id: int
    conv_a: int  # team A's
    conv_b: int  # team B's, the agent is not in it
    team_b: int
    coordinator_id: int
    since: str  # the newest event once seeded: a stream resumed from it sees this test's only

    def session(self) -> Session:
        return Session(make_engine(self.db_url), expire_on_commit=False)


def _cookie(s: Session, person_id: int, settings: Settings) -> str:
    person = s.get(Person, person_id)
    assert person is not None
    return auth.start_session(s, person, settings=settings)


def seed(db_url: str, tag: str = "") -> World:
    """Two teams, a coordinator, an agent of team A and a conversation of each team; names
    end in ``tag`` so that several worlds share a database (one per test of a module)."""
    settings = Settings(secret_key=SECRET, database_url=db_url)
    # the seed steps the workflow in this process: its edge configures the clock
    service_clock.configure(settings, config.routing.load(config.settings.DEFAULT_ROUTING_FILE))
    with Session(make_engine(db_url), expire_on_commit=False) as s:
        team_a, team_b = f.team(s, f"team-a{tag}"), f.team(s, f"team-b{tag}")
        coord = f.person(s, f"coord{tag}", Role.COORDINATOR)
        agent = f.person(s, f"agent-a{tag}", Role.AGENT, teams=[team_a])
        conv_a = f.conversation(s, team=team_a)
        conv_b = f.conversation(s, team=team_b)
        cookies = _cookie(s, coord.id, settings), _cookie(s, agent.id, settings)
        s.flush()
        since = str(s.scalar(select(func.max(Event.id))) or 0)
        world = World(db_url, *cookies, agent.id, conv_a.id, conv_b.id, team_b.id, coord.id,
                      since)
        s.commit()
    return world


def note_via(web: Web, cookie: str, conv: int, text: str) -> None:
    """A note taken through ``web``'s page, as a browser would."""
    csrf = auth.csrf_token(cookie, settings=Settings(secret_key=SECRET))
    r = httpx.post(f"{web.url}/conversations/{conv}/notes", cookies={"kartabl_session": cookie},
                   data={"text": text, "csrf_token": csrf}, follow_redirects=False, timeout=10)
    assert r.status_code == 303, r.text


@pytest.fixture(scope="module")
def web_pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Web, Web, str]]:
    """Two ``kartabl web`` processes on a PostgreSQL database of their own and Redis, for
    the whole module: starting them is most of a test's time (5-10 s), and nothing of one
    test stays in them but rows, which the next test's world does not see (its own people
    and teams). Each process's live cursor only moves forward, as in a fleet."""
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        pytest.skip(f"Redis is not available: {exc}")
    name = f"kartabl_live_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=3) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = PG_ADMIN.rsplit("/", 1)[0] + f"/{name}"
    try:
        upgrade(url)
        db_url = url.replace("postgresql://", "postgresql+psycopg://", 1)
        env = {"KARTABL_DATABASE_URL": db_url, "KARTABL_BROKER": "redis",
               "KARTABL_REDIS_URL": REDIS_URL,
               "KARTABL_REDIS_NAMESPACE": f"kt-live-{uuid.uuid4().hex[:8]}",
               "KARTABL_LIVE_POLL_S": "600"}
        with web_processes(tmp_path_factory.mktemp("live"), ["web1", "web2"], env) as (one, two):
            yield one, two, db_url
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def fleet(web_pair: tuple[Web, Web, str]) -> tuple[Web, Web, World]:
    one, two, db_url = web_pair
    return one, two, seed(db_url, tag=f"-{uuid.uuid4().hex[:6]}")


def test_a_step_through_one_web_process_reaches_a_stream_on_the_other(fleet):
    one, two, world = fleet
    with sse(two.url, world.coordinator, last_event_id=world.since) as stream:
        assert stream.status == 200
        time.sleep(1.0)  # the second process's subscription to Redis is up (it says so once)
        started = time.monotonic()
        note_via(one, world.coordinator, world.conv_a, "seen on the other process")
        pushed = stream.next(timeout=5)
        took = time.monotonic() - started
    assert pushed.data["kind"] == "conversation.note"
    assert pushed.data["conversation"] == world.conv_a
    assert "seen on the other" not in str(pushed.data)  # ids and kinds only, never the text
    assert took < 3, f"{took:.2f} s: not woken (the poll is 600 s)\n{two.logs()}"


def test_a_reconnect_with_last_event_id_misses_nothing(fleet):
    one, two, world = fleet
    with sse(two.url, world.agent_a, last_event_id=world.since) as stream:
        note_via(one, world.coordinator, world.conv_a, "first")
        first = stream.next()
    # Gone: meanwhile three more steps, through both processes and the core directly.
    note_via(one, world.coordinator, world.conv_a, "second")
    note_via(two, world.coordinator, world.conv_a, "third")
    with world.session() as s:
        coord = s.get(Person, world.coordinator_id)
        workflow.assign(s, coord, world.conv_a, person_id=world.agent_a_id)
        s.commit()
    with sse(one.url, world.agent_a, last_event_id=first.id) as stream:
        missed = [stream.next() for _ in range(4)]
        assert stream.quiet(1.0) == []  # and nothing twice
    # the assignment also notifies the agent (kartabl.notifications): theirs alone
    assert [m.data["kind"] for m in missed] == [
        "conversation.note", "conversation.note", "conversation.assigned",
        "notification.created"]
    ids = [m.data["id"] for m in missed]
    assert ids == sorted(ids) and ids[0] > first.data["id"]


def test_an_agent_never_receives_another_teams_events(fleet):
    one, two, world = fleet
    with sse(two.url, world.agent_a, last_event_id=world.since) as agent, \
            sse(one.url, world.coordinator, last_event_id=world.since) as coord:
        time.sleep(1.0)
        note_via(one, world.coordinator, world.conv_b, "team B only")
        note_via(one, world.coordinator, world.conv_a, "team A")
        got = agent.next()
        # The coordinator sees both, in commit order; the agent only team A's: had B's
        # reached the agent, it would have come first.
        assert [coord.next().data["conversation"] for _ in range(2)] == [
            world.conv_b, world.conv_a]
        assert agent.quiet(1.0) == []
    assert got.data["conversation"] == world.conv_a
    # Nor on a resume from before both.
    with sse(one.url, world.agent_a, last_event_id="1") as again:
        replayed = again.quiet(2.0)
    assert replayed and {e.data["conversation"] for e in replayed} == {world.conv_a}


def test_an_agent_sees_a_conversation_leave_their_team_and_nothing_after(fleet):
    one, two, world = fleet
    csrf = auth.csrf_token(world.coordinator, settings=Settings(secret_key=SECRET))
    with sse(two.url, world.agent_a, last_event_id=world.since) as agent:
        time.sleep(1.0)
        # The coordinator refers team A's conversation to team B: the agent's queue must
        # drop it, so the referral reaches them
        r = httpx.post(f"{one.url}/conversations/{world.conv_a}/refer",
                       cookies={"kartabl_session": world.coordinator}, timeout=10,
                       data={"team_id": str(world.team_b), "note": "billing's",
                             "csrf_token": csrf}, follow_redirects=False)
        assert r.status_code == 303, r.text
        assert agent.next().data["kind"] == "conversation.referred"
        # and what happens to it in team B afterwards does not
        note_via(one, world.coordinator, world.conv_a, "team B's business now")
        assert agent.quiet(1.5) == []


def test_a_stream_needs_a_session(fleet):
    one, _, _ = fleet
    assert httpx.get(one.url + "/live", timeout=5).status_code == 401
    r = httpx.get(one.url + "/live", headers={"Authorization": "Bearer anything"}, timeout=5)
    assert r.status_code == 401
    with sse(one.url, "not-a-session") as stream:
        assert stream.status == 401


def test_the_embedded_mode_pushes_in_process(tmp_path: Path, sqlite_template: Path):
    db = tmp_path / "k.db"
    shutil.copy(sqlite_template, db)
    db_url = f"sqlite:///{db}"
    world = seed(db_url)
    env = {"KARTABL_DATABASE_URL": db_url, "KARTABL_BROKER": "stub",
           "KARTABL_LIVE_POLL_S": "600"}
    with web_process(tmp_path, "web", env) as web, sse(web.url, world.agent_a) as stream:
        started = time.monotonic()
        note_via(web, world.coordinator, world.conv_a, "embedded")
        pushed = stream.next()
        assert time.monotonic() - started < 3
    assert pushed.data["kind"] == "conversation.note"


def test_a_web_process_with_open_streams_stops_promptly(tmp_path: Path, sqlite_template: Path):
    # uvicorn drains every response before it exits, and a stream never ends on its own:
    # the server ends the streams when told to stop (boot/web.py).
    db = tmp_path / "k.db"
    shutil.copy(sqlite_template, db)
    world = seed(f"sqlite:///{db}")
    env = {"KARTABL_DATABASE_URL": f"sqlite:///{db}", "KARTABL_BROKER": "stub"}
    with web_process(tmp_path, "web", env) as web, sse(web.url, world.agent_a) as stream:
        assert stream.status == 200
        started = time.monotonic()
        web.proc.terminate()
        web.proc.wait(timeout=10)
        assert time.monotonic() - started < 5, web.logs()
