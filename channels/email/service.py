"""The email channel's entry points, wired to the configuration: the pollers of every
configured mailbox (one thread each, in one process), the backfill and the re-import.

Used by ``kartabl email ...`` (:mod:`boot.cli.email`) and by the embedded ``kartabl run``.
Each entry point takes the process's settings and channels from its caller (read once, at
the process edge), never from ``get_settings()`` or ``get_channels()``.
"""

from __future__ import annotations

import logging
import threading
from datetime import date
from functools import partial
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from channels.email import imap
from channels.email.ingest import MailIngester
from channels.email.poller import MailboxFeed, MailboxSource, Progress
from channels.email.reimport import ReimportOutcome, reimport
from channels.runner import PassResult, Runner
from config.channels import ChannelsConfig, Mailbox
from config.settings import Settings
from kartabl import db
from kartabl.models import QuarantinedMail

log = logging.getLogger(__name__)

def imap_mailboxes(channels: ChannelsConfig) -> list[Mailbox]:
    """The configured mailboxes that have an IMAP account (the others only send)."""
    return [m for m in channels.email.mailboxes if m.imap is not None]


_SOURCE_OPTIONS = ("idle_renew_s", "idle_check_s")


def make_poller(settings: Settings, channels: ChannelsConfig, mailbox: Mailbox,
                stop: threading.Event | None = None, **kw: Any) -> Runner:
    """The runner of ``mailbox``'s IMAP adapter. ``kw``: the adapter's IDLE timings
    (``idle_renew_s``, ``idle_check_s``) and the runner's backoff options."""
    source_kw = {k: kw.pop(k) for k in _SOURCE_OPTIONS if k in kw}
    ingester = MailIngester(mailbox, settings, db.session_factory(),
                            channels.email.our_addresses)
    return Runner(MailboxSource(ingester, **source_kw), db.session_factory(), stop, **kw)


def sources(channels: ChannelsConfig, settings: Settings, sessions: sessionmaker[Session]
            ) -> list[MailboxSource]:
    """The registry's entry (:mod:`channels.polled`): every mailbox with an IMAP account."""
    return [MailboxSource(MailIngester(m, settings, sessions, channels.email.our_addresses))
            for m in imap_mailboxes(channels)]


def start_pollers(
    settings: Settings, channels: ChannelsConfig, stop: threading.Event,
    mailboxes: list[Mailbox] | None = None,
) -> list[threading.Thread]:
    """One daemon thread per mailbox, each running its poller until ``stop`` is set."""
    threads = []
    for mailbox in imap_mailboxes(channels) if mailboxes is None else mailboxes:
        poller = make_poller(settings, channels, mailbox, stop)
        t = threading.Thread(target=poller.run, name=f"imap-{mailbox.name}", daemon=True)
        t.start()
        threads.append(t)
    return threads


def backfill(
    settings: Settings, channels: ChannelsConfig, mailbox: Mailbox, since: date,
    progress: Progress | None = None, stop: threading.Event | None = None,
) -> PassResult:
    """Ingest every mail the server received since ``since`` (its internal date), e.g.
    after a long outage or when a mailbox is first connected. Everything goes through the
    same ingest and the same runner, so what is already stored is deduplicated.
    ``last_uid`` is left alone: the search is by date, so it says nothing about which UIDs
    were all seen."""
    runner = make_poller(settings, channels, mailbox, stop)
    source = runner.source
    assert isinstance(source, MailboxSource)
    with imap.connect(source.account) as client:
        imap.ensure_folder(client, source.account.processed_folder)
        imap.select(client, source.account.folder)
        uids = imap.uids_since(client, since)
        result = runner.drain(MailboxFeed(source, client, uids=uids, progress=progress))
    log.info(
        "mailbox %s: backfill since %s: %d mail, %d new, %d duplicate, %d quarantined",
        mailbox.name, since, result.fetched, result.created, result.duplicates,
        result.quarantined,
    )
    return result


def _ingester_for(settings: Settings, channels: ChannelsConfig, name: str) -> MailIngester:
    # A mailbox removed from the config since: its mail still comes in, without a team.
    mailbox = channels.email.mailbox(name) or Mailbox(name=name, address="")
    return MailIngester(mailbox, settings, db.session_factory(),
                        channels.email.our_addresses)


def reimport_one(settings: Settings, channels: ChannelsConfig, quarantine_id: int
                 ) -> ReimportOutcome:
    return reimport(partial(_ingester_for, settings, channels), db.session_factory(),
                    quarantine_id)


def reimport_all(settings: Settings, channels: ChannelsConfig) -> list[ReimportOutcome]:
    with db.session_factory()() as session:
        ids = list(session.scalars(
            select(QuarantinedMail.id)
            .where(QuarantinedMail.reimported_at.is_(None))
            .order_by(QuarantinedMail.id)
        ))
    return [reimport_one(settings, channels, i) for i in ids]
