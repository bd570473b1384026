"""The one runner of every polled source (:class:`kartabl.inbound.PolledSource`): a mailbox,
a bot, an SMS line. The adapter knows its protocol; this owns the guarantees, the same for
every channel:

- **one active poller per source across processes**: the source's leader lock
  (:func:`kartabl.locks.lead`, a PostgreSQL advisory lock; the standbys wait on the lock
  itself and take over the moment the holder's session ends). The leader checks between
  passes that its lock's connection is alive, and steps down when it is not;
- **the database first**: it is asked (``SELECT 1``) before each fetch, so nothing is
  fetched while it is down (Kavenegar marks what it returns read);
- **commit, retried**: each batch is committed in one transaction, tried again with backoff
  on a database error (:data:`COMMIT_RETRIES`): a blip must not drop a batch in hand;
- **acknowledgement only after the commit**, then the next batch (routing is enqueued by
  ingest after the same commit);
- **backoff on errors**: any error ends the connection; the source is opened again after
  an exponential backoff with jitter (:class:`Backoff`);
- **status visible**: each outage is recorded (:mod:`channels.health`) for ``kartabl
  status`` and ``/readyz``, warned about when it lasts, and cleared by the next good pass.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from channels import health
from kartabl import locks
from kartabl.inbound import Batch, Feed, PolledSource, SourceUnavailable
from kartabl.ingest import Stored
from kartabl.models import utcnow

log = logging.getLogger(__name__)
COMMIT_RETRIES = (0.5, 1.0, 2.0, 4.0, 8.0)  # seconds between commits of a batch in hand
OK_EVERY_S = 30.0  # a healthy source's last_ok_at is written at most this often


@dataclass(slots=True)
class PassResult:
    fetched: int = 0  # raw items (mails, updates, SMS)
    created: int = 0  # new messages
    duplicates: int = 0  # already stored (a re-fetch, the callback's copy)
    skipped: int = 0  # unusable or not ours, dropped (logged)
    quarantined: int = 0  # kept aside with their bytes for a re-import

    def add(self, batch: Batch) -> None:
        created = sum(s.created for s in batch.stored)
        self.fetched += batch.fetched
        self.created += created
        self.duplicates += len(batch.stored) - created
        self.skipped += batch.skipped
        self.quarantined += batch.quarantined

    def __iadd__(self, other: PassResult) -> PassResult:
        for f in ("fetched", "created", "duplicates", "skipped", "quarantined"):
            setattr(self, f, getattr(self, f) + getattr(other, f))
        return self


class Backoff:
    """Exponential backoff with "equal jitter": half the delay fixed, half random, so many
    pollers cut off together do not all come back at the same instant."""

    def __init__(self, base_s: float, cap_s: float) -> None:
        self.base_s, self.cap_s, self.attempt = base_s, cap_s, 0

    def next(self) -> float:
        delay = min(self.cap_s, self.base_s * 2**self.attempt)
        self.attempt = min(self.attempt + 1, 32)
        return delay / 2 + random.uniform(0, delay / 2)

    def reset(self) -> None:
        self.attempt = 0


class Runner:
    """Runs one source: :meth:`run` until ``stop`` is set, or :meth:`poll_once`."""

    def __init__(
        self, source: PolledSource, session_factory: sessionmaker[Session],
        stop: threading.Event | None = None, *,
        backoff_base_s: float = 1.0, backoff_cap_s: float = 5 * 60,
        unreachable_warn_s: float = 10 * 60, sleep: Callable[[float], object] = time.sleep,
    ) -> None:
        self.source, self.sessions = source, session_factory
        self.stop = stop or threading.Event()
        self.backoff = Backoff(backoff_base_s, backoff_cap_s)
        self.unreachable_warn_s = unreachable_warn_s
        self._sleep = sleep  # between commit retries (tests record it)
        self._ok_written_at: float | None = None  # None: write the next good pass
        self._long_outage_warned_at: float | None = None

    def __repr__(self) -> str:
        return f"<Runner {self.name}>"

    @property
    def name(self) -> str:
        return self.source.name

    @property
    def lock_name(self) -> str:
        return f"poller {self.name}"

    # -- passes ---------------------------------------------------------------------------

    def poll_once(self) -> PassResult:
        """One pass on a fresh connection, without the lock (``--once``, tests); the
        outcome is recorded on the source's status, and an error raised."""
        try:
            with self.source.open() as feed:
                result = self.drain(feed)
        except Exception as exc:
            self._failed(exc)
            raise
        self._ok()
        return result

    def drain(self, feed: Feed) -> PassResult:
        """One pass over ``feed``: each batch committed, then acknowledged, then the next;
        stops after the current batch when ``stop`` is set."""
        result = PassResult()
        batches = feed.batches()
        try:
            while True:
                self._database_answers()
                batch = next(batches, None)
                if batch is None:
                    break
                batch.stored = self._commit(batch)
                feed.acknowledge(batch)  # only now: the batch is durable
                result.add(batch)
                if self.stop.is_set():
                    break
        finally:
            close = getattr(batches, "close", None)  # a generator: run its cleanup now
            if close is not None:
                close()
        if result.fetched:
            log.info("%s: %d fetched, %d new, %d duplicate, %d skipped, %d quarantined",
                     self.name, result.fetched, result.created, result.duplicates,
                     result.skipped, result.quarantined)
        return result

    def _database_answers(self) -> None:
        with self.sessions() as session:
            session.execute(text("SELECT 1"))

    def _commit(self, batch: Batch) -> list[Stored]:
        """Stage and commit ``batch``, again with backoff on a database error (staging is
        idempotent: ingest's unique key). Raises after :data:`COMMIT_RETRIES`."""
        for delay in (*COMMIT_RETRIES, None):
            try:
                with self.sessions() as session:
                    stored = batch.stage(session)
                    session.commit()
                    return stored
            except SQLAlchemyError as exc:
                n = len(batch.messages)
                if delay is None:
                    ids = ", ".join(m.external_id for m in batch.messages)
                    log.error("%s: %d messages fetched could not be stored (external ids %s):"
                              " %s", self.name, n, ids, exc)
                    raise
                log.warning("%s: storing %d messages failed, again in %g s: %s",
                            self.name, n, delay, exc)
                self._sleep(delay)
        raise AssertionError("unreachable")  # the loop returns or raises

    # -- leading --------------------------------------------------------------------------

    def run(self) -> None:
        """Poll until ``stop`` is set; never raises. Several processes may run the same
        source: one at a time polls, the holder of its lock; the others stand by."""
        log.info("%s: poller started", self.name)
        locks.lead(self.sessions.kw["bind"], self.lock_name, self.stop, self._lead)
        log.info("%s: poller stopped", self.name)

    def _lead(self, lease: locks.Lease) -> None:
        while not self.stop.is_set():
            if not lease.still_held():
                log.warning("%s: the poller lock was lost (its database connection died); "
                            "stepping down", self.name)
                return
            try:
                with self.source.open() as feed:
                    while not self.stop.is_set() and lease.still_held():
                        self.drain(feed)
                        self.backoff.reset()
                        self._ok()
                        feed.wait(self.stop)
            except Exception as exc:  # network, server, database, disk: retry, never die
                self._failed(exc)
                self.stop.wait(self.backoff.next())

    # -- status ---------------------------------------------------------------------------

    def _ok(self) -> None:
        now = time.monotonic()
        if self._ok_written_at is not None and now - self._ok_written_at < OK_EVERY_S:
            return
        was = health.record_ok(self.sessions, self.name)
        self._ok_written_at, self._long_outage_warned_at = now, None
        if was is not None:
            log.info("%s reachable again (failing since %s)", self.name, was.isoformat())

    def _failed(self, exc: BaseException) -> None:
        """Record the failure (status and /readyz list it) and log it. Only the source's
        own errors mean "unreachable"; ours (a full disk, the database, a bug) are logged
        as errors with their traceback, which says what to fix, and named for what they
        are."""
        self._ok_written_at = None  # the next good pass clears the outage at once
        unreachable = isinstance(exc, SourceUnavailable)
        if unreachable:
            error = str(exc)
        else:
            what = "storage error" if isinstance(exc, OSError) else "unexpected error"
            error = f"{what}: {type(exc).__name__}: {exc}"
            log.error("%s: %s in the poller; retrying with backoff", self.name, what,
                      exc_info=exc)
        try:
            since = health.record_failure(self.sessions, self.name, error)
        except Exception:  # the database may be the thing that is down
            log.warning("%s: could not record the failure", self.name, exc_info=True)
            since = utcnow()
        if unreachable:
            self._warn_unreachable(error, since)

    def _warn_unreachable(self, error: str, since: datetime) -> None:
        if self.backoff.attempt == 0:
            log.warning("%s unreachable: %s; reconnecting with backoff", self.name, error)
        down_s = (utcnow() - since).total_seconds()
        now, warned = time.monotonic(), self._long_outage_warned_at
        if down_s >= self.unreachable_warn_s and (
            warned is None or now - warned >= self.unreachable_warn_s
        ):
            self._long_outage_warned_at = now
            log.warning("%s has been unreachable for %d min (since %s): %s", self.name,
                        down_s // 60, since.isoformat(timespec="seconds"), error)


def poll_each(runners: Iterable[Runner]) -> PassResult:
    """:meth:`Runner.poll_once` of each, summed (the first error is raised)."""
    total = PassResult()
    for runner in runners:
        total += runner.poll_once()
    return total


def start(runners: Iterable[Runner], *, daemon: bool = True) -> list[threading.Thread]:
    """One thread per runner (named after its source), each until its stop event is set."""
    threads = [threading.Thread(target=r.run, name=f"poll-{r.name}", daemon=daemon)
               for r in runners]
    for t in threads:
        t.start()
    return threads
