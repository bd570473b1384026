"""The one mapping of the error tree to HTTP statuses, used by the app's error handler
(JSON under ``/api/``, an error page elsewhere) and by the pages that show a refused step
on their own page instead."""

from __future__ import annotations

from kartabl.errors import IllegalTransition, KartablError, NotFound, PermissionDenied

# Most specific first: the first class the error is an instance of decides.
_STATUS: tuple[tuple[type[KartablError], int], ...] = (
    (NotFound, 404),  # also what is outside the caller's scope: the two look alike
    (PermissionDenied, 403),
    (IllegalTransition, 409),  # the state does not allow the step
)


def http_status(exc: KartablError) -> int:
    """The status of a refused step: 404, 403, 409, else 400 (bad input and the rest)."""
    return next((status for cls, status in _STATUS if isinstance(exc, cls)), 400)
