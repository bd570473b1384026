#!/usr/bin/env python3
"""An example client of Kartabl's generic API channel, in the standard library only.

It is the other side of the contract in the README ("The generic API channel"): copy it into
the system that talks to Kartabl (a shop's backend, a relay for a messenger) and adapt.

    # send a user's message (the secret is the channel's, from the channels file)
    KARTABL_API_SECRET=... python examples/api_channel_client.py send \\
        --url http://127.0.0.1:8000 --channel shop --user u-1042 --key order-77-msg-1 \\
        --text "سلام، سفارش ۷۷ کجاست؟"

    # receive the replies Kartabl POSTs to the channel's callback_url, and report them read
    KARTABL_API_SECRET=... python examples/api_channel_client.py listen --port 9000 \\
        --url http://127.0.0.1:8000 --channel shop --report read

The signature, both ways: ``X-Kartabl-Timestamp: <Unix seconds>`` and
``X-Kartabl-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>.<raw body>", keyed with the
secret>``; a receiver refuses a timestamp more than 300 s from its clock.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import json
import os
import sys
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

TOLERANCE_S = 300


class Refused(Exception):
    """A callback whose signature or timestamp does not hold."""


def sign(secret: str, body: bytes, now: float | None = None) -> dict[str, str]:
    """The two headers that sign ``body``."""
    ts = str(int(time.time() if now is None else now))
    mac = hmac.new(secret.encode(), ts.encode() + b"." + body, hashlib.sha256).hexdigest()
    return {"X-Kartabl-Timestamp": ts, "X-Kartabl-Signature": f"sha256={mac}"}


def verify(secret: str, headers: Any, body: bytes, now: float | None = None) -> dict[str, Any]:
    """The callback's JSON, once its signature and timestamp hold; else :class:`Refused`.
    ``headers``: anything with ``.get`` (case-insensitive, as http.server's)."""
    ts, given = headers.get("X-Kartabl-Timestamp") or "", headers.get("X-Kartabl-Signature") or ""
    if not ts.isdigit() or not given:
        raise Refused("unsigned")
    expected = sign(secret, body, now=int(ts))["X-Kartabl-Signature"]
    if not hmac.compare_digest(given.encode(), expected.encode()):  # constant time
        raise Refused("wrong signature")
    if abs((time.time() if now is None else now) - int(ts)) > TOLERANCE_S:
        raise Refused("timestamp too far from our clock (a replay?)")
    data = json.loads(body)
    if not isinstance(data, dict):
        raise Refused("not a JSON object")
    return data


def post(url: str, secret: str, payload: dict[str, Any], *, timeout: float = 30
         ) -> tuple[int, dict[str, Any]]:
    """POST ``payload`` signed; (HTTP status, JSON answer). Retry on 5xx, 429 or a network
    error with the *same* payload: the idempotency key makes a resend harmless."""
    body = json.dumps(payload, ensure_ascii=False).encode()
    headers = {"Content-Type": "application/json", **sign(secret, body)}
    req = urllib.request.Request(url, data=body, method="POST", headers=headers)  # noqa: S310
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 (your URL)
            return resp.status, json.loads(resp.read() or b"{}")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def send_message(base_url: str, channel: str, secret: str, *, key: str, user_id: str,
                 text: str = "", name: str = "", phone: str = "", email: str = "",
                 files: list[tuple[str, str, bytes]] | None = None
                 ) -> tuple[int, dict[str, Any]]:
    """A user's message to ``/webhooks/api/<channel>``. ``key`` is the message's own
    idempotency key (one per message, the same on every resend)."""
    user: dict[str, str] = {"id": user_id}
    user.update({k: v for k, v in (("name", name), ("phone", phone), ("email", email)) if v})
    payload: dict[str, Any] = {"idempotency_key": key, "user": user, "text": text}
    if files:
        payload["attachments"] = [
            {"filename": fn, "content_type": ct, "data": base64.b64encode(data).decode()}
            for fn, ct, data in files]
    return post(f"{base_url.rstrip('/')}/webhooks/api/{channel}", secret, payload)


def report_status(base_url: str, channel: str, secret: str, reply_id: int, status: str,
                  reason: str = "") -> tuple[int, dict[str, Any]]:
    """A reply's delivery status (delivered, read or failed) to
    ``/webhooks/api/<channel>/status``. A 409 means "not recorded as sent yet": retry."""
    payload: dict[str, Any] = {"reply_id": reply_id, "status": status}
    if reason:
        payload["reason"] = reason
    return post(f"{base_url.rstrip('/')}/webhooks/api/{channel}/status", secret, payload)


class CallbackReceiver:
    """Receives Kartabl's reply callbacks: verifies each, keeps one per ``Idempotency-Key``
    (a resend gets the same answer), and answers 200 ``{"id": ...}``; 401 when the
    signature does not hold."""

    def __init__(self, secret: str, host: str = "127.0.0.1", port: int = 0) -> None:
        self.secret = secret
        self.replies: dict[str, dict[str, Any]] = {}  # Idempotency-Key -> the callback
        self.lock = threading.Lock()
        self.arrived = threading.Condition(self.lock)
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                status, answer = receiver.handle(self.headers, body)
                out = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

        self.server = ThreadingHTTPServer((host, port), Handler)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}/"

    def handle(self, headers: Any, body: bytes) -> tuple[int, dict[str, Any]]:
        try:
            data = verify(self.secret, headers, body)
        except (Refused, ValueError) as exc:
            return 401, {"error": str(exc)}
        key = headers.get("Idempotency-Key") or ""
        with self.arrived:
            if key not in self.replies:  # the first time: act on it (show it to the user)
                self.replies[key] = data
                self.arrived.notify_all()
        return 200, {"id": f"cb-{key}"}

    def start(self) -> CallbackReceiver:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def wait(self, count: int, timeout: float) -> list[dict[str, Any]]:
        """The callbacks, once ``count`` have arrived or ``timeout`` passed."""
        with self.arrived:
            self.arrived.wait_for(lambda: len(self.replies) >= count, timeout)
            return list(self.replies.values())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    send = sub.add_parser("send", help="send a user's message")
    send.add_argument("--key", required=True, help="the message's idempotency key")
    send.add_argument("--user", required=True)
    send.add_argument("--text", default="")
    send.add_argument("--name", default="")
    listen = sub.add_parser("listen", help="receive reply callbacks")
    listen.add_argument("--host", default="127.0.0.1")
    listen.add_argument("--port", type=int, default=9000)
    listen.add_argument("--report", choices=("delivered", "read", ""), default="")
    for p in (send, listen):
        p.add_argument("--url", default="http://127.0.0.1:8000", help="Kartabl's address")
        p.add_argument("--channel", required=True, help="the API channel's name")
    args = parser.parse_args(argv)
    secret = os.environ.get("KARTABL_API_SECRET", "")
    if not secret:
        print("set KARTABL_API_SECRET to the channel's secret", file=sys.stderr)
        return 2
    if args.command == "send":
        status, answer = send_message(args.url, args.channel, secret, key=args.key,
                                      user_id=args.user, text=args.text, name=args.name)
        print(status, json.dumps(answer, ensure_ascii=False))
        return 0 if status == 200 else 1
    receiver = CallbackReceiver(secret, args.host, args.port).start()
    print(f"listening on {receiver.url}", flush=True)
    seen = 0
    try:
        while True:
            replies = receiver.wait(seen + 1, timeout=3600)
            for reply in replies[seen:]:
                print(json.dumps(reply, ensure_ascii=False), flush=True)
                if args.report:
                    print(report_status(args.url, args.channel, secret, reply["reply_id"],
                                        args.report), flush=True)
            seen = len(replies)
    except KeyboardInterrupt:
        receiver.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
