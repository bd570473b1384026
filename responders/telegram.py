"""The Telegram and Bale sender: an approved reply leaves as one or more ``sendMessage``
calls of python-telegram-bot's ``Bot`` (:mod:`channels.telegram.bot`), to the bot the
customer wrote to (``msg.meta["from"]``, the bot's name; else the channel's first bot).
Its files go as ``sendDocument`` or ``sendPhoto`` uploads (multipart/form-data), in the
order and with the captions :func:`responders.chat_files.chat_plan` decides; their bytes
are read from the attachment store before the first request, so a missing file fails the
reply with nothing sent. Every message (a part of the text, or a file) counts towards
:data:`MAX_PARTS`, and a file refused after earlier messages went out is "partly sent".

Which chat: the customer's user id (``msg.recipient``). Only private chats are ingested
(:mod:`channels.telegram.updates` ignores groups), and in a private chat the chat id is the
user id; the inbound message also keeps ``meta["chat_id"]``.

Length: Telegram takes 4096 characters (UTF-16 units) per message.
:func:`responders.chat_length.split_text` cuts longer replies on a paragraph, else a line,
else a word boundary; each part is one ``sendMessage`` and the provider id lists them:
``<bot>:<chat>:<id>,<id>``. At most :data:`MAX_PARTS` parts, so a send's worst case
(:func:`worst_case_s`) is known and checked at start-up against ``KARTABL_SENDING_STALE_S``:
the sweep must never fail a send in flight.

Errors are mapped here, at the edge, following the sender contract (:mod:`kartabl.outbound`)
and this channel's rows of the one table (:mod:`responders.outcomes`)::

    RetryAfter (429, parameters.retry_after)         → RetryableDeliveryError(retry_after_s)
    connection refused / connect or pool timeout     → RetryableDeliveryError (never sent)
    another 4xx answer (no retry_after, a proxy's)   → RetryableDeliveryError (not processed)
    Forbidden "bot was blocked by the user"          → PermanentDeliveryError("the customer
                                                        blocked the bot")
    other Forbidden, BadRequest ("chat not found"),
    a refused token                                  → PermanentDeliveryError(its reason)
    a 5xx answer, Telegram's JSON error body or a
    proxy's HTML page alike                          → OutcomeUnknown
    read timeout, reset, dropped connection after
    the request went out                             → OutcomeUnknown
    a later part fails after earlier parts went out  → PermanentDeliveryError naming the parts
                                                        sent (resending would repeat them)

A 5xx is unknown whatever its body: it comes after the request left, and Telegram (or the
proxy before it) may have handed the message on before failing; a retry could send it
twice, and the README promises at most once. The status is kept by
:class:`channels.telegram.bot.ServerAnswered` (the library drops it).

``unknown_outcome = "at_most_once"``, ``can_look_up = False``. Telegram has no idempotency
key and no way to ask whether a message was sent (:meth:`TelegramSender.lookup` raises
``NotImplementedError``), so the outbox fails a reply with an unknown outcome at once, with
the reason ("... Telegram (or Bale) may have sent the message; check with the customer
before resending"), for a coordinator to decide; the reconcile sweep does the same for a reply a
crashed process left 'sending'. Unlike a duplicate mail, a duplicate in a chat cannot be
recognised or collapsed: the customer sees the same answer twice, at once, in a
conversation; and the failed reply is visible in the console, while a silent duplicate is
not.

:meth:`TelegramSender.status` is None: Telegram reports no delivery; a successful
``sendMessage`` means sent. One ``asyncio.run`` per send with a fresh ``Bot`` (a ``Bot``
cannot outlive its loop, and dramatiq calls senders from plain threads).
"""

from __future__ import annotations

import asyncio
import logging
import warnings
from datetime import timedelta
from pathlib import Path
from typing import Final

import httpx
from telegram import Bot, Message
from telegram.error import (
    BadRequest,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TelegramError,
    TimedOut,
)
from telegram.warnings import PTBDeprecationWarning

from channels.telegram.bot import ServerAnswered, open_bot, redact
from config.telegram import BotConfig
from kartabl.errors import OutcomeUnknown, PermanentDeliveryError, RetryableDeliveryError
from kartabl.messages import OutboundMessage
from kartabl.models import Channel
from kartabl.outbound import DeliveryStatus, Sender, UnknownOutcomePolicy
from responders.chat_files import ChatStep, as_photo, chat_plan
from responders.chat_length import split_text
from responders.outcomes import request_leaves
from responders.preview import MAX_CHAT_MESSAGES
from responders.reply_files import read_all

log = logging.getLogger(__name__)

MAX_REASON_CHARS: Final = 500
BLOCKED_REASON: Final = "the customer blocked the bot"
MAX_PARTS: Final = MAX_CHAT_MESSAGES  # longer than 40,960 characters: a mistake
# httpx errors raised before any byte of the request left: nothing can have been sent.
_NEVER_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout,
               httpx.UnsupportedProtocol)


class TelegramSender(Sender):
    """Sends the replies of one channel (``telegram`` or ``bale``) through its bots."""

    unknown_outcome: UnknownOutcomePolicy = "at_most_once"
    can_look_up = False

    def __init__(self, channel: Channel | str, bots: list[BotConfig], *,
                 sending_stale_s: float | None = None,
                 attachments_dir: Path | None = None) -> None:
        self.channel: str = Channel(channel).value
        self._files_dir = attachments_dir  # where a reply's attached files are stored
        self._bots = [b for b in bots if b.channel == Channel(channel)]
        if not self._bots:
            raise ValueError(f"no {self.channel} bot in the channels file")
        if sending_stale_s is not None:
            # The reconcile sweep fails a reply 'sending' for longer than sending_stale_s
            # (this policy): a send still running must never be that old, or a reply the
            # customer got would be reported failed.
            for b in self._bots:
                if worst_case_s(b) >= sending_stale_s:
                    raise ValueError(
                        f"bot {b.name}: one send may take {worst_case_s(b):.0f} s "
                        f"({MAX_PARTS} messages x 4 x timeout_s), not less than "
                        f"KARTABL_SENDING_STALE_S={sending_stale_s:.0f}: raise the setting or "
                        "lower timeout_s")

    def __repr__(self) -> str:  # names only: never tokens
        return f"<TelegramSender {self.channel}: {', '.join(b.name for b in self._bots)}>"

    def bot_for(self, msg: OutboundMessage) -> BotConfig:
        name = str(msg.meta.get("from") or "")
        return next((b for b in self._bots if b.name == name), self._bots[0])

    def send(self, msg: OutboundMessage) -> str:
        bot = self.bot_for(msg)
        chat_id = str(msg.recipient).strip()
        parts = split_text(msg.text)
        if not parts:
            raise PermanentDeliveryError("the reply is empty")
        if len(parts) > MAX_PARTS:
            raise PermanentDeliveryError(
                f"the reply is too long for a chat: {len(parts)} messages of 4096 characters "
                f"(at most {MAX_PARTS}); shorten it")
        steps = chat_plan(msg.text, msg.attachments)
        if len(steps) > MAX_PARTS:  # refused at submit and approval (responders.preview)
            raise PermanentDeliveryError(
                f"the reply is {len(steps)} chat messages with its files (at most "
                f"{MAX_PARTS}); shorten it or attach fewer files")
        data = self._files(msg)  # read first: a missing file fails with nothing sent
        request_leaves()  # from here on, an unmapped error may follow a sent message
        ids = asyncio.run(_send_steps(bot, chat_id, steps, data))
        provider_id = f"{bot.name}:{chat_id}:{','.join(str(i) for i in ids)}"
        log.info("reply %s sent by %s bot %s in %d message(s) as %s", msg.reply_id,
                 self.channel, bot.name, len(steps), provider_id)
        return provider_id

    def _files(self, msg: OutboundMessage) -> dict[str, bytes]:
        return {a.storage_key: data for a, data in read_all(self._files_dir, msg.attachments)}

    def lookup(self, msg: OutboundMessage) -> str | None:
        raise NotImplementedError("the Bot API cannot tell whether a message was sent")

    def status(self, provider_id: str) -> DeliveryStatus | None:
        return None  # Telegram reports no delivery


def worst_case_s(bot: BotConfig) -> float:
    """The longest one send can take: per message (a part of the text, or a file), the
    pool, connect, write and read timeouts (httpx's write timeout bounds each chunk of an
    upload, so a large file on a slow line may take longer)."""
    return MAX_PARTS * 4 * bot.timeout_s


async def _send_one(client: Bot, chat_id: str, step: ChatStep, files: dict[str, bytes]
                    ) -> Message:
    if step.file is None:
        return await client.send_message(chat_id=chat_id, text=step.text)
    data = files[step.file.storage_key]
    caption = step.text or None
    if as_photo(step.file, data):
        return await client.send_photo(chat_id=chat_id, photo=data, caption=caption,
                                       filename=step.file.filename)
    return await client.send_document(chat_id=chat_id, document=data, caption=caption,
                                      filename=step.file.filename)


async def _send_steps(bot: BotConfig, chat_id: str, steps: list[ChatStep],
                      files: dict[str, bytes]) -> list[int]:
    ids: list[int] = []
    async with open_bot(bot) as client:
        for n, step in enumerate(steps, 1):
            try:
                sent = await _send_one(client, chat_id, step, files)
            except TelegramError as exc:
                mapped = map_error(exc, bot.name, bot.provider)
                if ids:
                    # Parts already went out: a retry would repeat them, so stop here and
                    # say exactly what the customer got.
                    got = (f"parts 1-{n - 1} of {len(steps)} went out (message ids "
                           f"{', '.join(map(str, ids))}); part {n}: {mapped}")
                    if isinstance(mapped, OutcomeUnknown):
                        raise OutcomeUnknown(f"partly sent: {got}") from exc
                    raise PermanentDeliveryError(f"partly sent: {got}") from exc
                raise mapped from exc
            ids.append(sent.message_id)
    return ids


def map_error(exc: TelegramError, bot_name: str, provider: str = "Telegram") -> Exception:
    """A library error as one of ours (see the table in the module docstring); the reasons
    name the bot's ``provider`` (Telegram, or Bale for a Bale bot)."""
    with warnings.catch_warnings():
        # RetryAfter's retry_after is an int today, a timedelta in the next major version
        # (_seconds takes both); its str() reads it too.
        warnings.simplefilter("ignore", PTBDeprecationWarning)
        reason = redact(str(exc))[:MAX_REASON_CHARS]
        retry_after = exc.retry_after if isinstance(exc, RetryAfter) else 0
    where = f"bot {bot_name}"
    if isinstance(exc, RetryAfter):
        seconds = _seconds(retry_after)
        return RetryableDeliveryError(f"{where}: rate limited, retry after {seconds:g} s",
                                      retry_after_s=seconds)
    if isinstance(exc, Forbidden):
        if "blocked" in reason.lower():
            return PermanentDeliveryError(BLOCKED_REASON)
        return PermanentDeliveryError(f"{where}: {provider} refused: {reason}")
    if isinstance(exc, InvalidToken):
        return PermanentDeliveryError(f"{where}: the token was refused (check the channels "
                                      "file)")
    if isinstance(exc, BadRequest):
        return PermanentDeliveryError(f"{where}: {provider} refused the message: {reason}")
    if isinstance(exc, ServerAnswered):  # a 5xx, whatever its body
        return OutcomeUnknown(f"{where}: {provider} answered {reason} after the request went "
                              f"out; {provider} may have sent the message")
    if isinstance(exc, NetworkError):  # TimedOut too
        cause = exc.__cause__
        if isinstance(cause, _NEVER_SENT):
            return RetryableDeliveryError(f"{where}: not sent: {type(cause).__name__}")
        if isinstance(exc, TimedOut) or (cause is not None
                                         and not isinstance(cause, TelegramError)):
            detail = type(cause).__name__ if cause is not None else "timed out"
            return OutcomeUnknown(f"{where}: no answer after the request went out ({detail}); "
                                  f"{provider} may have sent the message")
        # No transport error behind it (none, or the body did not parse): the server
        # answered with a status below 500 that the library does not classify, a refusal
        # before processing: 429 without retry_after, a proxy's 4xx page.
        return RetryableDeliveryError(f"{where}: {provider} refused for now: {reason}")
    return PermanentDeliveryError(f"{where}: {type(exc).__name__}: {reason}")


def _seconds(value: float | timedelta) -> float:
    return value.total_seconds() if isinstance(value, timedelta) else float(value)
