"""Two copies of one poller command as separate OS processes, on PostgreSQL: one polls, the
other stands by, and takes over when the first is SIGKILLed. Shared by the Telegram and the
SMS tests (the email poller's own is in tests/channels/email/test_imap_watch.py)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

KARTABL = Path(sys.executable).with_name("kartabl")


@dataclass
class Poller:
    proc: subprocess.Popen[bytes]
    log: Path

    def text(self) -> str:
        return self.log.read_text(errors="replace")


@contextlib.contextmanager
def two_pollers(command: list[str], tmp_path: Path) -> Iterator[tuple[Poller, Poller]]:
    """Start ``kartabl <command>`` twice (the environment carries the test's database and
    channels file); both are SIGKILLed at the end whatever happened."""
    pollers = []
    for name in ("a", "b"):
        log = tmp_path / f"poller-{name}.log"
        with log.open("wb") as out:
            proc = subprocess.Popen([str(KARTABL), *command], stdout=out,
                                    stderr=subprocess.STDOUT, start_new_session=True)
        pollers.append(Poller(proc, log))
    try:
        yield pollers[0], pollers[1]
    finally:
        for p in pollers:
            if p.proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(p.proc.pid, signal.SIGKILL)
                p.proc.wait(timeout=10)


def _wait(check: Callable[[], bool], timeout_s: float, what: Callable[[], str]) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s: {what()}")
        time.sleep(0.05)


def check_one_polls_then_takeover(
    command: list[str], tmp_path: Path, *, polls: Callable[[], int],
    deliver: Callable[[], None], stored: Callable[[], int], bound_s: float,
) -> float:
    """The whole story; returns the takeover time (SIGKILL to the next message stored).

    ``polls`` counts the provider calls that fetch (getUpdates, sms/receive) so far,
    ``deliver`` gives the provider one new inbound message, ``stored`` counts the messages
    in the database."""
    with two_pollers(command, tmp_path) as (a, b):
        logs = lambda: f"\n--- a ---\n{a.text()}\n--- b ---\n{b.text()}"  # noqa: E731
        # Given two copies running, one of them polling
        _wait(lambda: polls() >= 2, 60, lambda: "no polling" + logs())
        # (both are up: one says it stands by; not asserted here, the freezing below is
        # the proof, and it holds for a build that never says so)
        with contextlib.suppress(AssertionError):
            _wait(lambda: "standing by" in a.text() + b.text(), 15, logs)
        # When each in turn is frozen (SIGSTOP keeps its database connection, and its lock)
        silent = []
        for p in (a, b):
            p.proc.send_signal(signal.SIGSTOP)
            time.sleep(1.0)  # a request in flight is answered
            before = polls()
            time.sleep(3.0)
            silent.append(polls() == before)
            p.proc.send_signal(signal.SIGCONT)
            time.sleep(0.5)
        # Then exactly one of them was polling: freezing the other changed nothing
        assert sorted(silent) == [False, True], f"frozen and silent: {silent}" + logs()
        leader, standby = (a, b) if silent[0] else (b, a)
        # When the one polling is SIGKILLed and a customer writes
        before = stored()
        os.killpg(leader.proc.pid, signal.SIGKILL)
        killed = time.monotonic()
        leader.proc.wait(timeout=10)
        deliver()
        # Then the other one takes over and stores the message within the bound
        _wait(lambda: stored() > before, bound_s, lambda: "no takeover" + logs())
        took = time.monotonic() - killed
        assert standby.proc.poll() is None
        # And it stops cleanly on SIGTERM
        standby.proc.send_signal(signal.SIGTERM)
        assert standby.proc.wait(timeout=30) == 0, logs()
        return took
