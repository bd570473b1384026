"""From raw mail to committed messages: parse, keep bad mail aside, store attachments, commit.

Used by the poller (a batch of fetched UIDs), the backfill and ``kartabl email reimport``.
One batch is one transaction: the new messages and the quarantined mail of the batch are
committed together by :func:`kartabl.ingest.store_many`, which enqueues routing only after
that commit. The caller acknowledges the mail on IMAP only once this returns.

Bad mail never stops anything: a mail over ``mail_max_bytes``, or one the parser rejects
(:class:`~channels.email.parse.UnparseableMail`) or trips on (any exception: a parser bug
must not wedge the mailbox), becomes a :class:`~kartabl.models.QuarantinedMail` row with
its raw bytes and the reason, and the batch goes on. ``reimport`` gives it another try.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from channels.email.attachments import store_payloads
from channels.email.imap import Fetched
from channels.email.parse import parse_mail
from config.channels import Mailbox
from config.settings import Settings
from kartabl import ingest
from kartabl.errors import NotFound
from kartabl.messages import InboundMessage
from kartabl.models import QuarantinedMail, utcnow

log = logging.getLogger(__name__)


@dataclass(slots=True)
class BatchResult:
    created: int = 0  # new messages
    duplicates: int = 0  # already stored (a re-fetch, a resync, the same mail twice)
    quarantined: int = 0
    done: list[int] = dataclasses.field(default_factory=list)  # UIDs now durable


@dataclass(frozen=True, slots=True)
class ReimportOutcome:
    quarantine_id: int
    message_id: int | None  # set when the mail is now a message
    reason: str | None  # why it is still quarantined
    already: bool = False  # it had been re-imported before


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

    # -- one mail -------------------------------------------------------------------------

    def prepare(self, raw: bytes) -> InboundMessage | str:
        """The message for ``raw``, with its attachments already written to disk; or the
        reason it must be quarantined."""
        limit = self.settings.mail_max_bytes
        if len(raw) > limit:
            return f"oversized: {len(raw)} bytes, the limit is {limit} (KARTABL_MAIL_MAX_BYTES)"
        try:
            parsed = parse_mail(raw, our_addresses=self.our_addresses)
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

    def ingest(self, uidvalidity: int | None, mails: Sequence[Fetched]) -> BatchResult:
        """Parse and commit one batch; returns which UIDs are durable (all of them, unless
        this raises, in which case nothing of the batch is committed)."""
        result = BatchResult()
        msgs: list[InboundMessage] = []
        bad: list[tuple[Fetched, str]] = []
        for mail in mails:
            prepared = self.prepare(mail.raw)
            if isinstance(prepared, str):
                bad.append((mail, prepared))
            else:
                msgs.append(prepared)
        with self.session_factory() as session:
            for mail, reason in bad:
                self._quarantine(session, uidvalidity, mail, reason)
                log.warning(
                    "mail quarantined: mailbox=%s uid=%s size=%s reason=%s",
                    self.mailbox.name, mail.uid, len(mail.raw), reason,
                )
            stored = ingest.store_many(session, msgs)  # commits the quarantine rows too
            if not msgs:
                session.commit()
        result.created = sum(s.created for s in stored)
        result.duplicates = len(stored) - result.created
        result.quarantined = len(bad)
        result.done = [m.uid for m in mails]
        return result

    def _quarantine(
        self, session: Session, uidvalidity: int | None, mail: Fetched, reason: str
    ) -> None:
        # The same bad mail seen again (a re-fetch after a crash, a UIDVALIDITY resync, a
        # backfill) is kept once: same UID under the same UIDVALIDITY, or the same bytes.
        same_bytes = session.scalar(
            select(QuarantinedMail.id).where(
                QuarantinedMail.mailbox == self.mailbox.name,
                QuarantinedMail.reimported_at.is_(None),
                QuarantinedMail.size == len(mail.raw),
                QuarantinedMail.raw == mail.raw,
            ).limit(1)
        )
        if same_bytes is not None:
            return
        dialect = session.get_bind().dialect.name
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        session.execute(
            insert(QuarantinedMail)
            .values(
                mailbox=self.mailbox.name, uidvalidity=uidvalidity, uid=mail.uid,
                reason=reason, size=len(mail.raw), raw=mail.raw, created_at=utcnow(),
            )
            .on_conflict_do_nothing(index_elements=["mailbox", "uidvalidity", "uid"])
        )


def reimport(
    ingester_for: Callable[[str], MailIngester],
    session_factory: sessionmaker[Session],
    quarantine_id: int,
) -> ReimportOutcome:
    """Parse a quarantined mail again (after a parser fix, or a raised size limit) and
    ingest it. Safe to repeat: the message is deduplicated by ingest, and the quarantine
    row is marked only after the message is committed."""
    with session_factory() as session:
        row = session.get(QuarantinedMail, quarantine_id)
        if row is None:
            raise NotFound(f"no quarantined mail #{quarantine_id}")
        if row.reimported_at is not None:
            return ReimportOutcome(quarantine_id, row.message_id, None, already=True)
        raw, mailbox = bytes(row.raw), row.mailbox
    prepared = ingester_for(mailbox).prepare(raw)
    with session_factory() as session:
        row = session.get(QuarantinedMail, quarantine_id)
        assert row is not None
        if isinstance(prepared, str):
            row.reason = prepared
            session.commit()
            return ReimportOutcome(quarantine_id, None, prepared)
        stored = ingest.store(session, prepared)  # commit 1: the message (deduplicated)
        row.reimported_at, row.message_id = utcnow(), stored.message_id
        session.commit()  # commit 2: a crash before it only means reimporting again
        return ReimportOutcome(quarantine_id, stored.message_id, None)
