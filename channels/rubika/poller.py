"""Polling one Rubika bot (``mode = "polling"``): an adapter on the inbound contract
(:mod:`kartabl.inbound`); the runner (:mod:`channels.runner`) commits, retries, leads (one
process polls a bot at a time) and reports.

1. ``getUpdates`` with the stored ``offset_id`` (none at the first pass) and ``limit``;
   Rubika answers ``{"updates": [...], "next_offset_id": "..."}``;
2. the runner stores the page's messages (their files fetched first, :mod:`.files`) and
   commits;
3. only then :meth:`RubikaSource.acknowledge` stores ``next_offset_id`` as the bot's cursor
   (``ChannelCursor "rubika:<bot>"``, its string column: the offset is opaque, not a
   number to compare or to add one to), which the next ``getUpdates`` sends.

A crash between 2 and 3 fetches the same page again; ingest's unique ``(channel,
"<bot>:<chat>:<message_id>")`` drops it. Advancing first could lose the page. A
malformed update is logged and skipped (the offset moves past it with its page).

Unlike Telegram's, Rubika's ``getUpdates`` does not wait on the server for news: between
passes the poller waits ``poll_interval_s`` (a full page is followed at once by the next).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy.orm import Session, sessionmaker

from channels.rubika import files
from channels.rubika.api import RubikaApi, RubikaError
from channels.rubika.updates import key_of, to_message
from config.channels import ChannelsConfig
from config.rubika import RubikaBot
from config.settings import Settings
from kartabl.errors import InputError
from kartabl.inbound import Batch, SourceUnavailable
from kartabl.logs import redact
from kartabl.messages import InboundMessage
from kartabl.models import ChannelCursor

log = logging.getLogger(__name__)


class RubikaSource:
    """One polling bot (a :class:`~kartabl.inbound.PolledSource`; open, its own feed)."""

    def __init__(self, bot: RubikaBot, session_factory: sessionmaker[Session], *,
                 attachments_dir: Path, attachment_max_bytes: int) -> None:
        self.bot, self._sessions = bot, session_factory
        self._dir, self._max_bytes = attachments_dir, attachment_max_bytes
        self._api: RubikaApi | None = None

    def __repr__(self) -> str:
        return f"<RubikaSource {self.bot.name}>"

    @property
    def name(self) -> str:
        return self.bot.cursor_name  # rubika:<bot>

    @contextmanager
    def open(self) -> Iterator[RubikaSource]:
        self._api = RubikaApi(self.bot)
        try:
            yield self
        finally:
            self._api.close()
            self._api = None

    def offset(self) -> str | None:
        """The stored ``offset_id``: None before the first acknowledged page."""
        with self._sessions() as session:
            row = session.get(ChannelCursor, self.name)
            return row.text_value if row is not None else None

    def batches(self) -> Iterator[Batch]:
        """Pages from the stored offset; after a full page (acknowledged by the runner
        before it asks for the next) the next page at once, from the offset just stored."""
        assert self._api is not None, "open() the source first"
        while True:
            batch = self._page(self._api, self.offset())
            if batch is None:
                return
            yield batch
            if batch.ack is None or batch.fetched < self.bot.limit:
                return

    def _page(self, api: RubikaApi, offset: str | None) -> Batch | None:
        payload: dict[str, Any] = {"limit": self.bot.limit}
        if offset:
            payload["offset_id"] = offset
        try:
            data = api.call("getUpdates", payload)
        except (RubikaError, httpx.HTTPError) as exc:
            # Every refusal here is an outage to wait out (a refused token too: it shows
            # on the status until someone fixes the channels file).
            raise SourceUnavailable(redact(str(exc)) or type(exc).__name__) from exc
        updates = data.get("updates")
        updates = updates if isinstance(updates, list) else []
        next_offset = data.get("next_offset_id")
        next_offset = str(next_offset) if isinstance(next_offset, (str, int)) and \
            not isinstance(next_offset, bool) and str(next_offset) else None
        if not updates:
            return None
        moved = next_offset is not None and next_offset != offset
        if not moved:
            log.warning("rubika bot %s: a page of %d updates without a new next_offset_id: "
                        "the same page may come again", self.bot.name, len(updates))
        msgs: list[InboundMessage] = []
        for update in updates:
            try:
                msg = to_message(update, self.bot, strict_date=False)
            except InputError as exc:
                log.warning("rubika bot %s: malformed update %s skipped: %s", self.bot.name,
                            key_of(update)[:80], exc)
                continue
            if msg is not None:
                msgs.append(files.fetch(api, msg, self._dir, self._max_bytes))
        return Batch(msgs, fetched=len(updates), skipped=len(updates) - len(msgs),
                     ack=next_offset if moved else None)

    def acknowledge(self, batch: Batch) -> None:
        if batch.ack is not None:
            self._advance(str(batch.ack))

    def wait(self, stop: threading.Event) -> None:
        stop.wait(self.bot.poll_interval_s)

    def _advance(self, offset: str) -> None:
        with self._sessions() as session, session.begin():
            row = session.get(ChannelCursor, self.name, with_for_update=True)
            if row is None:
                session.add(ChannelCursor(name=self.name, value=0, text_value=offset))
            else:
                row.text_value = offset


def sources(channels: ChannelsConfig, settings: Settings, sessions: sessionmaker[Session]
            ) -> list[RubikaSource]:
    """The registry's entry (:mod:`channels.polled`): every bot with ``mode = "polling"``."""
    return [RubikaSource(b, sessions, attachments_dir=settings.attachments_dir,
                         attachment_max_bytes=settings.attachment_max_bytes)
            for b in channels.rubika.bots if b.mode == "polling"]
