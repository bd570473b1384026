"""The SMS sender: an approved reply leaves as one Kavenegar ``sms/send`` from our line, with
the reply's idempotency key (its id) as Kavenegar's ``localid``.

Which line: the one the customer wrote to (``msg.meta["from"]``, the inbound message's
recipient) when it is one of ours, else the configured ``line``.

Errors are mapped here, at the edge, following the sender contract (:mod:`kartabl.outbound`)::

    NotSent: connection refused, connect timeout   → RetryableDeliveryError
    NotSent: HTTP 5xx / 429 with no envelope,      → RetryableDeliveryError, after a lookup
                                                     by localid says it is not there (a 5xx
    ApiError 409 (server busy), 451 (too many        may come after the message was taken:
      requests), 5xx                                 found, it counts as sent)
    ApiError 418, 411, 412 and the other refusals  → PermanentDeliveryError("418: account
                                                      credit is not enough", ...)
    OutcomeUnknown: read timeout, connection       → OutcomeUnknown: the reply stays
      dropped after the request went out             'sending'; the reconcile sweep asks
                                                     statuslocalmessageid
    the rate limiter fails (its Redis is down)     → not sent: an error before the provider
                                                     call (:mod:`responders.outcomes`)

:meth:`KavenegarSender.lookup` asks ``statuslocalmessageid``: found → the messageid (the
reply is recorded sent, never sent twice); status 100 (unknown localid) → ``None``, safe to
send. So ``unknown_outcome`` only applies if Kavenegar cannot be asked: "at_most_once".

:meth:`KavenegarSender.status` maps Kavenegar's delivery codes: 1, 2 (queued, scheduled) and
100 (unknown) → None; 4, 5 (handed to the carrier) → "sent"; 10 → "delivered"; 6 (failed),
11 (undelivered), 13 (canceled), 14 (blocked as advertising) → "failed";
:meth:`KavenegarSender.failure_reason` says which.

Rate: at most ``rate_per_s`` sends per second across every process, with the limiter the
composition hands in (:func:`workers.broker.rate_limiter`: dramatiq's ``WindowRateLimiter``
on the broker's Redis, an in-process one in the embedded mode). This module knows only the
port (:class:`kartabl.outbound.RateLimiter`): ``workers/`` is the code that knows the queue.
A send over the rate raises :class:`RetryableDeliveryError` with ``retry_after_s`` *before*
calling Kavenegar: the outbox puts the reply back to ``approved`` and the worker retries it
after that delay. The limiter runs before :func:`~responders.outcomes.request_leaves`, so
when its Redis cannot be reached the outbox knows nothing was sent: the reply goes back to
``approved`` too.
"""

from __future__ import annotations

import logging
from typing import Any, Final

from channels.sms.kavenegar import ApiError, Kavenegar, NotSent
from config.sms import SmsConfig
from kartabl.errors import OutcomeUnknown, PermanentDeliveryError, RetryableDeliveryError
from kartabl.messages import OutboundMessage
from kartabl.outbound import DeliveryStatus, RateLimiter, Sender, UnknownOutcomePolicy
from responders.outcomes import request_leaves
from responders.preview import MAX_SMS_PARTS
from responders.sms_length import sms_length, sms_parts

__all__ = ["KavenegarSender", "sms_length", "sms_parts"]

log = logging.getLogger(__name__)

MAX_PARTS: Final = MAX_SMS_PARTS  # a longer reply is a mistake for SMS, and costs per part
# Kavenegar's refusals, worded for the coordinator who reads the failed reply.
API_REASONS: Final = {
    400: "the request is incomplete",
    401: "the Kavenegar account is disabled",
    403: "the API key was refused (check the channels file)",
    407: "the API key may not use this method",
    411: "the recipient's number is invalid",
    412: "the sender line is invalid (check the channels file)",
    413: "the message is empty or too long",
    414: "too many recipients",
    416: "the calling IP address is not allowed on the Kavenegar account",
    418: "account credit is not enough",
    422: "the message has characters Kavenegar does not accept",
    427: "the line may not send to this recipient",
    501: "a test account may only send to its owner's number",
}
RETRYABLE_API: Final = frozenset({409, 451})  # "try later", "too many requests"
STATUS: Final[dict[int, DeliveryStatus | None]] = {
    1: None, 2: None, 4: "sent", 5: "sent", 10: "delivered",
    6: "failed", 11: "failed", 13: "failed", 14: "failed", 100: None,
}
FAILURE_REASONS: Final = {6: "the carrier failed to send it", 11: "it did not reach the phone",
                          13: "it was canceled", 14: "the carrier blocked it as advertising"}


class KavenegarSender(Sender):
    channel = "sms"
    unknown_outcome: UnknownOutcomePolicy = "at_most_once"
    can_look_up = True  # statuslocalmessageid

    def __init__(self, config: SmsConfig, *, limiter: RateLimiter,
                 sending_stale_s: float | None = None) -> None:
        """``limiter`` keeps the sends under ``config.rate_per_s`` (required: a sender built
        without one would send at any rate)."""
        if sending_stale_s is not None and config.worst_case_s >= sending_stale_s:
            # The reconcile sweep asks about replies 'sending' for longer than this: a send
            # still waiting for its answer must never be that old.
            raise ValueError(
                f"one send may take {config.worst_case_s:.0f} s (2 x (connect_timeout_s + "
                f"timeout_s)), not less than KARTABL_SENDING_STALE_S={sending_stale_s:.0f}: "
                "raise the setting or lower the timeouts")
        self.config = config
        self.api = Kavenegar(config)
        self.limiter = limiter

    def __repr__(self) -> str:  # never the key
        return f"<KavenegarSender {self.config.base_url} line {self.config.line}>"

    def line_for(self, msg: OutboundMessage) -> str:
        line = str(msg.meta.get("from") or "")
        return line if line in self.config.lines else self.config.line

    def send(self, msg: OutboundMessage) -> str:
        text = msg.text.strip()
        if not text:
            raise PermanentDeliveryError("the reply is empty")
        if msg.attachments:  # refused at draft time (responders.reply_files); never dropped
            raise PermanentDeliveryError(
                f"an SMS cannot carry files; the reply has {len(msg.attachments)}")
        if sms_parts(text) > MAX_PARTS:
            raise PermanentDeliveryError(
                f"the reply is too long for SMS: {sms_parts(text)} parts (at most {MAX_PARTS})")
        with self.limiter.acquire(raise_on_failure=False) as acquired:
            if not acquired:
                raise RetryableDeliveryError(
                    f"over the SMS rate of {self.config.rate_per_s}/s; not sent",
                    retry_after_s=1.0)
        params = {"receptor": receptor(msg.recipient), "message": text,
                  "sender": self.line_for(msg), "localid": msg.idempotency_key}
        request_leaves()  # before this line nothing reached Kavenegar, whatever failed
        try:
            entries = self.api.sms_send(params)
        except ApiError as exc:
            if exc.status in RETRYABLE_API or exc.status >= 500:
                return self._found_or_retry(msg, f"Kavenegar answered {exc}")
            raise PermanentDeliveryError(api_reason(exc)) from None
        except NotSent as exc:
            if not exc.answered:  # refused, or no connection: nothing reached Kavenegar
                raise RetryableDeliveryError(str(exc)) from None
            return self._found_or_retry(msg, str(exc))
        provider_id = _messageid(entries)
        if provider_id is None:
            raise OutcomeUnknown("sms/send answered without a messageid")
        log.info("reply %s sent by SMS from %s as %s (%d part(s))", msg.reply_id,
                 params["sender"], provider_id, sms_parts(text))
        return provider_id

    def _found_or_retry(self, msg: OutboundMessage, reason: str) -> str:
        # A refusal before the API saw the request is the common case, but a 5xx may also
        # come after Kavenegar took the message: ask before letting the outbox send again.
        try:
            found = self.lookup(msg)
        except Exception as exc:  # cannot tell: leave it to the reconcile sweep
            raise OutcomeUnknown(f"{reason}; then the lookup failed: {exc}") from None
        if found:
            return found
        raise RetryableDeliveryError(reason)

    def lookup(self, msg: OutboundMessage) -> str | None:
        try:
            entries = self.api.sms_statuslocalmessageid({"localid": msg.idempotency_key})
        except ApiError as exc:
            raise OutcomeUnknown(f"statuslocalmessageid: {exc}") from None
        for entry in entries or []:
            if int(entry.get("status") or 100) == 100:
                continue  # Kavenegar does not know this localid
            return _messageid([entry])
        return None

    def _status_code(self, provider_id: str) -> int:
        entries = self.api.sms_status({"messageid": provider_id})
        return int((entries or [{}])[0].get("status") or 100)

    def status(self, provider_id: str) -> DeliveryStatus | None:
        return STATUS.get(self._status_code(provider_id))

    def failure_reason(self, provider_id: str) -> str | None:
        """Why a failed SMS failed, in words, for the console (None when it did not)."""
        code = self._status_code(provider_id)
        reason = FAILURE_REASONS.get(code)
        return f"{code}: {reason}" if reason else None

    def close(self) -> None:
        self.api.close()


def api_reason(exc: ApiError) -> str:
    return f"{exc.status}: {API_REASONS.get(exc.status) or exc.message or 'refused'}"


def receptor(phone: str) -> str:
    """Kavenegar's form of an E.164 number: national (09…) for Iran, 00<country>… else."""
    digits = phone.strip().lstrip("+")
    if phone.strip().startswith("+98"):
        return "0" + digits[2:]
    return "00" + digits if phone.strip().startswith("+") else phone.strip()


def _messageid(entries: Any) -> str | None:
    try:
        value = entries[0]["messageid"]
    except (IndexError, KeyError, TypeError):
        return None
    return str(value) if value else None
