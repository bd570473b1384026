"""Long polling of one bot (``mode = "polling"``), Telegram or Bale: an adapter on the
inbound contract (:mod:`kartabl.inbound`); the runner (:mod:`channels.runner`) commits,
retries, leads (one process polls a bot at a time: two getUpdates callers would each get a
409 from Telegram, and would both store) and reports.

1. ``getUpdates`` from the stored offset (``ChannelCursor "telegram:<bot>"``);
2. the runner stores the batch's messages and commits;
3. only then :meth:`BotSource.acknowledge` advances the cursor to the last ``update_id`` +
   1, which the next ``getUpdates`` sends as its offset, confirming the batch to Telegram.

A crash between 2 and 3 makes the next pass fetch the same batch again; ingest's unique
``(channel, "<bot>:<update_id>")`` drops it. Advancing first could lose the batch. A
malformed update is logged and skipped (the cursor moves past it), or it would block the
bot for ever. Telegram refuses ``getUpdates`` while a webhook is set (409): the command
deletes the webhook first.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import warnings
from collections.abc import Iterator
from contextlib import AbstractContextManager, nullcontext
from typing import Any

from sqlalchemy.orm import Session, sessionmaker
from telegram.error import TelegramError
from telegram.warnings import PTBUserWarning

from channels.telegram.bot import open_bot, redact
from channels.telegram.registration import ALLOWED_UPDATES
from channels.telegram.updates import to_message, update_id_of
from config.channels import ChannelsConfig
from config.settings import Settings
from config.telegram import BotConfig
from kartabl.errors import InputError
from kartabl.inbound import Batch, SourceUnavailable
from kartabl.messages import InboundMessage
from kartabl.models import ChannelCursor

log = logging.getLogger(__name__)


class BotSource:
    """One polling bot (a :class:`~kartabl.inbound.PolledSource`, and its own feed).
    ``timeout_s``: getUpdates' long-poll wait, by default the bot's ``poll_timeout_s``."""

    def __init__(self, bot: BotConfig, session_factory: sessionmaker[Session], *,
                 limit: int = 100, timeout_s: int | None = None) -> None:
        self.bot, self._sessions, self._limit = bot, session_factory, limit
        self._wait = bot.poll_timeout_s if timeout_s is None else timeout_s

    def __repr__(self) -> str:
        return f"<BotSource {self.bot.name}>"

    @property
    def name(self) -> str:
        return self.bot.cursor_name  # telegram:<bot>, Bale bots included

    def open(self) -> AbstractContextManager[BotSource]:
        return nullcontext(self)  # each getUpdates opens the bot's HTTP client

    def offset(self) -> int:
        with self._sessions() as session:
            row = session.get(ChannelCursor, self.bot.cursor_name)
            return row.value if row is not None else 0

    def batches(self) -> Iterator[Batch]:
        offset = self.offset()
        try:
            updates = asyncio.run(self._fetch(offset, self._wait))
        except (TelegramError, OSError) as exc:
            raise SourceUnavailable(redact(str(exc)) or type(exc).__name__) from exc
        if not updates:
            return
        msgs: list[InboundMessage] = []
        last = offset - 1
        for update in updates:
            try:
                last = max(last, update_id_of(update))
                msg = to_message(update, self.bot, strict_date=False)
            except InputError as exc:
                log.warning("bot %s: malformed update skipped: %s", self.bot.name, exc)
                continue
            if msg is not None:
                msgs.append(msg)
        yield Batch(msgs, fetched=len(updates), skipped=len(updates) - len(msgs), ack=last + 1)

    def acknowledge(self, batch: Batch) -> None:
        self._advance(int(batch.ack))

    def wait(self, stop: threading.Event) -> None:
        """Nothing: getUpdates itself waits on the server for news."""

    def _advance(self, offset: int) -> None:
        with self._sessions() as session, session.begin():
            row = session.get(ChannelCursor, self.bot.cursor_name, with_for_update=True)
            if row is None:
                session.add(ChannelCursor(name=self.bot.cursor_name, value=offset))
            elif offset > row.value:
                row.value = offset

    async def _fetch(self, offset: int, wait: int) -> list[dict[str, Any]]:
        async with open_bot(self.bot, read_timeout_s=wait + self.bot.timeout_s) as bot:
            # Raw dicts, not Bot.get_updates' telegram.Update objects: ingest reads the same
            # JSON the webhook gets, and one update the library cannot parse would otherwise
            # fail the whole batch, every time. Hence the library's advice is silenced.
            # allowed_updates: only the kinds we handle (Telegram keeps it for later calls).
            params: dict[str, Any] = {"timeout": wait, "limit": self._limit,
                                      "allowed_updates": list(ALLOWED_UPDATES)}
            if offset:
                params["offset"] = offset
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", PTBUserWarning)
                result = await bot.do_api_request("getUpdates", api_kwargs=params,
                                                  read_timeout=wait + self.bot.timeout_s)
        return [u for u in result if isinstance(u, dict)] if isinstance(result, list) else []

    def delete_webhook(self) -> None:
        async def run() -> None:
            async with open_bot(self.bot) as bot:
                await bot.delete_webhook()
        asyncio.run(run())


def sources(channels: ChannelsConfig, settings: Settings, sessions: sessionmaker[Session]
            ) -> list[BotSource]:
    """The registry's entry (:mod:`channels.polled`): every bot with ``mode = "polling"``."""
    return [BotSource(b, sessions) for b in channels.telegram.bots if b.mode == "polling"]
