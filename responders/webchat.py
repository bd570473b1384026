"""The website widget's sender: an approved reply is appended to the visitor's event log.

The "provider" is our own database: the visitor's log (:mod:`channels.webchat.log`), which
their widget reads as server-sent events and replays after any reconnect. So:

- **idempotency**: the event's key is ``r:<idempotency key>``, unique per visitor; sending
  the same reply twice finds the first event and returns its id (one bubble, whatever the
  outbox does);
- **order**: the event takes the visitor's next sequence number in the transaction that
  writes it (the visitor row locked), so the widget shows replies in the order they were
  committed, among the visitor's own messages;
- **outcomes**: the visitor's key (the message's recipient) unknown → refused (failed, with
  the reason); a database error before the write began → not sent (retried); one during
  the write → unknown, and :meth:`lookup` answers exactly (found by key, or surely absent),
  so the reconcile sweep never resends blindly;
- **status**: ``delivered`` once the event is in the log: the widget shows it the moment it
  is connected, or on its next connect (the visitor's reading it is not tracked);
- the provider id is ``webchat:<visitor key>:<seq>``.

When the visitor is gone or the team is outside its hours, and the visitor gave a
contact, the same transaction adds the offline continuation (a second reply to that
number or address, :mod:`channels.webchat.offline`); a resend finds the event and adds
nothing.

The visitor never sees a draft: only a "being prepared" notice without its text, written
when a draft appears (:func:`channels.webchat.log.sync_notices`).
"""

from __future__ import annotations

import logging

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from channels.webchat import log as wlog
from channels.webchat import offline
from kartabl import db as kdb
from kartabl.errors import PermanentDeliveryError
from kartabl.messages import OutboundMessage
from kartabl.models import Channel, WebchatEvent, WebchatVisitor
from kartabl.outbound import DeliveryStatus, Sender, UnknownOutcomePolicy
from responders.outcomes import request_leaves

log = logging.getLogger(__name__)


class WebchatSender(Sender):
    channel = Channel.WEBCHAT.value
    unknown_outcome: UnknownOutcomePolicy = "at_least_once"  # lookup answers anyway

    def __init__(self, session_factory: sessionmaker[Session] | None = None, *,
                 away_s: float = offline.AWAY_S) -> None:
        self._factory = session_factory
        self._away_s = away_s

    def __repr__(self) -> str:
        return "<WebchatSender: the visitors' event logs>"

    def _session(self) -> Session:
        return (self._factory or kdb.session_factory())()

    @property
    def can_look_up(self) -> bool:
        return True

    @staticmethod
    def _key(msg: OutboundMessage) -> str:
        return f"r:{msg.idempotency_key}"

    def _visitor(self, s: Session, msg: OutboundMessage) -> WebchatVisitor:
        visitor = s.scalar(select(WebchatVisitor).where(WebchatVisitor.key == msg.recipient))
        if visitor is None:
            raise PermanentDeliveryError(f"no website chat visitor {msg.recipient[:80]!r}")
        return visitor

    def send(self, msg: OutboundMessage) -> str:
        if msg.attachments:  # the widget shows text only: never "delivered" without them
            raise PermanentDeliveryError("files are not sent in the website chat yet; send "
                                         "them by another channel")
        with self._session() as s:
            visitor = self._visitor(s, msg)
            s.rollback()  # the read ends; the write below is its own transaction
            request_leaves()  # from here the event may be committed: lookup tells
            appended = wlog.append(s, visitor.id, wlog.REPLY, self._key(msg), text=msg.text,
                                   reply_id=msg.reply_id)
            if appended.created:
                # the visitor gone, or the team outside its hours: a second reply row to
                # the contact they gave, committed with the event (channels.webchat.offline)
                offline.continue_offline(s, visitor, msg.reply_id, away_s=self._away_s)
            s.commit()
            key = visitor.key
        log.info("webchat reply %s to %s as event %s (%s)", msg.reply_id, key, appended.seq,
                 "new" if appended.created else "already there")
        return f"webchat:{key}:{appended.seq}"

    def lookup(self, msg: OutboundMessage) -> str | None:
        with self._session() as s:
            row = s.execute(
                select(WebchatVisitor.key, WebchatEvent.seq)
                .join(WebchatEvent, WebchatEvent.visitor_id == WebchatVisitor.id)
                .where(WebchatVisitor.key == msg.recipient, WebchatEvent.key == self._key(msg))
            ).first()
        return None if row is None else f"webchat:{row[0]}:{row[1]}"

    def status(self, provider_id: str) -> DeliveryStatus | None:
        _, _, rest = provider_id.partition(":")
        key, _, seq = rest.rpartition(":")
        if not seq.isdigit():
            return None
        with self._session() as s:
            found = s.scalar(
                select(WebchatEvent.id)
                .join(WebchatVisitor, WebchatEvent.visitor_id == WebchatVisitor.id)
                .where(WebchatVisitor.key == key, WebchatEvent.seq == int(seq)))
        return "delivered" if found is not None else None
