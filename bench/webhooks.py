"""``python -m bench.webhooks``: webhook ingest throughput of the real web process.

The fleet's parts, nothing mocked: a private PostgreSQL database (schema migrated), a
private Redis namespace (``KARTABL_BROKER=redis``, so the routing enqueue after each commit
really reaches Redis), a channels file with one Telegram bot in webhook mode and an ``[sms]``
section with a callback secret, and ``kartabl web`` (the Procfile's web command: one
uvicorn worker serving ``console.app:app``) started as a subprocess on a free port.

A client of ``--concurrency`` threads (one httpx client, one keep-alive connection each)
keeps that many requests in flight (closed loop) until ``--requests`` are answered: Telegram
updates (distinct ``update_id``, several users) and Kavenegar receive callbacks (distinct
``messageid``, Persian text), plus a ``--retry-share`` of resends of bodies already answered
200 (a retried webhook: it must be deduplicated and answered ``created: false``). Latency
runs from sending a request to having read its answer; the webhook commits before it
answers, so an answered request is a committed message. ``2 × concurrency`` warm-up
requests (real messages too) go first, untimed.

Afterwards the database must hold exactly one message per distinct update/SMS (none lost,
no duplicate, nothing else) and Redis one routing enqueue per committed message; every
answer must be 200, and every retry answered as a duplicate. Anything else exits non-zero.

Its line is ``webhook_reqs_per_s=<x> p50_ms=<y> p99_ms=<z> committed=<n> expected=<n>``:
the rate counts every timed request (retries included); p50/p99 are those of the requests
that committed a new message (retries are reported apart, on stderr).
"""

from __future__ import annotations

import argparse
import math
import os
import random
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import httpx
import psycopg
import redis

from bench.ingest import REDIS_URL, bench_database, say
from bench.ports import free_port
from bench.webhooks_load import BOT, LINE, Load, bodies, plan_with_retries, run_load


def write_channels_file(directory: Path) -> Path:
    # Nothing listens on `nowhere`: the webhooks never call out, and a send would fail loudly.
    nowhere = f"http://127.0.0.1:{free_port()}"
    path = directory / "channels.toml"
    path.write_text(
        f'[[telegram.bots]]\nname = "{BOT}"\ntoken = "100001:bench-not-a-token"\n'
        f'base_url = "{nowhere}/bot"\nmode = "webhook"\n'
        'webhook_secret_env = "KARTABL_BENCH_TG_SECRET"\nteam = "support"\n\n'
        f'[sms]\napi_key = "bench-not-a-key"\nbase_url = "{nowhere}"\nline = "{LINE}"\n'
        'team = "support"\nwebhook_secret_env = "KARTABL_BENCH_SMS_SECRET"\n',
        encoding="utf-8",
    )
    return path


def start_web(env: dict[str, str], port: int, log: Path) -> subprocess.Popen[bytes]:
    kartabl = Path(sys.executable).parent / "kartabl"  # the venv's console script
    with log.open("wb") as out:
        return subprocess.Popen(
            [str(kartabl), "web", "--host", "127.0.0.1", "--port", str(port)], env=env,
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )


def wait_ready(base: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"kartabl web exited ({proc.returncode}):\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass  # not listening yet
        time.sleep(0.1)
    raise SystemExit(f"kartabl web not ready within 60 s:\n{log.read_text()[-3000:]}")


def stop_web(proc: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=15)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        os.killpg(proc.pid, signal.SIGKILL)


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process (Linux /proc; NaN elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_jiffies() -> tuple[int, int]:
    """(busy, total) CPU time of the whole machine since boot (Linux /proc; zeros elsewhere).
    Whatever else runs on the machine counts too: it is reported, not subtracted."""
    try:
        values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except OSError:
        return 0, 0
    idle = values[3] + values[4]  # idle + iowait
    return sum(values[:8]) - idle, sum(values[:8])


def pct(values: list[float], q: float) -> float:
    """Nearest-rank percentile (no interpolation: p99 is a latency that was observed)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def committed(url: str) -> list[tuple[str, str, int]]:
    with psycopg.connect(url) as c:
        rows = c.execute("SELECT channel::text, external_id, id FROM message").fetchall()
    return [(str(ch), str(ext), int(mid)) for ch, ext, mid in rows]


def enqueued_ids(r: redis.Redis, ns: str) -> Counter[int]:
    """Message ids in the ``route_messages`` tasks waiting on the inbound queue (no worker
    runs, so every enqueue since the start is still there)."""
    import dramatiq

    ids: Counter[int] = Counter()
    for raw in r.hvals(f"{ns}:inbound.msgs"):
        task = dramatiq.Message.decode(raw if isinstance(raw, bytes) else raw.encode())
        if task.actor_name == "route_messages":
            ids.update(task.args[0])
    return ids


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--requests", type=int, default=4_000, help="timed requests, retries included")
    ap.add_argument("--concurrency", type=int, default=16, help="requests in flight")
    ap.add_argument("--retry-share", type=float, default=0.10,
                    help="share of the timed requests that resend an answered body")
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    if args.requests < 1 or args.concurrency < 1 or not 0 <= args.retry_share < 1:
        ap.error("--requests and --concurrency must be positive, --retry-share in [0, 1)")
    retries = round(args.requests * args.retry_share)
    if retries and args.requests - retries < 4 * args.concurrency:
        ap.error("retries resend answered bodies: send at least 4 × concurrency new ones")

    from rich.console import Console
    from rich.progress import Progress

    from kartabl.migrate import upgrade

    rng = random.Random(args.seed)
    tg_secret, sms_secret = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
    warmup = bodies(2 * args.concurrency, 0, rng, tg_secret, sms_secret)
    originals = bodies(args.requests - retries, len(warmup), rng, tg_secret, sms_secret)
    plan = plan_with_retries(originals, retries, args.concurrency, rng)
    expected = {r.key for r in (*warmup, *originals)}

    ns = f"kbench-wh-{secrets.token_hex(3)}"
    r = redis.Redis.from_url(REDIS_URL)
    with bench_database() as url, tempfile.TemporaryDirectory(prefix="kbench-wh-") as tmp:
        upgrade(url)
        env = {
            **os.environ,
            "KARTABL_DATABASE_URL": url,
            "KARTABL_BROKER": "redis",
            "KARTABL_REDIS_URL": REDIS_URL,
            "KARTABL_REDIS_NAMESPACE": ns,
            "KARTABL_CHANNELS_FILE": str(write_channels_file(Path(tmp))),
            "KARTABL_BENCH_TG_SECRET": tg_secret,
            "KARTABL_BENCH_SMS_SECRET": sms_secret,
            "KARTABL_SECRET_KEY": secrets.token_urlsafe(24),
            # As the fleet logs: JSON at INFO, so every request writes its access line.
            "KARTABL_LOG_FORMAT": "json",
            "KARTABL_LOG_LEVEL": "INFO",
        }
        port, log = free_port(), Path(tmp) / "web.log"
        base = f"http://127.0.0.1:{port}"
        proc = start_web(env, port, log)
        try:
            wait_ready(base, proc, log)
            say(f"kartabl web (one uvicorn worker) ready on :{port}; {len(warmup)} warm-up "
                f"requests, then {args.requests} timed ({retries} retries) at concurrency "
                f"{args.concurrency}")
            warm = Load(list(warmup), rng)
            run_load(base, warm, args.concurrency)
            web_cpu0, client_cpu0 = cpu_seconds(proc.pid), time.process_time()
            busy0, total0 = machine_jiffies()
            with Progress(console=Console(stderr=True), transient=True) as progress:
                task = progress.add_task("webhook requests", total=len(plan))
                load = Load(plan, rng, lambda: progress.advance(task))
                wall = run_load(base, load, args.concurrency)
            web_cpu = cpu_seconds(proc.pid) - web_cpu0
            client_cpu = time.process_time() - client_cpu0
            busy1, total1 = machine_jiffies()
        finally:
            stop_web(proc)
        rows = committed(url)
        enqueued = enqueued_ids(r, ns)
        for key in r.scan_iter(f"{ns}:*"):
            r.delete(key)

    failures = warm.failures + load.failures
    dedup_errors = warm.dedup_errors + load.dedup_errors
    got = {(ch, ext) for ch, ext, _ in rows}
    ids = {mid for _, _, mid in rows}
    rate = len(plan) / wall
    p50, p99 = pct(load.new_ms, 0.50), pct(load.new_ms, 0.99)
    say(f"{rate:.0f} requests/s ({len(originals) / wall:.0f} new messages/s) over {wall:.1f} s; "
        f"new messages p50 {p50:.1f} ms, p99 {p99:.1f} ms; retries p50 "
        f"{pct(load.retry_ms, 0.5):.1f} ms, p99 {pct(load.retry_ms, 0.99):.1f} ms")
    busy = 100 * (busy1 - busy0) / max(1, total1 - total0)
    say(f"CPU while timed: kartabl web {web_cpu:.1f} s ({100 * web_cpu / wall:.0f} % of a "
        f"core), client {client_cpu:.1f} s ({100 * client_cpu / wall:.0f} %); the machine's "
        f"{os.cpu_count()} cores {busy:.0f} % busy (PostgreSQL, Redis and anything else)")
    say(f"non-200 answers: {sum(failures.values())} {dict(failures) or ''}; retries answered "
        f"as new (or originals as duplicates): {dedup_errors}")

    problems = []
    if failures:
        problems.append(f"{sum(failures.values())} requests not answered 200: {dict(failures)}")
    if dedup_errors:
        problems.append(f"{dedup_errors} answers with the wrong 'created' flag")
    if len(rows) != len(expected) or got != expected:
        problems.append(f"{len(rows)} messages committed, {len(expected)} expected: "
                        f"{len(expected - got)} missing, {len(got - expected)} unexpected")
    if set(enqueued) != ids or any(n != 1 for n in enqueued.values()):
        problems.append(f"routing enqueued for {len(enqueued)} ids "
                        f"({sum(enqueued.values())} times), {len(ids)} committed")
    print(f"webhook_reqs_per_s={rate:.1f} p50_ms={p50:.1f} p99_ms={p99:.1f} "
          f"committed={len(rows)} expected={len(expected)}", flush=True)
    if problems:
        say("FAILED: " + "; ".join(problems))
        raise SystemExit(1)
    say(f"verified: {len(rows)} messages committed, one per distinct update/SMS; "
        f"{len(ids)} routing enqueues in Redis, one per message")


if __name__ == "__main__":
    main()
