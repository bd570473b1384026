"""A stand-in Rubika Bot API server: speaks Rubika's Bot API on the wire, on 127.0.0.1.

Shipped beside the real adapter so the tests (and the demo) drive :mod:`channels.rubika.api`
over real HTTP, without a Rubika account::

    server = RubikaStandin().start()
    server.add_bot("TOKEN")
    RubikaBot(name="shop", token="TOKEN", base_url=server.base_url)  # http://127.0.0.1:<p>/v3

Methods (``POST /v3/<token>/<method>``, a JSON body): getMe; getUpdates (``offset_id``,
``limit`` 1-100), answering ``{"updates": [...], "next_offset_id": "..."}``; sendMessage
(``chat_id``, ``text``, ``reply_to_message_id``) answering ``{"message_id": "..."}``;
requestSendFile (``type``: File, Image, Voice, Music, Gif, Video) answering an
``upload_url``, to which the file is POSTed as the multipart field ``file`` (answering
``{"status": "OK", "data": {"file_id": "..."}}``); sendFile (``chat_id``, ``file_id``,
``text``); getFile (``file_id``) answering a ``download_url``; updateBotEndpoints (``url``,
``type``: ReceiveUpdate, ReceiveInlineMessage, ReceiveQuery, GetSelectionItem,
SearchSelectionItems) answering ``{"status": "Done"}``.

Its awkward parts, as Rubika's: every answer is an envelope, ``{"status": "OK", "data":
...}``, and a refusal is an envelope too, **with HTTP 200**: ``{"status": "INVALID_INPUT",
"dev_message": ...}`` (a wrong chat, an empty text, an unknown file, a bad limit or
offset), ``INVALID_ACCESS`` (an unknown token), ``TOO_REQUESTS``; ``next_offset_id`` is an
opaque string (random here, so nothing may treat it as a number), and an offset that was
never handed out is ``INVALID_INPUT``. The page after an offset is the same until a later
offset is sent, so a client that did not store the new offset gets the page again.

Faults, queued per method (:meth:`fail_next`) and used once each: ``too_requests``,
``invalid_input``, ``invalid_access`` (the envelope, HTTP 200), ``server_error`` (a 5xx,
``value`` its status, with a JSON body that is no envelope), ``proxy_error`` (a 5xx HTML
page), ``http`` (any status ``value``, plain text), ``slow`` (the answer ``value`` seconds
late, the message recorded), ``drop`` (the connection closed with no answer); ``ok``
serves its call normally (so a later call fails: ``ok`` then ``drop``). By default
a fault comes before anything is recorded; ``after_send=True`` records first.
Webhooks: :meth:`deliver_webhook` POSTs ``{"update": ...}`` to the bot's ReceiveUpdate URL,
as Rubika does (unsigned).
"""

from __future__ import annotations

import itertools
import json
import logging
import re
import secrets
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

from channels.standin_http import LoopbackServer
from channels.telegram.standin_wire import UploadedFile, parse_params

log = logging.getLogger(__name__)

_API = re.compile(r"^/v3/([^/]+)/([A-Za-z]+)$")
_UPLOAD = re.compile(r"^/upload/([A-Za-z0-9_-]+)$")
_FILE = re.compile(r"^/files/([A-Za-z0-9_-]+)$")
FILE_TYPES = ("File", "Image", "Voice", "Music", "Gif", "Video")
ENDPOINT_TYPES = ("ReceiveUpdate", "ReceiveInlineMessage", "ReceiveQuery", "GetSelectionItem",
                  "SearchSelectionItems")
ENVELOPE_FAULTS = {"too_requests": "TOO_REQUESTS", "invalid_input": "INVALID_INPUT",
                   "invalid_access": "INVALID_ACCESS"}
_PROXY_PAGE = ("<html><head><title>{code}</title></head><body><center><h1>{code} Bad Gateway"
               "</h1></center><hr><center>nginx</center></body></html>")
Answer = tuple[int, "dict[str, Any] | str"]


def ok(data: dict[str, Any]) -> dict[str, Any]:
    return {"status": "OK", "data": data}


def refused(status: str, dev_message: str) -> Answer:
    return 200, {"status": status, "dev_message": dev_message}  # HTTP 200, as Rubika


@dataclass(slots=True)
class Fault:
    kind: str
    value: float = 0
    after_send: bool = False


@dataclass(slots=True)
class StandinBot:
    token: str
    bot_id: str
    title: str
    updates: list[dict[str, Any]] = field(default_factory=list)
    offsets: dict[str, int] = field(default_factory=dict)  # handed-out offset → position
    endpoints: dict[str, str] = field(default_factory=dict)  # type → url


@dataclass(frozen=True, slots=True)
class Sent:
    bot: str  # the bot's title: never its token
    chat_id: str
    text: str
    message_id: str
    method: str = "sendMessage"  # or sendFile
    file: UploadedFile | None = None
    params: dict[str, Any] = field(default_factory=dict)


class RubikaStandin:
    def __init__(self, *, announce: bool = False) -> None:
        self.announce = announce  # log what bots send, as the customer's chat shows it
        self._bots: dict[str, StandinBot] = {}
        self._faults: dict[str, list[Fault]] = {}
        self._lock = threading.Lock()
        self._ids = itertools.count(9_100_000_000_000_000)
        self._uploads: dict[str, str] = {}  # upload token → file type
        self.files: dict[str, UploadedFile] = {}  # file_id → the file
        self.chats: set[str] = set()  # chats users opened with a bot (they may be written)
        self.sent: list[Sent] = []
        self.calls: list[str] = []
        self._http = LoopbackServer("rubika-standin")

    def start(self) -> RubikaStandin:
        self._http.serve_for(self, _Handler)
        return self

    def stop(self) -> None:
        self._http.stop()

    @property
    def origin(self) -> str:
        return self._http.origin

    @property
    def base_url(self) -> str:
        return f"{self._http.origin}/v3"

    # -- the test's side -------------------------------------------------------------------

    def add_bot(self, token: str, title: str = "Kartabl shop") -> StandinBot:
        bot = StandinBot(token=token, bot_id=f"b0{secrets.token_hex(15)}", title=title)
        self._bots[token] = bot
        return bot

    def bot(self, token: str) -> StandinBot:
        return self._bots[token]

    def add_update(self, token: str, update: dict[str, Any]) -> dict[str, Any]:
        """Queue ``update`` for getUpdates (a private chat it names may then be written)."""
        with self._lock:
            self._bots[token].updates.append(update)
            if isinstance(update.get("chat_id"), str):
                self.chats.add(update["chat_id"])
        return update

    def add_file(self, data: bytes, name: str = "file.bin") -> str:
        """A file a customer sent: its file_id, for a message's ``file``."""
        file_id = str(next(self._ids))
        self.files[file_id] = UploadedFile(name, "application/octet-stream", data)
        return file_id

    def position(self, token: str, offset_id: str | None) -> int:
        """How many updates an ``offset_id`` has passed (0 for none)."""
        return self._bots[token].offsets.get(offset_id or "", 0)

    def fail_next(self, method: str, kind: str, value: float = 0, times: int = 1, *,
                  after_send: bool = False) -> None:
        with self._lock:
            self._faults.setdefault(method, []).extend(
                Fault(kind, value, after_send) for _ in range(times))

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def sent_to(self, chat_id: str) -> list[Sent]:
        return [s for s in self.sent if s.chat_id == chat_id]

    def deliver_webhook(self, token: str, update: dict[str, Any], *, url: str | None = None,
                        timeout_s: float = 5.0) -> int:
        """POST ``{"update": update}`` to the bot's ReceiveUpdate endpoint (or ``url``);
        the HTTP status answered."""
        target = url or self._bots[token].endpoints.get("ReceiveUpdate", "")
        if not target.startswith(("http://", "https://")):
            raise ValueError("the bot has no ReceiveUpdate endpoint")
        req = urllib.request.Request(  # noqa: S310 (scheme checked above)
            target, data=json.dumps({"update": update}).encode(),
            headers={"Content-Type": "application/json"}, method="POST")
        try:
            with urllib.request.urlopen(req, timeout=timeout_s) as resp:  # noqa: S310
                return int(resp.status)
        except urllib.error.HTTPError as exc:
            return int(exc.code)

    # -- the API ---------------------------------------------------------------------------

    def _fault(self, method: str) -> Fault | None:
        with self._lock:
            queue = self._faults.get(method) or []
            return queue.pop(0) if queue else None

    def handle(self, bot: StandinBot, method: str, params: dict[str, Any]) -> Answer | Fault:
        self.calls.append(method)
        fault = self._fault(method)
        if fault is not None and fault.kind == "ok":  # this call is served: the next fails
            fault = None
        if fault is not None and fault.kind != "slow" and not fault.after_send:
            return fault if fault.kind == "drop" else _fault_answer(fault)
        handler = getattr(self, f"_api_{method}", None)
        if handler is None:
            return refused("INVALID_INPUT", f"unknown method {method[:40]}")
        answer: Answer = handler(bot, params)
        if fault is None:
            return answer
        if fault.kind == "slow":
            time.sleep(fault.value)
            return answer
        return fault if fault.kind == "drop" else _fault_answer(fault)

    def _api_getMe(self, bot: StandinBot, params: dict[str, Any]) -> Answer:
        return 200, ok({"bot": {"bot_id": bot.bot_id, "bot_title": bot.title,
                                "username": "kartabl_bot", "description": ""}})

    def _api_getUpdates(self, bot: StandinBot, params: dict[str, Any]) -> Answer:
        limit = params.get("limit", 100)
        if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= 100:
            return refused("INVALID_INPUT", "limit must be 1-100")
        offset = params.get("offset_id")
        with self._lock:
            if offset in (None, ""):
                start = 0
            elif isinstance(offset, str) and offset in bot.offsets:
                start = bot.offsets[offset]
            else:
                return refused("INVALID_INPUT", "offset_id is not valid")
            page = bot.updates[start:start + limit]
            token = secrets.token_urlsafe(12)  # opaque: never a number to add one to
            bot.offsets[token] = start + len(page)
        return 200, ok({"updates": page, "next_offset_id": token})

    def _chat_or_refusal(self, params: dict[str, Any]) -> str | Answer:
        chat_id = params.get("chat_id")
        if not isinstance(chat_id, str) or chat_id not in self.chats:
            return refused("INVALID_INPUT", "chat not found")
        return chat_id

    def _record(self, bot: StandinBot, chat_id: str, text: str, method: str,
                params: dict[str, Any], file: UploadedFile | None = None) -> Answer:
        message_id = str(next(self._ids))
        with self._lock:
            self.sent.append(Sent(bot.title, chat_id, text, message_id, method, file,
                                  dict(params)))
        if self.announce:
            what = f"{file.filename} ({len(file.data)} bytes) " if file else ""
            log.info("Rubika stand-in: %s to chat %s (message %s): %s%.200s", bot.title,
                     chat_id, message_id, what, text)
        return 200, ok({"message_id": message_id})

    def _api_sendMessage(self, bot: StandinBot, params: dict[str, Any]) -> Answer:
        chat = self._chat_or_refusal(params)
        if not isinstance(chat, str):
            return chat
        text = params.get("text")
        if not isinstance(text, str) or not text.strip():
            return refused("INVALID_INPUT", "text is empty")
        return self._record(bot, chat, text, "sendMessage", params)

    def _api_requestSendFile(self, bot: StandinBot, params: dict[str, Any]) -> Answer:
        if params.get("type") not in FILE_TYPES:
            return refused("INVALID_INPUT", "type is not valid")
        upload = secrets.token_urlsafe(12)
        with self._lock:
            self._uploads[upload] = str(params["type"])
        return 200, ok({"upload_url": f"{self.origin}/upload/{upload}"})

    def _api_sendFile(self, bot: StandinBot, params: dict[str, Any]) -> Answer:
        chat = self._chat_or_refusal(params)
        if not isinstance(chat, str):
            return chat
        file = self.files.get(str(params.get("file_id")))
        if file is None:
            return refused("INVALID_INPUT", "file_id is not valid")
        text = params.get("text")
        return self._record(bot, chat, text if isinstance(text, str) else "", "sendFile",
                            params, file)

    def _api_getFile(self, bot: StandinBot, params: dict[str, Any]) -> Answer:
        file_id = str(params.get("file_id"))
        if file_id not in self.files:
            return refused("INVALID_INPUT", "file_id is not valid")
        return 200, ok({"download_url": f"{self.origin}/files/{file_id}"})

    def _api_updateBotEndpoints(self, bot: StandinBot, params: dict[str, Any]) -> Answer:
        url, kind = params.get("url"), params.get("type")
        if kind not in ENDPOINT_TYPES:
            return refused("INVALID_INPUT", "type is not valid")
        if not isinstance(url, str) or not url.startswith(("https://", "http://")):
            return 200, ok({"status": "InvalidUrl"})
        with self._lock:
            bot.endpoints[str(kind)] = url
        return 200, ok({"status": "Done"})

    def upload(self, token: str, params: dict[str, Any]) -> Answer:
        with self._lock:
            known = self._uploads.pop(token, None)
        upload = params.get("file")
        if known is None or not isinstance(upload, UploadedFile) or not upload.data:
            return refused("INVALID_INPUT", "no file")
        file_id = str(next(self._ids))
        self.files[file_id] = upload
        return 200, ok({"file_id": file_id})


def _fault_answer(fault: Fault) -> Answer:
    if fault.kind in ENVELOPE_FAULTS:
        return refused(ENVELOPE_FAULTS[fault.kind], fault.kind.replace("_", " "))
    code = int(fault.value) or 502
    if fault.kind == "server_error":
        return code, {"error": "internal error"}  # JSON, but no envelope
    if fault.kind == "proxy_error":
        return code, _PROXY_PAGE.format(code=code)
    if fault.kind == "http":
        return code, f"HTTP {code}"
    raise ValueError(f"unknown fault {fault.kind!r}")


def text_update(chat_id: str, sender_id: str, text: str, *, message_id: str | None = None,
                kind: str = "NewMessage", **message: Any) -> dict[str, Any]:
    """A ``NewMessage`` update from ``sender_id`` in ``chat_id`` (a private chat: ``b0...``)."""
    msg: dict[str, Any] = {"message_id": message_id or str(int(time.time() * 1e6)),
                           "time": str(int(time.time())), "is_edited": False,
                           "sender_type": "User", "sender_id": sender_id}
    if text:
        msg["text"] = text
    msg.update(message)
    return {"type": kind, "chat_id": chat_id, "new_message": msg}


class _Handler(BaseHTTPRequestHandler):
    state: RubikaStandin
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the request line holds the token: never log it

    def do_GET(self) -> None:
        m = _FILE.match(self.path.split("?", 1)[0])
        file = self.state.files.get(m[1]) if m else None
        if file is None:
            return self._answer(404, "not found")
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(file.data)))
        self.end_headers()
        self.wfile.write(file.data)
        return None

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        path = self.path.split("?", 1)[0]
        ctype = self.headers.get("Content-Type", "")
        up = _UPLOAD.match(path)
        try:
            if up is not None:
                return self._answer(*self.state.upload(up[1], parse_params(ctype, body)))
            m = _API.match(path)
            if m is None:
                return self._answer(404, "not found")
            bot = self.state._bots.get(m[1])
            if bot is None:
                return self._answer(*refused("INVALID_ACCESS", "token is not valid"))
            params = json.loads(body) if body else {}
            if not isinstance(params, dict):
                raise ValueError("not an object")
        except ValueError:
            return self._answer(*refused("INVALID_INPUT", "the body is not a JSON object"))
        answer = self.state.handle(bot, m[2], params)
        if isinstance(answer, Fault):  # drop
            self.close_connection = True
            self.connection.close()
            return None
        return self._answer(*answer)

    def _answer(self, status: int, body: dict[str, Any] | str) -> None:
        text = isinstance(body, str)
        data = body.encode() if isinstance(body, str) else json.dumps(
            body, ensure_ascii=False).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "text/html" if text else "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except OSError:
            pass  # the client gave up (a "slow" fault)
