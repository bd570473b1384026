"""The IMAP adapter of one mailbox on the inbound contract (:mod:`kartabl.inbound`): no mail
lost, none ingested twice. The runner (:mod:`channels.runner`) commits each batch (with
retries), leads (one process per mailbox), backs off and reports the mailbox's health.

One pass (:meth:`MailboxFeed.batches`):

1. select the folder; if its UIDVALIDITY is not the stored one, restart from UID 0;
2. search the UIDs above the stored ``last_uid``;
3. per batch of ``fetch_batch`` UIDs: fetch with ``BODY.PEEK[]`` (``\\Seen`` is never read
   nor set) and parse; the runner commits messages and quarantined mail in one
   transaction (:meth:`~channels.email.ingest.MailBatch.stage`);
4. only after that commit, acknowledge the batch on IMAP (flag or move it);
5. then advance ``last_uid``.

A crash anywhere repeats at most the current batch: before step 3's commit nothing was
stored and ``last_uid`` has not moved, so the next pass fetches the batch again; after it,
the re-fetched mail is dropped by ingest's unique (channel, external_id) and acknowledged.
Acknowledging before the commit could lose mail; advancing before acknowledging could
leave committed mail unflagged forever. Hence this order.

Waiting (:meth:`MailboxFeed.wait`): IMAP IDLE when the server offers it and the config
allows, renewed every ``idle_renew_s`` (the RFC asks for < 29 min, many servers and NATs
drop quiet connections sooner, so 9 minutes) or ``poll_interval_s`` if shorter, each
renewal making a pass; otherwise a pass every ``poll_interval_s``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

from imapclient import IMAPClient
from sqlalchemy.orm import Session, sessionmaker

from channels.email import imap, state
from channels.email.ingest import MailBatch, MailIngester
from kartabl.inbound import Batch

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]  # (done, total)


class MailboxSource:
    """One configured mailbox with an IMAP account (a
    :class:`~kartabl.inbound.PolledSource`)."""

    def __init__(self, ingester: MailIngester, *, idle_renew_s: float = 9 * 60,
                 idle_check_s: float = 1.0) -> None:
        mailbox = ingester.mailbox
        if mailbox.imap is None:
            raise ValueError(f"mailbox {mailbox.name} has no [imap] account")
        self.mailbox, self.account, self.ingester = mailbox, mailbox.imap, ingester
        self.idle_renew_s, self.idle_check_s = idle_renew_s, idle_check_s

    def __repr__(self) -> str:
        return f"<MailboxSource {self.mailbox.name}>"

    @property
    def name(self) -> str:
        return f"email:{self.mailbox.name}"

    @contextmanager
    def open(self) -> Iterator[MailboxFeed]:
        with imap.connect(self.account) as client:
            imap.ensure_folder(client, self.account.processed_folder)
            yield MailboxFeed(self, client)


class MailboxFeed:
    """A logged-in connection to the mailbox (a :class:`~kartabl.inbound.Feed`).
    ``uids``: a backfill's UIDs (searched by date) instead of those above ``last_uid``;
    then ``last_uid`` stays where it is, since the search says nothing about which UIDs
    were all seen."""

    def __init__(self, source: MailboxSource, client: IMAPClient, *,
                 uids: Sequence[int] | None = None, progress: Progress | None = None) -> None:
        self.source, self.client = source, client
        self.account, self.ingester = source.account, source.ingester
        self._uids, self._progress = uids, progress
        self._total = self._asked = 0

    @property
    def _sessions(self) -> sessionmaker[Session]:
        return self.ingester.session_factory

    def batches(self) -> Iterator[Batch]:
        acc, name = self.account, self.source.mailbox.name
        selected = imap.select(self.client, acc.folder)
        if self._uids is None:
            imap.take_new_mail_notice(self.client)  # this pass's search sees all of that mail
            last = state.begin_pass(self._sessions, name, acc.folder, selected.uidvalidity)
            uids: Sequence[int] = imap.uids_after(self.client, last)
        else:
            uids = self._uids
        self._total, self._asked = len(uids), 0
        if self._progress:
            self._progress(0, len(uids))
        for start in range(0, len(uids), acc.fetch_batch):
            chunk = uids[start : start + acc.fetch_batch]
            mails = imap.fetch(self.client, chunk,
                               max_bytes=self.ingester.settings.mail_max_bytes)
            batch = self.ingester.prepare_batch(selected.uidvalidity, mails)
            batch.upto = chunk[-1]  # a UID that vanished is passed over (the fetch logs it)
            # acknowledged before the next batch is asked for (the runner's order)
            self._asked = start + len(chunk)
            yield batch

    def acknowledge(self, batch: Batch) -> None:
        """Flag or move the committed mail, then advance ``last_uid`` past the batch."""
        assert isinstance(batch, MailBatch)
        batch.log_quarantined()
        acc, done = self.account, list(batch.ack)  # the UIDs fetched, now durable
        left = set(batch.left_in_place)
        imap.acknowledge(
            self.client, [u for u in done if u not in left],
            processed_folder=acc.processed_folder, processed_flag=acc.processed_flag,
        )
        if left:  # flagged but not moved: the re-import fetches the whole mail there
            imap.acknowledge(self.client, sorted(left), processed_folder="",
                             processed_flag=acc.processed_flag)
        if self._uids is None and batch.uidvalidity is not None and batch.upto is not None:
            state.advance(self._sessions, self.source.mailbox.name, batch.uidvalidity,
                          batch.upto)
        if self._progress:
            self._progress(self._asked, self._total)

    # -- waiting --------------------------------------------------------------------------

    def wait(self, stop: threading.Event) -> None:
        if not (self.account.idle and imap.supports_idle(self.client)):
            stop.wait(self.account.poll_interval_s)
        # Mail announced during the last pass is not announced again in IDLE.
        elif not imap.take_new_mail_notice(self.client):
            self._idle_until_news(stop)

    def _idle_until_news(self, stop: threading.Event) -> None:
        """IDLE until new mail is announced, the renewal is due, or ``stop`` is set.
        ``idle_check`` reports sequence numbers, not UIDs: any EXISTS just means "poll"."""
        # Also a pass at least every poll_interval_s: mail landing between our last command
        # and the start of IDLE may be announced only at the server's own next check
        # (Dovecot on maildir: up to 30 s later), and this bounds that delay.
        client, check_s = self.client, self.source.idle_check_s
        renew_s = min(self.source.idle_renew_s, self.account.poll_interval_s)
        imap.idle_start(client)
        try:
            started = time.monotonic()
            while not stop.is_set():
                t0 = time.monotonic()
                responses = imap.idle_check(client, check_s)
                if any(_is_exists(r) for r in responses):
                    return
                now = time.monotonic()
                if now - started >= renew_s:
                    return  # renew: IDLE DONE, a pass (cheap), IDLE again
                if not responses and now - t0 < check_s / 2:
                    # idle_check returns at once with nothing when the server closed the
                    # connection (EOF); idle_done below then raises and we reconnect.
                    return
        finally:
            imap.idle_done(client)


def _is_exists(response: object) -> bool:
    return isinstance(response, tuple) and len(response) >= 2 and response[1] == b"EXISTS"
