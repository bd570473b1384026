"""``kartabl email reimport``: another try for quarantined mail.

Three kinds of quarantine row come back here:

- unparseable mail (after a parser fix): parsed again and, when it now reads, stored as a
  new message;
- oversized mail (after the limit was raised): only its header was kept, so the whole mail
  is fetched from the server by (folder, UIDVALIDITY, UID), where the poller left it;
- mail stored without its body (``message_id`` set, the parser could not read the body):
  parsed again and, when the body now reads, the stored message is *repaired* in place
  (text, html, attachments, meta), audited as ``message.repaired``. Ingest would only call
  it a duplicate: its (channel, external_id) is already taken, by that very message.

Safe to repeat: the quarantine row is marked in the same transaction as the message it
became (or the repair), so a crash before that commit only means re-importing again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime

from imapclient import IMAPClient
from sqlalchemy.orm import Session, sessionmaker

from channels.email import imap
from channels.email.imap import MailboxUnavailable
from channels.email.ingest import MailIngester, oversized_reason, unreadable_reason
from kartabl import audit, ingest
from kartabl.errors import NotFound
from kartabl.messages import InboundMessage
from kartabl.models import Message, QuarantinedMail, utcnow

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ReimportOutcome:
    quarantine_id: int
    message_id: int | None  # set when the mail is now a message
    reason: str | None  # why it is still quarantined
    already: bool = False  # it had been re-imported before
    repaired: bool = False  # the body of an already stored message was filled in


@dataclass(frozen=True, slots=True)
class _Row:
    id: int
    mailbox: str
    raw: bytes
    folder: str | None
    uidvalidity: int | None
    uid: int | None
    headers_only: bool
    message_id: int | None
    received_at: datetime  # when the mail was first received and kept aside


class _StillQuarantined(Exception):
    def __init__(self, reason: str, *, keep_reason: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.keep_reason = keep_reason  # the row's own reason stays (a passing trouble)


def reimport(
    ingester_for: Callable[[str], MailIngester],
    session_factory: sessionmaker[Session],
    quarantine_id: int,
) -> ReimportOutcome:
    """Parse a quarantined mail again and ingest it, or repair the message stored without
    its body. Mail that still fails stays quarantined, with the new reason."""
    with session_factory() as session:
        got = session.get(QuarantinedMail, quarantine_id)
        if got is None:
            raise NotFound(f"no quarantined mail #{quarantine_id}")
        if got.reimported_at is not None:
            return ReimportOutcome(quarantine_id, got.message_id, None, already=True)
        row = _Row(got.id, got.mailbox, bytes(got.raw), got.folder, got.uidvalidity, got.uid,
                   got.headers_only, got.message_id, got.created_at)
        session.commit()  # no transaction open across the parse and the IMAP round trips
    ingester = ingester_for(row.mailbox)
    try:
        with _whole_mail(ingester, row) as (client, raw):
            prepared = ingester.prepare(raw, row.received_at)
            if isinstance(prepared, str):
                raise _StillQuarantined(prepared)
            if (unreadable := unreadable_reason(prepared)) is not None:
                raise _StillQuarantined(unreadable)
            outcome = _commit(session_factory, row, prepared)
            if client is not None:
                _acknowledge(ingester, client, row)
            return outcome
    except _StillQuarantined as still:
        if not still.keep_reason:
            with session_factory() as session:
                got = session.get(QuarantinedMail, quarantine_id)
                assert got is not None
                got.reason = still.reason
                session.commit()
        return ReimportOutcome(quarantine_id, row.message_id, still.reason)


@contextmanager
def _whole_mail(
    ingester: MailIngester, row: _Row
) -> Iterator[tuple[IMAPClient | None, bytes]]:
    """The whole mail: the stored bytes, or for an oversized mail the server's copy (and
    the connection it came on, to acknowledge it once it is a message)."""
    if not row.headers_only:
        yield None, row.raw
        return
    account = ingester.mailbox.imap
    if account is None:
        raise _StillQuarantined(
            f"only the header was kept, and mailbox {row.mailbox} has no IMAP account "
            "configured any more to fetch the whole mail from", keep_reason=True)
    folder = row.folder or account.folder
    try:
        with imap.connect(account) as client:
            selected = imap.select(client, folder)
            if selected.uidvalidity != row.uidvalidity or row.uid is None:
                raise _StillQuarantined(
                    f"only the header was kept, and the whole mail cannot be fetched any "
                    f"more: folder {folder} was renumbered (UIDVALIDITY {row.uidvalidity} "
                    f"-> {selected.uidvalidity}) so UID {row.uid} means another mail now",
                    keep_reason=True)
            limit = ingester.settings.mail_max_bytes
            fetched = imap.fetch(client, [row.uid], max_bytes=limit)
            if not fetched:
                raise _StillQuarantined(
                    f"only the header was kept, and the whole mail is no longer on the "
                    f"server (folder {folder}, UID {row.uid}: deleted or moved)",
                    keep_reason=True)
            if fetched[0].oversized is not None:
                raise _StillQuarantined(oversized_reason(fetched[0].oversized, limit))
            yield client, fetched[0].raw
    except MailboxUnavailable as exc:
        raise _StillQuarantined(f"the IMAP server is unreachable now: {exc}",
                                keep_reason=True) from exc


def _commit(
    session_factory: sessionmaker[Session], row: _Row, prepared: InboundMessage
) -> ReimportOutcome:
    with session_factory() as session:
        got = session.get(QuarantinedMail, row.id)
        assert got is not None
        msg = session.get(Message, row.message_id) if row.message_id is not None else None
        repaired = False
        if msg is not None:
            repaired = _repair(session, msg, prepared, row)
            message_id = msg.id
        else:
            message_id = ingest.add_many(session, [prepared])[0].message_id
        got.reimported_at, got.message_id = utcnow(), message_id
        session.commit()
    return ReimportOutcome(row.id, message_id, None, repaired=repaired)


def _repair(session: Session, msg: Message, prepared: InboundMessage, row: _Row) -> bool:
    """Fill in the body of ``msg``, stored from the headers alone. Its routing, kind and
    conversation stay: they were decided on the headers and may have been acted on."""
    if "mime_error" not in (msg.meta or {}):
        return False  # repaired already (by the same mail quarantined twice)
    meta = {k: v for k, v in (msg.meta or {}).items() if k != "mime_error"}
    meta.update(prepared.meta)
    msg.text = prepared.text
    for column, value in ingest.html_columns(prepared.html).items():
        setattr(msg, column, value)
    msg.attachments = [a.to_json() for a in prepared.attachments]
    msg.meta = meta
    audit.record(
        session, "message.repaired", message_id=msg.id, conversation_id=msg.conversation_id,
        customer_id=msg.customer_id, quarantine_id=row.id, mailbox=row.mailbox,
        attachments=len(prepared.attachments),
    )
    return True


def _acknowledge(ingester: MailIngester, client: IMAPClient, row: _Row) -> None:
    # The oversized mail was flagged and left in its folder; now that it is a message it
    # goes where processed mail goes. Failing here loses nothing: it is committed.
    account = ingester.mailbox.imap
    assert account is not None and row.uid is not None
    try:
        imap.acknowledge(client, [row.uid], processed_folder=account.processed_folder,
                         processed_flag=account.processed_flag)
    except MailboxUnavailable as exc:
        log.warning("re-imported mail #%s is committed but could not be moved on the "
                    "server: %s", row.id, exc)
