"""Long polling of one bot (``mode = "polling"``): no update lost, none stored twice.

One pass (:meth:`BotPoller.poll_once`):

1. ``getUpdates`` from the stored offset (``ChannelCursor "telegram:<bot>"``);
2. store the batch's messages and commit (:func:`kartabl.ingest.store_many`);
3. only then advance the cursor to the last ``update_id`` + 1, which the next
   ``getUpdates`` sends as its offset, confirming the batch to Telegram.

A crash between 2 and 3 makes the next pass fetch the same batch again; ingest's unique
``(channel, "<bot>:<update_id>")`` drops it. Advancing first could lose the batch. A
malformed update is logged and skipped (the cursor moves past it), or it would block the
bot for ever. Telegram refuses ``getUpdates`` while a webhook is set (409): the command
deletes the webhook first. One process polls a bot at a time (:meth:`BotPoller.run`).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import warnings
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session, sessionmaker
from telegram.error import TelegramError
from telegram.warnings import PTBUserWarning

from channels.telegram.bot import open_bot, redact
from channels.telegram.registration import ALLOWED_UPDATES
from channels.telegram.updates import to_message, update_id_of
from config.telegram import BotConfig
from kartabl import locks
from kartabl.errors import InputError
from kartabl.ingest import store_many
from kartabl.messages import InboundMessage
from kartabl.models import ChannelCursor

log = logging.getLogger(__name__)


@dataclass(slots=True)
class PassResult:
    updates: int = 0
    created: int = 0
    duplicates: int = 0
    ignored: int = 0


class BotPoller:
    def __init__(self, bot: BotConfig, session_factory: sessionmaker[Session], *,
                 limit: int = 100) -> None:
        self.bot, self._sessions, self._limit = bot, session_factory, limit

    def __repr__(self) -> str:
        return f"<BotPoller {self.bot.name}>"

    def offset(self) -> int:
        with self._sessions() as session:
            row = session.get(ChannelCursor, self.bot.cursor_name)
            return row.value if row is not None else 0

    def poll_once(self, *, timeout_s: int | None = None) -> PassResult:
        offset = self.offset()
        wait = self.bot.poll_timeout_s if timeout_s is None else timeout_s
        updates = asyncio.run(self._fetch(offset, wait))
        result = PassResult(updates=len(updates))
        if not updates:
            return result
        msgs: list[InboundMessage] = []
        last = offset - 1
        for update in updates:
            try:
                last = max(last, update_id_of(update))
                msg = to_message(update, self.bot, strict_date=False)
            except InputError as exc:
                log.warning("bot %s: malformed update skipped: %s", self.bot.name, exc)
                result.ignored += 1
                continue
            if msg is None:
                result.ignored += 1
            else:
                msgs.append(msg)
        with self._sessions() as session:
            stored = store_many(session, msgs)  # commits
        result.created = sum(s.created for s in stored)
        result.duplicates = len(stored) - result.created
        self._advance(last + 1)
        return result

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

    def run(self, stop: threading.Event, *, backoff_max_s: float = 60.0) -> None:
        """Poll until ``stop`` is set; errors back off exponentially. Several processes may
        run this for the same bot: one at a time polls, the holder of the bot's poller lock
        (:func:`kartabl.locks.lead`); the others stand by and take over when it dies. Two
        getUpdates callers would each get a 409 from Telegram, and would both store."""
        locks.lead(self._sessions.kw["bind"], f"telegram poller {self.bot.name}", stop,
                   lambda lease: self._lead(stop, lease, backoff_max_s))

    def _lead(self, stop: threading.Event, lease: locks.Lease, backoff_max_s: float) -> None:
        delay = 1.0
        while not stop.is_set():
            if not lease.still_held():
                log.warning("bot %s: the poller lock was lost; stepping down", self.bot.name)
                return
            try:
                self.poll_once()
                delay = 1.0
            except (TelegramError, OSError) as exc:
                log.warning("bot %s: polling failed (%s); again in %.0f s", self.bot.name,
                            redact(str(exc)), delay)
                stop.wait(delay)
                delay = min(delay * 2, backoff_max_s)
