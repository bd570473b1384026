"""``make chaos``: the fleet as deployed, under faults, for a few minutes.

Every ``Procfile`` line runs as its own OS process on a PostgreSQL database and a
redis-server of the run's own, against the Kavenegar and Bot API stand-ins and a local SMTP
server (:mod:`bench.chaos_env`). Customers write on every channel while the console approves
replies (:mod:`bench.chaos_load`), and the faults fire (:mod:`bench.chaos_faults`): worker
children SIGKILLed, Redis killed and restarted, PostgreSQL backends terminated, provider
answers slow, dropped or refused. A process manager's watch restarts any line that exits.

When the faults stop, the run waits at most ``KARTABL_SENDING_STALE_S`` + two sweep
intervals (+ a few seconds of this machine's slack) for the outbox to settle, then counts
(:mod:`bench.chaos_count`) and prints one line::

    chaos_in=<n> lost=0 duplicated=0 double_routed=0 out=<m> double_sent=0 stuck=0
    telegram_unknown=<k> worst_route_delay_s=<x>

It exits 1 when lost, duplicated, double_routed, double_sent or stuck is not 0, when a
message was never routed, or when the run fell short of its minimums (the issue's: 2,000
inbound, 200 replies sent, 10 worker kills, 3 Redis restarts, 10 PostgreSQL rounds).
Progress, the faults fired and the details of anything wrong go to stderr.
"""

from __future__ import annotations

import argparse
import logging
import re
import sys
import threading
import time
from dataclasses import dataclass

from bench import chaos_count, chaos_faults, chaos_load
from bench.chaos_env import SENDING_STALE_S, SWEEP_INTERVAL_S, Deployment, deployed

log = logging.getLogger("bench.chaos")
SETTLE_S = SENDING_STALE_S + 2 * SWEEP_INTERVAL_S + 6
ROUTING_DRAIN_S = 120


@dataclass
class Options:
    seconds: float = 180
    messages: int = 2400
    replies: int = 270
    worker_kills: int = 12
    redis_restarts: int = 3
    pg_rounds: int = 10
    resend: float = 0.05
    min_in: int = 2000
    min_out: int = 200
    keep_logs: bool = False
    lines: tuple[str, ...] = ()  # every Procfile line
    worker_processes: int = 2


QUICK = Options(seconds=40, messages=300, replies=30, worker_kills=2, redis_restarts=1,
                pg_rounds=2, min_in=300, min_out=15)


@dataclass
class Result:
    figures: chaos_count.Figures
    tally: chaos_faults.Tally
    sent: chaos_load.Sent
    replies: chaos_load.Replies
    shortfalls: list[str]

    @property
    def ok(self) -> bool:
        f = self.figures
        return not (f.lost or f.duplicated or f.double_routed or f.double_sent or f.stuck
                    or f.unrouted or self.shortfalls)


def _booted(dep: Deployment, timeout_s: float = 120) -> None:
    """Wait until every line (one restarted by the watch too) has booted again."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if all("booted " in p.log() for p in dep.procs.values()):
            return
        time.sleep(0.5)
    log.warning("not every line booted again within %d s", timeout_s)


def _settle(dep: Deployment, sent: chaos_load.Sent, replies: chaos_load.Replies,
            limit_s: float, replies_too: bool = True) -> float:
    """Wait until every message is routed and (``replies_too``) every reply left
    approved/sending, at most ``limit_s``; the seconds it took."""
    start = time.monotonic()
    while time.monotonic() - start < limit_s:
        fig = chaos_count.Figures()
        chaos_count.inbound(dep, sent, fig)
        if not fig.unrouted and not (
                replies_too and chaos_count.open_replies(dep, list(replies.approved))):
            break
        time.sleep(0.25)  # the settle time is logged to this resolution
    return time.monotonic() - start


def _reasons(dep: Deployment, figures: chaos_count.Figures) -> list[str]:
    """The fleet's log lines about the replies found stuck or sent twice."""
    ids = {int(i) for d in figures.details if d.startswith(("stuck", "sms sent", "email sent",
                                                          "telegram sent"))
           for i in re.findall(r"\b(\d+)\b", d.split(":", 1)[1])}
    if not ids:
        return []
    about = re.compile(r'("reply": |reply |kartabl\.)(' + "|".join(map(str, sorted(ids)))
                       + r")\b")
    return [f"{proc.log_path.name}: {line[:400]}" for proc in dep.fleet.procs
            for line in proc.log().splitlines() if about.search(line)][-80:]


def run(opts: Options) -> Result:
    with deployed(opts.keep_logs, lines=opts.lines,
                  worker_processes=opts.worker_processes) as dep:
        log.info("fleet booted (logs in %s); %d s of faults", dep.workdir / "logs",
                 opts.seconds)
        tally, sent, replies = chaos_faults.Tally(), chaos_load.Sent(), chaos_load.Replies()
        stop = threading.Event()  # the console approves no more once the faults are over
        watch = chaos_faults.Watch(dep, tally)
        watch.start()
        producers = chaos_load.produce(dep, opts.messages, opts.seconds, opts.resend, sent,
                                       threading.Event())
        console = chaos_load.reply(dep, opts.replies, opts.seconds, replies, stop)
        plan = chaos_faults.Plan(opts.seconds, opts.worker_kills, opts.redis_restarts,
                                 opts.pg_rounds)
        chaos_faults.run_faults(dep, plan, threading.Event(), tally)
        stop.set()
        log.info("%d provider faults armed but not met: dropped",
                 chaos_faults.disarm_providers(dep))
        console.join()
        for t in producers:  # every message is delivered (each gives up after 120 s)
            t.join()
        log.info("faults over: %s", tally)
        _booted(dep)  # a line the watch restarted at the end is still the fault's tail
        took = _settle(dep, sent, replies, SETTLE_S)
        figures = chaos_count.Figures()
        chaos_count.outbound(dep, replies, figures)  # stuck: at the end of the window
        if took >= SETTLE_S:  # a routing backlog may drain later: its delay is the figure
            took += _settle(dep, sent, replies, ROUTING_DRAIN_S, replies_too=False)
            later = chaos_count.open_replies(dep, list(replies.approved))
            log.info("after %.0f s more, %d replies are still approved or sending",
                     took - SETTLE_S, len(later))
        watch.halt.set()
        watch.join()
        chaos_count.inbound(dep, sent, figures)
        log.info("settled in %.1f s; %d inbound deliveries (%d refused or failed, retried), "
                 "%d resent; %d replies approved (%d console errors)", took, sent.attempts,
                 sent.failed_attempts, sent.resent, len(replies.approved), replies.errors)
        shortfalls = [
            f"{name} {got} < {want}" for name, got, want in [
                ("inbound", figures.chaos_in, opts.min_in),
                ("replies sent", figures.out, opts.min_out),
                ("worker kills", tally.worker_kills, opts.worker_kills),
                ("redis restarts", tally.redis_restarts, opts.redis_restarts),
                ("pg rounds", tally.pg_rounds, opts.pg_rounds)]
            if got < want]
        result = Result(figures, tally, sent, replies, shortfalls)
        if not result.ok:
            for line in _reasons(dep, figures):
                log.info("  %s", line)
        return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="a 40 s smoke run, smaller minimums")
    p.add_argument("--seconds", type=float, help="seconds of faults (default 180)")
    p.add_argument("--messages", type=int, help="inbound messages (default 2400)")
    p.add_argument("--replies", type=int, help="replies approved (default 270)")
    p.add_argument("--keep-logs", action="store_true", help="keep the fleet's logs")
    args = p.parse_args(argv)
    opts = QUICK if args.quick else Options()
    for name in ("seconds", "messages", "replies"):
        if getattr(args, name) is not None:
            setattr(opts, name, getattr(args, name))
    opts.keep_logs = args.keep_logs
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    log.setLevel(logging.INFO)
    # The driver's own approvals while Redis is down: the after-commit enqueue fails with a
    # traceback per reply, and the sweep repairs it (the counts say whether it did).
    logging.getLogger("kartabl.db").setLevel(logging.CRITICAL)
    result = run(opts)
    t = result.tally
    print(f"faults: {t.worker_kills} worker kills, {t.redis_restarts} redis restarts, "
          f"{t.pg_rounds} pg rounds ({t.pg_backends} backends), provider "
          f"{dict(t.provider)}, restarted lines {dict(t.restarts)}", file=sys.stderr)
    if t.worker_gaps:
        gaps = sorted(t.worker_gaps)
        print(f"worker line working again after a kill: median {gaps[len(gaps) // 2]:.1f} s,"
              f" max {gaps[-1]:.1f} s", file=sys.stderr)
    for detail in result.figures.details:
        print(detail, file=sys.stderr)
    for shortfall in result.shortfalls:
        print(f"short of the minimum: {shortfall}", file=sys.stderr)
    print(result.figures.line(), flush=True)
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
