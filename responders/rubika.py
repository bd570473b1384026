"""The Rubika sender: an approved reply leaves as ``sendMessage`` calls (and, for its files,
``requestSendFile`` → upload → ``sendFile``) of the Bot API (:mod:`channels.rubika.api`),
by the bot the customer wrote to (``msg.meta["from"]``).

**Which chat.** A reply names a chat (``chat_id``, ``b0...``), and the customer is known by
their user id (``sender_id``, ``u0...``: ``msg.recipient``). The chat is the one the
customer last wrote to the bot from, read from their stored messages (``meta["chat_id"]``).
A customer who never wrote to the bot has no chat with it, and a Rubika bot cannot open
one: that reply is refused (permanent), before any request.

**The order of messages** is Telegram's (:func:`responders.chat_files.chat_plan`): a short
text rides as the first file's caption (``sendFile``'s ``text``), a long one goes first,
split at 4096 characters (:func:`responders.chat_length.split_text`). A JPEG or PNG goes
as an ``Image``, anything else as a ``File``. The provider id lists the messages:
``<bot>:<chat>:<id>,<id>``. At most :data:`MAX_PARTS` messages, so the worst case of a
send (:func:`worst_case_s`) is known and checked at start-up against
``KARTABL_SENDING_STALE_S``.

**Errors**, mapped here, at the edge (the rows ``rubika-*`` of :mod:`responders.outcomes`).
Rubika answers a refusal inside its envelope, with HTTP 200, so the envelope decides::

    no connection, connect or pool timeout               → RetryableDeliveryError (never sent)
    envelope TOO_REQUESTS                                → RetryableDeliveryError
    a 4xx without the envelope (a proxy)                 → RetryableDeliveryError
    envelope INVALID_INPUT (a wrong chat, an empty text) → PermanentDeliveryError(reason)
    envelope INVALID_ACCESS (the token, a blocked bot)   → PermanentDeliveryError(reason)
    a 5xx or an unreadable answer, another envelope
    status, a read timeout or a dropped connection
    after the request left                               → OutcomeUnknown
    requestSendFile or the upload failing                → as above, but never unknown: no
                                                           message is sent before sendFile
    a later message failing after earlier ones went out  → PermanentDeliveryError naming what
                                                           went out (a resend repeats them)

**Delivery policy**: ``unknown_outcome = "at_most_once"``, ``can_look_up = False``, for
Telegram's reasons (:mod:`responders.telegram`): the Bot API has no idempotency key and no
way to ask whether a message was sent, and a duplicate in a chat cannot be recognised, so
an unknown outcome fails the reply at once with the reason, for a coordinator to check
with the customer. :meth:`RubikaSender.status` is None: Rubika reports no delivery.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Final

import httpx
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from channels.rubika.api import NotProcessed, Refused, RubikaApi, RubikaError, ServerAnswered
from config.rubika import RubikaBot
from kartabl import db
from kartabl.errors import OutcomeUnknown, PermanentDeliveryError, RetryableDeliveryError
from kartabl.logs import redact
from kartabl.messages import OutboundMessage
from kartabl.models import Channel, Direction, Message
from kartabl.outbound import DeliveryStatus, Sender, UnknownOutcomePolicy
from responders.chat_files import ChatStep, as_photo, chat_plan
from responders.chat_length import split_text
from responders.outcomes import request_leaves
from responders.preview import MAX_CHAT_MESSAGES
from responders.reply_files import read_all

log = logging.getLogger(__name__)

MAX_PARTS: Final = MAX_CHAT_MESSAGES
REQUESTS_PER_FILE: Final = 3  # requestSendFile, the upload, sendFile
# httpx errors raised before any byte of the request left: nothing can have been sent.
_NEVER_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout,
               httpx.UnsupportedProtocol)
_CHATS_LOOKED_AT: Final = 50


class RubikaSender(Sender):
    """Sends the replies of the ``rubika`` channel through its bots."""

    channel = Channel.RUBIKA.value
    unknown_outcome: UnknownOutcomePolicy = "at_most_once"
    can_look_up = False

    def __init__(self, bots: list[RubikaBot], *,
                 sessions: sessionmaker[Session] | None = None,
                 sending_stale_s: float | None = None,
                 attachments_dir: Path | None = None) -> None:
        if not bots:
            raise ValueError("no Rubika bot in the channels file")
        self._bots = {b.name: b for b in bots}
        self._first = bots[0]
        self._sessions = sessions  # None: the process's (kartabl.db), when a send needs it
        self._files_dir = attachments_dir
        self._clients: dict[str, RubikaApi] = {}  # one pooled client per bot, made lazily
        self._lock = threading.Lock()  # dramatiq's worker threads share the sender
        if sending_stale_s is not None:
            for b in bots:
                if worst_case_s(b) >= sending_stale_s:
                    raise ValueError(
                        f"Rubika bot {b.name}: one send may take {worst_case_s(b):.0f} s "
                        f"({MAX_PARTS} messages x {REQUESTS_PER_FILE} requests x 4 x "
                        f"timeout_s), not less than KARTABL_SENDING_STALE_S="
                        f"{sending_stale_s:.0f}: raise the setting or lower timeout_s")

    def __repr__(self) -> str:  # names only: never tokens
        return f"<RubikaSender {', '.join(self._bots)}>"

    def close(self) -> None:
        with self._lock:
            clients, self._clients = self._clients, {}
        for client in clients.values():
            client.close()

    def _client(self, bot: RubikaBot) -> RubikaApi:
        with self._lock:
            client = self._clients.get(bot.name)
            if client is None:
                client = self._clients[bot.name] = RubikaApi(bot)
            return client

    def send(self, msg: OutboundMessage) -> str:
        user = str(msg.recipient).strip()
        steps = chat_plan(msg.text, msg.attachments)
        if not steps:
            raise PermanentDeliveryError("the reply is empty")
        if len(split_text(msg.text)) > MAX_PARTS or len(steps) > MAX_PARTS:
            raise PermanentDeliveryError(
                f"the reply is {len(steps)} chat messages (at most {MAX_PARTS}); shorten it "
                "or attach fewer files")
        bot, chat_id = self.chat_for(msg, user)
        data = self._files(msg)  # read first: a missing file fails with nothing sent
        request_leaves()  # from here on, an unmapped error may follow a sent message
        api = self._client(bot)
        ids: list[str] = []
        for n, step in enumerate(steps, 1):
            try:
                ids.append(_send_one(api, chat_id, step, data))
            except (RubikaError, httpx.HTTPError, _Prepared) as exc:
                mapped = map_error(exc, bot.name)
                if not ids:
                    raise mapped from exc
                got = (f"parts 1-{n - 1} of {len(steps)} went out (message ids "
                       f"{', '.join(ids)}); part {n}: {mapped}")
                if isinstance(mapped, OutcomeUnknown):
                    raise OutcomeUnknown(f"partly sent: {got}") from exc
                raise PermanentDeliveryError(f"partly sent: {got}") from exc
        provider_id = f"{bot.name}:{chat_id}:{','.join(ids)}"
        log.info("reply %s sent by rubika bot %s in %d message(s) as %s", msg.reply_id,
                 bot.name, len(steps), provider_id)
        return provider_id

    def chat_for(self, msg: OutboundMessage, user: str) -> tuple[RubikaBot, str]:
        """The bot and the chat to answer ``user`` in: from their latest message to the
        bot the reply names (any of ours when it names none, a conversation we started)."""
        wanted = str(msg.meta.get("from") or "")
        sessions = self._sessions or db.session_factory()
        with sessions() as session:
            rows = session.execute(
                select(Message.recipient, Message.meta)
                .where(Message.channel == Channel.RUBIKA, Message.direction == Direction.IN,
                       Message.sender == user)
                .order_by(Message.received_at.desc(), Message.id.desc())
                .limit(_CHATS_LOOKED_AT)).all()
        for bot_name, meta in rows:
            chat = (meta or {}).get("chat_id")
            bot = self._bots.get(bot_name)
            if bot is not None and isinstance(chat, str) and chat and \
                    (not wanted or bot_name == wanted):
                return bot, chat
        through = f"bot {wanted}" if wanted else "any of our bots"
        raise PermanentDeliveryError(
            f"the customer ({user[:40]}) has no Rubika chat with {through}: a bot can only "
            "answer someone who wrote to it")

    def _files(self, msg: OutboundMessage) -> dict[str, bytes]:
        return {a.storage_key: data for a, data in read_all(self._files_dir, msg.attachments)}

    def lookup(self, msg: OutboundMessage) -> str | None:
        raise NotImplementedError("Rubika's Bot API cannot tell whether a message was sent")

    def status(self, provider_id: str) -> DeliveryStatus | None:
        return None  # Rubika reports no delivery


class _Prepared(Exception):
    """requestSendFile or the upload failed: no message can have been sent for this step."""

    def __init__(self, cause: Exception) -> None:
        self.cause = cause
        super().__init__(str(cause))


def worst_case_s(bot: RubikaBot) -> float:
    """The longest one send can take: per message up to three requests (a file's), each
    with its pool, connect, write and read timeouts."""
    return MAX_PARTS * REQUESTS_PER_FILE * 4 * bot.timeout_s


def _send_one(api: RubikaApi, chat_id: str, step: ChatStep, files: dict[str, bytes]) -> str:
    if step.file is None:
        answer = api.call("sendMessage", {"chat_id": chat_id, "text": step.text})
    else:
        data = files[step.file.storage_key]
        kind = "Image" if as_photo(step.file, data) else "File"
        try:
            upload_url = api.call("requestSendFile", {"type": kind}).get("upload_url")
            if not isinstance(upload_url, str) or not upload_url.startswith(("https://",
                                                                           "http://")):
                raise ServerAnswered("requestSendFile", 200, "without an upload_url")
            file_id = api.upload(upload_url, step.file.filename, step.file.content_type, data)
        except (RubikaError, httpx.HTTPError) as exc:
            raise _Prepared(exc) from exc
        payload = {"chat_id": chat_id, "file_id": file_id}
        if step.text:
            payload["text"] = step.text
        answer = api.call("sendFile", payload)
    message_id = answer.get("message_id")
    if isinstance(message_id, bool) or not isinstance(message_id, (str, int)) or \
            not str(message_id):
        raise ServerAnswered("send", 200, "without a message_id")
    return str(message_id)


def map_error(exc: Exception, bot_name: str) -> Exception:
    """A Bot API or transport error as one of ours (the table in the module docstring)."""
    where = f"Rubika bot {bot_name}"
    prepared = isinstance(exc, _Prepared)
    cause = exc.cause if isinstance(exc, _Prepared) else exc
    reason = redact(str(cause))[:500]
    if isinstance(cause, Refused):
        if cause.status == "TOO_REQUESTS":
            return RetryableDeliveryError(f"{where}: rate limited (TOO_REQUESTS)")
        if cause.status in ("INVALID_INPUT", "INVALID_ACCESS"):
            what = "the file" if prepared else "the message"
            return PermanentDeliveryError(f"{where}: Rubika refused {what}: {reason}")
        if prepared:
            return RetryableDeliveryError(f"{where}: not sent: {reason}")
        return OutcomeUnknown(f"{where}: Rubika answered {reason} after the request went "
                              "out; Rubika may have sent the message")
    if isinstance(cause, NotProcessed):
        return RetryableDeliveryError(f"{where}: refused for now: {reason}")
    if isinstance(cause, _NEVER_SENT) or prepared:
        return RetryableDeliveryError(f"{where}: not sent: {type(cause).__name__}"
                                      + (f" ({reason})" if prepared else ""))
    if isinstance(cause, ServerAnswered):
        return OutcomeUnknown(f"{where}: Rubika answered {reason} after the request went "
                              "out; Rubika may have sent the message")
    if isinstance(cause, httpx.HTTPError):
        return OutcomeUnknown(f"{where}: no answer after the request went out "
                              f"({type(cause).__name__}); Rubika may have sent the message")
    return PermanentDeliveryError(f"{where}: {type(cause).__name__}: {reason}")
