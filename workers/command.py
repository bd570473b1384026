"""The dramatiq command line that runs Kartabl's fleet workers, built in one place for
``kartabl worker`` and for ``make bench`` (which must measure exactly what ops run)."""

from __future__ import annotations

import sys
from collections.abc import Sequence


def dramatiq_argv(processes: int, threads: int, queues: Sequence[str] = ()) -> list[str]:
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
    if queues:
        argv += ["-Q", *queues]  # -Q last: it swallows any module listed after it
    return argv
