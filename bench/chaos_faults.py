"""The faults of ``make chaos``, spread evenly over the run, and a process manager's watch.

- **Worker kills.** SIGKILL to one dramatiq worker child of the ``worker`` line: every
  descendant whose cmdline names dramatiq and which has no dramatiq descendant itself (so
  the master is spared whether ``kartabl worker`` execs dramatiq or supervises it).
- **Redis restarts.** The run's own redis-server is SIGKILLed, stays down a few seconds, and
  comes back empty (no persistence): queued jobs are lost, as the design allows.
- **PostgreSQL terminations.** ``pg_terminate_backend`` of every backend of the chaos
  database except the driver's (``application_name=chaos-driver``).
- **Provider faults.** Kavenegar send slow (past our read timeout, the SMS recorded), dropped
  before anything is recorded, or a proxy's 502; Bot API sendMessage slow (recorded: an
  unknown outcome), 502 with Telegram's error body (nothing recorded), dropped; SMTP 4xx at
  MAIL or RCPT, a drop at MAIL, a 451 answer to the data (not taken). An SMTP answer lost
  *after* the data is left out: by design it is resent with the same Message-ID (at least
  once, see README), so it would count as an email sent twice.

The :class:`Watch` restarts any ``Procfile`` line that exits, as a process manager would,
and counts it per line.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import random
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

from bench.chaos_env import DRIVER_APP, PG_ADMIN, Deployment

log = logging.getLogger("bench.chaos")


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, IndexError, ValueError):
            stat = (entry / "stat").read_text()
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            tree.setdefault(ppid, []).append(int(entry.name))
    return tree


def _cmdline(pid: int) -> str:
    try:
        return (Path("/proc") / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def dramatiq_children(root: int) -> list[int]:
    """The dramatiq worker processes under ``root`` (the masters excluded)."""
    tree = _children()
    found: list[int] = []

    def walk(pid: int) -> bool:  # True when a dramatiq process is at or below pid
        below = [walk(child) for child in tree.get(pid, [])]
        mine = "dramatiq" in _cmdline(pid)
        if mine and not any(below) and pid != root:
            found.append(pid)
        return mine or any(below)

    walk(root)
    return found


@dataclass
class Tally:
    worker_kills: int = 0
    redis_restarts: int = 0
    pg_rounds: int = 0
    pg_backends: int = 0
    provider: Counter[str] = field(default_factory=Counter)
    restarts: Counter[str] = field(default_factory=Counter)
    # Seconds from each SIGKILL until the worker line worked again (all its children up)
    worker_gaps: list[float] = field(default_factory=list, repr=False)


class Watch(threading.Thread):
    """A process manager's loop: a Procfile line that exited is started again."""

    def __init__(self, dep: Deployment, tally: Tally) -> None:
        super().__init__(name="chaos-watch", daemon=True)
        self.dep, self.tally = dep, tally
        self.halt = threading.Event()

    def run(self) -> None:
        while not self.halt.wait(0.2):
            for line, proc in list(self.dep.procs.items()):
                if not proc.alive():
                    log.warning("%s exited (%s); restarting it", line, proc.popen.returncode)
                    self.dep.fleet.kill(proc)  # its orphans too
                    self.dep.procs[line] = self.dep.fleet.start(line)
                    self.tally.restarts[line] += 1


def _worker_ready(dep: Deployment, spared: set[int]) -> list[int]:
    """The worker line's children when it is working again (booted, no child we killed
    still listed, as many children as it runs), else []."""
    proc = dep.procs["worker"]
    if not proc.alive() or "booted " not in proc.log():
        return []
    children = dramatiq_children(proc.pid)
    if spared & set(children) or len(children) < dep.worker_processes:
        return []
    return children


def kill_worker_child(dep: Deployment, tally: Tally, rnd: random.Random,
                      killed: set[int]) -> None:
    """SIGKILL one child once the line works (a kill of a worker already shutting down,
    or still booting, would not count as one more fault); then wait until it works again
    (its supervisor respawned the child, or the watch restarted the line), so each kill
    is a fault of its own."""
    killed_at = 0.0
    for phase in ("before", "after"):
        deadline = time.monotonic() + 120
        while not (children := _worker_ready(dep, killed)):
            if time.monotonic() > deadline:
                log.warning("the worker line did not work again within 120 s (%s a kill)",
                            phase)
                return
            time.sleep(0.2)
        if phase == "before":
            pid = rnd.choice(children)
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
                killed.add(pid)
                tally.worker_kills += 1
                killed_at = time.monotonic()
                log.info("SIGKILL worker child %d", pid)
        else:
            tally.worker_gaps.append(time.monotonic() - killed_at)


def restart_redis(dep: Deployment, tally: Tally, down_s: float) -> None:
    dep.redis.kill()
    log.info("redis-server killed; down for %.0f s", down_s)
    time.sleep(down_s)
    dep.redis.start()
    tally.redis_restarts += 1


def terminate_backends(dep: Deployment, tally: Tally) -> None:
    with psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=5) as admin:
        rows = admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s"
            " AND pid <> pg_backend_pid() AND coalesce(application_name, '') <> %s",
            (dep.dbname, DRIVER_APP)).fetchall()
    tally.pg_rounds += 1
    tally.pg_backends += sum(1 for (ok,) in rows if ok)
    log.info("pg_terminate_backend: %d backends", len(rows))


def _provider_faults(dep: Deployment) -> list[tuple[str, Callable[[], None]]]:
    kv, tg, mail = dep.kavenegar, dep.bot_api, dep.smtp.recorder
    return [
        ("kavenegar slow", lambda: kv.fail_next("send", "slow", 4)),
        ("bot_api slow", lambda: tg.fail_next("sendMessage", "slow", 1)),
        ("smtp 451 at MAIL", lambda: mail.fail("MAIL", "451 4.3.0 try again later")),
        ("kavenegar drop", lambda: kv.fail_next("send", "drop")),
        ("bot_api 502", lambda: tg.fail_next("sendMessage", "server_error", 502)),
        ("smtp drop at MAIL", lambda: mail.fail("MAIL", "drop")),
        ("kavenegar 502", lambda: kv.fail_next("send", "http", 502)),
        ("bot_api drop", lambda: tg.fail_next("sendMessage", "drop")),
        ("smtp 450 at RCPT", lambda: mail.fail("RCPT", "450 4.2.1 mailbox busy")),
        ("smtp 451 to the data", lambda: mail.fail("DATA", "451 4.3.0 not taken")),
    ]


def disarm_providers(dep: Deployment) -> int:
    """Drop the provider faults armed but not yet met (no send came by since): they belong
    to the fault period, not to the settling after it. How many there were."""
    kv, tg, mail = dep.kavenegar, dep.bot_api, dep.smtp.recorder
    with kv._lock:  # the stand-ins keep their fault queues private; this is their owner
        n = sum(len(q) for q in kv._faults.values())
        kv._faults.clear()
    with tg._cond:
        n += sum(len(q) for q in tg._faults.values())
        tg._faults.clear()
    for queue in mail.faults.values():
        n += len(queue)
        queue.clear()
    return n


@dataclass
class Plan:
    seconds: float
    worker_kills: int
    redis_restarts: int
    pg_rounds: int
    provider_every_s: float = 4.0
    redis_down_s: float = 3.0


def run_faults(dep: Deployment, plan: Plan, stop: threading.Event, tally: Tally,
               seed: int = 12) -> None:
    """Fire the plan's faults at evenly spaced times over ``plan.seconds``. The worker
    kills have a thread of their own: each waits until the line works again, which may
    take longer than their spacing (then they run late, and the run lasts longer)."""
    rnd = random.Random(seed)
    start = time.monotonic()

    def times(n: int, offset: float) -> list[float]:
        return [plan.seconds * (i + offset) / n for i in range(n)] if n else []

    provider = itertools.cycle(_provider_faults(dep))
    killed: set[int] = set()
    handlers: dict[str, Callable[[], None]] = {
        "kill": lambda: kill_worker_child(dep, tally, rnd, killed),
        "redis": lambda: restart_redis(dep, tally, plan.redis_down_s),
        "pg": lambda: terminate_backends(dep, tally),
    }

    def fire_provider() -> None:
        name, fire = next(provider)
        fire()
        tally.provider[name] += 1

    handlers["provider"] = fire_provider

    def loop(events: list[tuple[float, str]]) -> None:
        for at, kind in sorted(events):
            if stop.wait(max(0.0, start + at - time.monotonic())):
                return
            try:
                handlers[kind]()
            except Exception:  # a fault that failed to fire is reported by the minimums
                log.exception("fault %s failed", kind)

    kills = threading.Thread(target=loop, args=([(t, "kill") for t in
                                                 times(plan.worker_kills, 0.5)],),
                             name="chaos-kills", daemon=True)
    kills.start()
    n_provider = int(plan.seconds / plan.provider_every_s)
    loop([(t, "redis") for t in times(plan.redis_restarts, 0.35)]
         + [(t, "pg") for t in times(plan.pg_rounds, 0.6)]
         + [(t, "provider") for t in times(n_provider, 0.2)])
    kills.join()
