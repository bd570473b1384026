"""Polling of Kavenegar's receive API: a fallback beside the callback, and backfill.

``sms/receive`` with ``isread=0`` returns up to 100 unread SMS of a line **and marks them
read**: Kavenegar will not return them again. So a pass stores the whole batch in one
``store_many`` (one commit) before anything else, and a line that returned a full batch is
asked again at once. A batch that fails to commit is lost for polling: the callback, when
configured, is the other path for the same SMS (same external id, one message). An SMS
that cannot be stored (a sender that is not a phone number) is logged and dropped, as the
webhook refuses it with 400.

No cursor: the provider keeps the read marks. :class:`SmsPoller.run` loops every
``poll_interval_s`` until its stop event is set.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

from sqlalchemy.orm import Session, sessionmaker

from channels.sms.inbound import to_message
from channels.sms.kavenegar import Kavenegar, KavenegarError
from config.sms import SmsConfig
from kartabl.errors import InputError
from kartabl.ingest import store_many
from kartabl.messages import InboundMessage

log = logging.getLogger(__name__)
BATCH = 100  # Kavenegar's page size for receive
MAX_BATCHES_PER_PASS = 50  # a backlog of 5,000 SMS is read over several passes


@dataclass(slots=True)
class PassResult:
    received: int = 0
    created: int = 0
    duplicates: int = 0
    malformed: int = 0


class SmsPoller:
    def __init__(self, config: SmsConfig, session_factory: sessionmaker[Session]) -> None:
        self.config, self._sessions = config, session_factory
        self.api = Kavenegar(config)

    def __repr__(self) -> str:
        return f"<SmsPoller lines {', '.join(self.config.lines)}>"

    def poll_once(self) -> PassResult:
        result = PassResult()
        for line in self.config.lines:
            for _ in range(MAX_BATCHES_PER_PASS):
                if self._batch(line, result) < BATCH:
                    break
        return result

    def _batch(self, line: str, result: PassResult) -> int:
        entries = self.api.sms_receive({"linenumber": line, "isread": 0}) or []
        msgs: list[InboundMessage] = []
        for entry in entries:
            try:
                msgs.append(to_message({**entry, "receptor": entry.get("receptor") or line},
                                       self.config))
            except (InputError, AttributeError) as exc:
                log.warning("line %s: unusable SMS %s dropped: %s", line,
                            getattr(entry, "get", lambda _k: "?")("messageid"), exc)
                result.malformed += 1
        if msgs:
            with self._sessions() as session:
                stored = store_many(session, msgs)  # commits: they are already marked read
            created = sum(s.created for s in stored)
            result.created += created
            result.duplicates += len(stored) - created
        result.received += len(entries)
        return len(entries)

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                result = self.poll_once()
                if result.received:
                    log.info("SMS poll: %d received, %d new", result.received, result.created)
            except KavenegarError as exc:
                log.warning("SMS poll failed, next try in %g s: %s",
                            self.config.poll_interval_s, exc)
            except Exception:
                log.exception("SMS poll failed, next try in %g s", self.config.poll_interval_s)
            stop.wait(self.config.poll_interval_s)
