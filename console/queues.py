"""The console's queues, as pages and as counts, for the pages and the JSON API alike.

Queues (:data:`QUEUES`): ``triage`` (open and unassigned, as the issue defines it: nobody
holds it, whether or not a team does; this includes what the router left for the
coordinator with a team at capacity, and a referral to a team alone), ``approval`` (one
row per reply awaiting approval, oldest first), ``mine``, ``team:<id>`` (held or not),
``open``, ``overdue`` (open and past the first-response or the resolution target).

Scope: reviewers see everything; an agent sees what :func:`kartabl.workflow.can_access`
allows (their own and their teams' conversations), and that predicate is in the WHERE
clause of every listing and count. So an agent's ``triage`` holds the unassigned
conversations of their teams (work to pick up); ``team:<id>`` of another team
raises :class:`PermissionDenied` (that team's workspace); ``Filters.team_id`` only narrows.
A deactivated person gets empty pages and no counts.

Paging is keyset: ``ORDER BY last_message_at DESC, id DESC`` (approval: ``reply.updated_at,
reply.id`` ascending) from ``QueuePage.next_cursor``, one index descent at any depth. A
conversation that gets a message meanwhile jumps to page one: never shown twice.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, Final, Literal, TypeVar

from sqlalchemy import ColumnElement, Select, and_, false, func, or_, select, true, tuple_
from sqlalchemy.orm import Session, aliased

from config.settings import get_settings
from kartabl.errors import InputError, NotFound, PermissionDenied
from kartabl.models import (
    Channel,
    Conversation,
    ConversationStatus,
    Customer,
    Direction,
    Identity,
    Message,
    Person,
    Reply,
    ReplyState,
    Team,
    TeamMember,
    utcnow,
)
from kartabl.workflow.access import REVIEWERS

OPEN, CLOSED = ConversationStatus.OPEN, ConversationStatus.CLOSED
PENDING = ReplyState.PENDING_APPROVAL
DEFAULT_LIMIT: Final = 50
MAX_LIMIT: Final = 200
PREVIEW_CHARS: Final = 140  # the one-line preview of the last inbound message
_PREVIEW_READ: Final = 600  # characters read from the database to find that line
_TEAM_NAME = re.compile(r"^team:([1-9][0-9]{0,17})$")
_CURSOR = re.compile(r"^([0-9]{1,18})\.([1-9][0-9]{0,18})$")
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
E = TypeVar("E", bound=StrEnum)

QueueKind = Literal["triage", "approval", "mine", "team", "open", "overdue"]


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
    QueueSpec("mine", "mine", "Assigned to me (open unless asked).", frozenset({OPEN, CLOSED})),
    QueueSpec("team:<id>", "team", "The team's conversations, held or not (open unless asked).",
              frozenset({OPEN, CLOSED})),
    QueueSpec("open", "open", "Every open conversation in my scope.", frozenset({OPEN})),
    QueueSpec("overdue", "overdue", "Open and past the first-response or resolution target.",
              frozenset({OPEN})),
)
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
    match = _CURSOR.match(cursor) if isinstance(cursor, str) else None
    if match is None:
        raise InputError(f"cursor {cursor!r} is not one this server gave out")
    try:
        return _EPOCH + timedelta(microseconds=int(match[1])), int(match[2])
    except OverflowError:
        raise InputError(f"cursor {cursor!r} is out of range") from None


@dataclass(frozen=True, slots=True)
class _Cutoffs:
    """The overdue thresholds of one call, from one ``now``: SQL and row flags agree."""

    first_response: datetime  # opened before this, no reply sent yet: overdue
    resolution: datetime  # opened before this and still open: overdue

    @classmethod
    def at(cls, now: datetime) -> _Cutoffs:
        s = get_settings()
        return cls(now - timedelta(minutes=s.first_response_target_minutes),
                   now - timedelta(hours=s.resolution_target_hours))

    def clause(self) -> ColumnElement[bool]:
        c = Conversation
        # The leading range is implied by both branches; it lets a (status, opened_at) index
        # bound the scan instead of testing every open row.
        return and_(c.opened_at < max(self.first_response, self.resolution),
                    or_(and_(c.first_response_at.is_(None), c.opened_at < self.first_response),
                        c.opened_at < self.resolution))

    def flag(self, status: ConversationStatus, opened: datetime, first: datetime | None) -> bool:
        return status == OPEN and (
            (first is None and opened < self.first_response) or opened < self.resolution)


@dataclass(frozen=True, slots=True)
class _Scope:
    actor: Person
    everything: bool
    team_ids: tuple[int, ...]

    def clause(self) -> ColumnElement[bool] | None:
        """can_access as SQL; None for reviewers (no restriction)."""
        if self.everything:
            return None
        mine = Conversation.assignee_id == self.actor.id
        return or_(mine, Conversation.team_id.in_(self.team_ids)) if self.team_ids else mine


def _scope(session: Session, actor: Person) -> _Scope | None:
    """The actor's scope; None for a deactivated person, who sees nothing."""
    if not actor.active:
        return None
    if actor.role in REVIEWERS:
        return _Scope(actor, True, ())
    ids = session.scalars(select(TeamMember.team_id).where(TeamMember.person_id == actor.id)
                          .order_by(TeamMember.team_id))
    return _Scope(actor, False, tuple(ids))


def visible_clause(session: Session, actor: Person) -> ColumnElement[bool]:
    """:func:`kartabl.workflow.can_access` as a WHERE clause on :class:`Conversation`, for
    listings outside the queues (a customer's other conversations)."""
    scope = _scope(session, actor)
    clause = scope.clause() if scope is not None else false()
    return true() if clause is None else clause


def queue_names(session: Session, actor: Person) -> list[QueueInfo]:
    """The queues ``actor`` sees, in display order. Reviewers: triage, approval, mine,
    every team, open, overdue. Agents: the same, with only their teams."""
    scope = _scope(session, actor)
    return [] if scope is None else _names(session, scope)


def _names(session: Session, scope: _Scope) -> list[QueueInfo]:
    teams = select(Team.id, Team.name, Team.title).order_by(Team.name, Team.id)
    if not scope.everything:
        teams = teams.where(Team.id.in_(scope.team_ids))
    return [QueueInfo("triage", "triage"), QueueInfo("approval", "approval"),
            QueueInfo("mine", "mine"),
            *(QueueInfo(f"team:{tid}", "team", tid, title or name)
              for tid, name, title in session.execute(teams)),
            QueueInfo("open", "open"), QueueInfo("overdue", "overdue")]


def list_queue(session: Session, actor: Person, name: str, filters: Filters | None = None, *,
               now: datetime | None = None) -> QueuePage:
    """One page of queue ``name`` for ``actor``. Raises :class:`InputError` (an unknown
    queue, a status the queue does not list), :class:`NotFound` (no such team) or
    :class:`PermissionDenied` (an agent asking for the queue of a team they are not in)."""
    f = filters or Filters()
    kind, team_id = _parse(name)
    if f.status is not None and f.status not in _SPECS[kind].statuses:
        raise InputError(f"the {kind} queue lists open conversations only, not {f.status}")
    scope = _scope(session, actor)
    if scope is None:
        return QueuePage(name, limit=f.limit)
    _check_teams(session, scope, team_id, f.team_id)
    moment = now or utcnow()
    cut = _Cutoffs.at(moment)
    query = _page_query(kind, _where(kind, team_id, scope, f, moment, cut), f)
    rows = list(session.execute(query.limit(f.limit + 1)).all())
    more, rows = len(rows) > f.limit, rows[: f.limit]
    cursor = None
    if more:
        last = rows[-1]
        cursor = (encode_cursor(last.reply_updated_at, last.reply_id) if kind == "approval"
                  else encode_cursor(last.last_message_at, last.id))
    return QueuePage(name, _rows(session, kind, rows, cut), cursor, f.limit)


def queue_counts(session: Session, actor: Person, filters: Filters | None = None, *,
                 now: datetime | None = None) -> dict[str, int]:
    """``{queue name: rows it would list}`` for each of the actor's :func:`queue_names`,
    under ``filters`` (paging ignored). Queues that do not list ``filters.status`` (closed:
    triage, approval, open, overdue) are left out rather than reported as zero."""
    f = filters or Filters()
    scope = _scope(session, actor)
    if scope is None:
        return {}
    _check_teams(session, scope, None, f.team_id)
    moment = now or utcnow()
    cut = _Cutoffs.at(moment)
    counts: dict[str, int] = {}
    teams: list[int] = []
    for info in _names(session, scope):
        if f.status is not None and f.status not in _SPECS[info.kind].statuses:
            continue
        if info.team_id is not None:
            teams.append(info.team_id)
            continue
        where = _where(info.kind, None, scope, f, moment, cut)
        query = (select(func.count(Reply.id)).join(Conversation).where(Reply.state == PENDING)
                 if info.kind == "approval" else select(func.count()).select_from(Conversation))
        counts[info.name] = session.scalar(query.where(*where)) or 0
    if teams:  # one GROUP BY for every team, not one count each
        where = _where("team", None, scope, f, moment, cut)
        grouped = dict(session.execute(
            select(Conversation.team_id, func.count())
            .where(*where, Conversation.team_id.in_(teams)).group_by(Conversation.team_id)
        ).all())
        counts.update({f"team:{tid}": grouped.get(tid, 0) for tid in teams})
    return counts


# -- the queries --------------------------------------------------------------------------


def _member(enum_type: type[E], value: object, what: str) -> E:
    try:
        return enum_type(str(value))
    except ValueError:
        allowed = ", ".join(m.value for m in enum_type)
        raise InputError(f"unknown {what} {value!r}; one of {allowed}") from None


def _parse(name: str) -> tuple[QueueKind, int | None]:
    match = _TEAM_NAME.match(name) if isinstance(name, str) else None
    if match:
        return "team", int(match[1])
    for spec in QUEUES:
        if spec.kind != "team" and spec.name == name:
            return spec.kind, None
    known = ", ".join(spec.name for spec in QUEUES)
    raise InputError(f"unknown queue {name!r}; the queues are {known}")


def _check_teams(session: Session, scope: _Scope, queue_team: int | None,
                 filter_team: int | None) -> None:
    for tid in {t for t in (queue_team, filter_team) if t is not None}:
        if session.get(Team, tid) is None:
            raise NotFound(f"team {tid} does not exist")
    if queue_team is not None and not scope.everything and queue_team not in scope.team_ids:
        raise PermissionDenied(f"see the queue of team {queue_team}", scope.actor.username,
                               "they are not in that team")


def _where(kind: QueueKind, team_id: int | None, scope: _Scope, f: Filters, now: datetime,
           cut: _Cutoffs) -> list[ColumnElement[bool]]:
    c = Conversation
    where: list[ColumnElement[bool]] = []
    # A pending reply implies an open conversation (close refuses one), but approval does
    # not rely on it: a pending reply must never drop out of the approvers' sight.
    if kind != "approval" or f.status is not None:
        where.append(c.status == (f.status or OPEN))
    if kind == "triage":
        where.append(c.assignee_id.is_(None))
    elif kind == "mine":
        where.append(c.assignee_id == scope.actor.id)
    elif kind == "team" and team_id is not None:
        where.append(c.team_id == team_id)
    elif kind == "overdue":
        where.append(cut.clause())
    if f.channel is not None:
        where.append(c.channel == f.channel)
    if f.team_id is not None:
        where.append(c.team_id == f.team_id)
    if f.min_age is not None:
        where.append(c.opened_at <= now - f.min_age)
    if f.max_age is not None:
        where.append(c.opened_at >= now - f.max_age)
    # Drop the scope where the query already implies it (mine; one of the agent's own
    # teams): the planner then uses that column's index instead of an OR of two.
    implied = kind == "mine" or bool({team_id, f.team_id} & set(scope.team_ids))
    scoped = None if implied else scope.clause()
    return where if scoped is None else [*where, scoped]


def _page_query(kind: QueueKind, where: list[ColumnElement[bool]],
                f: Filters) -> Select[*tuple[Any, ...]]:
    c, assignee, author = Conversation, aliased(Person), aliased(Person)
    columns: list[Any] = [
        c.id, c.customer_id, Customer.display_name.label("customer_name"), c.channel,
        c.subject, c.status, c.team_id, Team.name.label("team_slug"),
        Team.title.label("team_title"), c.assignee_id,
        assignee.display_name.label("assignee_display"),
        assignee.username.label("assignee_username"), c.opened_at, c.last_message_at,
        c.first_response_at,
    ]
    if kind == "approval":
        columns += [Reply.id.label("reply_id"), Reply.updated_at.label("reply_updated_at"),
                    author.display_name.label("author_display"),
                    author.username.label("author_username")]
    query = (select(*columns).join(Customer, Customer.id == c.customer_id)
             .outerjoin(Team, Team.id == c.team_id)
             .outerjoin(assignee, assignee.id == c.assignee_id).where(*where))
    after = decode_cursor(f.cursor) if f.cursor is not None else None
    if kind == "approval":
        query = (query.join(Reply, Reply.conversation_id == c.id)
                 .join(author, author.id == Reply.author_id).where(Reply.state == PENDING)
                 .order_by(Reply.updated_at, Reply.id))
        return query if after is None else query.where(
            tuple_(Reply.updated_at, Reply.id) > after)
    query = query.order_by(c.last_message_at.desc(), c.id.desc())
    return query if after is None else query.where(tuple_(c.last_message_at, c.id) < after)


def _name(display: str | None, username: str | None) -> str | None:
    return (display or username) if username is not None else None


def _rows(session: Session, kind: QueueKind, rows: list[Any], cut: _Cutoffs) -> list[QueueRow]:
    """The page's rows, completed by one query each for the whole page (never per row):
    previews, oldest pending replies, addresses for customers without a name."""
    ids = list({r.id for r in rows})
    previews = _previews(session, ids)
    pending = _pending(session, ids) if kind != "approval" else {}
    labels = _identity_labels(session, {r.customer_id for r in rows if not r.customer_name})
    out = []
    for r in rows:
        reply = pending.get(r.id)
        if kind == "approval":
            reply = PendingReply(r.reply_id, _name(r.author_display, r.author_username) or "",
                                 r.reply_updated_at)
        status = ConversationStatus(r.status)
        out.append(QueueRow(
            conversation_id=r.id, customer_id=r.customer_id,
            customer_name=r.customer_name or labels.get(r.customer_id, ""),
            channel=Channel(r.channel), subject=r.subject, preview=previews.get(r.id, ""),
            status=status, team_id=r.team_id,
            team_name=(r.team_title or r.team_slug) if r.team_id is not None else None,
            assignee_id=r.assignee_id,
            assignee_name=_name(r.assignee_display, r.assignee_username),
            opened_at=r.opened_at, last_message_at=r.last_message_at,
            first_response_at=r.first_response_at,
            overdue=cut.flag(status, r.opened_at, r.first_response_at),
            pending_reply_id=reply.id if reply else None, pending_reply=reply,
        ))
    return out


def preview_line(text: str) -> str:
    """The first non-blank line of ``text``, at most :data:`PREVIEW_CHARS` characters."""
    line = next((ln.strip() for ln in text.splitlines() if ln.strip()), "")
    return line if len(line) <= PREVIEW_CHARS else line[: PREVIEW_CHARS - 1].rstrip() + "…"


def _previews(session: Session, ids: list[int]) -> dict[int, str]:
    if not ids:
        return {}
    # The newest inbound message by id (the order they were stored); the text is cut in
    # SQL so that a page never pulls whole mail bodies.
    last = (select(func.max(Message.id))
            .where(Message.conversation_id.in_(ids), Message.direction == Direction.IN)
            .group_by(Message.conversation_id))
    rows = session.execute(
        select(Message.conversation_id, func.substr(Message.text, 1, _PREVIEW_READ))
        .where(Message.id.in_(last))
    )
    return {cid: preview_line(text or "") for cid, text in rows if cid is not None}


def _pending(session: Session, ids: list[int]) -> dict[int, PendingReply]:
    if not ids:
        return {}
    rows = session.execute(
        select(Reply.conversation_id, Reply.id, Reply.updated_at, Person.display_name,
               Person.username)
        .join(Person, Person.id == Reply.author_id)
        .where(Reply.conversation_id.in_(ids), Reply.state == PENDING)
        .order_by(Reply.updated_at.desc(), Reply.id.desc())
    )
    # Newest first, so the oldest pending reply is the one the dict keeps.
    return {cid: PendingReply(rid, display or username, at)
            for cid, rid, at, display, username in rows}


def _identity_labels(session: Session, customer_ids: set[int]) -> dict[int, str]:
    if not customer_ids:
        return {}
    return dict(session.execute(
        select(Identity.customer_id, func.min(Identity.address))
        .where(Identity.customer_id.in_(customer_ids)).group_by(Identity.customer_id)
    ).all())
