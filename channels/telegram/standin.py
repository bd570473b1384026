"""A stand-in Telegram Bot API server: speaks the Bot API on the wire, on 127.0.0.1.

Shipped beside the real adapter (like dramatiq's ``StubBroker``) so the tests and the demo
drive the real python-telegram-bot over real HTTP, without an account::

    server = BotApiStandin().start()
    server.add_bot("123:TOKEN", username="shop_bot")
    Bot("123:TOKEN", base_url=server.base_url)   # "http://127.0.0.1:<port>/bot"

Methods: getMe, sendMessage (recorded, answered with a Message), sendDocument and sendPhoto
(a new file uploaded as ``multipart/form-data``, with ``chat_id`` and ``caption``; recorded
with the bytes, answered with a Message carrying ``document`` or ``photo``; as documented:
400 "file must be non-empty", 400 "message caption is too long" over 1024 characters, 413
over 50 MB for a document or 10 MB for a photo), getUpdates (offset, limit,
timeout: a short long-poll; allowed_updates), setWebhook (url, secret_token,
allowed_updates, drop_pending_updates), deleteWebhook, getWebhookInfo. Bodies may be
form-encoded (what python-telegram-bot sends; a list is a JSON array in the field) or JSON.
A wrong token gets 401, a malformed path 404, as Telegram.

As the Bot API documents: ``getUpdates`` answers 409 Conflict while a webhook is set;
``allowed_updates`` (on setWebhook or getUpdates) is kept until it is given again, an empty
list means every kind but ``chat_member``, ``message_reaction`` and
``message_reaction_count`` (also the default), and updates of other kinds are not
delivered, by getUpdates nor by :meth:`BotApiStandin.deliver_webhook`; a ``secret_token``
outside 1-256 characters of ``A-Z a-z 0-9 _ -`` is a 400. getWebhookInfo reports the url,
``pending_update_count`` and ``allowed_updates``, never the secret (tests read
:attr:`StandinBot.webhook_secret`). Unlike Telegram, an ``http://`` webhook url is accepted:
the tests and the demo serve plain HTTP on 127.0.0.1.

Faults, queued per method and used once each (:meth:`fail_next`): ``retry_after`` (429 with
``parameters.retry_after``), ``blocked`` (403), ``chat_not_found`` (400), ``server_error``
(a 5xx, ``value`` the status, with Telegram's JSON error body), ``proxy_error`` (a 5xx with
an HTML page, as a proxy in front answers), ``status`` (any status ``value`` with a JSON
error body and no parameters: a 429 without retry_after), ``slow`` (the message is
recorded, then the answer is delayed: a real unknown outcome for a client whose timeout is
shorter), ``drop`` (the connection is closed with no answer). By default a fault comes
before anything is recorded; ``after_send=True`` records the message first and then
answers the fault (or drops): the awkward case where Telegram took the message and the
answer says otherwise. Users in :attr:`blocked_users` always get 403.

``announce`` logs each message a bot sends, as the customer's chat would show it (the bot's
username, never its token): the demo uses it.

The bodies on the wire (answers, faults' answers, request parsing) and the update builder
:func:`~channels.telegram.standin_wire.text_update` live in :mod:`channels.telegram.standin_wire`.
"""

from __future__ import annotations

import itertools
import json
import logging
import re
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

from channels.standin_http import LoopbackServer
from channels.telegram.standin_wire import (
    Answer,
    Fault,
    UploadedFile,
    error,
    fault_answer,
    list_param,
    ok,
    parse_params,
    png_size,
)

log = logging.getLogger(__name__)

_PATH = re.compile(r"^/bot([^/]+)/([A-Za-z]+)$")
MAX_POLL_WAIT_S = 2.0  # a stand-in long-polls "a little": tests stay fast


# The kinds a bot gets when allowed_updates is empty or was never given (the Bot API's
# default leaves these three out).
NOT_BY_DEFAULT = frozenset({"chat_member", "message_reaction", "message_reaction_count"})
_SECRET = re.compile(r"^[A-Za-z0-9_-]{1,256}$")


@dataclass(slots=True)
class StandinBot:
    token: str
    id: int
    username: str
    updates: list[dict[str, Any]] = field(default_factory=list)
    webhook_url: str = ""
    webhook_secret: str = ""
    allowed_updates: list[str] = field(default_factory=list)  # [] → the default kinds

    def allows(self, update: dict[str, Any]) -> bool:
        kinds = [k for k in update if k != "update_id"]
        if not kinds:
            return False
        if self.allowed_updates:
            return kinds[0] in self.allowed_updates
        return kinds[0] not in NOT_BY_DEFAULT


@dataclass(frozen=True, slots=True)
class Sent:
    bot: str  # the bot's username: never its token
    chat_id: str
    text: str  # the message's text, or a document's or photo's caption
    message_id: int
    params: dict[str, Any]
    method: str = "sendMessage"  # or sendDocument, sendPhoto
    file: UploadedFile | None = None  # what sendDocument / sendPhoto uploaded


# The Bot API's limits for a bot's multipart upload (core.telegram.org/bots/api#sending-files)
# and for a caption.
DOCUMENT_MAX_BYTES = 50 * 1024 * 1024
PHOTO_MAX_BYTES = 10 * 1024 * 1024
CAPTION_MAX = 1024


class BotApiStandin:
    def __init__(self, *, announce: bool = False) -> None:
        self.announce = announce
        self._bots: dict[str, StandinBot] = {}
        self._faults: dict[str, list[Fault]] = {}
        self._cond = threading.Condition()
        self._message_ids = itertools.count(1001)
        self._update_ids = itertools.count(500_000)
        self.sent: list[Sent] = []
        self.calls: list[str] = []  # method names, in order
        self.blocked_users: set[str] = set()
        # a test may lower them to see the 413 without uploading 50 MB
        self.document_max_bytes = DOCUMENT_MAX_BYTES
        self.photo_max_bytes = PHOTO_MAX_BYTES
        self._http = LoopbackServer("bot-api-standin")

    # -- lifecycle ---------------------------------------------------------------------

    def start(self) -> BotApiStandin:
        self._http.serve_for(self, _Handler, "server_state")
        return self

    def stop(self) -> None:
        self._http.stop()

    @property
    def base_url(self) -> str:
        return f"{self._http.origin}/bot"

    # -- the test's side ---------------------------------------------------------------

    def add_bot(self, token: str, username: str = "kartabl_bot") -> StandinBot:
        bot = StandinBot(token=token, id=int(token.split(":")[0]) if ":" in token else 1,
                         username=username)
        self._bots[token] = bot
        return bot

    def clear_faults(self) -> None:
        """Forget the faults not served yet (the provider's outage is over)."""
        with self._cond:
            self._faults.clear()

    def fail_next(self, method: str, kind: str, value: float = 0, times: int = 1, *,
                  after_send: bool = False) -> None:
        with self._cond:
            self._faults.setdefault(method, []).extend(
                Fault(kind, value, after_send) for _ in range(times))

    def add_update(self, token: str, update: dict[str, Any]) -> dict[str, Any]:
        """Queue ``update`` (its ``update_id`` assigned unless given) for getUpdates."""
        with self._cond:
            update = {"update_id": next(self._update_ids), **update}
            self._bots[token].updates.append(update)
            self._cond.notify_all()
        return update

    def sent_to(self, chat_id: int | str) -> list[Sent]:
        return [s for s in self.sent if s.chat_id == str(chat_id)]

    def bot(self, token: str) -> StandinBot:
        return self._bots[token]

    def deliver_webhook(self, token: str, update: dict[str, Any], *,
                        secret: str | None = None, timeout_s: float = 5.0) -> int | None:
        """POST ``update`` to the bot's webhook as Telegram does (the secret header from
        setWebhook unless ``secret`` overrides it); returns the HTTP status, or None when
        Telegram would not deliver it (a kind outside the bot's allowed_updates)."""
        bot = self._bots[token]
        if not bot.allows(update):
            return None
        headers = {"Content-Type": "application/json"}
        secret = bot.webhook_secret if secret is None else secret
        if secret:
            headers["X-Telegram-Bot-Api-Secret-Token"] = secret
        if not bot.webhook_url.startswith(("http://", "https://")):
            raise ValueError("the bot has no http(s) webhook set")
        req = urllib.request.Request(  # noqa: S310 (scheme checked above)
            bot.webhook_url, data=json.dumps(update).encode(), headers=headers, method="POST")
        try:
            with urllib.request.urlopen(req, timeout=timeout_s) as resp:  # noqa: S310
                return int(resp.status)
        except urllib.error.HTTPError as exc:
            return int(exc.code)

    # -- the API -----------------------------------------------------------------------

    def _take_fault(self, method: str) -> Fault | None:
        with self._cond:
            queue = self._faults.get(method) or []
            return queue.pop(0) if queue else None

    def handle(self, bot: StandinBot, method: str, params: dict[str, Any]) -> Answer | Fault:
        self.calls.append(method)
        fault = self._take_fault(method)
        if fault is not None and fault.kind != "slow" and not fault.after_send:
            return fault if fault.kind == "drop" else fault_answer(fault)
        handler = getattr(self, f"_api_{method}", None)
        if handler is None:
            return 404, error(404, "Not Found: method not found")
        answer: Answer = handler(bot, params)
        if fault is None:
            return answer
        if fault.kind == "slow":  # recorded above, the answer comes too late
            time.sleep(fault.value)
            return answer
        return fault if fault.kind == "drop" else fault_answer(fault)  # after_send

    def _api_getMe(self, bot: StandinBot, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        return 200, ok({"id": bot.id, "is_bot": True, "first_name": bot.username,
                         "username": bot.username})

    def _api_sendMessage(self, bot: StandinBot, params: dict[str, Any]
                         ) -> tuple[int, dict[str, Any]]:
        chat_id, text = str(params.get("chat_id", "")), str(params.get("text", ""))
        if not chat_id or not text:
            return 400, error(400, "Bad Request: message text is empty")
        if not chat_id.lstrip("-").isdigit():
            return 400, error(400, "Bad Request: chat not found")
        if len(text) > 4096:
            return 400, error(400, "Bad Request: message is too long")
        if chat_id in self.blocked_users:
            return 403, error(403, "Forbidden: bot was blocked by the user")
        with self._cond:
            message_id = next(self._message_ids)
            self.sent.append(Sent(bot.username, chat_id, text, message_id, dict(params)))
        if self.announce:
            log.info("Bot API stand-in: @%s to chat %s (message %s): %.200s", bot.username,
                     chat_id, message_id, text)
        return 200, ok({"message_id": message_id, "date": int(time.time()), "text": text,
                         "chat": {"id": int(chat_id), "type": "private"},
                         "from": {"id": bot.id, "is_bot": True, "first_name": bot.username}})

    def _api_sendDocument(self, bot: StandinBot, params: dict[str, Any]
                          ) -> tuple[int, dict[str, Any]]:
        return self._send_file(bot, params, "document", self.document_max_bytes)

    def _api_sendPhoto(self, bot: StandinBot, params: dict[str, Any]
                       ) -> tuple[int, dict[str, Any]]:
        return self._send_file(bot, params, "photo", self.photo_max_bytes)

    def _send_file(self, bot: StandinBot, params: dict[str, Any], field_name: str,
                   max_bytes: int) -> tuple[int, dict[str, Any]]:
        """sendDocument / sendPhoto with a new file uploaded as multipart/form-data (a
        file_id or URL string is not a file this stand-in knows: 400, as for an unknown
        file_id)."""
        chat_id, caption = str(params.get("chat_id", "")), str(params.get("caption") or "")
        upload = params.get(field_name)
        if not chat_id.lstrip("-").isdigit():
            return 400, error(400, "Bad Request: chat not found")
        if not isinstance(upload, UploadedFile):
            if upload:
                return 400, error(400, "Bad Request: wrong file identifier/HTTP URL specified")
            return 400, error(400, f"Bad Request: there is no {field_name} in the request")
        if not upload.data:
            return 400, error(400, "Bad Request: file must be non-empty")
        if len(upload.data) > max_bytes:
            return 413, error(413, "Request Entity Too Large")
        if len(caption.encode("utf-16-le")) // 2 > CAPTION_MAX:
            return 400, error(400, "Bad Request: message caption is too long")
        if chat_id in self.blocked_users:
            return 403, error(403, "Forbidden: bot was blocked by the user")
        method = "sendPhoto" if field_name == "photo" else "sendDocument"
        with self._cond:
            message_id = next(self._message_ids)
            self.sent.append(Sent(bot.username, chat_id, caption, message_id,
                                  {k: v for k, v in params.items() if k != field_name},
                                  method, upload))
        if self.announce:
            log.info("Bot API stand-in: @%s to chat %s (message %s): %s %s (%d bytes)",
                     bot.username, chat_id, message_id, field_name, upload.filename,
                     len(upload.data))
        file_id = f"{field_name}-{message_id}"
        result: dict[str, Any] = {
            "message_id": message_id, "date": int(time.time()),
            "chat": {"id": int(chat_id), "type": "private"},
            "from": {"id": bot.id, "is_bot": True, "first_name": bot.username}}
        if caption:
            result["caption"] = caption
        if field_name == "photo":
            w, h = png_size(upload.data)
            result["photo"] = [{"file_id": file_id, "file_unique_id": file_id, "width": w,
                                "height": h, "file_size": len(upload.data)}]
        else:
            result["document"] = {"file_id": file_id, "file_unique_id": file_id,
                                  "file_name": upload.filename,
                                  "mime_type": upload.content_type,
                                  "file_size": len(upload.data)}
        return 200, ok(result)

    def _api_getUpdates(self, bot: StandinBot, params: dict[str, Any]
                        ) -> tuple[int, dict[str, Any]]:
        if bot.webhook_url:
            return 409, error(409, "Conflict: can't use getUpdates method while webhook is "
                                    "active; use deleteWebhook to delete the webhook first")
        offset = int(params.get("offset") or 0)
        limit = int(params.get("limit") or 100)
        deadline = time.monotonic() + min(float(params.get("timeout") or 0), MAX_POLL_WAIT_S)
        with self._cond:
            allowed = list_param(params, "allowed_updates")
            if allowed is not None:  # kept for the next calls, as Telegram
                bot.allowed_updates = allowed
            if offset:  # as Telegram: an offset confirms every update below it
                bot.updates = [u for u in bot.updates if u["update_id"] >= offset]
            while True:
                # Kinds the bot did not ask for are never delivered (they are dropped).
                bot.updates = [u for u in bot.updates if bot.allows(u)]
                if bot.updates or time.monotonic() >= deadline:
                    return 200, ok(bot.updates[:limit])
                self._cond.wait(deadline - time.monotonic())

    def _api_setWebhook(self, bot: StandinBot, params: dict[str, Any]
                        ) -> tuple[int, dict[str, Any]]:
        url, secret = str(params.get("url", "")), str(params.get("secret_token", ""))
        if secret and not _SECRET.match(secret):
            return 400, error(400, "Bad Request: secret token contains unallowed characters")
        allowed = list_param(params, "allowed_updates")
        with self._cond:
            bot.webhook_url, bot.webhook_secret = url, secret if url else ""
            if allowed is not None:
                bot.allowed_updates = allowed
            if str(params.get("drop_pending_updates", "")).lower() == "true":
                bot.updates = []
        return 200, ok(True)

    def _api_deleteWebhook(self, bot: StandinBot, params: dict[str, Any]
                           ) -> tuple[int, dict[str, Any]]:
        with self._cond:
            bot.webhook_url = bot.webhook_secret = ""
            if str(params.get("drop_pending_updates", "")).lower() == "true":
                bot.updates = []
        return 200, ok(True)

    def _api_getWebhookInfo(self, bot: StandinBot, params: dict[str, Any]
                            ) -> tuple[int, dict[str, Any]]:
        info: dict[str, Any] = {"url": bot.webhook_url, "has_custom_certificate": False,
                                "pending_update_count": len(bot.updates)}
        if bot.allowed_updates:
            info["allowed_updates"] = list(bot.allowed_updates)
        return 200, ok(info)


class _Handler(BaseHTTPRequestHandler):
    server_state: BotApiStandin
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the request line holds the token: never log it

    def do_GET(self) -> None:
        self.do_POST()

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        m = _PATH.match(self.path.split("?", 1)[0])
        if m is None:
            return self._answer(404, error(404, "Not Found"))
        bot = self.server_state._bots.get(m[1])
        if bot is None:
            return self._answer(401, error(401, "Unauthorized"))
        try:
            params = parse_params(self.headers.get("Content-Type", ""), body)
            answer = self.server_state.handle(bot, m[2], params)
        except ValueError:
            return self._answer(400, error(400, "Bad Request: can't parse request body"))
        if isinstance(answer, Fault):  # drop: no answer at all
            self.close_connection = True
            self.connection.close()
            return None
        return self._answer(*answer)

    def _answer(self, status: int, body: dict[str, Any] | str) -> None:
        html = isinstance(body, str)
        data = body.encode() if isinstance(body, str) else json.dumps(
            body, ensure_ascii=False).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "text/html" if html else "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except OSError:
            pass  # the client gave up (a "slow" fault): nothing to answer to
