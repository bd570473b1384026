"""Polling of Kavenegar's receive API, one line per source: a fallback beside the callback,
and backfill. An adapter on the inbound contract (:mod:`kartabl.inbound`); the runner
(:mod:`channels.runner`) commits, retries, leads and reports.

``sms/receive`` with ``isread=0`` returns up to 100 unread SMS of a line **and marks them
read**: Kavenegar will not return them again. So there is nothing to acknowledge, and the
runner's guarantees are what keep such a batch: the database is asked before each fetch
(while it is down nothing is fetched, so nothing is marked read), and the batch in hand is
committed with retries; only if the database stays down through all of them is the batch
lost for polling, logged with its external ids (the callback, when configured, is the
other path for the same SMS: same external id, one message). A line that returned a full
page is asked again at once. An SMS that cannot be stored (a sender that is not a phone
number) is logged and dropped, as the webhook refuses it with 400.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, nullcontext

from sqlalchemy.orm import Session, sessionmaker

from channels.sms.inbound import to_message
from channels.sms.kavenegar import Kavenegar, KavenegarError
from config.channels import ChannelsConfig
from config.settings import Settings
from config.sms import SmsConfig
from kartabl.errors import InputError, OutcomeUnknown
from kartabl.inbound import Batch, SourceUnavailable
from kartabl.messages import InboundMessage

log = logging.getLogger(__name__)
BATCH = 100  # Kavenegar's page size for receive
MAX_BATCHES_PER_PASS = 50  # a backlog of 5,000 SMS is read over several passes


class SmsLine:
    """One of our lines (a :class:`~kartabl.inbound.PolledSource`, and its own feed: plain
    HTTP, nothing to open)."""

    def __init__(self, config: SmsConfig, line: str, api: Kavenegar | None = None) -> None:
        self.config, self.line = config, line
        self.api = api or Kavenegar(config)

    def __repr__(self) -> str:
        return f"<SmsLine {self.line}>"

    @property
    def name(self) -> str:
        return f"sms:{self.line}"

    def open(self) -> AbstractContextManager[SmsLine]:
        return nullcontext(self)

    def batches(self) -> Iterator[Batch]:
        for _ in range(MAX_BATCHES_PER_PASS):
            batch = self._receive()
            yield batch
            if batch.fetched < BATCH:
                return

    def _receive(self) -> Batch:
        try:
            entries = self.api.sms_receive({"linenumber": self.line, "isread": 0}) or []
        except (KavenegarError, OutcomeUnknown) as exc:
            raise SourceUnavailable(str(exc)) from exc
        msgs: list[InboundMessage] = []
        for entry in entries:
            try:
                msgs.append(to_message({**entry, "receptor": entry.get("receptor") or self.line},
                                       self.config, strict_date=False))
            except (InputError, AttributeError) as exc:
                log.warning("line %s: unusable SMS %s dropped: %s", self.line,
                            getattr(entry, "get", lambda _k: "?")("messageid"), exc)
        return Batch(msgs, fetched=len(entries), skipped=len(entries) - len(msgs))

    def acknowledge(self, batch: Batch) -> None:
        """Nothing: Kavenegar marked the batch read as it returned it."""

    def wait(self, stop: threading.Event) -> None:
        stop.wait(self.config.poll_interval_s)


def lines(config: SmsConfig) -> list[SmsLine]:
    """A source per configured line, sharing one API client."""
    api = Kavenegar(config)
    return [SmsLine(config, line, api) for line in config.lines]


def sources(channels: ChannelsConfig, settings: Settings, sessions: sessionmaker[Session]
            ) -> list[SmsLine]:
    """The registry's entry (:mod:`channels.polled`): every line, when ``[sms] poll``."""
    sms = channels.sms
    return lines(sms) if sms is not None and sms.poll else []
