"""What a failed send means, channel by channel: the one table (:data:`RULES`), and the
mechanism that keeps the outbox from guessing.

Every error of a send ends as one of three outcomes (:mod:`kartabl.errors`):

``not_sent`` (:class:`RetryableDeliveryError`)
    The provider surely has nothing. The reply goes back to ``approved`` and the worker
    retries it (after ``retry_after_s`` when the provider said how long). One channel also
    retries when the receiver *may* have it: a generic API channel's receiver deduplicates
    by ``Idempotency-Key`` by contract, so a resend there is harmless and is made at once.
``refused`` (:class:`PermanentDeliveryError`)
    The provider said no, and will say it again. The reply is ``failed`` with the reason,
    for a coordinator.
``unknown`` (:class:`OutcomeUnknown`)
    The request left and no usable answer came back. The channel decides (``then`` in the
    table): a channel that can be asked (SMS, by ``localid``) leaves the reply ``sending``
    and the reconcile sweep asks; SMTP leaves it ``sending`` and the sweep sends it again
    with the same Message-ID (``at_least_once``); Telegram and Bale cannot be asked and a
    duplicate in a chat cannot be told apart, so the reply is ``failed`` at once with the
    reason (``at_most_once``): the coordinator checks with the customer before resending.
    Rubika's Bot API is the same (no idempotency key, no way to ask).

How the outbox knows which errors came before the provider call. Senders map the provider's
errors themselves (each sender's module docstring has its part of the table), but a sender
also does work of its own before the call (the SMS rate limiter on Redis, building the MIME
message) whose errors are not the provider's: those must never leave a reply ``sending``.
So the outbox runs each send inside an :func:`attempt`, and a sender calls
:func:`request_leaves` just before the first byte may go to the provider. An error that is
none of the three kinds is then classified by *when* it happened (:func:`classify`):

- before :func:`request_leaves`: nothing can have been sent → ``not_sent`` (released and
  retried), whatever it is (a Redis outage, a bug, a database error);
- after it: the provider may have the message → ``unknown``.

A sender that forgets to call :func:`request_leaves` gets every unmapped error treated as
``not_sent``; the contract test (``tests/responders/test_sender_contract.py``) checks that
every real sender marks the moment. The marker is sticky: an error after the provider
answered (a bug while building the provider id) is still ``unknown``, never a resend.

A process that dies in the middle of a send leaves the reply ``sending``; the reconcile
sweep (:func:`responders.dispatch.reconcile_stale_sending`) resolves it after
``KARTABL_SENDING_STALE_S`` by the same rules (``lookup``, else the channel's policy).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, Literal

from kartabl.errors import DeliveryError, OutcomeUnknown, RetryableDeliveryError

if TYPE_CHECKING:
    from kartabl.messages import OutboundMessage
    from kartabl.outbound import Sender

Outcome = Literal["not_sent", "refused", "unknown"]


@dataclass(frozen=True, slots=True)
class Rule:
    id: str  # tests/responders/test_outcome_table.py has one case per id
    channel: str  # "every", "email", "sms", "telegram/bale", "rubika", "instagram/whatsapp", "api"
    when: str
    outcome: Outcome
    then: str


RULES: Final[tuple[Rule, ...]] = (
    Rule("own-error-before-call", "every",
         "an error of our own before the provider call: the rate limiter's Redis is down, "
         "a database or build error",
         "not_sent", "back to 'approved', retried; never left 'sending'"),
    # -- email: SMTP (responders/email.py) --------------------------------------------------
    Rule("smtp-unreachable", "email",
         "refused, reset, timeout, DNS or TLS handshake before the message data went out",
         "not_sent", "retried"),
    Rule("smtp-4xx", "email", "SMTP 4xx at any step (421, 450, 451, 452 ...)",
         "not_sent", "retried"),
    Rule("smtp-5xx", "email", "SMTP 5xx at any step (550, 553, 554 ...)",
         "refused", "failed with the server's words"),
    Rule("smtp-answer-lost", "email",
         "timeout, disconnect or a garbled answer after the message data went out",
         "unknown", "left 'sending'; the sweep sends it again with the same Message-ID "
                    "(at_least_once)"),
    # -- SMS: Kavenegar (responders/sms.py, channels/sms/kavenegar.py) -----------------------
    Rule("sms-unreachable", "sms", "connection refused or connect timeout",
         "not_sent", "retried"),
    Rule("sms-over-rate", "sms", "over rate_per_s (the limiter says no before the call)",
         "not_sent", "retried after 1 s"),
    Rule("sms-busy", "sms",
         "HTTP 5xx or 429 without Kavenegar's envelope; API 409, 451 or 5xx",
         "not_sent", "asked by localid first: absent → retried; found → sent"),
    Rule("sms-refused", "sms", "an API refusal: 418 credit, 411 receptor, 412 line ...",
         "refused", "failed with Kavenegar's reason in words"),
    Rule("sms-answer-lost", "sms",
         "read timeout or connection dropped after the request went out",
         "unknown", "left 'sending'; the sweep asks statuslocalmessageid: found → sent, "
                    "absent → sent again"),
    # -- Telegram and Bale: the Bot API (responders/telegram.py) -----------------------------
    Rule("tg-unreachable", "telegram/bale",
         "connection refused, connect or pool timeout", "not_sent", "retried"),
    Rule("tg-429", "telegram/bale", "429 with parameters.retry_after",
         "not_sent", "retried after retry_after"),
    Rule("tg-other-4xx", "telegram/bale",
         "another 4xx answer the library does not classify (a 429 without retry_after)",
         "not_sent", "retried"),
    Rule("tg-refused", "telegram/bale",
         "400 (chat not found), 401/404 (token), 403 (the customer blocked the bot)",
         "refused", "failed with the reason"),
    Rule("tg-5xx", "telegram/bale",
         "a 5xx answer, with Telegram's JSON error body or a proxy's HTML page",
         "unknown", "failed at once: Telegram or Bale may have sent it (at_most_once)"),
    Rule("tg-answer-lost", "telegram/bale",
         "read timeout or connection dropped after the request went out",
         "unknown", "failed at once: Telegram or Bale may have sent it (at_most_once)"),
    Rule("tg-partly-sent", "telegram/bale",
         "a later part of a long reply fails after earlier parts went out",
         "refused", "failed, naming the parts the customer got"),
    # -- generic API channels: a signed callback (responders/api_channel.py) ---------------
    Rule("api-unreachable", "api", "connection refused, connect or pool timeout",
         "not_sent", "retried"),
    Rule("api-busy", "api", "HTTP 5xx, 408, or 429 (with Retry-After)",
         "not_sent", "retried (after Retry-After) with the same Idempotency-Key: a receiver "
                     "that had it deduplicates"),
    Rule("api-answer-lost", "api",
         "read timeout or connection dropped after the request went out",
         "not_sent", "retried at once with the same Idempotency-Key: the receiver may have "
                     "it and deduplicates (the contract), so the reply arrives once"),
    Rule("api-refused", "api", "another 4xx (400, 401 a wrong signature, 404, 409, 422 ...) "
         "or a redirect", "refused", "failed with the status and the receiver's words"),
    # -- Instagram and WhatsApp: the Graph API (responders/meta.py) -------------------------
    Rule("meta-unreachable", "instagram/whatsapp",
         "connection refused, connect or pool timeout", "not_sent", "retried"),
    Rule("meta-rate", "instagram/whatsapp",
         "a Graph rate limit: code 4, 17, 32, 613, 80007, 130429 or 131056",
         "not_sent", "retried after 60 s"),
    Rule("meta-transient", "instagram/whatsapp",
         "a transient Graph error: code 1, 2 or 133004", "not_sent", "retried"),
    Rule("meta-refused", "instagram/whatsapp",
         "outside the window (10/2018278, 131047), a refused token (190), an invalid "
         "parameter (100), any other Graph error", "refused", "failed with Meta's words"),
    Rule("meta-5xx", "instagram/whatsapp",
         "a 5xx answer that is not a Graph error (a proxy's page)",
         "unknown", "failed at once: Meta may have sent it (at_most_once)"),
    Rule("meta-answer-lost", "instagram/whatsapp",
         "read timeout or connection dropped after the request went out",
         "unknown", "failed at once: Meta may have sent it (at_most_once)"),
    # -- Rubika: its Bot API (responders/rubika.py, channels/rubika/api.py) -------------------
    Rule("rubika-unreachable", "rubika",
         "connection refused, connect or pool timeout", "not_sent", "retried"),
    Rule("rubika-busy", "rubika",
         "the envelope says TOO_REQUESTS, or a 4xx without the envelope (a proxy)",
         "not_sent", "retried"),
    Rule("rubika-refused", "rubika",
         "the envelope (with HTTP 200) says INVALID_INPUT or INVALID_ACCESS",
         "refused", "failed with Rubika's status and dev_message"),
    Rule("rubika-no-chat", "rubika",
         "the customer never wrote to the bot: no chat to answer in (before any request)",
         "refused", "failed: a bot can only answer someone who wrote to it"),
    Rule("rubika-5xx", "rubika",
         "a 5xx, an answer that is no envelope, or an unknown status",
         "unknown", "failed at once: Rubika may have sent it (at_most_once)"),
    Rule("rubika-answer-lost", "rubika",
         "read timeout or connection dropped after the request went out",
         "unknown", "failed at once: Rubika may have sent it (at_most_once)"),
    Rule("rubika-partly-sent", "rubika",
         "a later message of a reply fails after earlier ones went out",
         "refused", "failed, naming the messages the customer got"),
)

CHECK_WITH_CUSTOMER: Final = "check with the customer before resending"


def table() -> str:
    """:data:`RULES` as text, one line per rule."""
    return "\n".join(f"{r.channel:<14} {r.when} → {r.outcome}: {r.then}" for r in RULES)


# -- the moment the request leaves ----------------------------------------------------------


@dataclass(slots=True)
class Attempt:
    left: bool = False  # request_leaves() was called: the provider may have the message


_current: ContextVar[Attempt | None] = ContextVar("kartabl_send_attempt", default=None)


@contextmanager
def attempt() -> Iterator[Attempt]:
    """One send as the outbox sees it (contextvars: per thread, and copied into the tasks
    of an ``asyncio.run`` the sender starts inside)."""
    current = Attempt()
    token = _current.set(current)
    try:
        yield current
    finally:
        _current.reset(token)


def request_leaves() -> None:
    """Called by a sender just before the first byte may reach the provider. Outside an
    :func:`attempt` (a sender called directly) it does nothing."""
    current = _current.get()
    if current is not None:
        current.left = True


def classify(exc: Exception, current: Attempt) -> Exception:
    """``exc`` as one of the three outcomes: the senders' own mapping is kept; anything
    else is ``not_sent`` before :func:`request_leaves`, ``unknown`` after it."""
    if isinstance(exc, (DeliveryError, OutcomeUnknown)):
        return exc
    detail = f"{type(exc).__name__}: {exc}"[:500]
    if not current.left:
        return RetryableDeliveryError(f"not sent: an error before the provider call ({detail})")
    return OutcomeUnknown(f"an error after the request went out ({detail}); the provider may "
                          "have the message")


def send(sender: Sender, msg: OutboundMessage) -> str:
    """``sender.send(msg)``, raising only :class:`RetryableDeliveryError`,
    :class:`PermanentDeliveryError` or :class:`OutcomeUnknown` (``BaseException``s, such
    as a process being stopped, pass through untouched)."""
    with attempt() as current:
        try:
            return sender.send(msg)
        except Exception as exc:
            mapped = classify(exc, current)
            if mapped is exc:
                raise
            raise mapped from exc


def fails_at_once(sender: Sender) -> bool:
    """True when an unknown outcome of ``sender`` is final at once: its provider cannot be
    asked and its policy is at most once (Telegram, Bale)."""
    return sender.unknown_outcome == "at_most_once" and not sender.can_look_up
