"""Polling of Kavenegar's receive API: a fallback beside the callback, and backfill.

``sms/receive`` with ``isread=0`` returns up to 100 unread SMS of a line **and marks them
read**: Kavenegar will not return them again. So a pass stores the whole batch in one
``store_many`` (one commit) before anything else, and a line that returned a full batch is
asked again at once. Because of that, the database is asked first (``SELECT 1``): while it
is down nothing is fetched, so nothing is marked read. A batch in hand whose commit fails
is tried again with backoff (``STORE_RETRIES``); only if the database stays down through all
of them is the batch lost for polling, logged with its message ids (the callback, when
configured, is the other path for the same SMS: same external id, one message). An SMS
that cannot be stored (a sender that is not a phone number) is logged and dropped, as the
webhook refuses it with 400.

No cursor: the provider keeps the read marks. :class:`SmsPoller.run` loops every
``poll_interval_s`` until its stop event is set, one thread per line; each line is polled
by one process at a time (a second would only double the API calls: Kavenegar hands each
unread SMS to whichever asks first).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from channels.sms.inbound import to_message
from channels.sms.kavenegar import Kavenegar, KavenegarError
from config.sms import SmsConfig
from kartabl import locks
from kartabl.errors import InputError, OutcomeUnknown
from kartabl.ingest import Stored, store_many
from kartabl.messages import InboundMessage

log = logging.getLogger(__name__)
BATCH = 100  # Kavenegar's page size for receive
STORE_RETRIES = (0.5, 1.0, 2.0, 4.0, 8.0)  # seconds between commits of a batch in hand
MAX_BATCHES_PER_PASS = 50  # a backlog of 5,000 SMS is read over several passes


@dataclass(slots=True)
class PassResult:
    received: int = 0
    created: int = 0
    duplicates: int = 0
    malformed: int = 0


class SmsPoller:
    def __init__(self, config: SmsConfig, session_factory: sessionmaker[Session], *,
                 sleep: Callable[[float], object] = time.sleep) -> None:
        self.config, self._sessions, self._sleep = config, session_factory, sleep
        self.api = Kavenegar(config)

    def __repr__(self) -> str:
        return f"<SmsPoller lines {', '.join(self.config.lines)}>"

    def poll_once(self) -> PassResult:
        result = PassResult()
        for line in self.config.lines:
            self._poll_line(line, result)
        return result

    def _poll_line(self, line: str, result: PassResult) -> None:
        for _ in range(MAX_BATCHES_PER_PASS):
            if self._batch(line, result) < BATCH:
                break

    def _batch(self, line: str, result: PassResult) -> int:
        with self._sessions() as session:  # down? then fetch nothing: fetched is marked read
            session.execute(text("SELECT 1"))
        entries = self.api.sms_receive({"linenumber": line, "isread": 0}) or []
        msgs: list[InboundMessage] = []
        for entry in entries:
            try:
                msgs.append(to_message({**entry, "receptor": entry.get("receptor") or line},
                                       self.config, strict_date=False))
            except (InputError, AttributeError) as exc:
                log.warning("line %s: unusable SMS %s dropped: %s", line,
                            getattr(entry, "get", lambda _k: "?")("messageid"), exc)
                result.malformed += 1
        if msgs:
            stored = self._store(line, msgs)
            created = sum(s.created for s in stored)
            result.created += created
            result.duplicates += len(stored) - created
        result.received += len(entries)
        return len(entries)

    def _store(self, line: str, msgs: list[InboundMessage]) -> list[Stored]:
        """Commit ``msgs`` (already marked read by Kavenegar), trying again with backoff: a
        database blip between the ping and the commit must not lose them."""
        for delay in (*STORE_RETRIES, None):
            try:
                with self._sessions() as session:
                    return store_many(session, msgs)  # idempotent: a retry is safe
            except SQLAlchemyError as exc:
                if delay is None:
                    ids = ", ".join(str(m.meta.get("kavenegar_messageid") or m.external_id)
                                    for m in msgs)
                    log.error("line %s: %d SMS marked read by Kavenegar could not be stored "
                              "(messageids %s): %s", line, len(msgs), ids, exc)
                    raise
                log.warning("line %s: storing %d SMS failed, again in %g s: %s",
                            line, len(msgs), delay, exc)
                self._sleep(delay)
        raise AssertionError("unreachable")  # the loop returns or raises

    def run(self, stop: threading.Event) -> None:
        """Poll every line until ``stop`` is set. Several processes may run this: each line
        is polled by one process at a time, the holder of its poller lock
        (:func:`kartabl.locks.lead`), the others standing by to take over when it dies."""
        # As daemonic as the caller's thread: the demo runs this in a daemon thread, which
        # must not leave non-daemon threads keeping its process alive.
        daemon = threading.current_thread().daemon
        threads = [threading.Thread(target=self._run_line, args=(line, stop),
                                    name=f"sms-{line}", daemon=daemon)
                   for line in self.config.lines]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    def _run_line(self, line: str, stop: threading.Event) -> None:
        locks.lead(self._sessions.kw["bind"], f"sms poller {line}", stop,
                   lambda lease: self._lead_line(line, stop, lease))

    def _lead_line(self, line: str, stop: threading.Event, lease: locks.Lease) -> None:
        while not stop.is_set():
            if not lease.still_held():
                log.warning("line %s: the poller lock was lost; stepping down", line)
                return
            try:
                result = PassResult()
                self._poll_line(line, result)
                if result.received:
                    log.info("SMS poll of line %s: %d received, %d new", line,
                             result.received, result.created)
            except (KavenegarError, OutcomeUnknown) as exc:
                log.warning("SMS poll of line %s failed, next try in %g s: %s", line,
                            self.config.poll_interval_s, exc)
            except Exception:
                log.exception("SMS poll of line %s failed, next try in %g s", line,
                              self.config.poll_interval_s)
            stop.wait(self.config.poll_interval_s)
