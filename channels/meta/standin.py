"""A stand-in Graph API for tests and the demo, following Meta's documentation:

- ``POST /<version>/<ig account id>/messages`` (Instagram's Send API) and
  ``POST /<version>/<phone_number_id>/messages`` (WhatsApp's Cloud API): the bearer token
  must be the account's (else 401, ``OAuthException`` code 190); the body must be the
  documented JSON (else 400, code 100); the customer service window is enforced from the
  customer's last message to that account (:meth:`GraphStandin.customer_wrote`): 24 h,
  or 7 days for an Instagram message tagged ``HUMAN_AGENT``; outside it Instagram answers
  code 10, subcode 2018278 ("This message is sent outside of allowed window") and WhatsApp
  code 131047 ("Re-engagement message"); a WhatsApp ``type: template`` message is allowed
  outside it when the template is approved (:meth:`GraphStandin.add_template`, else
  132001), and its parameters may hold no new line, tab or five spaces (132018).
  Answers: ``{"recipient_id", "message_id"}`` and ``{"messaging_product", "contacts",
  "messages": [{"id": "wamid..."}]}``.
- ``GET /<version>/<media-id>`` (WhatsApp media lookup, bearer token) →
  ``{"url", "mime_type", "sha256", "file_size", "id", "messaging_product"}``;
  ``GET /media/<id>`` the bytes (bearer token, as WhatsApp's media URLs want);
  ``GET /cdn/<id>`` the bytes without a token (Instagram's CDN URLs).
- :meth:`GraphStandin.fail_next` queues a Graph error (``{"error": {"message", "type",
  "code", "error_subcode", "fbtrace_id"}}``) or a bare HTTP status for the next send;
  :meth:`GraphStandin.slow_next` takes the next send and answers it late.

Webhooks: :func:`instagram_event`, :func:`whatsapp_event` and :func:`whatsapp_status`
build the documented payloads, :func:`signed` the body and ``X-Hub-Signature-256`` header
Meta sends (``wrong=True``: a forged one), and :meth:`GraphStandin.deliver` posts it to
Kartabl's webhook (any ``post(url, content=, headers=)``: httpx, or a TestClient).
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

from channels.standin_http import LoopbackServer

VERSION = "v21.0"
DAY_S = 86_400
HUMAN_AGENT_S = 7 * DAY_S


@dataclass(slots=True)
class Sent:
    account: str
    recipient: str
    text: str
    tag: str | None
    message_id: str
    body: dict[str, Any]


@dataclass(slots=True)
class Media:
    data: bytes
    mime_type: str


@dataclass
class GraphStandin:
    tokens: dict[str, str] = field(default_factory=dict)  # account id → its token
    sent: list[Sent] = field(default_factory=list)
    media: dict[str, Media] = field(default_factory=dict)
    last_wrote: dict[tuple[str, str], float] = field(default_factory=dict)
    faults: list[tuple[int, dict[str, Any] | None]] = field(default_factory=list)
    delays: list[float] = field(default_factory=list)  # the next sends: taken, answered late
    templates: set[tuple[str, str]] = field(default_factory=set)  # (number, approved name)
    media_lookups: int = 0  # GET /<media-id> calls: a forged webhook must cause none
    clock: Callable[[], float] = time.time
    # Called with each message taken (the demo reports WhatsApp statuses back from it).
    on_sent: Callable[[Sent], None] | None = None

    def __post_init__(self) -> None:
        self._http = LoopbackServer("graph-standin")
        self._lock = threading.Lock()
        self._ids = itertools.count(1)

    # -- set-up ---------------------------------------------------------------------------

    def start(self) -> GraphStandin:
        self._http.serve_for(self, _Handler, "server_standin")
        return self

    def stop(self) -> None:
        self._http.stop()

    @property
    def origin(self) -> str:
        return self._http.origin

    @property
    def graph_url(self) -> str:
        return f"{self.origin}/{VERSION}"

    def add_account(self, account_id: str, token: str) -> None:
        self.tokens[account_id] = token

    def customer_wrote(self, account_id: str, customer: str, at: float | None = None) -> None:
        """The customer wrote to ``account_id`` at ``at`` (default now): its window opens."""
        self.last_wrote[(account_id, customer.lstrip("+"))] = self.clock() if at is None else at

    def add_media(self, data: bytes, mime_type: str) -> str:
        media_id = str(900_000 + next(self._ids))
        self.media[media_id] = Media(data, mime_type)
        return media_id

    def cdn_url(self, media_id: str) -> str:
        return f"{self.origin}/cdn/{media_id}"

    def fail_next(self, status: int, code: int | None = None, subcode: int | None = None,
                  message: str = "An error occurred") -> None:
        error = None if code is None else {"error": {
            "message": message, "type": "OAuthException", "code": code,
            **({"error_subcode": subcode} if subcode is not None else {}),
            "fbtrace_id": "A" + secrets.token_hex(8)}}
        with self._lock:
            self.faults.append((status, error))

    def slow_next(self, seconds: float) -> None:
        """The next send is taken (recorded as sent) and answered ``seconds`` later."""
        with self._lock:
            self.delays.append(seconds)

    # -- webhooks ---------------------------------------------------------------------------

    def deliver(self, post: Callable[..., Any], url: str, payload: dict[str, Any],
                app_secret: str, *, wrong: bool = False) -> Any:
        """Post ``payload`` to Kartabl's webhook as Meta does, signed (or forged); a message
        event also opens the customer's window here."""
        body, headers = signed(payload, app_secret, wrong=wrong)
        for account, customer in _writers(payload):
            self.customer_wrote(account, customer)
        return post(url, content=body, headers=headers)

    # -- the API ----------------------------------------------------------------------------

    def handle_send(self, account: str, token: str, body: Any) -> tuple[int, dict[str, Any]]:
        if self.tokens.get(account) is None or not hmac.compare_digest(
                self.tokens[account], token):
            return 401, _error(190, "Invalid OAuth access token - Cannot parse access token")
        with self._lock:
            if self.faults:
                status, error = self.faults.pop(0)
                return status, error or {}
        if not isinstance(body, dict):
            return 400, _error(100, "(#100) The parameter recipient is required")
        whatsapp = body.get("messaging_product") is not None
        if whatsapp:
            return self._whatsapp(account, body)
        return self._instagram(account, body)

    def _open(self, account: str, customer: str, window_s: int) -> bool:
        wrote = self.last_wrote.get((account, customer.lstrip("+")))
        return wrote is not None and self.clock() - wrote <= window_s

    def _instagram(self, account: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        recipient = (body.get("recipient") or {}).get("id") if isinstance(
            body.get("recipient"), dict) else None
        message = body.get("message")
        text = message.get("text") if isinstance(message, dict) else None
        if not isinstance(recipient, str) or not isinstance(text, str) or not text:
            return 400, _error(100, "(#100) The parameter recipient or message is required")
        tag = body.get("tag") if body.get("messaging_type") == "MESSAGE_TAG" else None
        if tag not in (None, "HUMAN_AGENT"):
            return 400, _error(100, "(#100) Param tag must be one of {HUMAN_AGENT}")
        window = HUMAN_AGENT_S if tag == "HUMAN_AGENT" else DAY_S
        if not self._open(account, recipient, window):
            return 400, _error(10, "(#10) This message is sent outside of allowed window.",
                               2018278)
        mid = f"aWdfZAG1faXRlbTox{next(self._ids)}"
        sent = Sent(account, recipient, text, tag, mid, body)
        self.sent.append(sent)
        if self.on_sent is not None:
            self.on_sent(sent)
        return 200, {"recipient_id": recipient, "message_id": mid}

    def add_template(self, account: str, name: str) -> None:
        """An approved message template of the number ``account``."""
        self.templates.add((account, name))

    def _template(self, account: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """A template message: allowed outside the window, if the template is approved."""
        template, to = body.get("template"), body.get("to")
        if not isinstance(template, dict) or not isinstance(to, str) \
                or (account, template.get("name")) not in self.templates:
            return 404, _error(132001, "Template name does not exist in the translation")
        params = [p.get("text") for c in template.get("components", [])
                  for p in c.get("parameters", []) if isinstance(p, dict)]
        if any(not isinstance(t, str) or "\n" in t or "\t" in t or "     " in t
               for t in params):
            return 400, _error(132018, "There was an issue with the parameters in your "
                                       "template.")
        wamid = f"wamid.HBgM{secrets.token_hex(12).upper()}"
        sent = Sent(account, to, " ".join(str(t) for t in params),
                    f"template:{template['name']}", wamid, body)
        self.sent.append(sent)
        if self.on_sent is not None:
            self.on_sent(sent)
        return 200, {"messaging_product": "whatsapp",
                     "contacts": [{"input": to, "wa_id": to.lstrip("+")}],
                     "messages": [{"id": wamid, "message_status": "accepted"}]}

    def _whatsapp(self, account: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if body.get("type") == "template" and body.get("messaging_product") == "whatsapp":
            return self._template(account, body)
        to, text = body.get("to"), (body.get("text") or {}) if isinstance(
            body.get("text"), dict) else {}
        if body.get("messaging_product") != "whatsapp" or not isinstance(to, str) \
                or body.get("type") != "text" or not isinstance(text.get("body"), str):
            return 400, _error(100, "(#100) Invalid parameter")
        if not self._open(account, to, DAY_S):
            return 400, _error(131047, "Re-engagement message", None,
                               "Message failed to send because more than 24 hours have "
                               "passed since the customer last replied to this number.")
        wamid = f"wamid.HBgM{secrets.token_hex(12).upper()}"
        sent = Sent(account, to, text["body"], None, wamid, body)
        self.sent.append(sent)
        if self.on_sent is not None:
            self.on_sent(sent)
        return 200, {"messaging_product": "whatsapp",
                     "contacts": [{"input": to, "wa_id": to.lstrip("+")}],
                     "messages": [{"id": wamid}]}

    def handle_media(self, media_id: str, token: str) -> tuple[int, dict[str, Any]]:
        self.media_lookups += 1
        if token not in self.tokens.values():
            return 401, _error(190, "Invalid OAuth access token")
        found = self.media.get(media_id)
        if found is None:
            return 400, _error(100, "(#100) Unsupported get request.", 33)
        return 200, {"messaging_product": "whatsapp", "url": f"{self.origin}/media/{media_id}",
                     "mime_type": found.mime_type,
                     "sha256": hashlib.sha256(found.data).hexdigest(),
                     "file_size": len(found.data), "id": media_id}


def _error(code: int, message: str, subcode: int | None = None, details: str = ""
           ) -> dict[str, Any]:
    err: dict[str, Any] = {"message": message, "type": "OAuthException", "code": code,
                           "fbtrace_id": "A" + secrets.token_hex(8)}
    if subcode is not None:
        err["error_subcode"] = subcode
    if details:
        err["error_data"] = {"messaging_product": "whatsapp", "details": details}
    return {"error": err}


class _Handler(BaseHTTPRequestHandler):
    server_standin: GraphStandin

    def log_message(self, format: str, *args: Any) -> None:
        return None  # quiet: tests read the stand-in's records, not its log

    def _token(self) -> str:
        auth = self.headers.get("Authorization", "")
        return auth[7:] if auth.startswith("Bearer ") else ""

    def _answer(self, status: int, body: dict[str, Any] | bytes, ctype: str = "") -> None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype or "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:
        parts = self.path.split("?")[0].strip("/").split("/")
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if len(parts) != 3 or parts[0] != VERSION or parts[2] != "messages":
            self._answer(404, _error(803, "Unknown path"))
            return
        try:
            body = json.loads(raw)
        except ValueError:
            self._answer(400, _error(100, "(#100) Invalid JSON"))
            return
        status, answer = self.server_standin.handle_send(parts[1], self._token(), body)
        with self.server_standin._lock:
            delay = self.server_standin.delays.pop(0) if self.server_standin.delays else 0.0
        if delay:
            time.sleep(delay)  # the message is taken; its answer comes too late
        if not answer:
            self._answer(status, b"<html>Bad Gateway</html>", "text/html")
            return
        self._answer(status, answer)

    def do_GET(self) -> None:
        parts = self.path.split("?")[0].strip("/").split("/")
        standin = self.server_standin
        if len(parts) == 2 and parts[0] == VERSION:
            self._answer(*standin.handle_media(parts[1], self._token()))
        elif len(parts) == 2 and parts[0] in ("media", "cdn") and parts[1] in standin.media:
            if parts[0] == "media" and self._token() not in standin.tokens.values():
                self._answer(401, _error(190, "Invalid OAuth access token"))
                return
            found = standin.media[parts[1]]
            self._answer(200, found.data, found.mime_type)
        else:
            self._answer(404, _error(803, "Unknown path"))


# -- webhook payloads, as Meta's documentation shows them -----------------------------------


def signed(payload: dict[str, Any], app_secret: str, *, wrong: bool = False
           ) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(payload, ensure_ascii=False).encode()
    key = (app_secret + "-forged" if wrong else app_secret).encode()
    sig = "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest()
    return body, {"Content-Type": "application/json", "X-Hub-Signature-256": sig}


def instagram_event(account: str, sender: str, mid: str, text: str | None = None, *,
                    attachments: list[tuple[str, str]] = (),  # type: ignore[assignment]
                    at_ms: int | None = None) -> dict[str, Any]:
    """One Instagram DM; ``attachments``: (type, url) pairs."""
    stamp = at_ms if at_ms is not None else int(time.time() * 1000)
    message: dict[str, Any] = {"mid": mid}
    if text is not None:
        message["text"] = text
    if attachments:
        message["attachments"] = [{"type": t, "payload": {"url": u}} for t, u in attachments]
    return {"object": "instagram", "entry": [{"id": account, "time": stamp, "messaging": [
        {"sender": {"id": sender}, "recipient": {"id": account}, "timestamp": stamp,
         "message": message}]}]}


def whatsapp_value(phone_number_id: str, *, messages: list[dict[str, Any]] = (),  # type: ignore[assignment]
                   statuses: list[dict[str, Any]] = (),  # type: ignore[assignment]
                   contacts: list[dict[str, Any]] = ()) -> dict[str, Any]:  # type: ignore[assignment]
    value: dict[str, Any] = {"messaging_product": "whatsapp", "metadata": {
        "display_phone_number": "15550001111", "phone_number_id": phone_number_id}}
    if contacts:
        value["contacts"] = list(contacts)
    if messages:
        value["messages"] = list(messages)
    if statuses:
        value["statuses"] = list(statuses)
    return {"object": "whatsapp_business_account", "entry": [
        {"id": "102290129340398", "changes": [{"field": "messages", "value": value}]}]}


def whatsapp_message(wamid: str, wa_id: str, kind: str = "text", *, text: str = "",
                     media_id: str = "", mime_type: str = "", filename: str = "",
                     caption: str = "") -> dict[str, Any]:
    msg: dict[str, Any] = {"from": wa_id, "id": wamid, "timestamp": str(int(time.time())),
                           "type": kind}
    if kind == "text":
        msg["text"] = {"body": text}
    else:
        obj: dict[str, Any] = {"id": media_id, "mime_type": mime_type,
                               "sha256": "x"}
        if filename:
            obj["filename"] = filename
        if caption:
            obj["caption"] = caption
        msg[kind] = obj
    return msg


def whatsapp_event(phone_number_id: str, wa_id: str, wamid: str, text: str = "", *,
                   name: str = "", **media: Any) -> dict[str, Any]:
    return whatsapp_value(
        phone_number_id,
        contacts=[{"profile": {"name": name}, "wa_id": wa_id}] if name else [],
        messages=[whatsapp_message(wamid, wa_id, media.pop("kind", "text"), text=text,
                                   **media)])


def whatsapp_status(phone_number_id: str, wamid: str, status: str, wa_id: str, *,
                    error: tuple[int, str] | None = None) -> dict[str, Any]:
    item: dict[str, Any] = {"id": wamid, "status": status, "timestamp": str(int(time.time())),
                            "recipient_id": wa_id}
    if error is not None:
        item["errors"] = [{"code": error[0], "title": error[1], "message": error[1],
                           "error_data": {"details": error[1]}}]
    return whatsapp_value(phone_number_id, statuses=[item])


def _writers(payload: dict[str, Any]) -> list[tuple[str, str]]:
    """(our account, the customer) for each message event of ``payload``."""
    out = []
    for entry in payload.get("entry", []):
        for event in entry.get("messaging", []):
            if "message" in event:
                out.append((entry["id"], event["sender"]["id"]))
        for change in entry.get("changes", []):
            value = change.get("value", {})
            for msg in value.get("messages", []):
                out.append((value["metadata"]["phone_number_id"], msg["from"]))
    return out
