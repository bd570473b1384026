"""``python -m bench.webchat``: the website widget's round trips with many connected visitors
on one web process (issue 16: 500 visitors).

The fleet's parts, nothing mocked: a private PostgreSQL database (migrated), a private Redis
namespace (``KARTABL_BROKER=redis``), one ``kartabl web`` (one uvicorn worker) and one
``kartabl worker`` as subprocesses; the widget's own poll set to ten minutes, so only the
Redis wake can bring an event. ``--visitors`` event streams (``GET /widget/<id>/events``,
each a visitor of its own) and one coordinator's console stream (``GET /live``) are read by
this process on one asyncio loop. Then, ``--rounds`` times, one after the other:

- **visitor → agent**: a visitor POSTs a message; measured from just before the POST to the
  moment the coordinator's stream shows its ``message.routed`` event (the POST, the commit,
  the routing job through Redis and the worker, the wake, the console's push);
- **reply → visitor**: the widget's sender appends a reply to that visitor's log, as the
  outbox's worker does once a reply is approved (the outbox's queueing before it is the
  dispatch path every channel shares); measured from just after the sender's commit to the
  moment that visitor's stream has the event.

Every visitor stream must get its reply exactly once and nothing else; anything else exits
non-zero. Its line: ``webchat_visitors=<n> rounds=<m> in_p50_ms=<x> in_p99_ms=<y>
out_p50_ms=<x> out_p99_ms=<y>``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import tempfile
import time
import uuid
from pathlib import Path

import httpx
import redis

from bench.ingest import REDIS_URL, bench_database, say, start_workers, stop_workers
from bench.webhooks import free_port, pct, start_web, stop_web, wait_ready

ORIGIN = "https://shop.bench.example"
WIDGET = "wbench"


class Stream:
    def __init__(self) -> None:
        self.got: dict[int, float] = {}  # seq -> when read
        self.kinds: list[str] = []
        self.ready = asyncio.Event()


async def read(h: httpx.AsyncClient, url: str, headers: dict[str, str], s: Stream,
               on_data: object = None) -> None:
    async with h.stream("GET", url, headers=headers) as r:
        if r.status_code != 200:
            raise SystemExit(f"{url} answered {r.status_code}")
        s.ready.set()
        async for line in r.aiter_lines():
            if line.startswith("data: "):
                e = json.loads(line[6:])
                if "seq" in e:
                    s.got[e["seq"]] = time.perf_counter()
                s.kinds.append(str(e.get("kind")))


def seed(url: str, n: int, secret: str) -> tuple[list[str], str]:
    """``n`` visitor tokens of the bench widget, and a coordinator's session cookie."""
    from pydantic import SecretStr
    from sqlalchemy.orm import Session

    from channels.webchat.identity import VisitorTokens, new_visitor_key
    from config.settings import Settings
    from console import auth
    from kartabl.db import make_engine
    from kartabl.models import Role, WebchatVisitor, Widget
    from tests import factories as f

    tokens = VisitorTokens(SecretStr(secret))
    with Session(make_engine(url), expire_on_commit=False) as s:
        f.team(s, "support")
        widget = Widget(public_id=WIDGET, name="bench", secret="s" * 64, origins=[ORIGIN])
        s.add(widget)
        s.flush()
        keys = [new_visitor_key() for _ in range(n)]
        s.add_all(WebchatVisitor(widget_id=widget.id, key=k) for k in keys)
        coord = f.person(s, "coord", Role.COORDINATOR)
        cookie = auth.start_session(s, coord, settings=Settings(secret_key=secret,
                                                                  database_url=url))
        s.commit()
    return [tokens.sign(k) for k in keys], cookie


def send_reply(url: str, ns: str, key: str, n: int) -> float:
    """The widget's sender appends a reply (its wake published on Redis, as a worker's);
    returns when its commit had returned."""
    from sqlalchemy.orm import sessionmaker

    from kartabl import live
    from kartabl.db import make_engine
    from kartabl.messages import OutboundMessage
    from kartabl.models import Channel
    from responders.webchat import WebchatSender
    from workers.live import RedisTransport

    live.set_transport(RedisTransport(REDIS_URL, ns))
    engine = make_engine(url)
    try:
        WebchatSender(sessionmaker(engine)).send(OutboundMessage(
            reply_id=n, conversation_id=0, channel=Channel.WEBCHAT, recipient=key,
            text=f"bench reply {n}", idempotency_key=f"bench-{n}"))
        return time.perf_counter()
    finally:
        engine.dispose()


async def run(base: str, url: str, ns: str, tokens: list[str], cookie: str,
              rounds: int) -> tuple[list[float], list[float], list[Stream], list[int]]:
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=None)
    async with httpx.AsyncClient(timeout=httpx.Timeout(10, read=None), limits=limits) as h:
        visitors = [Stream() for _ in tokens]
        agent = Stream()
        tasks = [asyncio.create_task(read(
            h, f"{base}/widget/{WIDGET}/events?visitor={t}", {"Origin": ORIGIN}, v))
            for t, v in zip(tokens, visitors, strict=True)]
        tasks.append(asyncio.create_task(read(
            h, f"{base}/live", {"Cookie": f"kartabl_session={cookie}"}, agent)))
        await asyncio.wait_for(asyncio.gather(*(v.ready.wait() for v in [*visitors, agent])),
                               120)
        await asyncio.sleep(0.5)
        inbound, outbound, chosen = [], [], []
        for i in range(rounds):
            k = (i * 7919) % len(tokens)  # spread over the visitors
            chosen.append(k)
            routed_before = agent.kinds.count("message.routed")
            t0 = time.perf_counter()
            r = await h.post(f"{base}/widget/{WIDGET}/messages", headers={
                "Origin": ORIGIN, "X-Kartabl-Visitor": tokens[k]},
                json={"client_id": uuid.uuid4().hex, "text": f"bench message {i}"})
            if r.status_code != 200:
                raise SystemExit(f"POST answered {r.status_code}: {r.text}")
            seq = r.json()["seq"]
            deadline = time.perf_counter() + 10
            while agent.kinds.count("message.routed") == routed_before:
                if time.perf_counter() > deadline:
                    raise SystemExit(f"round {i}: the agent's stream never saw the message")
                await asyncio.sleep(0.001)
            inbound.append(1000 * (time.perf_counter() - t0))
            key = tokens[k].rpartition(".")[0]
            committed = await asyncio.to_thread(send_reply, url, ns, key, i)
            while seq + 1 not in visitors[k].got:
                if time.perf_counter() > deadline + 10:
                    raise SystemExit(f"round {i}: the visitor's stream never saw the reply")
                await asyncio.sleep(0.001)
            outbound.append(1000 * (visitors[k].got[seq + 1] - committed))
        await asyncio.sleep(0.3)  # anything doubled would arrive now
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        return inbound, outbound, visitors, chosen


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--visitors", type=int, default=500)
    ap.add_argument("--rounds", type=int, default=100)
    args = ap.parse_args()

    from kartabl.migrate import upgrade

    ns = f"kbench-webchat-{secrets.token_hex(3)}"
    secret = secrets.token_urlsafe(24)
    with bench_database() as url, tempfile.TemporaryDirectory(prefix="kbench-wc-") as tmp:
        upgrade(url)
        sa_url = url.replace("postgresql://", "postgresql+psycopg://", 1)
        tokens, cookie = seed(sa_url, args.visitors, secret)
        channels = Path(tmp) / "channels.toml"
        channels.write_text("[webchat]\npoll_s = 600\nper_ip_per_min = 1000000\n"
                            "per_visitor_per_min = 1000000\n")
        env = {**os.environ, "KARTABL_DATABASE_URL": url, "KARTABL_BROKER": "redis",
               "KARTABL_REDIS_URL": REDIS_URL, "KARTABL_REDIS_NAMESPACE": ns,
               "KARTABL_SECRET_KEY": secret, "KARTABL_LIVE_POLL_S": "600",
               "KARTABL_CHANNELS_FILE": str(channels), "KARTABL_LOG_LEVEL": "WARNING"}
        port, log = free_port(), Path(tmp) / "web.log"
        base = f"http://127.0.0.1:{port}"
        web = start_web(env, port, log)
        workers = start_workers(env, 1, 4, Path(tmp) / "worker.log")
        try:
            wait_ready(base, web, log)
            say(f"kartabl web ready on :{port}; {args.visitors} visitor streams and an "
                f"agent's, then {args.rounds} round trips")
            inbound, outbound, visitors, chosen = asyncio.run(
                run(base, sa_url, ns, tokens, cookie, args.rounds))
        finally:
            stop_web(web)
            stop_workers(workers)
        r = redis.Redis.from_url(REDIS_URL)
        for key in r.scan_iter(f"{ns}:*"):
            r.delete(key)

    # Each visitor's stream has exactly its own events: the message and the reply per round.
    expected = {k: 2 * chosen.count(k) for k in set(chosen)}
    wrong = sum(1 for i, v in enumerate(visitors)
                if len(v.kinds) != expected.get(i, 0) or sorted(v.got) != list(v.got))
    in50, in99 = pct(inbound, 0.50), pct(inbound, 0.99)
    out50, out99 = pct(outbound, 0.50), pct(outbound, 0.99)
    say(f"visitor → agent: p50 {in50:.1f} ms, p99 {in99:.1f} ms; reply → visitor: p50 "
        f"{out50:.1f} ms, p99 {out99:.1f} ms; visitor streams with missing, extra or "
        f"unordered events: {wrong}")
    print(f"webchat_visitors={len(visitors)} rounds={len(inbound)} in_p50_ms={in50:.1f} "
          f"in_p99_ms={in99:.1f} out_p50_ms={out50:.1f} out_p99_ms={out99:.1f}", flush=True)
    if wrong:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
