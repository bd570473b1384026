"""The sender's clock is metadata, never the message's time.

A message's ``received_at`` is when we received it: the IMAP server's INTERNALDATE for
polled mail, the moment a webhook or a poll brought it. The time the sender claims (a
mail's ``Date`` header, a Bot API update's ``date``, Kavenegar's ``date``) is kept in
``meta["sent_at"]`` (ISO 8601, UTC) and nothing sorts, reopens or reports by it: a mail
back-dated to 2001 would otherwise sort before our reply, reopen a conversation closed years
ago and skew first-response times (threats.md, "Trusted headers").

:func:`unix_time` reads the Unix seconds of a webhook body: a webhook with a date outside
[:data:`EARLIEST`, now + :data:`FUTURE_SLACK`] is refused (400, nothing stored), never a 500.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Final

from kartabl.errors import InputError
from kartabl.models import utcnow

EARLIEST: Final = datetime(2000, 1, 1, tzinfo=UTC)
FUTURE_SLACK: Final = timedelta(days=1)  # clocks drift; a day ahead is a wrong clock
_MAX_DIGITS: Final = 12  # 10**12 s is the year 33658: longer is garbage, never a number


def unix_time(value: object, *, text: bool = False) -> datetime:
    """``value`` (Unix seconds: an int; with ``text``, as in a form, also a string of its
    digits) as an aware UTC datetime. :class:`InputError` when it is anything else or out
    of range."""
    if isinstance(value, bool):
        raise InputError("a date must be Unix seconds")
    if (text and isinstance(value, str) and value.strip().isdigit()
            and len(value.strip()) <= _MAX_DIGITS):
        value = int(value.strip())
    if not isinstance(value, int):
        raise InputError("a date must be Unix seconds")
    latest = utcnow() + FUTURE_SLACK
    if not EARLIEST.timestamp() <= value <= latest.timestamp():
        raise InputError(
            f"the date {value} is out of range ({EARLIEST:%Y-%m-%d} to {latest:%Y-%m-%d})")
    return datetime.fromtimestamp(value, UTC)


def received_now(at: datetime | None = None) -> datetime:
    """``at`` (a receipt time of ours: INTERNALDATE, a webhook's arrival) in UTC, never in
    the future; now when there is none."""
    now = utcnow()
    if at is None:
        return now
    at = at.astimezone(UTC)  # a naive time is the local time (imapclient's normalise_times)
    return min(at, now)


def iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat()
