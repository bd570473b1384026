"""One conversation as the console shows it: the conversation, its customer with their
other conversations, and one timeline of what happened, ordered by ``at`` (then source, id).

- :class:`MessageItem`: what the customer sent, and outbound rows that belong to no reply.
  ``html`` is kept **as stored**: a page shows it only through :func:`safe_html` (or
  :meth:`MessageItem.safe_html`); ``html_sanitized`` is always False to say so.
- :class:`ReplyItem`: one per reply, placed where it went out (``sent_at``) or, until then,
  where it was started (``created_at``): state, both bodies when the approver edited it,
  review comment, delivery error, and its ``history`` (every ``reply.*`` audit event). The
  outbound message row of a sent reply is folded into it (``message_id``).
- :class:`ActivityItem`: ``assigned``/``triaged`` (a coordinator or the router), ``referred``
  with its note, private ``note``, ``closed``, ``reopened``.

``actor`` is a display name; None is the system (router, outbox). The view costs a fixed
number of queries whatever the conversation's length: names are fetched once for all.
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final, Literal, get_args

import nh3
from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from console.queues import visible_clause
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

HISTORY_LIMIT: Final = 50  # the customer's other conversations listed, newest first
MAX_HTML_CHARS: Final = 1_000_000  # as at ingest (channels.email.html)

ActivityKind = Literal["assigned", "triaged", "referred", "note", "closed", "reopened"]
ACTIVITY_KINDS: Final[dict[str, ActivityKind]] = {
    f"conversation.{kind}": kind for kind in get_args(ActivityKind)}
REPLY_EVENT_KINDS: Final = frozenset({
    "reply.drafted", "reply.edited", "reply.submitted", "reply.approved", "reply.rejected",
    "reply.sending", "reply.sent", "reply.retry", "reply.failed", "reply.delivered",
    "reply.bounced",
})

# -- the view ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class IdentityInfo:
    kind: str
    address: str
    display: str


@dataclass(frozen=True, slots=True)
class CustomerInfo:
    id: int
    display_name: str
    tags: list[Any]
    identities: list[IdentityInfo]


@dataclass(frozen=True, slots=True)
class ConversationInfo:
    id: int
    customer_id: int
    channel: Channel
    status: ConversationStatus
    subject: str
    team_id: int | None
    team_name: str | None
    assignee_id: int | None
    assignee_name: str | None
    opened_at: datetime
    first_response_at: datetime | None
    resolved_at: datetime | None
    last_message_at: datetime
    previous_id: int | None


@dataclass(frozen=True, slots=True)
class ConversationRef:
    id: int
    channel: Channel
    status: ConversationStatus
    subject: str
    opened_at: datetime
    last_message_at: datetime


@dataclass(frozen=True, slots=True)
class CustomerHistory:
    """The customer's other conversations on every channel that the actor may open.
    ``hidden`` counts those outside the actor's scope (named nowhere else); ``more`` those
    in scope beyond the :data:`HISTORY_LIMIT` listed."""

    conversations: list[ConversationRef]
    hidden: int
    more: int


@dataclass(frozen=True, slots=True)
class AttachmentInfo:
    filename: str  # as the sender named it: display only
    content_type: str
    size: int
    storage_key: str | None  # None: listed, but the bytes were not kept (too large)
    content_id: str | None


@dataclass(frozen=True, slots=True)
class MessageItem:
    kind: Literal["message"]
    at: datetime
    actor: str | None  # the sender's name (inbound); None for our own outbound rows
    message_id: int
    direction: Direction
    message_kind: MessageKind
    channel: Channel
    sender: str
    sender_name: str
    recipient: str
    subject: str
    text: str
    html: str | None  # RAW: pass it through safe_html() before it reaches a page
    attachments: list[AttachmentInfo]
    html_sanitized: bool = False

    def safe_html(self, *, remote_images: bool = False) -> str | None:
        """The HTML ready for a page: sanitised, inline images of this message kept."""
        if not self.html:
            return None
        keys = {a.storage_key for a in self.attachments if a.storage_key}
        return safe_html(self.html, inline_keys=keys, remote_images=remote_images)


@dataclass(frozen=True, slots=True)
class ReplyStep:
    step: str  # the audit event without "reply.": submitted, rejected, approved, sent...
    at: datetime
    actor: str | None
    note: str | None  # the rejection comment, a failure reason, a skipped-review policy


@dataclass(frozen=True, slots=True)
class ReplyItem:
    kind: Literal["reply"]
    at: datetime
    actor: str | None  # the author
    reply_id: int
    state: ReplyState
    channel: Channel
    body: str  # what the customer gets (the approver's edit, if any)
    original_body: str | None  # the author's text when the approver edited it, else None
    template: str | None
    author_id: int
    approver_id: int | None
    approver: str | None
    review_comment: str | None  # the latest rejection's comment
    error: str | None  # why delivery failed (or was retried)
    attempts: int
    created_at: datetime
    approved_at: datetime | None
    sent_at: datetime | None
    delivered_at: datetime | None
    message_id: int | None  # the outbound message row, once sent
    history: list[ReplyStep] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class ActivityItem:
    kind: ActivityKind
    at: datetime
    actor: str | None
    event_id: int
    note: str | None = None  # the referral note or the private note's text
    to_person: str | None = None
    to_team: str | None = None
    from_person: str | None = None
    from_team: str | None = None
    reason: str | None = None  # the router's reason (and rule) for its placement
    message_id: int | None = None  # the customer's message that reopened it


TimelineItem = MessageItem | ReplyItem | ActivityItem


@dataclass(frozen=True, slots=True)
class ConversationView:
    conversation: ConversationInfo
    customer: CustomerInfo
    history: CustomerHistory
    timeline: list[TimelineItem]


# -- HTML ----------------------------------------------------------------------------------

_TAGS: Final = frozenset({
    "a", "abbr", "b", "bdi", "bdo", "blockquote", "br", "caption", "center", "code", "col",
    "colgroup", "dd", "del", "div", "dl", "dt", "em", "h1", "h2", "h3", "h4", "h5", "h6", "hr",
    "i", "img", "ins", "kbd", "li", "ol", "p", "pre", "q", "s", "small", "span", "strike",
    "strong", "sub", "sup", "table", "tbody", "td", "tfoot", "th", "thead", "tr", "u", "ul",
})
# Tags whose content is dropped too (not shown as text): code, styling, embedded documents.
_DROP: Final = frozenset({
    "script", "style", "iframe", "object", "embed", "form", "textarea", "select", "button",
    "noscript", "template", "svg", "math", "title", "head", "frameset", "frame", "applet",
})
_ATTRIBUTES: Final = {"*": {"dir", "lang", "title", "style"}, "a": {"href"},
                      "img": {"src", "alt", "width", "height"}, "ol": {"start"},
                      "td": {"colspan", "rowspan", "align"}, "th": {"colspan", "rowspan", "align"}}
# Nothing that positions, loads (url(), @import) or reorders text (direction, bidi).
_STYLES: Final = frozenset({
    "color", "background-color", "text-align", "font-weight", "font-style", "text-decoration",
})
ATTACHMENT_SCHEME: Final = "attachment:"


def safe_html(
    html: str, *, inline_keys: Collection[str] = (), remote_images: bool = False
) -> str:
    """``html`` reduced to markup safe to embed in a console page.

    Kept: text, basic formatting, tables, lists; ``dir``/``lang`` (Persian mail is RTL);
    ``style`` with colour, alignment and emphasis only. Links: ``http``, ``https``,
    ``mailto``, ``tel`` only, opened in a new tab with ``rel="noopener noreferrer
    nofollow"``. Dropped with their content: script, style, iframe, object, embed, form and
    the like; every ``on*`` attribute; ``javascript:``, ``data:`` and relative URLs.

    Images are blocked by default: an ``<img>`` keeps its ``alt`` but loses its ``src``,
    because a remote image tells the sender when (and from where) the mail was read. Two
    exceptions: ``attachment:<key>`` of this message's own stored parts (``inline_keys``:
    the inline images ingest kept), and any ``https``/``http`` image when the reader asks
    for them (``remote_images=True``)."""
    keys = frozenset(inline_keys)

    def attribute(tag: str, name: str, value: str) -> str | None:
        if tag == "img" and name == "src":
            if value.startswith(ATTACHMENT_SCHEME):
                return value if value[len(ATTACHMENT_SCHEME):] in keys else None
            return value if remote_images and value.lower().startswith(("https:", "http:")) \
                else None
        if name == "href" and value.lower().startswith(ATTACHMENT_SCHEME):
            return None  # attachment: is our scheme for images, not a link target
        return value

    cleaner = nh3.Cleaner(
        tags=set(_TAGS), clean_content_tags=set(_DROP),
        attributes={tag: set(names) for tag, names in _ATTRIBUTES.items()},
        attribute_filter=attribute,
        url_schemes={"http", "https", "mailto", "tel", "attachment"},
        url_relative="deny",
        link_rel="noopener noreferrer nofollow",
        set_tag_attribute_values={"a": {"target": "_blank"}},
        filter_style_properties=set(_STYLES),
        strip_comments=True,
    )
    return cleaner.clean(html[:MAX_HTML_CHARS]).strip()


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
    messages = session.scalars(
        select(Message).where(Message.conversation_id == conv.id)
        .order_by(Message.received_at, Message.id)
    ).all()
    replies = session.scalars(
        select(Reply).where(Reply.conversation_id == conv.id).order_by(Reply.id)
    ).all()
    events = session.scalars(
        select(Event).where(Event.conversation_id == conv.id,
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


def _names(session: Session, conv: Conversation, replies: Iterable[Reply],
           events: Iterable[Event]) -> tuple[dict[int, str], dict[int, str]]:
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


def _timeline(customer: CustomerInfo, messages: Iterable[Message], replies: Iterable[Reply],
              events: Iterable[Event], people: dict[int, str],
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
            reason=_reason(data), message_id=e.message_id,
        )
        keyed.append((e.at, 2, e.id, item))
    sent_rows: dict[int, int] = {}
    for m in messages:
        meta = m.meta or {}
        rid = meta.get("reply_id")
        if m.direction == Direction.OUT and isinstance(rid, int) and rid in reply_ids:
            sent_rows.setdefault(rid, m.id)  # shown as the reply, not as a second bubble
            continue
        inbound = m.direction == Direction.IN
        keyed.append((m.received_at, 0, m.id, MessageItem(
            kind="message", at=m.received_at,
            actor=(m.sender_name or customer.display_name or m.sender) if inbound else None,
            message_id=m.id, direction=Direction(m.direction),
            message_kind=MessageKind(m.kind), channel=Channel(m.channel), sender=m.sender,
            sender_name=m.sender_name, recipient=m.recipient, subject=m.subject, text=m.text,
            html=m.html, attachments=_attachments(m.attachments),
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
            delivered_at=r.delivered_at, message_id=sent_rows.get(r.id),
            history=steps.get(r.id, []),
        )))
    keyed.sort(key=lambda k: k[:3])
    return [item for *_, item in keyed]


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _reason(data: dict[str, Any]) -> str | None:
    reason, rule = _text(data.get("reason")), _text(data.get("rule"))
    if reason and rule:
        return f"{reason} (rule {rule})"
    return reason or rule


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

