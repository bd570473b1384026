"""The outbound port: the sender contract, the registry of senders (one per channel), and
the question the workflow asks before a reply is submitted or approved.

The core declares here what it needs from the outbound side; ``responders/`` implements it
(:mod:`responders.email`, :mod:`responders.sms`, :mod:`responders.telegram`,
:mod:`responders.sandbox`), and the composition (:mod:`boot.kinds`) installs the senders at
start and closes them at stop. So the core never imports the layer above it.

A sender sends one rendered reply (:class:`~kartabl.messages.OutboundMessage`) and returns
the provider's id; the outbox (:mod:`responders.dispatch`) does everything else: claiming,
recording, retrying, reconciling. The contract, for every channel:

``send(msg) -> provider_id``
    Deliver ``msg`` using ``msg.idempotency_key`` as strongly as the provider allows
    (Message-ID, Kavenegar ``localid`` ...). Raise :class:`RetryableDeliveryError` **only
    when the provider surely did not accept the message** (connection refused, 429, SMTP
    4xx before DATA): the outbox then puts the reply back to ``approved`` and sends it again.
    Raise :class:`PermanentDeliveryError` when it never will be accepted, and
    :class:`~kartabl.errors.OutcomeUnknown` when the request went out and no usable answer
    came back. Call :func:`responders.outcomes.request_leaves` just before the first byte
    may reach the provider: an unmapped error before that point means nothing was sent, one
    after it an unknown outcome (the table and the reasons: :mod:`responders.outcomes`).

``lookup(msg) -> provider_id | None``
    The provider's id if it already has a message with this idempotency key, ``None`` if
    it surely has not. Raise ``NotImplementedError`` when the channel cannot tell; the
    sender's :attr:`unknown_outcome` policy then decides.

``status(provider_id) -> "sent" | "delivered" | "failed" | None``
    The delivery status, ``None`` when the provider does not know (yet).

``can_look_up``
    Whether :meth:`lookup` can answer (it does not raise ``NotImplementedError``).

``unknown_outcome``
    What happens to a reply whose outcome is unknown when :meth:`lookup` cannot tell:
    ``"at_most_once"`` marks it failed for a coordinator to check with the customer (never
    a duplicate, maybe a loss the coordinator sees), at once when the sender raised
    :class:`~kartabl.errors.OutcomeUnknown`, by the reconcile sweep after a crash;
    ``"at_least_once"`` leaves it ``sending`` and the sweep sends it again (never a loss,
    maybe a duplicate).

``close()``
    Release what the sender holds (HTTP clients, connections). A sender is also a context
    manager that closes on exit. The composition closes every registered sender when its
    process stops (:meth:`boot.kinds.Runtime.close`); a sender that holds nothing keeps the
    default, which does nothing. Implementations subclass :class:`Sender`, so they get the
    context manager and :func:`register` can refuse anything that is not one.

The workflow refuses to submit or approve a reply its channel's sender would refuse (too
long, a template that fails): it asks a :class:`ReplyCheck`, which its callers pass in
(:data:`responders.preview.REPLY_CHECK` is the one there is).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from types import TracebackType
from typing import Literal, Protocol, Self, runtime_checkable

from sqlalchemy.orm import Session

from kartabl.messages import OutboundMessage
from kartabl.models import Channel, Reply

__all__ = [
    "DeliveryStatus",
    "OutboundMessage",
    "RateLimiter",
    "RateLimiterFactory",
    "ReplyCheck",
    "Sender",
    "UnknownOutcomePolicy",
    "get_sender",
    "register",
    "registered",
    "unregister",
]

DeliveryStatus = Literal["sent", "delivered", "failed"]
UnknownOutcomePolicy = Literal["at_most_once", "at_least_once"]


@runtime_checkable
class Sender(Protocol):
    """One channel's sender: the contract above. Implementations subclass it (they inherit
    ``close``, which does nothing, and the context manager)."""

    channel: str
    unknown_outcome: UnknownOutcomePolicy

    @property
    def can_look_up(self) -> bool: ...

    def send(self, msg: OutboundMessage) -> str: ...

    def lookup(self, msg: OutboundMessage) -> str | None: ...

    def status(self, provider_id: str) -> DeliveryStatus | None: ...

    def close(self) -> None:
        """Release what the sender holds; the default holds nothing."""
        return None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


class RateLimiter(Protocol):
    """A rate shared by every process (dramatiq's ``RateLimiter`` is one; ``workers/`` makes
    them, :func:`workers.broker.rate_limiter`). ``acquire`` yields whether a slot was free,
    and raises when the limiter's store cannot be reached."""

    def acquire(self, *, raise_on_failure: bool = True) -> AbstractContextManager[bool]: ...


# A limiter of ``per_s`` acquisitions per second under ``name``, shared by every process.
RateLimiterFactory = Callable[[str, int], RateLimiter]


class ReplyCheck(Protocol):
    """Whether a reply can go out on its channel, asked by the workflow (draft, submit,
    approve) of the outbound side, which renders and counts it as the sender will."""

    def has_template(self, name: str, channel: Channel | str) -> bool:
        """Whether reply template ``name`` exists for ``channel``."""
        ...

    def require_fits(self, session: Session, step: str, reply: Reply,
                     body: str | None = None) -> object:
        """Raise a :class:`~kartabl.errors.WorkflowError` saying why ``reply`` (or ``body``,
        an edit not saved yet) would be refused by its channel's sender at ``step``."""
        ...


_senders: dict[str, Sender] = {}
_lock = threading.Lock()


def register(sender: Sender) -> Sender:
    """Make ``sender`` the one for its channel, replacing any earlier one (a real channel
    sender replaces the sandbox this way)."""
    if not isinstance(sender, Sender):  # no close(): the process could not release it
        raise TypeError(f"{sender!r} does not implement kartabl.outbound.Sender")
    channel = Channel(sender.channel).value
    if sender.unknown_outcome not in ("at_most_once", "at_least_once"):
        raise ValueError(f"sender for {channel}: unknown_outcome {sender.unknown_outcome!r}")
    with _lock:
        _senders[channel] = sender
    return sender


def get_sender(channel: Channel | str) -> Sender:
    """The sender of ``channel``. Raises ``LookupError`` when none is registered: a
    configuration error, which leaves the reply ``approved`` for a later attempt."""
    key = Channel(channel).value
    try:
        return _senders[key]
    except KeyError:
        if not _senders:  # a process that sends must boot as a kind whose roles send
            raise LookupError(
                f"no sender registered for channel {key!r}: this process installed no "
                "senders (see boot.kinds: which process kinds install them)") from None
        raise LookupError(f"no sender registered for channel {key!r}") from None


def registered() -> dict[str, Sender]:
    with _lock:
        return dict(_senders)


def unregister(channel: Channel | str) -> None:
    with _lock:
        _senders.pop(Channel(channel).value, None)
