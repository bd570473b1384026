"""One error tree for Kartabl. Retryable errors are kept apart from permanent ones, and
library errors are mapped onto this tree at the edge (``raise ... from exc``)::

    KartablError
    ├── WorkflowError
    │   ├── IllegalTransition      a step not allowed in the current state
    │   ├── PermissionDenied       the actor's role or team does not allow the step
    │   └── NotFound               no such conversation / reply / person / team
    ├── InputError (ValueError)    bad input from outside: a clear message, nothing stored
    ├── DeliveryError              a sender could not deliver
    │   ├── RetryableDeliveryError     nothing was sent: try again later (connection refused,
    │   │                              SMTP 4xx, 429, our own error before the provider call)
    │   └── PermanentDeliveryError     refused: never retry (SMTP 5xx, blocked bot, no credit)
    └── OutcomeUnknown             the request went out and no usable answer came back: the
                                   provider may or may not have it. Deliberately not a
                                   DeliveryError (neither "retry" nor "refused")

Which provider error is which, channel by channel: :mod:`responders.outcomes`.
"""

from __future__ import annotations


class KartablError(Exception):
    pass


class WorkflowError(KartablError):
    pass


class IllegalTransition(WorkflowError):
    def __init__(self, step: str, state: str, detail: str = "") -> None:
        self.step, self.state = step, state
        msg = f"cannot {step}: the item is in state {state!r}"
        super().__init__(f"{msg} ({detail})" if detail else msg)


class PermissionDenied(WorkflowError):
    def __init__(self, step: str, actor: str, reason: str) -> None:
        self.step, self.actor = step, actor
        super().__init__(f"{actor} may not {step}: {reason}")


class NotFound(WorkflowError):
    pass


class InputError(KartablError, ValueError):
    pass


class DeliveryError(KartablError):
    pass


class RetryableDeliveryError(DeliveryError):
    def __init__(self, reason: str, retry_after_s: float | None = None) -> None:
        self.retry_after_s = retry_after_s
        super().__init__(reason)


class PermanentDeliveryError(DeliveryError):
    pass


class OutcomeUnknown(KartablError):
    """The request left for the provider and no usable answer came back (a read timeout, a
    dropped connection, a 5xx from a messenger). The outbox applies the channel's rule
    (:mod:`responders.outcomes`): reconcile later, or fail at once with this reason."""
