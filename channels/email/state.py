"""Per-mailbox IMAP state in the database (:class:`~kartabl.models.MailboxState`): where
the poller stands (UIDVALIDITY, ``last_uid``). Its health is the runner's
(:mod:`channels.health`, table ``poller_state``).

Each function is one short transaction of its own: the poller never holds a database
transaction open across a network round trip to the IMAP server.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker

from channels import health
from kartabl.db import dialect_insert
from kartabl.models import MailboxState, QuarantinedMail, utcnow

log = logging.getLogger(__name__)


def _row(session: Session, name: str, folder: str) -> MailboxState:
    # Insert-if-missing that two processes may race on safely.
    session.execute(
        dialect_insert(session)(MailboxState)
        .values(name=name, folder=folder, last_uid=0, updated_at=utcnow())
        .on_conflict_do_nothing(index_elements=["name"])
    )
    row = session.get(MailboxState, name, populate_existing=True)
    assert row is not None
    return row


def begin_pass(sf: sessionmaker[Session], name: str, folder: str, uidvalidity: int) -> int:
    """The last UID already ingested under ``uidvalidity``. When the server reports another
    UIDVALIDITY (or the folder changed), every stored UID is void: start again from 0, and
    let ingest's unique (channel, external_id) drop what was already stored."""
    with sf() as session:
        row = _row(session, name, folder)
        if row.uidvalidity != uidvalidity or row.folder != folder:
            if row.uidvalidity is not None:
                log.warning(
                    "mailbox %s: UIDVALIDITY %s -> %s (folder %s -> %s); resyncing the folder "
                    "from the start, already stored mail is deduplicated",
                    name, row.uidvalidity, uidvalidity, row.folder, folder,
                )
            row.uidvalidity, row.folder, row.last_uid = uidvalidity, folder, 0
        last = int(row.last_uid)
        session.commit()
        return last


def advance(sf: sessionmaker[Session], name: str, uidvalidity: int, uid: int) -> None:
    """Move ``last_uid`` forward to ``uid``; never backward, and never under a UIDVALIDITY
    that is no longer the stored one (a concurrent resync wins)."""
    with sf() as session:
        session.execute(
            update(MailboxState)
            .where(
                MailboxState.name == name,
                MailboxState.uidvalidity == uidvalidity,
                MailboxState.last_uid < uid,
            )
            .values(last_uid=uid, updated_at=utcnow())
        )
        session.commit()


def failing_mailboxes(session: Session) -> list[dict[str, Any]]:
    """The mailboxes in an outage now, for status and /readyz (JSON-ready): their pollers'
    health, recorded by the runner (:mod:`channels.health`)."""
    return health.failing(session, prefix="email:")


def quarantined_count(session: Session) -> int:
    return int(
        session.scalar(
            select(func.count()).where(QuarantinedMail.reimported_at.is_(None))
        ) or 0
    )
