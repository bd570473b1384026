"""The command lines of Kartabl's fleet workers, built in one place for ``kartabl worker``
and for ``make bench`` (which must measure exactly what ops run).

- :func:`worker_argv`: what ``kartabl worker`` runs: :mod:`workers.supervisor`, which keeps
  ``processes`` independent dramatiq workers running and restarts any that exits.
- :func:`dramatiq_argv`: one dramatiq command line; the supervisor runs it with
  ``processes=1`` per child. Run alone with ``processes > 1`` it is dramatiq's own master,
  which stops every child when one dies (see workers/supervisor.py).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence


def dramatiq_argv(processes: int, threads: int, queues: Sequence[str] = (), *,
                  shutdown_timeout_s: float | None = None) -> list[str]:
    """``shutdown_timeout_s``: how long a stopping worker waits for its tasks in flight
    (dramatiq's default is 600 s; ``kartabl worker`` passes KARTABL_SENDING_STALE_S, which
    exceeds the longest send, so a stop never cuts a send short)."""
    argv = [
        sys.executable,
        "-m",
        "dramatiq",
        "boot.worker",
        "workers.actors",
        "-p",
        str(processes),
        "-t",
        str(threads),
    ]
    if shutdown_timeout_s is not None:
        argv += ["--worker-shutdown-timeout", str(int(shutdown_timeout_s * 1000))]
    if queues:
        argv += ["-Q", *queues]  # -Q last: it swallows any module listed after it
    return argv


def worker_argv(processes: int, threads: int, queues: Sequence[str] = ()) -> list[str]:
    """``kartabl worker``'s command line: ``processes`` supervised dramatiq workers of
    ``threads`` threads each. Stop it with one SIGTERM to its pid (it forwards it)."""
    argv = [sys.executable, "-m", "workers.supervisor", "-p", str(processes), "-t", str(threads)]
    if queues:
        argv += ["-Q", *queues]
    return argv
