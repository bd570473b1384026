"""One conversation as the console shows it: the conversation, its customer with their
other conversations, and one timeline of what happened, ordered by ``at`` (then source, id).

- :class:`MessageItem`: what the customer sent, and outbound rows that belong to no reply.
  ``html`` is the mail's HTML as ingest sanitised it once (``Message.safe_html``), served
  as it is: no page sanitises again. ``Message.html`` (HTML nobody vetted) is never read.
- :class:`ReplyItem`: one per reply, placed where it went out (``sent_at``) or, until then,
  where it was started (``created_at``): state, both bodies when the approver edited it,
  review comment, delivery error, and its ``history`` (every ``reply.*`` audit event). The
  outbound message row of a sent reply is folded into it (``message_id``).
- :class:`ActivityItem`: ``assigned``/``triaged`` (a coordinator or the router), ``referred``
  with its note, private ``note``, ``closed``, ``reopened``.

``actor`` is a display name; None is the system (router, outbox). :func:`load_window` reads
a window of the timeline (the newest items before a cursor) and nothing more of it, from
the indexes of :mod:`console.timeline_rows`: the conversation page, however long the
conversation (:mod:`console.timeline_page`). :func:`conversation_view` reads it all (the
JSON API). Either costs a fixed number of queries: names are fetched once for all.

The view's types are in :mod:`console.timeline_items`, re-exported here, so callers import
from this module.
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final, get_args

from sqlalchemy import case, func, literal, select, union_all
from sqlalchemy.orm import Session

from console import timeline_rows as rows
from console import timeline_window as tw
from console.queues import visible_clause
from console.timeline_items import (
    ActivityItem,
    ActivityKind,
    AttachmentInfo,
    ConversationInfo,
    ConversationRef,
    ConversationView,
    CustomerHistory,
    CustomerInfo,
    IdentityInfo,
    MessageItem,
    ReplyItem,
    ReplyStep,
    TimelineItem,
)
from console.timeline_window import TimelineWindow
from kartabl.errors import NotFound
from kartabl.models import (
    Channel,
    Conversation,
    ConversationStatus,
    Customer,
    Direction,
    Identity,
    MessageKind,
    Person,
    ReplyState,
    Team,
)
from kartabl.workflow import can_access
from responders import as_sent

__all__ = [
    "ACTIVITY_KINDS",
    "HISTORY_LIMIT",
    "REPLY_EVENT_KINDS",
    "ActivityItem",
    "ActivityKind",
    "AttachmentInfo",
    "ConversationInfo",
    "ConversationRef",
    "ConversationView",
    "CustomerHistory",
    "CustomerInfo",
    "IdentityInfo",
    "Loaded",
    "MessageItem",
    "ReplyItem",
    "ReplyStep",
    "TimelineItem",
    "conversation_view",
    "customer_history",
    "customer_info",
    "load_window",
    "shown_replies",
    "visible",
]

HISTORY_LIMIT: Final = 50  # the customer's other conversations listed, newest first
ACTIVITY_KINDS: Final[dict[str, ActivityKind]] = {
    f"conversation.{kind}": kind for kind in get_args(ActivityKind)}
assert set(ACTIVITY_KINDS) == set(rows.ACTIVITY_KINDS)
REPLY_EVENT_KINDS: Final = rows.REPLY_EVENT_KINDS


@dataclass(frozen=True, slots=True)
class Loaded:
    """A window of the timeline and what was read with it: the page's panel replies, and
    the conversation as shown (its assignee's and team's names)."""

    window: TimelineWindow
    panel: list[ReplyItem]
    info: ConversationInfo


# -- loading -------------------------------------------------------------------------------


def visible(session: Session, actor: Person, conversation_id: int) -> Conversation:
    """The conversation; :class:`NotFound`, with the same message, whether it does not
    exist or ``actor`` may not access it."""
    conv = session.get(Conversation, conversation_id)
    if conv is None or not can_access(actor, conv):
        raise NotFound(f"conversation {conversation_id} does not exist")
    return conv


def customer_info(session: Session, conv: Conversation) -> CustomerInfo:
    customer = session.get(Customer, conv.customer_id)
    assert customer is not None  # a foreign key
    identities = session.scalars(
        select(Identity).where(Identity.customer_id == customer.id)
        .order_by(Identity.kind, Identity.id)
    ).all()
    return CustomerInfo(
        customer.id, customer.display_name, list(customer.tags or []),
        [IdentityInfo(i.kind, i.address, i.display) for i in identities],
    )


def conversation_view(session: Session, actor: Person, conversation_id: int) -> ConversationView:
    """Everything about the conversation, its whole timeline included (the JSON API).
    Raises :class:`NotFound` as :func:`visible` does."""
    conv = visible(session, actor, conversation_id)
    who = customer_info(session, conv)
    loaded = load_window(session, conv, who, None, size=0)
    return ConversationView(loaded.info, who, customer_history(session, actor, conv),
                            loaded.window.items)


def load_window(session: Session, conv: Conversation, customer: CustomerInfo,
                before: str | None, *, size: int | None = None,
                panel_author: int | None = None) -> Loaded:
    """The newest ``size`` (:data:`~console.timeline_window.TIMELINE_PAGE`; 0: all) items
    before the cursor ``before``, reading no more rows than that from each source
    (:mod:`console.timeline_rows`); with ``panel_author``, also the replies the page's
    panels show (pending approval; that person's drafts and rejected ones) wherever they
    are. A fixed number of queries: names are fetched once for all."""
    limit = tw.TIMELINE_PAGE if size is None else size  # read at call time: monkeypatchable
    key = tw.decode_cursor(before) if before else None
    found = [*((tw.row_key(m.received_at, 0, m.id), m) for m in
               rows.messages(session, conv.id, key, limit)),
             *((tw.row_key(r.sent_at or r.created_at, 1, r.id), r) for r in
               rows.replies(session, conv.id, key, limit)),
             *((tw.row_key(e.at, 2, e.id), e) for e in
               rows.activities(session, conv.id, key, limit))]
    found.sort(key=lambda k: k[0])
    shown = found[-limit:] if limit else found
    earlier = 0
    if limit and len(shown) == limit:  # a full window: there may be more before it
        earlier = rows.count_before(session, conv.id, shown[0][0])
    panel = rows.panel_replies(session, conv.id, panel_author) if panel_author else []
    items, panel_items, info = _build(session, conv, customer, shown, panel)
    window = TimelineWindow(items, earlier=earlier, next=min(earlier, limit),
                            first=tw.encode_cursor(shown[0][0]) if shown else None)
    return Loaded(window, panel_items, info)


def shown_replies(session: Session, conv: Conversation, first: str | None,
                  newest: int) -> tuple[ConversationInfo, list[ReplyItem]]:
    """The replies with ``id <= newest`` at or after the cursor ``first`` (None: all),
    oldest first: what a page rendered from ``first`` with replies up to ``newest`` shows
    (its status poll)."""
    key = tw.decode_cursor(first) if first else None
    found = rows.replies_since(session, conv.id, key, newest)
    shown = [(tw.row_key(r.sent_at or r.created_at, 1, r.id), r) for r in found]
    items, _, info = _build(session, conv, None, shown, [])
    return info, [i for i in items if isinstance(i, ReplyItem)]


def _build(session: Session, conv: Conversation, customer: CustomerInfo | None,
           shown: list[tuple[tw.ItemKey, Any]], panel: Iterable[Any],
           ) -> tuple[list[TimelineItem], list[ReplyItem], ConversationInfo]:
    """Items of the ``shown`` rows (keyed, in order) and of the ``panel`` reply rows, and
    the conversation's info: three more queries (reply events, names)."""
    with_steps = {r.id: r for r in (*(row for k, row in shown if k[1] == 1), *panel)}
    events = rows.reply_events(session, with_steps)
    activities = [row for k, row in shown if k[1] == 2]
    people, teams = _names(session, conv, with_steps.values(), (*activities, *events))
    build = _Builder(customer.display_name if customer else "", people, teams, events)
    items: list[TimelineItem] = [
        build.message(row) if k[1] == 0 else build.reply(row) if k[1] == 1
        else build.activity(row) for k, row in shown]
    info = ConversationInfo(
        id=conv.id, customer_id=conv.customer_id, channel=Channel(conv.channel),
        status=ConversationStatus(conv.status), subject=conv.subject, team_id=conv.team_id,
        team_name=teams.get(conv.team_id) if conv.team_id is not None else None,
        assignee_id=conv.assignee_id,
        assignee_name=people.get(conv.assignee_id) if conv.assignee_id is not None else None,
        opened_at=conv.opened_at, first_response_at=conv.first_response_at,
        resolved_at=conv.resolved_at, last_message_at=conv.last_message_at,
        previous_id=conv.previous_id, merged_into_id=conv.merged_into_id,
        satisfaction_score=conv.satisfaction_score,
        satisfaction_comment=conv.satisfaction_comment,
    )
    return items, [build.reply(r) for r in panel], info


def customer_history(session: Session, actor: Person, conv: Conversation) -> CustomerHistory:
    """The customer's other conversations the actor may open, newest first."""
    c = Conversation
    others = (c.customer_id == conv.customer_id, c.id != conv.id)
    scope = visible_clause(session, actor)
    shown = session.execute(
        select(c.id, c.channel, c.status, c.subject, c.opened_at, c.last_message_at)
        .where(*others, scope).order_by(c.last_message_at.desc(), c.id.desc())
        .limit(HISTORY_LIMIT)
    ).all()
    total, in_scope = session.execute(
        select(func.count(), func.count(case((scope, 1)))).select_from(c).where(*others)
    ).one()
    refs = [ConversationRef(r.id, Channel(r.channel), ConversationStatus(r.status), r.subject,
                            r.opened_at, r.last_message_at) for r in shown]
    return CustomerHistory(refs, hidden=int(total) - int(in_scope),
                           more=int(in_scope) - len(refs))


def _ints(values: Iterable[object]) -> set[int]:
    # Event data is JSON written by several modules: take ids only when they are ids.
    return {v for v in values if isinstance(v, int) and not isinstance(v, bool)}


def _names(session: Session, conv: Conversation, replies: Iterable[Any],
           events: Iterable[Any]) -> tuple[dict[int, str], dict[int, str]]:
    """Display names of every person and team the page mentions: one query for both."""
    person_ids = {conv.assignee_id}
    team_ids = {conv.team_id}
    for r in replies:
        person_ids |= {r.author_id, r.approved_by_id}
    for e in events:
        person_ids.add(e.actor_id)
        data = e.data or {}
        person_ids |= _ints(data.get(k) for k in ("to_person", "from_person", "assignee_id"))
        team_ids |= _ints(data.get(k) for k in ("to_team", "from_team", "team_id"))
    people = _ints(person_ids)
    groups = _ints(team_ids)
    parts = [select(literal(kind), column.id, shown, fallback).where(column.id.in_(ids))
             for kind, column, shown, fallback, ids in (
                 (0, Person, Person.display_name, Person.username, people),
                 (1, Team, Team.title, Team.name, groups)) if ids]
    names: tuple[dict[int, str], dict[int, str]] = ({}, {})
    for kind, row_id, shown, fallback in session.execute(union_all(*parts)) if parts else ():
        names[kind][row_id] = shown or fallback
    return names


def _attachments(raw: object) -> list[AttachmentInfo]:
    out = []
    for a in raw if isinstance(raw, list) else []:
        if not isinstance(a, dict):
            continue
        size = a.get("size")
        out.append(AttachmentInfo(
            filename=str(a.get("filename") or ""), content_type=str(a.get("content_type") or ""),
            size=size if isinstance(size, int) else 0,
            storage_key=a.get("storage_key") if isinstance(a.get("storage_key"), str) else None,
            content_id=a.get("content_id") if isinstance(a.get("content_id"), str) else None,
        ))
    return out


class _Builder:
    """Items from rows. Reply events become their reply's ``history``; a sent reply's
    outbound row gives it ``message_id`` and what the customer received."""

    def __init__(self, customer_name: str, people: dict[int, str], teams: dict[int, str],
                 events: Iterable[Any]) -> None:
        self.customer, self.people, self.teams = customer_name, people, teams
        self.steps: dict[int, list[ReplyStep]] = defaultdict(list)
        for e in events:
            if e.reply_id is not None:
                note = _step_note(e.kind, e.data or {})
                self.steps[e.reply_id].append(ReplyStep(
                    e.kind.removeprefix("reply."), e.at, self.person(e.actor_id), note))

    def person(self, pid: object) -> str | None:
        return self.people.get(pid) if isinstance(pid, int) else None

    def team(self, tid: object) -> str | None:
        return self.teams.get(tid) if isinstance(tid, int) else None

    def activity(self, e: Any) -> ActivityItem:
        data = e.data or {}
        kind = ACTIVITY_KINDS[e.kind]
        return ActivityItem(
            kind=kind, at=e.at, actor=self.person(e.actor_id), event_id=e.id,
            note=_text(data.get("note") if kind == "referred" else data.get("text")),
            to_person=self.person(data.get("to_person", data.get("assignee_id"))),
            to_team=self.team(data.get("to_team", data.get("team_id"))),
            from_person=self.person(data.get("from_person")),
            from_team=self.team(data.get("from_team")),
            reason=_reason(data), route=_route(data), message_id=e.message_id,
            origin=e.origin_conversation_id, other_id=next(iter(_ints([data.get("other_id")])),
                                                             None),
        )

    def message(self, m: Any) -> MessageItem:
        inbound = m.direction == Direction.IN
        return MessageItem(
            kind="message", at=m.received_at,
            actor=(m.sender_name or self.customer or m.sender) if inbound else None,
            message_id=m.id, direction=Direction(m.direction),
            message_kind=MessageKind(m.kind), channel=Channel(m.channel), sender=m.sender,
            sender_name=m.sender_name, recipient=m.recipient, subject=m.subject, text=m.text,
            html=m.safe_html, attachments=_attachments(m.attachments),
            origin=m.origin_conversation_id,
        )

    def reply(self, r: Any) -> ReplyItem:
        return ReplyItem(
            kind="reply", at=r.sent_at or r.created_at, actor=self.person(r.author_id),
            reply_id=r.id, state=ReplyState(r.state), channel=Channel(r.channel), body=r.body,
            original_body=r.original_body, template=r.template, author_id=r.author_id,
            approver_id=r.approved_by_id, approver=self.person(r.approved_by_id),
            review_comment=r.review_comment, error=r.error, attempts=r.attempts,
            created_at=r.created_at, approved_at=r.approved_at, sent_at=r.sent_at,
            delivered_at=r.delivered_at, message_id=r.sent_id,
            history=self.steps.get(r.id, []),
            sent=as_sent.pieces(r.channel, r.sent_text) if r.sent_id is not None else [],
            sent_files=as_sent.files(r.channel, r.sent_text, r.sent_attachments)
            if r.sent_id is not None else [],
            send_at=r.send_at, schedule_held_at=r.schedule_held_at,
            origin=r.origin_conversation_id,
        )


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _reason(data: dict[str, Any]) -> str | None:
    """The router's reason in English, for the API (the page words it in the reader's
    language from :func:`_route`: console.pages._ui.route_reason)."""
    reason, rule = _text(data.get("reason")), _text(data.get("rule"))
    if reason and rule:
        return f"{reason} (rule {rule})"
    return reason or rule


def _route(data: dict[str, Any]) -> tuple[str | None, str | None] | None:
    reason, rule = _text(data.get("reason")), _text(data.get("rule"))
    return (reason, rule) if reason or rule else None


def _step_note(kind: str, data: dict[str, Any]) -> str | None:
    if kind == "reply.rejected":
        return _text(data.get("comment"))
    if kind == "reply.submitted":
        return _text(data.get("policy"))
    if kind == "reply.approved":
        skipped = _text(data.get("by_policy"))
        return f"by policy: {skipped}" if skipped else ("edited" if data.get("edited") else None)
    if kind in ("reply.failed", "reply.retry", "reply.bounced"):
        return _text(data.get("reason"))
    return None
