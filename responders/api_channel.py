"""The generic API channel's sender: an approved reply leaves as one signed JSON POST to the
callback URL of the API channel the user wrote to (``msg.recipient`` is
``<channel>:<user id>``), with the reply's idempotency key (its id) as ``Idempotency-Key``.

The body (the README's "The generic API channel" is the contract)::

    {"reply_id": 17, "conversation_id": 5, "channel": "shop", "user": {"id": "u-1042"},
     "text": "...", "in_reply_to": "<the idempotency_key of the user's message answered>",
     "attachments": [{"filename", "content_type", "size", "data": "<base64>"}]}

signed like the inbound webhook (:mod:`channels.api.signing`), afresh on every attempt, so a
retry an hour later is not refused as a replay. Redirects are not followed (a callback URL
that moved is a configuration to fix, not an address to be led to).

Errors are mapped here, at the edge (:mod:`kartabl.outbound`, :mod:`responders.outcomes`)::

    connection refused, connect or pool timeout  → RetryableDeliveryError (never sent)
    429                                          → RetryableDeliveryError(Retry-After)
    408, 425, 5xx                                → RetryableDeliveryError
    read/write timeout, connection dropped        → RetryableDeliveryError (see below)
    another 4xx, a 3xx                           → PermanentDeliveryError("HTTP 400: ...")
    2xx                                          → sent; provider id "<channel>:<key>[:<id>]"

A 5xx or a timeout may come after the receiver took the reply; it is resent at once rather
than left to the reconcile sweep, because the contract makes every receiver deduplicate by
``Idempotency-Key`` (a key seen before answers 2xx and changes nothing): a resend is
harmless, and prompt. That is the ``at_least_once`` policy; the receiver cannot be asked
(``can_look_up = False``), so a reply a crash left ``sending`` is sent again by the sweep,
with the same key. :meth:`ApiChannelSender.status` is ``None``: the system *pushes* its
statuses (``/webhooks/api/<name>/status``, :mod:`responders.delivery_reports`).
"""

from __future__ import annotations

import base64
import json
import logging
from pathlib import Path
from typing import Any, Final

import httpx

from channels.api import signing
from config.api_channel import ApiChannelConfig
from kartabl.errors import PermanentDeliveryError, RetryableDeliveryError
from kartabl.messages import OutboundMessage
from kartabl.outbound import DeliveryStatus, Sender, UnknownOutcomePolicy
from responders.outcomes import request_leaves
from responders.reply_files import read_all

log = logging.getLogger(__name__)

RETRYABLE_STATUS: Final = frozenset({408, 425, 429})
MAX_RETRY_AFTER_S: Final = 3600.0
MAX_REASON: Final = 300
# httpx errors raised before any byte of the request left: nothing can have been sent.
_NEVER_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


class ApiChannelSender(Sender):
    channel = "api"
    unknown_outcome: UnknownOutcomePolicy = "at_least_once"  # receivers dedupe by key
    can_look_up = False

    def __init__(self, channels: list[ApiChannelConfig], *,
                 sending_stale_s: float | None = None,
                 attachments_dir: Path | None = None) -> None:
        if not channels:
            raise ValueError("no [[api]] channel in the channels file")
        for c in channels:
            if sending_stale_s is not None and c.worst_case_s >= sending_stale_s:
                raise ValueError(
                    f"api channel {c.name}: one callback may take {c.worst_case_s:.0f} s "
                    f"(2 x (connect_timeout_s + timeout_s)), not less than "
                    f"KARTABL_SENDING_STALE_S={sending_stale_s:.0f}: lower the timeouts")
        self._channels = {c.name: c for c in channels}
        self._files_dir = attachments_dir
        self._http = {c.name: httpx.Client(
            timeout=httpx.Timeout(c.timeout_s, connect=c.connect_timeout_s),
            follow_redirects=False, headers={"User-Agent": "Kartabl-API-channel/1"})
            for c in channels}

    def __repr__(self) -> str:  # names only: never secrets
        return f"<ApiChannelSender {', '.join(self._channels)}>"

    def channel_for(self, msg: OutboundMessage) -> tuple[ApiChannelConfig, str]:
        """The API channel and the user id of ``msg.recipient`` (``<channel>:<user id>``)."""
        name, sep, user_id = str(msg.recipient).partition(":")
        config = self._channels.get(name)
        if not sep or not user_id or config is None:
            raise PermanentDeliveryError(
                f"the recipient {str(msg.recipient)[:80]!r} is not a user of a configured "
                "API channel")
        return config, user_id

    def body(self, msg: OutboundMessage) -> tuple[ApiChannelConfig, bytes]:
        config, user_id = self.channel_for(msg)
        answered = str(msg.in_reply_to or "")
        payload: dict[str, Any] = {
            "reply_id": msg.reply_id, "conversation_id": msg.conversation_id,
            "channel": config.name, "user": {"id": user_id}, "text": msg.text,
            # the user's message answered, by the key their system gave it
            "in_reply_to": answered.removeprefix(f"{config.name}:") if answered else None,
            "attachments": [
                {"filename": a.filename, "content_type": a.content_type, "size": a.size,
                 "data": base64.b64encode(data).decode("ascii")}
                for a, data in self._files(msg)],
        }
        return config, json.dumps(payload, ensure_ascii=False).encode()

    def _files(self, msg: OutboundMessage) -> list[tuple[Any, bytes]]:
        return read_all(self._files_dir, msg.attachments)

    def send(self, msg: OutboundMessage) -> str:
        if not msg.text.strip() and not msg.attachments:
            raise PermanentDeliveryError("the reply is empty")
        config, body = self.body(msg)  # read the files first: a missing one sends nothing
        if not config.callback_url:
            raise PermanentDeliveryError(f"API channel {config.name} has no callback_url; "
                                         "it takes messages in but cannot be answered")
        headers = {"Content-Type": "application/json",
                   signing.IDEMPOTENCY_HEADER: msg.idempotency_key,
                   **signing.headers(config.secret.get_secret_value(), body)}
        where = f"API channel {config.name}"
        request_leaves()  # before this line nothing reached the receiver
        try:
            resp = self._http[config.name].post(config.callback_url, content=body,
                                                headers=headers)
        except _NEVER_SENT as exc:
            raise RetryableDeliveryError(f"{where}: not sent ({type(exc).__name__}: "
                                         f"{exc})") from None
        except httpx.TransportError as exc:  # timeouts and cuts after the request left
            raise RetryableDeliveryError(
                f"{where}: no answer ({type(exc).__name__}); sent again with the same "
                "Idempotency-Key, which the receiver deduplicates") from None
        return self._outcome(config, msg, resp)

    def _outcome(self, config: ApiChannelConfig, msg: OutboundMessage,
                 resp: httpx.Response) -> str:
        where, code = f"API channel {config.name}", resp.status_code
        if 200 <= code < 300:
            their_id = _their_id(resp)
            provider_id = f"{config.name}:{msg.idempotency_key}" + (
                f":{their_id}" if their_id else "")
            log.info("reply %s sent to %s as %s", msg.reply_id, where, provider_id)
            return provider_id
        said = f"{where}: HTTP {code} {resp.reason_phrase}".rstrip()
        if code in RETRYABLE_STATUS or code >= 500:
            after = _retry_after(resp.headers.get("Retry-After")) if code in (429, 503) else None
            raise RetryableDeliveryError(f"{said}; sent again with the same Idempotency-Key",
                                         retry_after_s=after)
        detail = _snippet(resp)
        raise PermanentDeliveryError(f"{said}" + (f": {detail}" if detail else ""))

    def lookup(self, msg: OutboundMessage) -> str | None:
        raise NotImplementedError("an API channel's receiver cannot be asked; it "
                                  "deduplicates by Idempotency-Key instead")

    def status(self, provider_id: str) -> DeliveryStatus | None:
        return None  # pushed by the system (/webhooks/api/<name>/status), never polled

    def close(self) -> None:
        for client in self._http.values():
            client.close()


def _their_id(resp: httpx.Response) -> str:
    """The receiver's id for the reply (``{"id": ...}``, optional), kept short and plain."""
    try:
        value = resp.json().get("id")
    except (ValueError, AttributeError):
        return ""
    text = str(value) if isinstance(value, (str, int)) and not isinstance(value, bool) else ""
    return "".join(c for c in text if c.isprintable())[:200]


def _retry_after(value: str | None) -> float | None:
    """Retry-After in seconds (the HTTP-date form is not worth trusting a clock for)."""
    text = (value or "").strip()
    if not text.isdigit():
        return None
    return min(float(text), MAX_RETRY_AFTER_S)


def _snippet(resp: httpx.Response) -> str:
    """The receiver's words (its JSON ``error``/``detail``, or its text), short and plain."""
    try:
        data = resp.json()
        text = str(data.get("error") or data.get("detail") or "") if isinstance(data, dict) \
            else ""
    except ValueError:
        text = resp.text
    return " ".join(text.split())[:MAX_REASON]
