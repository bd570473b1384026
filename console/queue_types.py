"""The queues' vocabulary, shared by :mod:`console.queues` (the listings and counts) and
:mod:`console.queue_rows` (a page's rows): which queues exist (:data:`QUEUES`), the
:class:`Filters` a listing or a count takes, the :class:`QueueRow` and :class:`QueuePage`
it returns, the keyset paging cursor (:func:`encode_cursor`, :func:`decode_cursor`), and
the overdue thresholds of one call (``_Cutoffs``), so that the SQL and the rows' flags agree.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Final, Literal, TypeVar

from sqlalchemy import ColumnElement, and_, or_

from config.settings import Settings
from kartabl.errors import InputError
from kartabl.models import Channel, Conversation, ConversationStatus, ReplyState

OPEN, CLOSED = ConversationStatus.OPEN, ConversationStatus.CLOSED
WAITING, SNOOZED = ConversationStatus.WAITING, ConversationStatus.SNOOZED
_EVERY = frozenset(ConversationStatus)
PENDING = ReplyState.PENDING_APPROVAL
DEFAULT_LIMIT: Final = 50
MAX_LIMIT: Final = 200
_CURSOR = re.compile(r"^([0-9]{1,18})\.([1-9][0-9]{0,18})$")
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
E = TypeVar("E", bound=StrEnum)

QueueKind = Literal["triage", "approval", "mine", "team", "open", "overdue", "scheduled",
                    "waiting", "snoozed"]


@dataclass(frozen=True, slots=True)
class QueueSpec:
    name: str  # what list_queue takes; "team:<id>" stands for every team
    kind: QueueKind
    description: str
    statuses: frozenset[ConversationStatus]  # the Filters.status values it accepts


QUEUES: Final[tuple[QueueSpec, ...]] = (
    QueueSpec("triage", "triage", "Open and assigned to nobody (a team may hold it).",
              frozenset({OPEN})),
    QueueSpec("approval", "approval", "Replies awaiting approval, oldest first.",
              frozenset({OPEN})),
    QueueSpec("mine", "mine", "Assigned to me (open unless asked).", _EVERY),
    QueueSpec("team:<id>", "team", "The team's conversations, held or not (open unless asked).",
              _EVERY),
    QueueSpec("open", "open", "Every open conversation in my scope.", frozenset({OPEN})),
    QueueSpec("overdue", "overdue", "Open and past the first-response or resolution target.",
              frozenset({OPEN})),
    # -- scheduled send --
    QueueSpec("scheduled", "scheduled", "Approved replies that leave at a set time (held ones "
              "too), soonest first.", frozenset(ConversationStatus)),
    # out of the working queues above, found here (issue 15, statuses)
    QueueSpec("waiting", "waiting", "Waiting on the customer, in my scope.",
              frozenset({WAITING})),
    QueueSpec("snoozed", "snoozed", "Snoozed until a time, in my scope.", frozenset({SNOOZED})),
)
# the status a queue lists when the filters name none
DEFAULT_STATUS: Final = {"waiting": WAITING, "snoozed": SNOOZED}
_SPECS: Final = {spec.kind: spec for spec in QUEUES}


@dataclass(frozen=True, slots=True)
class QueueInfo:
    name: str
    kind: QueueKind
    team_id: int | None = None
    title: str = ""  # the team's title (or name) for team queues


@dataclass(frozen=True, slots=True)
class Filters:
    """Narrowing and paging, shared by listings and counts (counts ignore the paging).

    ``status`` None is the queue's default, open. ``min_age``/``max_age`` are measured on
    ``opened_at``, like the service targets: ``min_age=1h`` keeps conversations opened at
    least an hour ago. ``cursor`` is a page's ``next_cursor``. Strings are accepted for the
    enums. Bad values raise :class:`InputError` here, when the filters are made."""

    channel: Channel | None = None
    team_id: int | None = None
    status: ConversationStatus | None = None
    min_age: timedelta | None = None
    max_age: timedelta | None = None
    limit: int = DEFAULT_LIMIT
    cursor: str | None = None

    def __post_init__(self) -> None:
        if self.channel is not None:
            object.__setattr__(self, "channel", _member(Channel, self.channel, "channel"))
        if self.status is not None:
            object.__setattr__(self, "status",
                               _member(ConversationStatus, self.status, "status"))
        if type(self.limit) is not int or not 1 <= self.limit <= MAX_LIMIT:
            raise InputError(f"limit must be a whole number from 1 to {MAX_LIMIT}, "
                             f"not {self.limit!r}")
        if self.team_id is not None and (type(self.team_id) is not int or self.team_id < 1):
            raise InputError(f"team_id must be a positive id, not {self.team_id!r}")
        if any(a is not None and a < timedelta(0) for a in (self.min_age, self.max_age)):
            raise InputError("min_age and max_age must not be negative")
        if self.min_age is not None and self.max_age is not None and self.min_age > self.max_age:
            raise InputError("min_age must not exceed max_age")
        if self.cursor is not None:
            decode_cursor(self.cursor)


@dataclass(frozen=True, slots=True)
class PendingReply:
    id: int
    author: str
    submitted_at: datetime


@dataclass(frozen=True, slots=True)
class QueueRow:
    """One conversation of a list (in ``approval``: one pending reply and its conversation)."""

    conversation_id: int
    customer_id: int
    customer_name: str  # the display name, else the customer's first identity address
    channel: Channel
    subject: str
    preview: str  # the first line of the last inbound message, at most PREVIEW_CHARS
    status: ConversationStatus
    team_id: int | None
    team_name: str | None
    assignee_id: int | None
    assignee_name: str | None
    opened_at: datetime
    last_message_at: datetime
    first_response_at: datetime | None
    overdue: bool
    pending_reply_id: int | None  # approval: this row's reply; else the oldest pending one
    pending_reply: PendingReply | None = None
    unread: bool = False  # a customer message the reader has not seen (kartabl.notifications)
    # -- scheduled send --
    scheduled_reply_id: int | None = None  # scheduled: this row's reply
    send_at: datetime | None = None  # scheduled: when it leaves
    schedule_held: bool = False  # scheduled: held, the customer wrote first
    # -- statuses --
    snoozed_until: datetime | None = None  # snoozed: when back; open: back from a snooze
    # -- service clock --
    first_response_due_at: datetime | None = None
    resolution_due_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class QueuePage:
    queue: str
    rows: list[QueueRow] = field(default_factory=list)
    next_cursor: str | None = None  # None: the last page
    limit: int = DEFAULT_LIMIT


def encode_cursor(at: datetime, row_id: int) -> str:
    """``<microseconds since 1970>.<id>``: exact on both databases (microsecond storage)."""
    return f"{(at.astimezone(UTC) - _EPOCH) // timedelta(microseconds=1)}.{row_id}"


def decode_cursor(cursor: str) -> tuple[datetime, int]:
    match = _CURSOR.fullmatch(cursor) if isinstance(cursor, str) else None  # no "1.5\n"
    if match is None:
        raise InputError(f"cursor {cursor!r} is not one this server gave out")
    try:
        return _EPOCH + timedelta(microseconds=int(match[1])), int(match[2])
    except OverflowError:
        raise InputError(f"cursor {cursor!r} is out of range") from None


def _default(name: str) -> float:
    default = Settings.model_fields[name].default
    assert isinstance(default, int | float)
    return float(default)


@dataclass(frozen=True, slots=True)
class Targets:
    """The service targets behind "overdue" (queues) and the late counts (reports). Passed
    in by the routes from the app's settings (:meth:`from_settings`); the defaults are the
    :class:`~config.settings.Settings` model's."""

    first_response_minutes: float = _default("first_response_target_minutes")
    resolution_hours: float = _default("resolution_target_hours")

    @classmethod
    def from_settings(cls, settings: Settings) -> Targets:
        return cls(settings.first_response_target_minutes, settings.resolution_target_hours)


DEFAULT_TARGETS = Targets()


@dataclass(frozen=True, slots=True)
class _Cutoffs:
    """The overdue thresholds of one call, from one ``now``: SQL and row flags agree."""

    first_response: datetime  # opened before this, no reply sent yet: overdue
    resolution: datetime  # opened before this and still open: overdue
    now: datetime = _EPOCH  # the due times (kartabl.service_clock) at or before it: overdue

    @classmethod
    def at(cls, now: datetime, targets: Targets) -> _Cutoffs:
        return cls(now - timedelta(minutes=targets.first_response_minutes),
                   now - timedelta(hours=targets.resolution_hours), now)

    def clause(self) -> ColumnElement[bool]:
        """Overdue by the stored due times (business time, pauses left out); a row whose
        clock was never computed (older than the service clock) by wall time from
        ``opened_at``, as before."""
        c = Conversation
        first_due = or_(c.first_response_due_at <= self.now,
                        and_(c.first_response_due_at.is_(None),
                             c.opened_at < self.first_response))
        resolution_due = or_(c.resolution_due_at <= self.now,
                             and_(c.resolution_due_at.is_(None),
                                  c.first_response_due_at.is_(None),
                                  c.opened_at < self.resolution))
        return or_(and_(c.first_response_at.is_(None), first_due), resolution_due)

    def flag(self, status: ConversationStatus, opened: datetime, first: datetime | None,
             first_due: datetime | None = None, resolution_due: datetime | None = None,
             ) -> bool:
        if status != OPEN:
            return False
        if first_due is None:  # never computed: wall time, as before
            return (first is None and opened < self.first_response) or opened < self.resolution
        return ((first is None and first_due <= self.now)
                or (resolution_due is not None and resolution_due <= self.now))


def _member(enum_type: type[E], value: object, what: str) -> E:
    try:
        return enum_type(str(value))
    except ValueError:
        allowed = ", ".join(m.value for m in enum_type)
        raise InputError(f"unknown {what} {value!r}; one of {allowed}") from None
