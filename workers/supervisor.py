"""``kartabl worker``: N independent dramatiq workers, each restarted at once when it exits.

dramatiq's own master (``dramatiq ... -p N``) shuts *every* worker process down when one of
them exits unexpectedly (a SIGKILL, the OOM killer) and then exits itself; nothing restarts
anything until the process manager notices, so one killed child left a host with no worker
for seconds. Here each worker is a separate ``dramatiq ... -p 1`` in a process group of its
own: when one dies the others go on consuming, and the dead one is started again at once.

- **Respawn.** A child that exits while we are not stopping is started again immediately;
  one that dies again within ``min_uptime_s`` of its start (a bad import, Redis down) is
  started again after a doubling delay, capped at ``backoff_cap_s``, so a crash loop does
  not spin. Any process of the dead child's group left behind (its dramatiq worker process,
  when the dramatiq master itself was killed) is killed: it could not log any more.
- **Stop.** SIGTERM or SIGINT is forwarded as one SIGTERM to each child's dramatiq master
  only (its worker process gets it from the master: a second SIGTERM would make the worker
  exit at once, dropping its in-flight tasks). The tasks in flight finish, then we exit 0
  when every child has exited. A second SIGTERM or SIGINT kills every child's group at once.
- **Orphans.** Each child gets SIGTERM when this process dies, however it dies
  (``PR_SET_PDEATHSIG`` on Linux), so a SIGKILLed supervisor leaves no stray workers behind
  its process manager's back.

Usage (what :func:`workers.command.worker_argv` builds, and ``kartabl worker`` execs)::

    python -m workers.supervisor -p 2 -t 8 [-Q inbound outbound]
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import logging
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from types import FrameType

from workers.command import dramatiq_argv

log = logging.getLogger("kartabl.worker")

_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>


def _die_with_parent(parent: int) -> None:
    """In the child, before exec: ask the kernel for SIGTERM when the supervisor dies."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent:  # the supervisor died before prctl took effect
            os._exit(1)


@dataclass
class Child:
    slot: int
    proc: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    quick_exits: int = 0  # consecutive exits within min_uptime_s of the start
    due_at: float = 0.0  # when to start it (again)
    restarts: int = 0

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


class Supervisor:
    def __init__(self, argv: Sequence[str], count: int, *, min_uptime_s: float = 10.0,
                 backoff_base_s: float = 0.5, backoff_cap_s: float = 30.0) -> None:
        if count < 1:
            raise ValueError("at least one worker process")
        self.argv = list(argv)
        self.children = [Child(slot) for slot in range(count)]
        self.min_uptime_s, self.backoff_base_s = min_uptime_s, backoff_base_s
        self.backoff_cap_s = backoff_cap_s
        self.signals = 0  # SIGTERM/SIGINT received so far
        self._wake_r, self._wake_w = os.pipe()

    # -- signals ---------------------------------------------------------------------------

    def _on_stop_signal(self, signum: int, _frame: FrameType | None) -> None:
        self.signals += 1

    def _install_signals(self) -> None:
        for fd in (self._wake_r, self._wake_w):
            os.set_blocking(fd, False)
        # Any signal (SIGCHLD included) writes a byte here and wakes the select() below at
        # once, so a dead child is noticed without polling.
        signal.set_wakeup_fd(self._wake_w)
        signal.signal(signal.SIGTERM, self._on_stop_signal)
        signal.signal(signal.SIGINT, self._on_stop_signal)
        signal.signal(signal.SIGCHLD, lambda _s, _f: None)

    # -- children --------------------------------------------------------------------------

    def _start(self, child: Child) -> None:
        parent = os.getpid()
        child.proc = subprocess.Popen(  # noqa: S603 - our own argv, no shell
            self.argv, start_new_session=True, preexec_fn=lambda: _die_with_parent(parent),
        )
        child.started_at = time.monotonic()
        log.info("worker %d started (pid %d)", child.slot, child.proc.pid)

    def _reap(self, child: Child, now: float) -> None:
        """``child`` has exited: clean up its group and schedule the next start."""
        assert child.proc is not None
        code, pid = child.proc.returncode, child.proc.pid
        # A killed dramatiq master leaves its worker process behind, in its group. Not a
        # graceful stop: that orphan logs into a pipe that nobody reads any more, and
        # blocks for good once the pipe is full. Its in-flight messages come back as any
        # killed worker's do (Redis heartbeat and maintenance, and the sweep).
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)
        child.proc = None
        if self.signals:
            log.info("worker %d stopped (pid %d, exit code %s)", child.slot, pid, code)
            return
        uptime = now - child.started_at
        child.quick_exits = child.quick_exits + 1 if uptime < self.min_uptime_s else 0
        # One early death (a kill while it booted) is restarted at once like any other;
        # from the second in a row it is a crash loop, and the delay doubles.
        delay = 0.0
        if child.quick_exits > 1:
            delay = min(self.backoff_cap_s, self.backoff_base_s * 2 ** (child.quick_exits - 2))
        child.due_at = now + delay
        child.restarts += 1
        log.error("worker %d (pid %d) exited unexpectedly with code %s after %.1f s; "
                  "starting it again in %.1f s", child.slot, pid, code, uptime, delay)

    def _signal_all(self, sig: int, *, group: bool) -> None:
        for child in self.children:
            if child.alive:
                assert child.proc is not None
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    if group:
                        os.killpg(child.proc.pid, sig)
                    else:
                        child.proc.send_signal(sig)

    def _drain_wakeups(self, timeout: float) -> None:
        ready, _, _ = select.select([self._wake_r], [], [], max(0.0, timeout))
        if ready:
            with contextlib.suppress(BlockingIOError):
                while os.read(self._wake_r, 512):
                    pass

    # -- the loop --------------------------------------------------------------------------

    def run(self) -> int:
        """Supervise until stopped by a signal; returns the exit code (0 after a stop)."""
        self._install_signals()
        log.info("supervising %d dramatiq worker(s): %s", len(self.children),
                 " ".join(self.argv[1:]))
        forwarded = 0
        while True:
            now = time.monotonic()
            for child in self.children:
                if child.proc is not None and child.proc.poll() is not None:
                    self._reap(child, now)
            if self.signals > forwarded:
                if forwarded == 0:
                    log.info("stopping: SIGTERM to each worker; in-flight tasks finish "
                             "(a second signal stops them at once)")
                    self._signal_all(signal.SIGTERM, group=False)
                else:
                    log.warning("stopping at once: SIGKILL to every worker")
                    self._signal_all(signal.SIGKILL, group=True)
                forwarded = self.signals
            if self.signals:
                if not any(c.alive for c in self.children):
                    return 0
                self._drain_wakeups(1.0)
                continue
            for child in self.children:
                if child.proc is None and child.due_at <= now:
                    self._start(child)
            pending = [c.due_at - now for c in self.children if c.proc is None]
            # The timeout only matters for a delayed start; exits and signals wake us.
            self._drain_wakeups(min(pending, default=5.0))


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m workers.supervisor",
                                     description=__doc__.split("\n\n", 1)[0] if __doc__ else "")
    parser.add_argument("-p", "--processes", type=int, default=0)
    parser.add_argument("-t", "--threads", type=int, default=0)
    parser.add_argument("-Q", "--queues", nargs="*", default=[])
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    from config.settings import get_settings
    from kartabl import logs

    args = parse_args(argv)
    settings = get_settings()
    logs.configure(settings)
    processes = args.processes or settings.worker_processes
    threads = args.threads or settings.worker_threads
    child = dramatiq_argv(1, threads, args.queues, shutdown_timeout_s=settings.sending_stale_s)
    return Supervisor(child, processes).run()


if __name__ == "__main__":
    sys.exit(main())
