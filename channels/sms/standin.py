"""A stand-in Kavenegar server: speaks Kavenegar's HTTP API on the wire, on 127.0.0.1.

Shipped beside the real adapter (like dramatiq's ``StubBroker``) so the tests and the demo
drive the real ``kavenegar`` library over real HTTP, without an account::

    server = KavenegarStandin(api_key="KEY").start()
    SmsConfig(api_key="KEY", base_url=server.base_url, line="10008663")

Methods (GET or POST, form or query parameters, under ``/v1/<key>/sms/``): ``send.json``
(receptor, message, sender, localid; a localid already sent answers the earlier message, as
Kavenegar's duplicate guard), ``status.json`` (messageid), ``statuslocalmessageid.json``
(localid), ``receive.json`` (linenumber, isread=0: up to 100 unread, **marked read**). Every
answer is Kavenegar's envelope ``{"return": {"status", "message"}, "entries": [...]}``, with
the HTTP status equal to the envelope's. A wrong key is 403.

Faults, queued per method and used once each (:meth:`fail_next`): ``api`` (an error envelope
with status ``value``: 418, 411, 412 ...), ``http`` (a bare HTTP ``value`` status, no
envelope: a proxy's 502), ``slow`` (the send is recorded, then the answer waits ``value``
seconds: a real unknown outcome for a client with a shorter timeout), ``drop`` (the
connection is closed with no answer, before anything is recorded).

Inbound SMS (:meth:`inbound`) go to the receive queue, to a callback URL (a form POST of
from, message, to, messageid, as Kavenegar's receive callback), or both.

Delivery: a sent SMS stays status 1 (queued) until :meth:`set_status` says otherwise, unless
``deliver_after_s`` is given: then, that long after the send, the carrier "reports" it
delivered (10), or failed (6) for a ``fail_ratio`` share of sends (the demo). ``announce``
logs each send and each reported status, as the customer's phone would see them (never the
key).
"""

from __future__ import annotations

import itertools
import json
import logging
import random
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

from channels.standin_http import LoopbackServer

log = logging.getLogger(__name__)

STATUS_TEXT = {1: "در صف ارسال", 2: "زمان بندی شده", 4: "ارسال به مخابرات", 5: "ارسال به مخابرات",
               6: "خطا در ارسال", 10: "رسیده به گیرنده", 11: "نرسیده به گیرنده", 13: "لغو شده",
               14: "بلاک شده", 100: "شناسه پیامک نامعتبر است"}
API_ERRORS = {403: "apikey is invalid", 411: "receptor is invalid",
              412: "sender is invalid", 418: "account credit is not enough",
              404: "method not found", 400: "parameters are incomplete"}


@dataclass(slots=True)
class Fault:
    kind: str  # api | http | slow | drop
    value: float = 0


@dataclass(slots=True)
class SentSms:
    messageid: int
    receptor: str
    sender: str
    message: str
    localid: str
    status: int = 1
    date: int = field(default_factory=lambda: int(time.time()))
    settles_at: float | None = None  # monotonic time of the carrier's report (deliver_after_s)
    final_status: int = 10  # what it reports then: delivered, or failed

    def entry(self) -> dict[str, Any]:
        return {"messageid": self.messageid, "message": self.message, "status": self.status,
                "statustext": STATUS_TEXT.get(self.status, ""), "sender": self.sender,
                "receptor": self.receptor, "date": self.date, "cost": 120}


class KavenegarStandin:
    def __init__(self, api_key: str = "standin-key", *, deliver_after_s: float | None = None,
                 fail_ratio: float = 0.0, seed: int | None = None,
                 announce: bool = False) -> None:
        if not 0.0 <= fail_ratio <= 1.0:
            raise ValueError("fail_ratio is a share of sends, between 0 and 1")
        self.api_key = api_key
        self.deliver_after_s, self.fail_ratio, self.announce = deliver_after_s, fail_ratio, announce
        self._rnd = random.Random(seed)
        self.sent: list[SentSms] = []
        self.calls: list[str] = []  # method names, in order
        self.callback_url = ""
        self.inbox: list[dict[str, Any]] = []  # received SMS, with "read" flags
        self._faults: dict[str, list[Fault]] = {}
        self._ids = itertools.count(8_000_001)
        self._lock = threading.Lock()
        self._http = LoopbackServer("kavenegar-standin")

    # -- lifecycle ---------------------------------------------------------------------

    def start(self) -> KavenegarStandin:
        self._http.serve_for(self, _Handler)
        return self

    def stop(self) -> None:
        self._http.stop()

    @property
    def base_url(self) -> str:
        return f"{self._http.origin}"

    # -- the test's (or the demo's) side -------------------------------------------------

    def clear_faults(self) -> None:
        """Forget the faults not served yet (the provider's outage is over)."""
        with self._lock:
            self._faults.clear()

    def fail_next(self, method: str, kind: str, value: float = 0, times: int = 1) -> None:
        with self._lock:
            self._faults.setdefault(method, []).extend(Fault(kind, value) for _ in range(times))

    def set_status(self, messageid: int | str, status: int) -> None:
        with self._lock:
            sms = next(s for s in self.sent if s.messageid == int(messageid))
            sms.status, sms.settles_at = status, None  # the test's word beats the timer

    def sends_of(self, localid: str) -> list[SentSms]:
        with self._lock:
            return [s for s in self.sent if s.localid == localid]

    def inbound(self, sender: str, message: str, to: str, *, via: str = "both",
                messageid: int | None = None) -> dict[str, Any]:
        """A customer texts line ``to``: queued for receive.json (``via`` "queue" or
        "both") and POSTed to :attr:`callback_url` (``via`` "callback" or "both"). Returns
        the entry; the callback's HTTP status is under ``"callback_status"``."""
        with self._lock:
            entry = {"messageid": messageid or next(self._ids), "message": message,
                     "sender": sender, "receptor": to, "date": int(time.time())}
            if via in ("queue", "both"):
                self.inbox.append({**entry, "read": False})
        result = dict(entry)
        if via in ("callback", "both") and self.callback_url:
            result["callback_status"] = self.post_callback(entry)
        return result

    def post_callback(self, entry: dict[str, Any]) -> int:
        body = urllib.parse.urlencode(callback_form(entry)).encode()
        req = urllib.request.Request(  # noqa: S310 (the test's or the demo's own URL)
            self.callback_url, data=body, method="POST",
            headers={"Content-Type": "application/x-www-form-urlencoded"})
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310 (our URL)
                return int(resp.status)
        except urllib.error.HTTPError as exc:
            return int(exc.code)

    # -- the API -------------------------------------------------------------------------

    def _take_fault(self, method: str) -> Fault | None:
        with self._lock:
            queue = self._faults.get(method)
            return queue.pop(0) if queue else None

    def handle(self, key: str, method: str, params: dict[str, str]) -> tuple[int, Any]:
        if key != self.api_key:
            return 403, None
        with self._lock:
            if method == "send":
                return 200, [self._send(params).entry()]
            if method == "status":
                ids = [i for i in params.get("messageid", "").split(",") if i.strip()]
                return 200, [self._status(i) for i in ids]
            if method == "statuslocalmessageid":
                ids = [i for i in params.get("localid", "").split(",") if i.strip()]
                return 200, [self._by_localid(i) for i in ids]
            if method == "receive":
                return 200, self._receive(params)
        return 404, None

    def _send(self, params: dict[str, str]) -> SentSms:
        localid = params.get("localid", "")
        earlier = [s for s in self.sent if localid and s.localid == localid]
        if earlier:  # Kavenegar's duplicate guard: the same localid is not sent again
            return earlier[0]
        sms = SentSms(next(self._ids), params.get("receptor", ""), params.get("sender", ""),
                      params.get("message", ""), localid)
        if self.deliver_after_s is not None:
            sms.settles_at = time.monotonic() + self.deliver_after_s
            sms.final_status = 6 if self._rnd.random() < self.fail_ratio else 10
        self.sent.append(sms)
        if self.announce:
            log.info("Kavenegar stand-in: SMS %s from line %s to %s: %.200s", sms.messageid,
                     sms.sender, sms.receptor, sms.message)
        return sms

    def _settle(self, sms: SentSms) -> SentSms:
        """The carrier's report, once it is due (only with ``deliver_after_s``)."""
        if sms.settles_at is not None and time.monotonic() >= sms.settles_at:
            sms.status, sms.settles_at = sms.final_status, None
            if self.announce:
                log.info("Kavenegar stand-in: SMS %s to %s: %s (%d)", sms.messageid,
                         sms.receptor, "delivered" if sms.status == 10 else "failed",
                         sms.status)
        return sms

    def _status(self, messageid: str) -> dict[str, Any]:
        sms = next((s for s in self.sent if str(s.messageid) == messageid.strip()), None)
        status = self._settle(sms).status if sms else 100
        return {"messageid": int(messageid) if messageid.strip().isdigit() else 0,
                "status": status, "statustext": STATUS_TEXT[status]}

    def _by_localid(self, localid: str) -> dict[str, Any]:
        sms = next((s for s in self.sent if s.localid == localid.strip()), None)
        if sms is None:
            return {"messageid": 0, "localid": localid, "status": 100,
                    "statustext": STATUS_TEXT[100]}
        status = self._settle(sms).status
        return {"messageid": sms.messageid, "localid": localid, "status": status,
                "statustext": STATUS_TEXT[status]}

    def _receive(self, params: dict[str, str]) -> list[dict[str, Any]]:
        line = params.get("linenumber", "")
        unread = params.get("isread", "0") == "0"
        picked = [m for m in self.inbox
                  if (not line or m["receptor"] == line) and (not unread or not m["read"])][:100]
        for m in picked:
            m["read"] = True  # as Kavenegar: returned once, then never again as unread
        return [{k: v for k, v in m.items() if k != "read"} for m in picked]


def callback_form(entry: dict[str, Any]) -> dict[str, str]:
    """The form Kavenegar's receive callback posts for a received SMS ``entry``."""
    return {"from": str(entry["sender"]), "message": str(entry["message"]),
            "to": str(entry["receptor"]), "messageid": str(entry["messageid"])}


class _Handler(BaseHTTPRequestHandler):
    state: KavenegarStandin
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the paths hold the key: a stand-in prints nothing

    def do_GET(self) -> None:
        self._serve(b"")

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self._serve(self.rfile.read(length) if length else b"")

    def _serve(self, body: bytes) -> None:
        path, _, query = self.path.partition("?")
        parts = path.strip("/").split("/")
        if len(parts) != 4 or parts[0] != "v1" or not parts[3].endswith(".json"):
            return self._answer(404, None)
        key, method = parts[1], parts[3].removesuffix(".json")
        params = dict(urllib.parse.parse_qsl(query))
        params.update(urllib.parse.parse_qsl(body.decode("utf-8", "replace")))
        st = self.state
        fault = st._take_fault(method)
        with st._lock:
            st.calls.append(method)
        if fault is not None and fault.kind == "drop":
            self.close_connection = True
            self.connection.close()
            return None
        if fault is not None and fault.kind == "api":
            return self._answer(int(fault.value), None)
        if fault is not None and fault.kind == "http":
            return self._raw(int(fault.value or 502), b"<html>Bad Gateway</html>")
        status, entries = st.handle(key, method, params)
        if fault is not None and fault.kind == "slow":
            time.sleep(fault.value)  # recorded already: the client's timeout hits an unknown
        return self._answer(status, entries)

    def _answer(self, status: int, entries: Any) -> None:
        message = "تایید شد" if status == 200 else API_ERRORS.get(status, "error")
        body = json.dumps({"return": {"status": status, "message": message},
                           "entries": entries}, ensure_ascii=False).encode()
        self._raw(status, body, "application/json; charset=utf-8")

    def _raw(self, status: int, body: bytes, ctype: str = "text/html") -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except OSError:
            pass  # the client gave up (its timeout): nothing to answer
