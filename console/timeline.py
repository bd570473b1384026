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

``actor`` is a display name; None is the system (router, outbox). The view costs a fixed
number of queries whatever the conversation's length: names are fetched once for all.

The view's types are in :mod:`console.timeline_items`, re-exported here, so callers import
from this module.
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime
from typing import Any, Final, get_args

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

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
from kartabl.errors import NotFound
from kartabl.models import (
    Channel,
    Conversation,
    ConversationStatus,
    Customer,
    Direction,
    Event,
    Identity,
    Message,
    MessageKind,
    Person,
    Reply,
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
    "MessageItem",
    "ReplyItem",
    "ReplyStep",
    "TimelineItem",
    "conversation_view",
]

HISTORY_LIMIT: Final = 50  # the customer's other conversations listed, newest first
ACTIVITY_KINDS: Final[dict[str, ActivityKind]] = {
    f"conversation.{kind}": kind for kind in get_args(ActivityKind)}
REPLY_EVENT_KINDS: Final = frozenset({
    "reply.drafted", "reply.edited", "reply.submitted", "reply.approved", "reply.rejected",
    "reply.sending", "reply.sent", "reply.retry", "reply.failed", "reply.delivered",
    "reply.bounced",
})


# What the timeline reads of each row (attribute access as on the models).
_MESSAGE_COLUMNS: Final = (
    Message.id, Message.direction, Message.kind, Message.channel, Message.sender,
    Message.sender_name, Message.recipient, Message.subject, Message.text, Message.safe_html,
    Message.attachments, Message.meta, Message.received_at,
)
_REPLY_COLUMNS: Final = (
    Reply.id, Reply.author_id, Reply.approved_by_id, Reply.state, Reply.channel, Reply.body,
    Reply.original_body, Reply.template, Reply.review_comment, Reply.error, Reply.attempts,
    Reply.created_at, Reply.approved_at, Reply.sent_at, Reply.delivered_at,
)
_EVENT_COLUMNS: Final = (
    Event.id, Event.kind, Event.at, Event.actor_id, Event.reply_id, Event.message_id,
    Event.data,
)


# -- loading -------------------------------------------------------------------------------


def conversation_view(session: Session, actor: Person, conversation_id: int) -> ConversationView:
    """Everything the conversation page shows. Raises :class:`NotFound`, with the same
    message, whether the conversation does not exist or ``actor`` may not access it."""
    conv = session.get(Conversation, conversation_id)
    if conv is None or not can_access(actor, conv):
        raise NotFound(f"conversation {conversation_id} does not exist")
    customer = session.get(Customer, conv.customer_id)
    assert customer is not None  # a foreign key
    identities = session.scalars(
        select(Identity).where(Identity.customer_id == customer.id)
        .order_by(Identity.kind, Identity.id)
    ).all()
    # Columns, not ORM entities: a long conversation has well over a thousand rows here,
    # and building (and identity-mapping) an object per row cost four times the queries.
    messages = session.execute(
        select(*_MESSAGE_COLUMNS).where(Message.conversation_id == conv.id)
        .order_by(Message.received_at, Message.id)
    ).all()
    replies = session.execute(
        select(*_REPLY_COLUMNS).where(Reply.conversation_id == conv.id).order_by(Reply.id)
    ).all()
    events = session.execute(
        select(*_EVENT_COLUMNS).where(Event.conversation_id == conv.id,
                                      Event.kind.in_([*ACTIVITY_KINDS, *REPLY_EVENT_KINDS]))
        .order_by(Event.id)
    ).all()
    people, teams = _names(session, conv, replies, events)
    info = ConversationInfo(
        id=conv.id, customer_id=conv.customer_id, channel=Channel(conv.channel),
        status=ConversationStatus(conv.status), subject=conv.subject, team_id=conv.team_id,
        team_name=teams.get(conv.team_id) if conv.team_id is not None else None,
        assignee_id=conv.assignee_id,
        assignee_name=people.get(conv.assignee_id) if conv.assignee_id is not None else None,
        opened_at=conv.opened_at, first_response_at=conv.first_response_at,
        resolved_at=conv.resolved_at, last_message_at=conv.last_message_at,
        previous_id=conv.previous_id,
    )
    who = CustomerInfo(
        customer.id, customer.display_name, list(customer.tags or []),
        [IdentityInfo(i.kind, i.address, i.display) for i in identities],
    )
    return ConversationView(info, who, _history(session, actor, conv),
                            _timeline(who, messages, replies, events, people, teams))


def _history(session: Session, actor: Person, conv: Conversation) -> CustomerHistory:
    c = Conversation
    others = (c.customer_id == conv.customer_id, c.id != conv.id)
    visible = visible_clause(session, actor)
    rows = session.execute(
        select(c.id, c.channel, c.status, c.subject, c.opened_at, c.last_message_at)
        .where(*others, visible).order_by(c.last_message_at.desc(), c.id.desc())
        .limit(HISTORY_LIMIT)
    ).all()
    total, in_scope = session.execute(
        select(func.count(), func.count(case((visible, 1)))).select_from(c).where(*others)
    ).one()
    refs = [ConversationRef(r.id, Channel(r.channel), ConversationStatus(r.status), r.subject,
                            r.opened_at, r.last_message_at) for r in rows]
    return CustomerHistory(refs, hidden=int(total) - int(in_scope),
                           more=int(in_scope) - len(refs))


def _ints(values: Iterable[object]) -> set[int]:
    # Event data is JSON written by several modules: take ids only when they are ids.
    return {v for v in values if isinstance(v, int) and not isinstance(v, bool)}


def _names(session: Session, conv: Conversation, replies: Iterable[Any],
           events: Iterable[Any]) -> tuple[dict[int, str], dict[int, str]]:
    """Display names of every person and team the page mentions: one query each."""
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
    names = {pid: display or username for pid, display, username in session.execute(
        select(Person.id, Person.display_name, Person.username).where(Person.id.in_(people))
    )} if people else {}
    titles = {tid: title or name for tid, name, title in session.execute(
        select(Team.id, Team.name, Team.title).where(Team.id.in_(groups))
    )} if groups else {}
    return names, titles


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


def _timeline(customer: CustomerInfo, messages: Iterable[Any],
              replies: Iterable[Any], events: Iterable[Any], people: dict[int, str],
              teams: dict[int, str]) -> list[TimelineItem]:
    def person(pid: object) -> str | None:
        return people.get(pid) if isinstance(pid, int) else None

    def team(tid: object) -> str | None:
        return teams.get(tid) if isinstance(tid, int) else None

    reply_list = list(replies)
    reply_ids = {r.id for r in reply_list}
    steps: dict[int, list[ReplyStep]] = defaultdict(list)
    keyed: list[tuple[datetime, int, int, TimelineItem]] = []
    for e in events:
        data = e.data or {}
        if e.kind in REPLY_EVENT_KINDS:
            if e.reply_id is not None:
                step = e.kind.removeprefix("reply.")
                note = _step_note(e.kind, data)
                steps[e.reply_id].append(ReplyStep(step, e.at, person(e.actor_id), note))
            continue
        kind = ACTIVITY_KINDS[e.kind]
        item = ActivityItem(
            kind=kind, at=e.at, actor=person(e.actor_id), event_id=e.id,
            note=_text(data.get("note") if kind == "referred" else data.get("text")),
            to_person=person(data.get("to_person", data.get("assignee_id"))),
            to_team=team(data.get("to_team", data.get("team_id"))),
            from_person=person(data.get("from_person")), from_team=team(data.get("from_team")),
            reason=_reason(data), route=_route(data), message_id=e.message_id,
        )
        keyed.append((e.at, 2, e.id, item))
    sent_rows: dict[int, Message] = {}
    for m in messages:
        meta = m.meta or {}
        rid = meta.get("reply_id")
        if m.direction == Direction.OUT and isinstance(rid, int) and rid in reply_ids:
            sent_rows.setdefault(rid, m)  # shown as the reply, not as a second bubble
            continue
        inbound = m.direction == Direction.IN
        keyed.append((m.received_at, 0, m.id, MessageItem(
            kind="message", at=m.received_at,
            actor=(m.sender_name or customer.display_name or m.sender) if inbound else None,
            message_id=m.id, direction=Direction(m.direction),
            message_kind=MessageKind(m.kind), channel=Channel(m.channel), sender=m.sender,
            sender_name=m.sender_name, recipient=m.recipient, subject=m.subject, text=m.text,
            html=m.safe_html, attachments=_attachments(m.attachments),
        )))
    for r in reply_list:
        at = r.sent_at or r.created_at
        keyed.append((at, 1, r.id, ReplyItem(
            kind="reply", at=at, actor=person(r.author_id), reply_id=r.id,
            state=ReplyState(r.state), channel=Channel(r.channel), body=r.body,
            original_body=r.original_body, template=r.template, author_id=r.author_id,
            approver_id=r.approved_by_id, approver=person(r.approved_by_id),
            review_comment=r.review_comment, error=r.error, attempts=r.attempts,
            created_at=r.created_at, approved_at=r.approved_at, sent_at=r.sent_at,
            delivered_at=r.delivered_at,
            message_id=sent_rows[r.id].id if r.id in sent_rows else None,
            history=steps.get(r.id, []),
            sent=as_sent.pieces(r.channel, sent_rows[r.id].text) if r.id in sent_rows else [],
            sent_files=as_sent.files(r.channel, sent_rows[r.id].text, sent_rows[r.id].attachments)
            if r.id in sent_rows else [],
        )))
    keyed.sort(key=lambda k: k[:3])
    return [item for *_, item in keyed]


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
