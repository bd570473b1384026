"""Who is told what: the per-person notification feed, and what each person has seen of each
conversation (the queues' "new" marker).

Notifications are written in the transaction of the step that causes them (the workflow's
transitions, the router, the scheduler's sweep), so a step that rolls back tells nobody and
a committed one always tells. Each also writes a ``notification.created`` event row naming
its one recipient (``for_person``) and no conversation: the console's live hub pushes it to
that person alone (:mod:`console.live`), and it appears in no conversation's timeline.

The rules, in one place:

- **Never the actor.** Nobody is notified of their own step.
- **Only who may see the conversation** (:func:`kartabl.workflow.access.can_access`, as it
  stands after the step): a notification is a link, and a link to a conversation one may not
  open is a 404 that still names it. A mention of someone outside the conversation's scope
  is silently ignored.
- **Bounded**: a referral to a team tells at most :data:`MAX_RECIPIENTS` of its active
  members; a note at most :data:`MAX_MENTIONS` mentioned people.

The kinds: ``assigned`` (to you, by someone else or the router), ``referred`` (to you),
``team_referred`` (to your team, nobody in particular), ``approved`` / ``rejected`` (your
reply; the reviewer's comment in ``text``), ``answered`` (the customer wrote again on a
conversation you hold), ``mentioned`` (``@username`` in a note), ``breach`` (a conversation
you hold passed :data:`WARN_AT` of its first-response or resolution target: once per
conversation, person and target; the target's name in ``text``), ``schedule_held`` (the
customer wrote before a scheduled reply left, so it is held: its author and approver).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from sqlalchemy import String, and_, cast, exists, func, insert, literal, or_, select, update
from sqlalchemy.orm import Session, aliased, object_session

from kartabl import audit
from kartabl.db import dialect_insert
from kartabl.models import (
    Conversation,
    ConversationSeen,
    ConversationStatus,
    Notification,
    Person,
    Reply,
    ReplyState,
    TeamMember,
    utcnow,
)
from kartabl.workflow.access import REVIEWERS, can_access

KINDS: Final = ("assigned", "referred", "team_referred", "approved", "rejected", "answered",
                "mentioned", "breach", "schedule_held", "snooze_ended")
EVENT: Final = "notification.created"  # the live hub's per-person event kind
MAX_RECIPIENTS: Final = 50
MAX_MENTIONS: Final = 20
TEXT_CHARS: Final = 500  # of a comment or a note kept in the feed
WARN_AT: Final = 0.8  # of a target's time elapsed: "about to breach"
WARN_BATCH: Final = 500  # warnings written per sweep at most (the rest next sweep)
# ``@`` then a username: letters of any script (Persian included), digits, "_", "." and
# "-"; not preceded by a word character, so an email address is not a mention.
MENTION: Final = re.compile(r"(?<![\w@])@([\w][\w.\-]{0,63})")


# -- writing -------------------------------------------------------------------------------


def _clip(text: str | None) -> str:
    return (text or "").strip()[:TEXT_CHARS]


def notify(
    session: Session, kind: str, person_ids: Iterable[int | None], *,
    actor: Person | None, conversation: Conversation, reply_id: int | None = None,
    text: str = "",
) -> list[Notification]:
    """Tell each of ``person_ids`` (the actor, the inactive and those who may not open
    ``conversation`` left out) about ``kind``; in the caller's transaction."""
    assert kind in KINDS, kind
    wanted = [p for p in dict.fromkeys(person_ids) if p is not None]
    if actor is not None:
        wanted = [p for p in wanted if p != actor.id]
    rows = []
    for pid in wanted[:MAX_RECIPIENTS]:
        person = session.get(Person, pid)
        if person is None or not can_access(person, conversation):
            continue  # inactive people see nothing: can_access says so too
        rows.append(Notification(person_id=pid, kind=kind, conversation_id=conversation.id,
                                 actor_id=actor.id if actor else None, reply_id=reply_id,
                                 text=_clip(text)))
    return _write(session, rows, actor)


def _write(session: Session, rows: list[Notification],
           actor: Person | None) -> list[Notification]:
    """Add ``rows`` and their live events: one flush and one executemany for them all."""
    if not rows:
        return rows
    session.add_all(rows)
    session.flush()
    audit.record_many(session, [
        audit.Entry(EVENT, actor=actor, data={"for_person": n.person_id, "notification": n.id,
                                              "notice": n.kind, "about": n.conversation_id})
        for n in rows])
    return rows


def assigned(session: Session, actor: Person | None, conv: Conversation) -> None:
    """After :func:`kartabl.workflow.assign`: the new assignee, when there is one."""
    notify(session, "assigned", [conv.assignee_id], actor=actor, conversation=conv)


def snooze_ended(session: Session, conv: Conversation) -> None:
    """After :func:`kartabl.workflow.waiting.wake_due`: the holder, when there is one (an
    unheld one is back at the top of its team's queue, where the team sees it)."""
    notify(session, "snooze_ended", [conv.assignee_id], actor=None, conversation=conv)


def referred(session: Session, actor: Person, conv: Conversation, note: str) -> None:
    """After :func:`kartabl.workflow.refer`: the person it went to; else (a team alone) the
    team's active members, at most :data:`MAX_RECIPIENTS`."""
    if conv.assignee_id is not None:
        notify(session, "referred", [conv.assignee_id], actor=actor, conversation=conv,
               text=note)
        return
    if conv.team_id is None:
        return
    members = session.scalars(
        select(TeamMember.person_id).join(Person, Person.id == TeamMember.person_id)
        .where(TeamMember.team_id == conv.team_id, Person.active.is_(True))
        .order_by(TeamMember.person_id).limit(MAX_RECIPIENTS + 1))
    notify(session, "team_referred", list(members), actor=actor, conversation=conv, text=note)


def reviewed(session: Session, actor: Person | None, reply: Reply, conv: Conversation) -> None:
    """After an approval or a rejection: the reply's author, with the reviewer's comment."""
    rejected = reply.state == ReplyState.REJECTED
    notify(session, "rejected" if rejected else "approved", [reply.author_id], actor=actor,
           conversation=conv, reply_id=reply.id,
           text=(reply.review_comment or "") if rejected else "")


def schedule_held(session: Session, reply: Reply, conv: Conversation) -> None:
    """A scheduled reply is held (kartabl.workflow.schedule): its author and approver."""
    notify(session, "schedule_held", [reply.author_id, reply.approved_by_id], actor=None,
           conversation=conv, reply_id=reply.id)


def mentions(text: str) -> list[str]:
    """The usernames ``@mentioned`` in ``text``, in order, each once (trailing dots and
    dashes are punctuation, not part of the name)."""
    names = (m.rstrip(".-") for m in MENTION.findall(text or ""))
    return list(dict.fromkeys(n for n in names if n))[:MAX_MENTIONS]


def mentioned(session: Session, actor: Person, conv: Conversation, note: str) -> None:
    """After a note: the people it ``@mentions`` who may see the conversation."""
    names = mentions(note)
    if not names:
        return
    lowered = [n.lower() for n in names]
    ids = session.scalars(select(Person.id).where(func.lower(Person.username).in_(lowered)))
    notify(session, "mentioned", list(ids), actor=actor, conversation=conv, text=note)


def answered(session: Session,
             routed: Sequence[tuple[Conversation, bool]]) -> list[audit.Entry]:
    """After routing: ``(conversation, assigned by the router now)`` per customer message
    routed. A message the router placed with someone tells them ``assigned``; one that
    continued a conversation someone held already tells them ``answered``.

    The router's cost per message must stay flat: the rows go in one executemany, and their
    live events are returned for the router to write with its own (one executemany,
    :func:`kartabl.audit.record_many`). The holder is not looked up: the router placed or
    kept them (and a deactivated person signs in to read nothing)."""
    by_conv: dict[int, tuple[Conversation, bool]] = {}
    for conv, placed in routed:  # several messages of one conversation: one notification
        if conv.assignee_id is not None and not by_conv.get(id(conv), (conv, False))[1]:
            by_conv[id(conv)] = (conv, placed)
    if not by_conv:
        return []
    now = utcnow()
    rows = [{"person_id": conv.assignee_id, "conversation_id": conv.id, "created_at": now,
             "kind": "assigned" if placed else "answered", "text": ""}
            for conv, placed in by_conv.values()]
    session.execute(insert(Notification), rows)
    return [audit.Entry(EVENT, data={"for_person": r["person_id"], "notice": r["kind"],
                                     "about": r["conversation_id"]}) for r in rows]


def warn_breaches(
    session: Session, *, first_response_minutes: float, resolution_hours: float,
    now: datetime | None = None, limit: int = WARN_BATCH,
) -> int:
    """Warn the holders of open conversations past :data:`WARN_AT` of a target and not yet
    past it: once per conversation, person and target (``key``). Returns how many were
    written; the caller commits."""
    now = now or utcnow()
    c = Conversation
    # the service clock's warning and due times (business time, pauses left out); a row
    # whose clock was never computed, by wall time from opened_at with the given targets
    first_span, res_span = timedelta(minutes=first_response_minutes), timedelta(
        hours=resolution_hours)
    legacy = c.first_response_due_at.is_(None)
    targets = {
        "first_response": (
            or_(and_(c.first_response_warn_at <= now, c.first_response_due_at > now),
                and_(legacy, c.opened_at <= now - first_span * WARN_AT,
                     c.opened_at > now - first_span)),
            c.first_response_at.is_(None)),
        "resolution": (
            or_(and_(c.resolution_warn_at <= now, c.resolution_due_at > now),
                and_(legacy, c.opened_at <= now - res_span * WARN_AT,
                     c.opened_at > now - res_span)), None),
    }
    written = 0
    for target, (window, extra) in targets.items():
        where = [c.status == ConversationStatus.OPEN, c.assignee_id.is_not(None), window]
        if extra is not None:
            where.append(extra)
        # the warned ones left out by the query, so that a batch is all new ones (with more
        # than a batch near their targets, the later ones are not starved by the earlier)
        warned_key = (literal(f"breach:{target}:") + cast(c.id, String) + literal(":")
                      + cast(c.assignee_id, String))
        where.append(~exists().where(Notification.key == warned_key))
        rows = session.execute(select(c.id, c.assignee_id).where(and_(*where))
                               .order_by(c.opened_at).limit(limit)).all()
        keys = {f"breach:{target}:{cid}:{pid}": (cid, pid) for cid, pid in rows}
        if not keys:
            continue
        have = set(session.scalars(select(Notification.key).where(Notification.key.in_(keys))))
        for key, (cid, pid) in keys.items():
            if key in have:
                continue
            conv = session.get(c, cid)
            person = session.get(Person, pid)
            if conv is None or person is None or not can_access(person, conv):
                continue
            new_id = session.scalar(
                dialect_insert(session)(Notification)
                .values(person_id=pid, kind="breach", conversation_id=cid, text=target,
                        key=key, created_at=now)
                .on_conflict_do_nothing(index_elements=["key"]).returning(Notification.id))
            if new_id is not None:
                audit.record(session, EVENT, for_person=pid, notification=new_id,
                             notice="breach", about=cid)
                written += 1
    return written


# -- reading and marking -------------------------------------------------------------------


def unread_count(session: Session, person_id: int) -> int:
    return int(session.scalar(
        select(func.count()).select_from(Notification)
        .where(Notification.person_id == person_id, Notification.read_at.is_(None))) or 0)


def mark_read(session: Session, person_id: int, notification_id: int) -> bool:
    """Mark one of the person's notifications read. False when there is no such
    notification *of theirs* (someone else's is answered exactly like a missing one)."""
    n = session.get(Notification, notification_id)
    if n is None or n.person_id != person_id:
        return False
    if n.read_at is None:
        n.read_at = utcnow()
    return True


def mark_all_read(session: Session, person_id: int) -> int:
    result = session.execute(
        update(Notification)
        .where(Notification.person_id == person_id, Notification.read_at.is_(None))
        .values(read_at=utcnow()).execution_options(synchronize_session=False))
    return int(getattr(result, "rowcount", 0) or 0)


def mark_seen(session: Session, person_id: int, conversation_id: int) -> None:
    """The person has the conversation in front of them: its customer messages until now
    are seen (the queues' "new" marker goes). Bookkeeping of a page view, like a session's
    last_seen_at; the caller commits."""
    last = session.scalar(
        select(Conversation.last_message_at).where(Conversation.id == conversation_id))
    if last is None:
        return
    now = utcnow()
    session.execute(
        dialect_insert(session)(ConversationSeen)
        .values(person_id=person_id, conversation_id=conversation_id, last_message_at=last,
                seen_at=now)
        .on_conflict_do_update(index_elements=["person_id", "conversation_id"],
                               set_={"last_message_at": last, "seen_at": now}))


def unseen(session: Session, person_id: int, last_message: dict[int, datetime]) -> set[int]:
    """Of the conversations ``{id: last_message_at}`` (one page of a queue), those with a
    customer message the person has not seen: one primary-key lookup per id."""
    if not last_message:
        return set()
    seen = dict(session.execute(
        select(ConversationSeen.conversation_id, ConversationSeen.last_message_at)
        .where(ConversationSeen.person_id == person_id,
               ConversationSeen.conversation_id.in_(list(last_message)))).all())
    return {cid for cid, at in last_message.items() if cid not in seen or at > seen[cid]}


# -- the feed ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FeedItem:
    """One notification as its recipient reads it. ``conversation_id`` is None (and
    ``subject`` and ``text`` empty) when the reader may no longer open the conversation: the
    feed must not show what the conversation page would refuse."""

    id: int
    kind: str
    created_at: datetime
    read: bool
    actor_name: str | None  # None: the system (the router, the sweep)
    conversation_id: int | None
    subject: str
    text: str


def feed(session: Session, reader: Person, *, limit: int = 50, before: int | None = None,
         unread_only: bool = False) -> list[FeedItem]:
    """The reader's notifications, newest first (``before``: older than that id)."""
    n, c, a = Notification, Conversation, aliased(Person)
    query = (select(n.id, n.kind, n.created_at, n.read_at, a.display_name, a.username,
                    c.id, c.assignee_id, c.team_id, c.subject, n.text)
             .outerjoin(a, a.id == n.actor_id).outerjoin(c, c.id == n.conversation_id)
             .where(n.person_id == reader.id).order_by(n.id.desc()).limit(limit))
    if before is not None:
        query = query.where(n.id < before)
    if unread_only:
        query = query.where(n.read_at.is_(None))
    teams = set(session.scalars(select(TeamMember.team_id)
                                .where(TeamMember.person_id == reader.id)))
    sees_all = reader.active and reader.role in REVIEWERS

    def visible(cid: int | None, assignee: int | None, team: int | None) -> bool:
        return cid is not None and reader.active and (
            sees_all or assignee == reader.id or (team is not None and team in teams))

    out = []
    for nid, kind, at, read_at, display, username, cid, assignee, team, subject, text in (
            session.execute(query)):
        shown = visible(cid, assignee, team)
        out.append(FeedItem(nid, kind, at, read_at is not None,
                            (display or username) if username is not None else None,
                            cid if shown else None, (subject or "") if shown else "",
                            (text or "") if shown else ""))
    return out


def unread_of(person: Person | None) -> int:
    """The header's count, for a template: read in the session ``person`` was loaded in
    (the request's), so a page costs one indexed count and no new connection."""
    session = object_session(person) if person is not None else None
    if person is None or session is None:
        return 0
    return unread_count(session, person.id)
