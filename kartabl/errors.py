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

``str(exc)`` is the English sentence for logs and the JSON API. What a person is told in the
console comes from ``code`` and ``params`` instead: the console's catalogs have an
``error.<code>`` sentence in each language, filled with the params (plain JSON values, so a
refusal can be kept for the page a redirect leads to). An error without a code is shown with
its class's general sentence and the English detail beside it.
"""

from __future__ import annotations

from collections.abc import Mapping


class KartablError(Exception):
    code: str = ""

    def __init__(self, *args: object, code: str = "",
                 params: Mapping[str, str | int | None] | None = None) -> None:
        super().__init__(*args)
        self.code = code or type(self).code
        self.params: dict[str, str | int | None] = dict(params or {})


class WorkflowError(KartablError):
    pass


class IllegalTransition(WorkflowError):
    """``code`` "illegal" (the default) is told as "<step> is not possible: the <item> is
    <state>"; ``params`` may name the ``item`` ("reply", "conversation") and its ``id``."""

    def __init__(self, step: str, state: str, detail: str = "", *, code: str = "illegal",
                 params: Mapping[str, str | int | None] | None = None) -> None:
        self.step, self.state = step, state
        msg = f"cannot {step}: the item is in state {state!r}"
        super().__init__(f"{msg} ({detail})" if detail else msg, code=code,
                         params={"step": step, "state": state, **(params or {})})


class PermissionDenied(WorkflowError):
    """``code`` names the reason (none: the general sentence, with the English reason)."""

    def __init__(self, step: str, actor: str, reason: str, *, code: str = "",
                 params: Mapping[str, str | int | None] | None = None) -> None:
        self.step, self.actor = step, actor
        super().__init__(f"{actor} may not {step}: {reason}", code=code,
                         params={"step": step, **(params or {})})


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
