"""Search inside messages, notes and sent replies, for the console's page and the JSON API.

:func:`search` reads :mod:`console.search_query`'s terms against ``search_doc`` (written by
:mod:`kartabl.search`), narrowed by the filters and by the reader's scope: the same
predicate as every queue (:func:`console.queues.visible_clause`: reviewers everything, an
agent their teams' conversations and their own), so a hit outside it is never returned,
counted or hinted at. Newest first, one hit per matching text, keyset-paged on
``(at, id)`` like the queues. Each hit carries a snippet with the match marked
(:mod:`console.search_snippet`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from markupsafe import Markup
from sqlalchemy import select, tuple_
from sqlalchemy.orm import Session

from console.dates import day_bounds, parse_date
from console.queue_types import _member, decode_cursor, encode_cursor
from console.queues import visible_clause
from console.search_query import MAX_QUERY, Term, clauses, parse, with_phone_conversations
from console.search_snippet import snippet
from kartabl.errors import InputError
from kartabl.models import (
    Channel,
    Conversation,
    ConversationStatus,
    Customer,
    Event,
    Message,
    Person,
    Reply,
    SearchDoc,
)
from kartabl.search import MESSAGE, NOTE, REPLY, message_text

DEFAULT_LIMIT = 20
MAX_LIMIT = 100


@dataclass(frozen=True, slots=True)
class SearchFilters:
    """Narrowing and paging. ``since``/``until`` are inclusive days in the display time
    zone; strings are accepted for the enums; bad values raise :class:`InputError`."""

    channel: Channel | None = None
    team_id: int | None = None
    assignee_id: int | None = None
    status: ConversationStatus | None = None
    since: date | None = None
    until: date | None = None
    limit: int = DEFAULT_LIMIT
    cursor: str | None = None

    def __post_init__(self) -> None:
        if self.channel is not None:
            object.__setattr__(self, "channel", _member(Channel, self.channel, "channel"))
        if self.status is not None:
            object.__setattr__(self, "status",
                               _member(ConversationStatus, self.status, "status"))
        if type(self.limit) is not int or not 1 <= self.limit <= MAX_LIMIT:
            raise InputError(f"limit must be a whole number from 1 to {MAX_LIMIT}")
        for name in ("team_id", "assignee_id"):
            value = getattr(self, name)
            if value is not None and (type(value) is not int or not 0 < value < 2**31):
                raise InputError(f"{name} must be a positive id, not {value!r}")
        if self.since and self.until and self.since > self.until:
            raise InputError("the range ends before it starts", code="range_backwards")
        if self.cursor is not None:
            decode_cursor(self.cursor)


@dataclass(frozen=True, slots=True)
class SearchHit:
    doc_id: int
    conversation_id: int
    source: str  # message, note or reply
    source_id: int
    at: datetime
    subject: str
    channel: str
    status: str
    customer_id: int
    customer_name: str
    snippet: Markup


@dataclass(frozen=True, slots=True)
class SearchPage:
    query: str
    hits: list[SearchHit] = field(default_factory=list)
    next_cursor: str | None = None
    searched: bool = False  # False: no term to search by (empty, or exclusions only)


def parse_day(text: str | None, locale: str) -> date | None:
    """A day typed in Jalali (۱۴۰۵/۰۹/۱۰) or Gregorian (2026-12-01), whatever the locale;
    the error is the reader's locale's."""
    if text is None or not text.strip():
        return None
    try:
        return parse_date(text, "fa")
    except InputError as fa_error:
        try:
            return parse_date(text, "en")
        except InputError as en_error:
            raise (fa_error if locale == "fa" else en_error) from None


def search(session: Session, actor: Person, query: str,
           filters: SearchFilters | None = None) -> SearchPage:
    f = filters or SearchFilters()
    q = query[:MAX_QUERY]
    terms = parse(q)
    if not any(not t.negated for t in terms):
        return SearchPage(q)
    terms = with_phone_conversations(session, terms)
    d, c = SearchDoc, Conversation
    where: list[Any] = [clauses(session.get_bind().dialect.name, terms),
                        visible_clause(session, actor)]
    if f.channel is not None:
        where.append(c.channel == f.channel)
    if f.team_id is not None:
        where.append(c.team_id == f.team_id)
    if f.assignee_id is not None:
        where.append(c.assignee_id == f.assignee_id)
    if f.status is not None:
        where.append(c.status == f.status)
    if f.since or f.until:
        lo, hi = day_bounds(f.since or date(1970, 1, 1), f.until or date(9998, 12, 30))
        where += [d.at >= lo, d.at < hi]
    if f.cursor is not None:
        where.append(tuple_(d.at, d.id) < decode_cursor(f.cursor))
    rows = session.execute(
        select(d.id, d.conversation_id, d.source, d.source_id, d.at, c.subject, c.channel,
               c.status, c.customer_id, Customer.display_name)
        .join(c, c.id == d.conversation_id).join(Customer, Customer.id == c.customer_id)
        .where(*where).order_by(d.at.desc(), d.id.desc()).limit(f.limit + 1)).all()
    more, rows = len(rows) > f.limit, rows[: f.limit]
    texts = _texts(session, [(r.source, r.source_id) for r in rows])
    hits = [SearchHit(r.id, r.conversation_id, r.source, r.source_id, r.at, r.subject,
                      str(r.channel), str(r.status), r.customer_id, r.display_name,
                      snippet(texts.get((r.source, r.source_id), ""), terms))
            for r in rows]
    cursor = encode_cursor(rows[-1].at, rows[-1].id) if more and rows else None
    return SearchPage(q, hits, cursor, True)


def _texts(session: Session, keys: list[tuple[str, int]]) -> dict[tuple[str, int], str]:
    """The original texts of the page's hits: three small lookups by primary key."""
    by: dict[str, list[int]] = {}
    for source, source_id in keys:
        by.setdefault(source, []).append(source_id)
    out: dict[tuple[str, int], str] = {}
    if by.get(MESSAGE):
        for mid, subject, text in session.execute(
                select(Message.id, Message.subject, Message.text)
                .where(Message.id.in_(by[MESSAGE]))):
            out[(MESSAGE, mid)] = message_text(subject, text)
    if by.get(NOTE):
        for eid, data in session.execute(select(Event.id, Event.data)
                                         .where(Event.id.in_(by[NOTE]))):
            out[(NOTE, eid)] = str((data or {}).get("text", ""))
    if by.get(REPLY):
        for rid, body in session.execute(select(Reply.id, Reply.body)
                                         .where(Reply.id.in_(by[REPLY]))):
            out[(REPLY, rid)] = body
    return out


__all__ = ["SearchFilters", "SearchHit", "SearchPage", "Term", "parse_day", "search"]
