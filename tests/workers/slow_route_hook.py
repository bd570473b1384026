"""Test-only module for the dramatiq CLI: makes every transaction in the worker process stall
just before it commits, so a test can SIGKILL the worker while routes are mid-transaction.

Production code carries no test hook; a test passes this module to the CLI after the actor
modules (``dramatiq boot.worker workers.actors slow_route_hook --path tests/workers ...``).
Environment (read only here, in test code):

- KARTABL_TEST_ROUTE_DELAY_S: how long to stall before each commit;
- KARTABL_TEST_MARK_DIR: where to drop one file per stalled transaction, so the test knows
  the routes have started and have written (flushed, uncommitted) rows.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Session

DELAY_S = float(os.environ.get("KARTABL_TEST_ROUTE_DELAY_S", "0"))
MARK_DIR = Path(os.environ.get("KARTABL_TEST_MARK_DIR", "."))


@event.listens_for(Session, "before_commit")
def _stall(session: Session, *_: Any) -> None:
    if DELAY_S <= 0:
        return
    session.flush()  # the route's rows are written and locked, but not committed
    (MARK_DIR / f"{os.getpid()}-{threading.get_ident()}-{time.monotonic_ns()}").touch()
    time.sleep(DELAY_S)
