"""From raw mail to committed messages: parse, keep bad mail aside, store attachments, commit.

Used by the poller (a batch of fetched UIDs), the backfill and ``kartabl email reimport``
(:mod:`channels.email.reimport`). One batch is one transaction: the new messages and the
quarantined mail of the batch are committed together, and routing is enqueued only after
that commit. The caller acknowledges the mail on IMAP only once this returns.

Bad mail never stops anything: a mail over ``mail_max_bytes`` (only its header was
fetched), or one the parser rejects (:class:`~channels.email.parse.UnparseableMail`) or
trips on (any exception: a parser bug must not wedge the mailbox), becomes a
:class:`~kartabl.models.QuarantinedMail` row with its raw bytes and the reason, and the
batch goes on. A mail whose body the parser could not read (``meta["mime_error"]``) is
stored from its headers, so the customer is answered, and quarantined as well, linked to
that message: its raw bytes are the only copy of the body once the mail is acknowledged.
``reimport`` gives either another try.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from channels.email.attachments import store_payloads
from channels.email.imap import Fetched
from channels.email.parse import MailLimits, parse_mail
from config.channels import Mailbox
from config.settings import Settings
from kartabl import ingest
from kartabl.db import dialect_insert
from kartabl.inbound import Batch
from kartabl.ingest import Stored
from kartabl.messages import InboundMessage
from kartabl.models import QuarantinedMail, utcnow

log = logging.getLogger(__name__)


@dataclass(slots=True)
class BatchResult:
    created: int = 0  # new messages
    duplicates: int = 0  # already stored (a re-fetch, a resync, the same mail twice)
    quarantined: int = 0  # quarantine rows of the batch (body-unreadable messages included)
    done: list[int] = dataclasses.field(default_factory=list)  # UIDs now durable
    # Of ``done``, the oversized mail: only its header is kept, so it must stay where it is
    # on the server (flagged, never moved) for the re-import to fetch it.
    left_in_place: list[int] = dataclasses.field(default_factory=list)


@dataclass(slots=True)
class MailBatch(Batch):
    """A fetched batch of one mailbox (:class:`kartabl.inbound.Batch`): its messages, and
    the mail to quarantine, committed together by :meth:`stage`. ``ack``: its UIDs."""

    ingester: MailIngester | None = None
    uidvalidity: int | None = None
    good: list[tuple[Fetched, InboundMessage]] = dataclasses.field(default_factory=list)
    bad: list[tuple[Fetched, str]] = dataclasses.field(default_factory=list)
    # Of the batch, the oversized mail: only its header is kept, so it must stay where it
    # is on the server (flagged, never moved) for the re-import to fetch it.
    left_in_place: list[int] = dataclasses.field(default_factory=list)
    upto: int | None = None  # the last UID asked for (some may have vanished): last_uid's
    _quarantine_log: list[tuple[Fetched, str]] = dataclasses.field(default_factory=list)

    def stage(self, session: Session) -> list[Stored]:
        """The messages and the quarantine rows of the batch, uncommitted (again on a fresh
        session when the runner retries the commit)."""
        assert self.ingester is not None
        kept = list(self.bad)
        for mail, reason in self.bad:
            self.ingester.quarantine(session, self.uidvalidity, mail, reason)
        stored = ingest.add_many(session, [m for _, m in self.good])
        for (mail, msg), s in zip(self.good, stored, strict=True):
            if (unreadable := unreadable_reason(msg)) is not None:
                kept.append((mail, unreadable))
                self.ingester.quarantine(session, self.uidvalidity, mail, unreadable,
                                          s.message_id)
        self._quarantine_log, self.quarantined = kept, len(kept)
        return stored

    def log_quarantined(self) -> None:
        """After the commit: one warning per mail kept aside."""
        name = self.ingester.mailbox.name if self.ingester else "?"
        for mail, reason in self._quarantine_log:
            log.warning(
                "mail quarantined: mailbox=%s uid=%s size=%s reason=%s",
                name, mail.uid, mail.oversized or len(mail.raw), reason,
            )


def oversized_reason(size: int, limit: int) -> str:
    return f"oversized ({size} bytes > {limit}, KARTABL_MAIL_MAX_BYTES)"


def unreadable_reason(msg: InboundMessage) -> str | None:
    """Why the body of ``msg`` is missing, when the parser kept only its headers."""
    error = msg.meta.get("mime_error")
    return f"body unreadable: {error}" if error else None


class MailIngester:
    """Turns raw mail of one mailbox into messages. ``our_addresses`` are all the
    addresses of every configured mailbox (the parser's loop guard needs them all)."""

    def __init__(
        self,
        mailbox: Mailbox,
        settings: Settings,
        session_factory: sessionmaker[Session],
        our_addresses: Collection[str],
    ) -> None:
        self.mailbox = mailbox
        self.settings = settings
        self.session_factory = session_factory
        self.our_addresses = frozenset(a.lower() for a in our_addresses)
        self.limits = MailLimits.from_settings(settings)

    # -- one mail -------------------------------------------------------------------------

    def prepare(self, raw: bytes, received_at: datetime | None = None) -> InboundMessage | str:
        """The message for ``raw``, with its attachments already written to disk; or the
        reason it must be quarantined. ``received_at``: when our server received it (the
        IMAP INTERNALDATE), the message's time; by default now."""
        limit = self.settings.mail_max_bytes
        if len(raw) > limit:  # the server did not tell the size, so the mail came whole
            return oversized_reason(len(raw), limit)
        try:
            parsed = parse_mail(raw, our_addresses=self.our_addresses, received_at=received_at,
                                limits=self.limits)
        except Exception as exc:  # UnparseableMail, or a parser bug: quarantine either way
            if type(exc).__name__ != "UnparseableMail":
                log.warning("parser error on mail of %s", self.mailbox.name, exc_info=True)
            return f"unparseable: {type(exc).__name__}: {exc}"[:2000]
        # Before the commit: a committed message must never point at files not yet written.
        # A crash in between leaves orphan files under generated names, never a dangling row.
        store_payloads(parsed.payloads, Path(self.settings.attachments_dir))
        return self._for_mailbox(parsed.message)

    def _for_mailbox(self, msg: InboundMessage) -> InboundMessage:
        meta = {**msg.meta, "mailbox": self.mailbox.name}
        if self.mailbox.team:
            meta["default_team"] = self.mailbox.team  # router.placement's fallback team
        recipient = msg.recipient
        local, _, domain = recipient.strip().lower().partition("@")
        # support+<reply token>@x is ours too: keep it, the token threads the reply.
        if f"{local.split('+', 1)[0]}@{domain}" not in self.our_addresses:
            # Bcc, a forwarding alias, a list: the mail reached us through this mailbox.
            recipient = self.mailbox.address
        return dataclasses.replace(msg, recipient=recipient, meta=meta)

    # -- a batch --------------------------------------------------------------------------

    def prepare_batch(self, uidvalidity: int | None, mails: Sequence[Fetched]) -> MailBatch:
        """Parse ``mails`` (attachments written), nothing committed yet: the runner stages
        and commits the batch (:meth:`MailBatch.stage`), then the poller acknowledges it."""
        batch = MailBatch([], fetched=len(mails), ingester=self, uidvalidity=uidvalidity,
                          ack=[m.uid for m in mails])
        limit = self.settings.mail_max_bytes
        for mail in mails:
            prepared = (
                oversized_reason(mail.oversized, limit) if mail.oversized is not None
                else self.prepare(mail.raw, mail.internal_date)
            )
            if isinstance(prepared, str):
                batch.bad.append((mail, prepared))
            else:
                batch.good.append((mail, prepared))
        batch.messages = [m for _, m in batch.good]
        batch.left_in_place = [m.uid for m in mails if m.oversized is not None]
        return batch

    def ingest(self, uidvalidity: int | None, mails: Sequence[Fetched]) -> BatchResult:
        """Parse and commit one batch; returns which UIDs are durable (all of them, unless
        this raises, in which case nothing of the batch is committed)."""
        batch = self.prepare_batch(uidvalidity, mails)
        with self.session_factory() as session:
            stored = batch.stage(session)
            session.commit()  # the messages and the quarantine rows, or nothing
        batch.log_quarantined()
        result = BatchResult(done=list(batch.ack), left_in_place=batch.left_in_place)
        result.created = sum(s.created for s in stored)
        result.duplicates = len(stored) - result.created
        result.quarantined = batch.quarantined
        return result

    def quarantine(
        self, session: Session, uidvalidity: int | None, mail: Fetched, reason: str,
        message_id: int | None = None,
    ) -> None:
        # The same bad mail seen again (a re-fetch after a crash, a UIDVALIDITY resync, a
        # backfill) is kept once: same UID under the same UIDVALIDITY, or the same bytes.
        # Re-imported rows count too: that mail is a message already.
        size = mail.oversized or len(mail.raw)
        same_bytes = session.scalar(
            select(QuarantinedMail.id).where(
                QuarantinedMail.mailbox == self.mailbox.name,
                QuarantinedMail.size == size,
                QuarantinedMail.raw == mail.raw,
            ).limit(1)
        )
        if same_bytes is not None:
            return
        session.execute(
            dialect_insert(session)(QuarantinedMail)
            .values(
                mailbox=self.mailbox.name, uidvalidity=uidvalidity, uid=mail.uid,
                folder=self.mailbox.imap.folder if self.mailbox.imap else None,
                reason=reason, size=size, raw=mail.raw,
                headers_only=mail.oversized is not None, message_id=message_id,
                created_at=utcnow(),
            )
            .on_conflict_do_nothing(index_elements=["mailbox", "uidvalidity", "uid"])
        )
