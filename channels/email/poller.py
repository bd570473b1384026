"""The IMAP poller of one mailbox: no mail lost, none ingested twice.

One pass (:meth:`MailboxPoller.poll_once`):

1. select the folder; if its UIDVALIDITY is not the stored one, restart from UID 0;
2. search the UIDs above the stored ``last_uid``;
3. per batch of ``fetch_batch`` UIDs: fetch with ``BODY.PEEK[]`` (``\\Seen`` is never read
   nor set), parse, and commit messages and quarantined mail in one transaction;
4. only after that commit, acknowledge the batch on IMAP (flag or move it);
5. then advance ``last_uid``.

A crash anywhere repeats at most the current batch: before step 3's commit nothing was
stored and ``last_uid`` has not moved, so the next pass fetches the batch again; after it,
the re-fetched mail is dropped by ingest's unique (channel, external_id) and acknowledged.
Acknowledging before the commit could lose mail; advancing before acknowledging could
leave committed mail unflagged forever. Hence this order.

Watching (:meth:`MailboxPoller.run`): IMAP IDLE when the server offers it and the config
allows, renewed every ``idle_renew_s`` (the RFC asks for < 29 min, many servers and NATs
drop quiet connections sooner, so 9 minutes) or ``poll_interval_s`` if shorter, each
renewal making a pass; otherwise a pass every ``poll_interval_s``.
Any connection error is recorded on the mailbox's state (``failing_since``, ``last_error``)
and retried with exponential backoff and jitter; a long outage is logged as a warning.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import datetime

from imapclient import IMAPClient
from sqlalchemy.orm import Session, sessionmaker

from channels.email import imap, state
from channels.email.imap import MailboxUnavailable
from channels.email.ingest import BatchResult, MailIngester
from config.channels import Mailbox
from config.settings import Settings
from kartabl import locks
from kartabl.models import utcnow

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]  # (done, total)


@dataclass(slots=True)
class PassResult:
    created: int = 0
    duplicates: int = 0
    quarantined: int = 0
    fetched: int = 0

    def add(self, batch: BatchResult) -> None:
        self.created += batch.created
        self.duplicates += batch.duplicates
        self.quarantined += batch.quarantined
        self.fetched += len(batch.done)


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


class MailboxPoller:
    def __init__(
        self,
        mailbox: Mailbox,
        settings: Settings,
        session_factory: sessionmaker[Session],
        our_addresses: Collection[str],
        stop: threading.Event | None = None,
        *,
        idle_renew_s: float = 9 * 60,
        idle_check_s: float = 1.0,
        backoff_base_s: float = 1.0,
        backoff_cap_s: float = 5 * 60,
        unreachable_warn_s: float = 10 * 60,
    ) -> None:
        if mailbox.imap is None:
            raise ValueError(f"mailbox {mailbox.name} has no [imap] account")
        self.mailbox, self.account = mailbox, mailbox.imap
        self.sf = session_factory
        self.stop = stop or threading.Event()
        self.ingester = MailIngester(mailbox, settings, session_factory, our_addresses)
        self.idle_renew_s, self.idle_check_s = idle_renew_s, idle_check_s
        self.backoff = Backoff(backoff_base_s, backoff_cap_s)
        self.unreachable_warn_s = unreachable_warn_s
        self._long_outage_warned_at: float | None = None

    @property
    def name(self) -> str:
        return self.mailbox.name

    # -- one pass -------------------------------------------------------------------------

    def poll_once(self, client: IMAPClient) -> PassResult:
        """Ingest everything new in the folder; stops early (after the current batch) when
        the stop event is set."""
        acc = self.account
        selected = imap.select(client, acc.folder)
        imap.take_new_mail_notice(client)  # this pass's search sees all of that mail
        last = state.begin_pass(self.sf, self.name, acc.folder, selected.uidvalidity)
        uids = imap.uids_after(client, last)
        result = self.run_batches(client, selected.uidvalidity, uids, advance=True)
        if result.fetched:
            log.info(
                "mailbox %s: %d mail fetched, %d new, %d duplicate, %d quarantined",
                self.name, result.fetched, result.created, result.duplicates, result.quarantined,
            )
        return result

    def run_batches(
        self, client: IMAPClient, uidvalidity: int, uids: Sequence[int], *, advance: bool,
        progress: Progress | None = None,
    ) -> PassResult:
        """:meth:`process_batch` over ``uids`` in batches of ``fetch_batch``; stops after
        the current batch when the stop event is set. ``advance``: move ``last_uid`` after
        each batch (a pass does; a backfill, searching by date, must not)."""
        result = PassResult()
        if progress:
            progress(0, len(uids))
        for start in range(0, len(uids), self.account.fetch_batch):
            chunk = uids[start : start + self.account.fetch_batch]
            result.add(self.process_batch(client, uidvalidity, chunk))
            if advance:
                state.advance(self.sf, self.name, uidvalidity, chunk[-1])
            if progress:
                progress(start + len(chunk), len(uids))
            if self.stop.is_set():
                break
        return result

    def process_batch(
        self, client: IMAPClient, uidvalidity: int, uids: Sequence[int]
    ) -> BatchResult:
        """Fetch, commit, then acknowledge ``uids`` (the order is the whole guarantee)."""
        mails = imap.fetch(client, uids, max_bytes=self.ingester.settings.mail_max_bytes)
        batch = self.ingester.ingest(uidvalidity, mails)  # committed when this returns
        acc = self.account
        left = set(batch.left_in_place)
        imap.acknowledge(
            client, [u for u in batch.done if u not in left],
            processed_folder=acc.processed_folder, processed_flag=acc.processed_flag,
        )
        if left:  # flagged but not moved: the re-import fetches the whole mail there
            imap.acknowledge(client, sorted(left), processed_folder="",
                             processed_flag=acc.processed_flag)
        return batch

    def connect_and_poll_once(self) -> PassResult:
        """One pass on a fresh connection (``kartabl email poll --once``)."""
        try:
            with imap.connect(self.account) as client:
                imap.ensure_folder(client, self.account.processed_folder)
                result = self.poll_once(client)
        except Exception as exc:
            self._failed(exc)
            raise
        self._ok()
        return result

    # -- watching -------------------------------------------------------------------------

    def run(self) -> None:
        """Poll and watch until the stop event is set; never raises.

        Several ``email`` processes may run (on several machines): per mailbox one holds a
        PostgreSQL advisory lock (:mod:`kartabl.locks`) and polls, the others stand by and
        take over within ``poll_interval_s`` of its connection dying. The leader checks
        between passes that its lock's connection is alive, and steps down when it is not:
        by then another process may lead."""
        log.info("mailbox %s: poller started (%s)", self.name, self.account.host)
        standing_by = False
        while not self.stop.is_set():
            try:
                with locks.lease(self.sf.kw["bind"], f"email poller {self.name}") as lease:
                    if lease:
                        standing_by = False
                        self._lead(lease)
                        continue
            except Exception:  # the database is down: the lead loop records the rest
                log.warning("mailbox %s: cannot take the poller lock", self.name, exc_info=True)
            if not standing_by:
                log.info("mailbox %s: another process polls it; standing by", self.name)
                standing_by = True
            self.stop.wait(self.account.poll_interval_s)
        log.info("mailbox %s: poller stopped", self.name)

    def _lead(self, lease: locks.Lease) -> None:
        while not self.stop.is_set():
            if not lease.still_held():
                log.warning("mailbox %s: the poller lock was lost (its database connection "
                            "died); stepping down", self.name)
                return
            try:
                with imap.connect(self.account) as client:
                    imap.ensure_folder(client, self.account.processed_folder)
                    self.poll_once(client)
                    self._ok()
                    self.backoff.reset()
                    self._watch(client, lease)
            except Exception as exc:  # network, server, database, disk: retry, never die
                self._failed(exc)
                self.stop.wait(self.backoff.next())

    def _watch(self, client: IMAPClient, lease: locks.Lease) -> None:
        """Pass after pass on ``client``; returns when stopping or when the lock is lost."""
        use_idle = self.account.idle and imap.supports_idle(client)
        while not self.stop.is_set():
            if use_idle:
                # Mail announced during the last pass is not announced again in IDLE.
                if not imap.take_new_mail_notice(client):
                    self._idle_until_news(client)
            elif self.stop.wait(self.account.poll_interval_s):
                return
            if self.stop.is_set() or not lease.still_held():
                return
            self.poll_once(client)
            self._ok()

    def _idle_until_news(self, client: IMAPClient) -> None:
        """IDLE until new mail is announced, the renewal is due, or the stop event is set.
        ``idle_check`` reports sequence numbers, not UIDs: any EXISTS just means "poll"."""
        # Also a pass at least every poll_interval_s: mail landing between our last command
        # and the start of IDLE may be announced only at the server's own next check
        # (Dovecot on maildir: up to 30 s later), and this bounds that delay.
        renew_s = min(self.idle_renew_s, self.account.poll_interval_s)
        imap.idle_start(client)
        try:
            started = time.monotonic()
            while not self.stop.is_set():
                t0 = time.monotonic()
                responses = imap.idle_check(client, self.idle_check_s)
                if any(_is_exists(r) for r in responses):
                    return
                now = time.monotonic()
                if now - started >= renew_s:
                    return  # renew: IDLE DONE, a pass (cheap), IDLE again
                if not responses and now - t0 < self.idle_check_s / 2:
                    # idle_check returns at once with nothing when the server closed the
                    # connection (EOF); idle_done below then raises and we reconnect.
                    return
        finally:
            imap.idle_done(client)

    # -- health ---------------------------------------------------------------------------

    def _ok(self) -> None:
        was = state.record_ok(self.sf, self.name, self.account.folder)
        self._long_outage_warned_at = None
        if was is not None:
            log.info("mailbox %s reachable again (failing since %s)", self.name, was.isoformat())

    def _failed(self, exc: BaseException) -> None:
        """Record the failure on the mailbox's state (status and /readyz list it) and log
        it. Only the IMAP side's errors mean "unreachable"; our own (a full disk, an
        unwritable attachments directory, the database, a bug) are logged as errors with
        their traceback, which says what to fix, and named for what they are."""
        unreachable = isinstance(exc, MailboxUnavailable)
        if unreachable:
            error = str(exc)
        else:
            what = "storage error" if isinstance(exc, OSError) else "unexpected error"
            error = f"{what}: {type(exc).__name__}: {exc}"
            log.error("mailbox %s: %s in the poller; retrying with backoff", self.name, what,
                      exc_info=exc)
        try:
            since = state.record_failure(self.sf, self.name, self.account.folder, error)
        except Exception:  # the database may be the thing that is down
            log.warning("mailbox %s: could not record the failure", self.name, exc_info=True)
            since = utcnow()
        if not unreachable:
            return
        down_s = (utcnow() - since).total_seconds()
        if self.backoff.attempt == 0:
            log.warning("mailbox %s unreachable: %s; reconnecting with backoff", self.name, error)
        now = time.monotonic()
        warned = self._long_outage_warned_at
        if down_s >= self.unreachable_warn_s and (
            warned is None or now - warned >= self.unreachable_warn_s
        ):
            self._long_outage_warned_at = now
            log.warning(
                "mailbox %s has been unreachable for %d min (since %s): %s",
                self.name, down_s // 60, _iso(since), error,
            )


def _is_exists(response: object) -> bool:
    return isinstance(response, tuple) and len(response) >= 2 and response[1] == b"EXISTS"


def _iso(when: datetime) -> str:
    return when.isoformat(timespec="seconds")
