"""The sandbox sender: a stand-in provider with real semantics, for the demo and the tests,
until the channel senders land (and for any channel without credentials).

Its :class:`~kartabl.models.SandboxDelivery` table plays the provider's own records: written
in the sender's *own* short transaction (a provider does not share our transaction), keyed
by the idempotency key, so the same key sent twice gives the same provider id and one row.
That lets the outbox reconcile a crash between send and record exactly as with a real
provider. Faults can be injected for tests: :meth:`SandboxSender.inject`.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from typing import Final, Literal

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from kartabl import db as kdb
from kartabl.db import dialect_insert
from kartabl.messages import OutboundMessage
from kartabl.models import Channel, SandboxDelivery
from kartabl.outbound import DeliveryStatus, Sender, UnknownOutcomePolicy, register, registered
from responders.outcomes import request_leaves

log = logging.getLogger(__name__)

CRASH_AFTER_RECORD: Final = "crash-after-record"
Fault = BaseException | Literal["crash-after-record"]


class SimulatedCrash(BaseException):
    """Raised after the delivery was recorded: the process 'died' before the outbox knew.
    A ``BaseException``, as a process's death is not an error anything in it handles: the
    outbox lets it through and the reply stays 'sending', as after a real crash."""


class SandboxSender(Sender):
    """Records deliveries in ``sandbox_delivery``. ``supports_lookup=False`` makes
    :meth:`lookup` raise ``NotImplementedError`` so the ``unknown_outcome`` policy applies;
    ``report_status`` is what :meth:`status` answers for a known delivery."""

    def __init__(
        self, channel: Channel | str, *,
        session_factory: sessionmaker[Session] | None = None,
        unknown_outcome: UnknownOutcomePolicy = "at_least_once",
        supports_lookup: bool = True,
        report_status: DeliveryStatus | None = "delivered",
    ) -> None:
        self.channel = Channel(channel).value
        self.unknown_outcome: UnknownOutcomePolicy = unknown_outcome
        self.supports_lookup = supports_lookup
        self.report_status: DeliveryStatus | None = report_status
        self.calls = 0  # send() calls, faulty ones included
        self._factory = session_factory
        self._faults: deque[Fault] = deque()
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"<SandboxSender {self.channel}>"

    def inject(self, *faults: Fault) -> None:
        """Queue faults for the next send() calls, one per call: an exception is raised
        before anything is recorded but after the request "left" (the provider failed: a
        :class:`~kartabl.errors.DeliveryError` is taken as it is, anything else is an
        unknown outcome); CRASH_AFTER_RECORD records the delivery and then raises
        :class:`SimulatedCrash`."""
        with self._lock:
            self._faults.extend(faults)

    def _session(self) -> Session:
        return (self._factory or kdb.session_factory())()

    @property
    def can_look_up(self) -> bool:
        return self.supports_lookup

    def send(self, msg: OutboundMessage) -> str:
        with self._lock:
            self.calls += 1
            fault = self._faults.popleft() if self._faults else None
        request_leaves()  # the faults play the provider's: they come after the request left
        if isinstance(fault, BaseException):
            raise fault
        with self._session() as s, s.begin():
            insert = dialect_insert(s)
            s.execute(
                insert(SandboxDelivery)
                .values(
                    idempotency_key=msg.idempotency_key, channel=self.channel,
                    recipient=msg.recipient, subject=msg.subject, body=msg.text,
                )
                .on_conflict_do_nothing(index_elements=["idempotency_key"])
            )
            row_id = s.scalar(
                select(SandboxDelivery.id).where(
                    SandboxDelivery.idempotency_key == msg.idempotency_key
                )
            )
        provider_id = f"sandbox-{row_id}"
        log.info(
            "sandbox %s reply %s to %s as %s: %.200s", self.channel, msg.reply_id, msg.recipient,
            provider_id, msg.text,
        )
        if fault == CRASH_AFTER_RECORD:
            raise SimulatedCrash(f"simulated crash after recording {provider_id}")
        return provider_id

    def lookup(self, msg: OutboundMessage) -> str | None:
        if not self.supports_lookup:
            raise NotImplementedError(f"the {self.channel} sandbox is told it cannot look up")
        with self._session() as s:
            row_id = s.scalar(
                select(SandboxDelivery.id).where(
                    SandboxDelivery.idempotency_key == msg.idempotency_key,
                    SandboxDelivery.channel == self.channel,
                )
            )
        return None if row_id is None else f"sandbox-{row_id}"

    def status(self, provider_id: str) -> DeliveryStatus | None:
        prefix, _, num = provider_id.partition("-")
        if prefix != "sandbox" or not num.isdigit():
            return None
        with self._session() as s:
            known = s.get(SandboxDelivery, int(num)) is not None
        return self.report_status if known else None


def install(session_factory: sessionmaker[Session] | None = None) -> list[Sender]:
    """Register a sandbox sender for every channel that has no sender yet."""
    have = registered()
    return [
        register(SandboxSender(ch, session_factory=session_factory))
        for ch in Channel
        if ch.value not in have
    ]
