"""``python -m bench.live``: how fast a committed event reaches every live stream of one web
process (issue 14: with 200 connected SSE clients, within 1 s at p99).

The fleet's parts, nothing mocked: a private PostgreSQL database (migrated), a private Redis
namespace (``KARTABL_BROKER=redis``), one ``kartabl web`` (one uvicorn worker) as a
subprocess, its own poll set to ten minutes so only the Redis wake can bring an event.
``--clients`` streams (``GET /live``, each signed in with a session of its own: a third
coordinators, the rest agents of the conversation's team, so every one may see every event)
are read by this process on one asyncio loop. Then ``--events`` notes are committed by this
process through the core (``kartabl.workflow.note``, its wake published on Redis as a worker's
would be), ``--interval`` apart. The latency of an event at a client runs from just after
its commit returned to the moment the client has read it; the client's own parsing is
included (the measure errs long).

Every client must get every event exactly once, in order; anything else exits non-zero.
Its line: ``live_clients=<n> events=<m> p50_ms=<x> p99_ms=<y> max_ms=<z> delivered=<d>
expected=<n*m>``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import tempfile
import time
from pathlib import Path

import httpx
import redis

from bench.ingest import REDIS_URL, bench_database, say
from bench.webhooks import free_port, pct, start_web, stop_web, wait_ready


class Client:
    def __init__(self, cookie: str) -> None:
        self.cookie = cookie
        self.got: dict[int, float] = {}  # event id -> when read (perf_counter)
        self.order: list[int] = []
        self.ready = asyncio.Event()


async def read(base: str, c: Client, stop: asyncio.Event) -> None:
    timeout = httpx.Timeout(10, read=None)
    async with httpx.AsyncClient(timeout=timeout, cookies={"kartabl_session": c.cookie}) as h, \
            h.stream("GET", base + "/live") as r:
        if r.status_code != 200:
            raise SystemExit(f"/live answered {r.status_code}")
        c.ready.set()
        async for line in r.aiter_lines():
            if line.startswith("data: "):
                e = json.loads(line[6:])
                c.got[e["id"]] = time.perf_counter()
                c.order.append(e["id"])
            if stop.is_set():
                return


def seed(url: str, n: int, secret: str) -> tuple[list[str], int, int]:
    """Sessions for ``n`` people, the conversation, and a coordinator's id."""
    from sqlalchemy.orm import Session

    from config.settings import Settings
    from console import auth
    from kartabl.db import make_engine
    from kartabl.models import Role
    from tests import factories as f

    settings = Settings(secret_key=secret, database_url=url)
    with Session(make_engine(url), expire_on_commit=False) as s:
        team = f.team(s, "support")
        conv = f.conversation(s, team=team)
        people = [f.person(s, f"p{i}", Role.COORDINATOR if i % 3 == 0 else Role.AGENT,
                           teams=[team]) for i in range(n)]
        cookies = [auth.start_session(s, p, settings=settings) for p in people]
        s.commit()
        return cookies, conv.id, people[0].id


def commit_notes(url: str, ns: str, conv: int, actor_id: int, events: int,
                 interval: float) -> dict[int, float]:
    from sqlalchemy.orm import Session

    from kartabl import live, workflow
    from kartabl.db import make_engine
    from kartabl.models import Person
    from workers.live import RedisTransport

    live.set_transport(RedisTransport(REDIS_URL, ns))
    committed: dict[int, float] = {}
    engine = make_engine(url)
    for i in range(events):
        with Session(engine, expire_on_commit=False) as s:
            actor = s.get(Person, actor_id)
            event = workflow.note(s, actor, conv, f"bench note {i}")
            s.commit()  # the wake is published by the commit's hook, before this returns
            committed[event.id] = time.perf_counter()
        time.sleep(interval)
    engine.dispose()
    return committed


async def run(base: str, url: str, ns: str, cookies: list[str], conv: int, actor: int,
              events: int, interval: float) -> tuple[list[Client], dict[int, float]]:
    stop = asyncio.Event()
    clients = [Client(c) for c in cookies]
    tasks = [asyncio.create_task(read(base, c, stop)) for c in clients]
    await asyncio.wait_for(asyncio.gather(*(c.ready.wait() for c in clients)), 60)
    await asyncio.sleep(0.5)
    committed = await asyncio.to_thread(commit_notes, url, ns, conv, actor, events, interval)
    deadline = time.perf_counter() + 10
    while time.perf_counter() < deadline and any(len(c.got) < events for c in clients):
        await asyncio.sleep(0.05)
    stop.set()
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return clients, committed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clients", type=int, default=200)
    ap.add_argument("--events", type=int, default=50)
    ap.add_argument("--interval", type=float, default=0.1, help="seconds between commits")
    args = ap.parse_args()

    from kartabl.migrate import upgrade

    ns = f"kbench-live-{secrets.token_hex(3)}"
    secret = secrets.token_urlsafe(24)
    with bench_database() as url, tempfile.TemporaryDirectory(prefix="kbench-live-") as tmp:
        upgrade(url)
        sa_url = url.replace("postgresql://", "postgresql+psycopg://", 1)
        cookies, conv, actor = seed(sa_url, args.clients, secret)
        env = {**os.environ, "KARTABL_DATABASE_URL": url, "KARTABL_BROKER": "redis",
               "KARTABL_REDIS_URL": REDIS_URL, "KARTABL_REDIS_NAMESPACE": ns,
               "KARTABL_SECRET_KEY": secret, "KARTABL_LIVE_POLL_S": "600",
               "KARTABL_LOG_LEVEL": "WARNING"}
        port, log = free_port(), Path(tmp) / "web.log"
        base = f"http://127.0.0.1:{port}"
        proc = start_web(env, port, log)
        try:
            wait_ready(base, proc, log)
            say(f"kartabl web ready on :{port}; {args.clients} streams, then {args.events} "
                f"events {args.interval * 1000:.0f} ms apart")
            clients, committed = asyncio.run(run(base, sa_url, ns, cookies, conv, actor,
                                                 args.events, args.interval))
        finally:
            stop_web(proc)
        r = redis.Redis.from_url(REDIS_URL)
        for key in r.scan_iter(f"{ns}:*"):
            r.delete(key)

    ms = [1000 * (c.got[eid] - at) for c in clients for eid, at in committed.items()
          if eid in c.got]
    delivered = len(ms)
    expected = len(clients) * len(committed)
    wrong = sum(1 for c in clients if c.order != sorted(committed))
    p50, p99 = pct(ms, 0.50), pct(ms, 0.99)
    say(f"{delivered} of {expected} deliveries; p50 {p50:.1f} ms, p99 {p99:.1f} ms, max "
        f"{max(ms, default=0):.1f} ms; clients with missing, extra or unordered events: {wrong}")
    print(f"live_clients={len(clients)} events={len(committed)} p50_ms={p50:.1f} "
          f"p99_ms={p99:.1f} max_ms={max(ms, default=0):.1f} delivered={delivered} "
          f"expected={expected}", flush=True)
    if delivered != expected or wrong:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
