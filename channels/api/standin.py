"""A stand-in for the external system behind a generic API channel, on 127.0.0.1.

It plays the other side of the README's contract ("The generic API channel"), over real
HTTP, for the tests and the demo::

    system = ApiSystemStandin(secret="...").start()
    ApiChannelConfig(name="shop", secret="...", callback_url=system.callback_url)

**Callbacks** (``POST /callback``): the signature is verified as the contract says
(HMAC-SHA256 of ``<timestamp>.<body>``, timestamp within five minutes); a bad one answers
401 and is not recorded. A good one is recorded once per ``Idempotency-Key``, as the
contract asks of every receiver: a resent callback answers 200 with the same ``id`` and
:attr:`received` still holds it once (:attr:`requests` counts every request).

Faults, queued and used once each (:meth:`fail_next`): ``http`` (answer status ``value``
without recording: 500, 503, 400, 404 ...; a 429 carries ``Retry-After: <retry_after>``),
``slow`` (recorded, then the answer waits ``value`` seconds: a timeout after acceptance),
``drop`` (the connection is closed with no answer, before recording).

**The system's own side**: :meth:`send` signs and POSTs a user's message to Kartabl's
webhook, :meth:`report` a delivery status, as the real system would. With
``deliver_after_s`` and :attr:`kartabl_url` set (the demo), each new callback is reported
``delivered`` that long after it arrived, and ``announce`` logs both (never the secret).
"""

from __future__ import annotations

import itertools
import json
import logging
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import Any

import httpx

from channels.api import signing
from channels.standin_http import LoopbackServer

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Fault:
    kind: str  # http | slow | drop
    value: float = 0
    retry_after: str = ""


@dataclass(frozen=True, slots=True)
class Callback:
    idempotency_key: str
    body: dict[str, Any]
    headers: dict[str, str]
    id: str  # the id the stand-in answered with


class ApiSystemStandin:
    def __init__(self, secret: str, *, channel: str = "", deliver_after_s: float | None = None,
                 announce: bool = False) -> None:
        self.secret = secret
        self.channel, self.deliver_after_s, self.announce = channel, deliver_after_s, announce
        self.kartabl_url = ""  # where Kartabl's webhooks are (the demo sets it once serving)
        self.received: list[Callback] = []  # one per idempotency key, in arrival order
        self.requests = 0  # every callback request, refused, faulty and resent ones too
        self.refused: list[str] = []  # why requests were refused (401), in order
        self._faults: list[Fault] = []
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._http = LoopbackServer("api-system-standin")

    def start(self) -> ApiSystemStandin:
        self._http.serve_for(self, _Handler)
        return self

    def stop(self) -> None:
        self._http.stop()

    @property
    def callback_url(self) -> str:
        return f"{self._http.origin}/callback"

    # -- the test's side -------------------------------------------------------------------

    def fail_next(self, kind: str, value: float = 0, *, times: int = 1,
                  retry_after: str = "") -> None:
        with self._lock:
            self._faults.extend(Fault(kind, value, retry_after) for _ in range(times))

    def reset(self) -> None:
        """Forget every callback, refusal and fault (a fresh system, the same server)."""
        with self._lock:
            self.received.clear()
            self.refused.clear()
            self._faults.clear()
            self.requests = 0

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def of_key(self, key: str) -> list[Callback]:
        with self._lock:
            return [c for c in self.received if c.idempotency_key == key]

    def _take_fault(self) -> Fault | None:
        with self._lock:
            return self._faults.pop(0) if self._faults else None

    def accept(self, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
        """What a receiver following the contract does with one callback."""
        try:
            signing.verify(self.secret, headers.get(signing.TIMESTAMP_HEADER.lower()),
                           headers.get(signing.SIGNATURE_HEADER.lower()), body)
        except signing.SignatureRefused as exc:
            with self._lock:
                self.refused.append(str(exc))
            return 401, {"error": str(exc)}
        key = headers.get(signing.IDEMPOTENCY_HEADER.lower(), "")
        if not key:
            return 400, {"error": "Idempotency-Key is required"}
        try:
            data = json.loads(body)
        except ValueError:
            return 400, {"error": "not JSON"}
        with self._lock:
            earlier = next((c for c in self.received if c.idempotency_key == key), None)
            if earlier is not None:  # a resend: the same answer, recorded once
                return 200, {"id": earlier.id}
            callback = Callback(key, data, headers, f"ext-{next(self._ids)}")
            self.received.append(callback)
        if self.announce:
            log.info("API system stand-in: reply %s for user %s: %.200s", data.get("reply_id"),
                     (data.get("user") or {}).get("id"), data.get("text"))
        if self.deliver_after_s is not None and self.kartabl_url and self.channel:
            timer = threading.Timer(self.deliver_after_s, self._delivered, (data.get("reply_id"),))
            timer.daemon = True
            timer.start()
        return 200, {"id": callback.id}

    def _delivered(self, reply_id: int) -> None:
        try:
            for _ in range(5):  # 409: not recorded as sent yet; the contract says retry
                answer = self.report(self.kartabl_url, self.channel, reply_id, "delivered")
                if answer.status_code != 409:
                    break
                time.sleep(1.0)
        except httpx.HTTPError as exc:
            log.warning("API system stand-in: status of reply %s not reported (%s)", reply_id,
                        type(exc).__name__)
            return
        if self.announce:
            log.info("API system stand-in: reply %s reported delivered (HTTP %s)", reply_id,
                     answer.status_code)

    # -- the external system's own requests to Kartabl -------------------------------------

    def send(self, base_url: str, channel: str, message: dict[str, Any], *,
             timestamp: float | None = None, secret: str | None = None) -> httpx.Response:
        """POST ``message`` to Kartabl's ``/webhooks/api/<channel>``, signed."""
        return self._post(f"{base_url}/webhooks/api/{channel}", message, timestamp, secret)

    def report(self, base_url: str, channel: str, reply_id: int | str, status: str,
               reason: str = "") -> httpx.Response:
        """POST a delivery status to ``/webhooks/api/<channel>/status``, signed."""
        body: dict[str, Any] = {"reply_id": reply_id, "status": status}
        if reason:
            body["reason"] = reason
        return self._post(f"{base_url}/webhooks/api/{channel}/status", body, None, None)

    def _post(self, url: str, payload: dict[str, Any], timestamp: float | None,
              secret: str | None) -> httpx.Response:
        body = json.dumps(payload, ensure_ascii=False).encode()
        headers = {"Content-Type": "application/json",
                   **signing.headers(secret or self.secret, body, now=timestamp)}
        return httpx.post(url, content=body, headers=headers, timeout=10)


class _Handler(BaseHTTPRequestHandler):
    state: ApiSystemStandin
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        st = self.state
        with st._lock:
            st.requests += 1
        if self.path.split("?")[0] != "/callback":
            return self._answer(404, {"error": "not found"})
        fault = st._take_fault()
        if fault is not None and fault.kind == "drop":
            self.close_connection = True
            self.connection.close()
            return None
        if fault is not None and fault.kind == "http":
            extra = {"Retry-After": fault.retry_after} if fault.retry_after else {}
            return self._answer(int(fault.value or 500), {"error": "injected"}, extra)
        status, answer = st.accept(body, {k.lower(): v for k, v in self.headers.items()})
        if fault is not None and fault.kind == "slow":
            time.sleep(fault.value)  # recorded already: the client's timeout hits an unknown
        return self._answer(status, answer)

    def _answer(self, status: int, payload: dict[str, Any],
                extra: dict[str, str] | None = None) -> None:
        body = json.dumps(payload).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            for k, v in (extra or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(body)
        except OSError:
            pass  # the client gave up (its timeout)
