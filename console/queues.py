"""The console's queues, as pages and as counts, for the pages and the JSON API alike.

Queues (:data:`QUEUES`): ``triage`` (open and unassigned, as the issue defines it: nobody
holds it, whether or not a team does; this includes what the router left for the
coordinator with a team at capacity, and a referral to a team alone), ``approval`` (one
row per reply awaiting approval, oldest first), ``mine``, ``team:<id>`` (held or not),
``open``, ``overdue`` (open and past the first-response or the resolution target),
``scheduled`` (one row per approved reply with a send time, held ones included, soonest
first, whatever the conversation's status: kartabl.workflow.schedule).

Scope: reviewers see everything; an agent sees what :func:`kartabl.workflow.can_access`
allows (their own and their teams' conversations), and that predicate is in the WHERE
clause of every listing and count. So an agent's ``triage`` holds the unassigned
conversations of their teams (work to pick up); ``team:<id>`` of another team
raises :class:`PermissionDenied` (that team's workspace); ``Filters.team_id`` only narrows.
A deactivated person gets empty pages and no counts.

Paging is keyset: ``ORDER BY last_message_at DESC, id DESC`` (approval: ``reply.updated_at,
reply.id`` ascending) from ``QueuePage.next_cursor``, one index descent at any depth. A
conversation that gets a message meanwhile jumps to page one: never shown twice.

The vocabulary (queue names, filters, rows, pages, cursors) is :mod:`console.queue_types`;
completing a page's rows (previews, pending replies) is :mod:`console.queue_rows`. Both are
re-exported here: callers import from this module.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, false, func, or_, select, true, tuple_
from sqlalchemy.orm import Session, aliased

from console.queue_rows import PREVIEW_CHARS, _rows, preview_line
from console.queue_types import (
    _SPECS,
    CLOSED,
    DEFAULT_LIMIT,
    DEFAULT_STATUS,
    DEFAULT_TARGETS,
    MAX_LIMIT,
    OPEN,
    PENDING,
    QUEUES,
    E,
    Filters,
    PendingReply,
    QueueInfo,
    QueueKind,
    QueuePage,
    QueueRow,
    QueueSpec,
    Targets,
    _Cutoffs,
    decode_cursor,
    encode_cursor,
)
from kartabl.errors import InputError, NotFound, PermissionDenied
from kartabl.models import (
    Conversation,
    Customer,
    Person,
    Reply,
    ReplyState,
    Team,
    TeamMember,
    utcnow,
)
from kartabl.workflow.access import REVIEWERS

__all__ = [
    "CLOSED",
    "DEFAULT_LIMIT",
    "MAX_LIMIT",
    "OPEN",
    "PENDING",
    "PREVIEW_CHARS",
    "QUEUES",
    "E",
    "Filters",
    "PendingReply",
    "QueueInfo",
    "QueueKind",
    "QueuePage",
    "QueueRow",
    "QueueSpec",
    "decode_cursor",
    "encode_cursor",
    "list_queue",
    "preview_line",
    "queue_counts",
    "queue_names",
    "visible_clause",
]

_TEAM_NAME = re.compile(r"^team:([1-9][0-9]{0,17})$")
# the scheduled queue's replies: approved, with a time (kartabl.workflow.schedule)
SCHEDULED = (Reply.state == ReplyState.APPROVED, Reply.send_at.is_not(None))


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
            QueueInfo("open", "open"), QueueInfo("overdue", "overdue"),
            QueueInfo("scheduled", "scheduled"),
            QueueInfo("waiting", "waiting"), QueueInfo("snoozed", "snoozed")]


def list_queue(session: Session, actor: Person, name: str, filters: Filters | None = None, *,
               now: datetime | None = None, targets: Targets = DEFAULT_TARGETS) -> QueuePage:
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
    cut = _Cutoffs.at(moment, targets)
    query = _page_query(kind, _where(kind, team_id, scope, f, moment, cut), f)
    rows = list(session.execute(query.limit(f.limit + 1)).all())
    more, rows = len(rows) > f.limit, rows[: f.limit]
    cursor = None
    if more:
        last = rows[-1]
        cursor = (encode_cursor(last.reply_updated_at, last.reply_id) if kind == "approval"
                  else encode_cursor(last.send_at, last.reply_id) if kind == "scheduled"
                  else encode_cursor(last.last_message_at, last.id))
    return QueuePage(name, _rows(session, kind, rows, cut, actor.id), cursor, f.limit)


def queue_counts(session: Session, actor: Person, filters: Filters | None = None, *,
                 now: datetime | None = None,
                 targets: Targets = DEFAULT_TARGETS) -> dict[str, int]:
    """``{queue name: rows it would list}`` for each of the actor's :func:`queue_names`,
    under ``filters`` (paging ignored). Queues that do not list ``filters.status`` (closed:
    triage, approval, open, overdue) are left out rather than reported as zero.

    Two queries whatever the number of teams: the conversation queues in one pass over the
    rows of the status in scope (grouped by team, one ``FILTER`` per queue, read from
    ``ix_conversation_counts`` alone on PostgreSQL), and the pending replies."""
    f = filters or Filters()
    scope = _scope(session, actor)
    if scope is None:
        return {}
    _check_teams(session, scope, None, f.team_id)
    moment = now or utcnow()
    cut = _Cutoffs.at(moment, targets)
    listed = [info for info in _names(session, scope)
              if f.status is None or f.status in _SPECS[info.kind].statuses]
    counts: dict[str, int] = {}
    if any(info.kind == "approval" for info in listed):
        counts["approval"] = _approval_count(session, _where("approval", None, scope, f,
                                                             moment, cut))
    if any(info.kind == "scheduled" for info in listed):
        where = _where("scheduled", None, scope, f, moment, cut)
        query = select(func.count()).select_from(Reply).where(*SCHEDULED)
        counts["scheduled"] = session.scalar(
            query.join(Conversation).where(*where) if where else query) or 0
    c = Conversation
    # Every conversation queue is the status, the filters and the scope (what "open" lists)
    # narrowed by one more condition; "mine" and a team of the agent's are inside the scope.
    by_team = session.execute(
        select(c.team_id, func.count(),
               func.count().filter(c.assignee_id.is_(None)),
               func.count().filter(c.assignee_id == scope.actor.id),
               func.count().filter(cut.clause()))
        .where(*_where("open", None, scope, f, moment, cut)).group_by(c.team_id)
    ).all()
    totals = {"open": 0, "triage": 0, "mine": 0, "overdue": 0}
    teams: dict[int | None, int] = {}
    for team_id, every, nobody, mine, late in by_team:
        teams[team_id] = every
        for key, n in (("open", every), ("triage", nobody), ("mine", mine), ("overdue", late)):
            totals[key] += n
    held = [info.kind for info in listed if info.kind in DEFAULT_STATUS]
    if held:
        # waiting and snoozed: one more pass, over the rows of those two statuses alone
        # (ix_conversation_status_last's prefix), under the same filters and scope
        plain = Filters(channel=f.channel, team_id=f.team_id, min_age=f.min_age,
                        max_age=f.max_age)
        where = _where("open", None, scope, plain, moment, cut)[1:]  # [0]: status = open
        totals.update({str(status): n for status, n in session.execute(
            select(c.status, func.count())
            .where(c.status.in_([DEFAULT_STATUS[k] for k in held]), *where)
            .group_by(c.status))})
        totals.update({k: totals.get(k, 0) for k in held})
    for info in listed:
        if info.kind == "team":
            counts[info.name] = teams.get(info.team_id, 0)
        elif info.kind in totals:
            counts[info.name] = totals[info.kind]
    return counts


def _approval_count(session: Session, where: list[ColumnElement[bool]]) -> int:
    query = select(func.count()).select_from(Reply).where(Reply.state == PENDING)
    # Nothing to ask of the conversation (a reviewer, no filter): the reply index alone, not
    # a join per pending reply.
    return session.scalar(query.join(Conversation).where(*where) if where else query) or 0


# -- the queries --------------------------------------------------------------------------


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
        # ids are 32-bit in the database: a bigger one is no team (not a database error)
        if tid > 2**31 - 1 or session.get(Team, tid) is None:
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
    if kind not in ("approval", "scheduled") or f.status is not None:
        where.append(c.status == (f.status or DEFAULT_STATUS.get(kind, OPEN)))
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
        c.first_response_at, c.snoozed_until, c.first_response_due_at, c.resolution_due_at,
    ]
    if kind == "approval":
        columns += [Reply.id.label("reply_id"), Reply.updated_at.label("reply_updated_at"),
                    Reply.send_at.label("send_at"),
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
    if kind == "scheduled":  # one row per scheduled reply, the soonest first
        query = (query.add_columns(
            Reply.id.label("reply_id"), Reply.send_at.label("send_at"),
            Reply.schedule_held_at.label("held_at"))
            .join(Reply, Reply.conversation_id == c.id).where(*SCHEDULED)
            .order_by(Reply.send_at, Reply.id))
        return query if after is None else query.where(tuple_(Reply.send_at, Reply.id) > after)
    query = query.order_by(c.last_message_at.desc(), c.id.desc())
    return query if after is None else query.where(tuple_(c.last_message_at, c.id) < after)
