"""Splitting a message (and, optionally, what follows it) out into a new conversation.

The new conversation is the same customer's, on the message's channel (the customer's
answer then goes where they wrote), opened at the message's time. It gets the message, the
events about it (``message.routed``...), and with ``following`` every later message, every
reply placed after it in the timeline (sent after it, or started after it while unsent)
with the replies' audit events, and the private notes written after it. Assignments,
closes and reopens stay where they happened: they are the old conversation's story. Every
moved row remembers where it came from (``origin_conversation_id``, through
:func:`kartabl.workflow.merge.move_rows`); both conversations are audited
(``conversation.split`` on the old one, ``conversation.split_from`` on the new).

Decisions
- The first message stays: splitting it is refused (that would empty the conversation).
- Refused while a reply that would move is pending approval, approved or being sent.
- Assignment: the old conversation's team, nobody assigned, unless chosen. An agent may
  choose only themselves and a team of theirs (or the same team); a coordinator or admin
  anyone. An agent left without access to the new conversation (no team chosen on a
  conversation in no team) gets it assigned, so their split never hides it from them.
- A split cannot be undone as a merge can; merging the new conversation back into the old
  one gives one timeline again.
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, and_, func, or_, select
from sqlalchemy.orm import Session

from kartabl import audit, service_clock
from kartabl.errors import IllegalTransition, NotFound, PermissionDenied
from kartabl.models import (
    Conversation,
    ConversationStatus,
    Event,
    Message,
    Person,
    Reply,
    utcnow,
)
from kartabl.workflow.access import (
    REVIEWERS,
    active_person,
    actor_name,
    load_team,
    require_actor,
    team_ids,
)
from kartabl.workflow.merge import Moves, lock_pair, move_rows, require_no_flight, require_unmerged


def _subject(message: Message) -> str:
    # as router.threading names a new conversation (this layer may not import the router)
    subject = (message.subject or "").strip()
    if not subject:
        subject = " ".join((message.text or "").split())[:80]
    return subject[:500]


def _placement(session: Session, actor: Person, source: Conversation, person_id: int | None,
               team_id: int | None) -> tuple[int | None, int | None]:
    """(team, assignee) of the new conversation, as chosen and allowed."""
    step = "split a conversation"
    if actor.role not in REVIEWERS:
        own = team_ids(actor, source)
        if (person_id not in (None, actor.id)
                or team_id not in (None, source.team_id, *own)):
            raise PermissionDenied(step, actor_name(actor), "an agent gives the new "
                                   "conversation to themselves or a team of theirs only",
                                   code="conv_split.placement")
    team = load_team(session, team_id).id if team_id is not None else source.team_id
    person = active_person(session, person_id).id if person_id is not None else None
    if actor.role not in REVIEWERS and person is None and (
            team is None or team not in team_ids(actor, source)):
        person = actor.id
    return team, person


def split(session: Session, actor: Person | None, conversation_id: int, message_id: int, *,
          following: bool = False, person_id: int | None = None,
          team_id: int | None = None) -> Conversation:
    """Move message ``message_id`` (and with ``following`` what comes after it) into a new
    conversation; returns it. Does not commit."""
    step = "split a conversation"
    require_actor(step, actor)
    assert actor is not None
    source = lock_pair(session, actor, (conversation_id,))[conversation_id]
    message = session.get(Message, message_id)
    if message is None or message.conversation_id != source.id:
        raise NotFound(f"message {message_id} is not in conversation {source.id}",
                       code="conv_split.missing", params={"id": message_id})
    require_unmerged(step, source)
    first = session.scalar(select(Message.id).where(Message.conversation_id == source.id)
                           .order_by(Message.received_at, Message.id).limit(1))
    if first == message.id:
        raise IllegalTransition(step, "first message", f"message {message.id} opens "
                                f"conversation {source.id}", code="conv_split.first",
                                params={"id": source.id})
    at = message.received_at
    msg_ids = [message.id]
    reply_ids: list[int] = []
    if following:
        msg_ids = list(session.scalars(select(Message.id).where(
            Message.conversation_id == source.id,
            or_(Message.received_at > at, and_(Message.received_at == at,
                                               Message.id >= message.id)))
            .order_by(Message.id)))
        reply_ids = list(session.scalars(select(Reply.id).where(
            Reply.conversation_id == source.id,
            func.coalesce(Reply.sent_at, Reply.created_at) >= at).order_by(Reply.id)))
    require_no_flight(step, "conv_split.pending", source, reply_ids, session)
    team, person = _placement(session, actor, source, person_id, team_id)

    about: list[ColumnElement[bool]] = [Event.message_id.in_(msg_ids)]
    if reply_ids:
        about.append(Event.reply_id.in_(reply_ids))
    if following:
        about.append(and_(Event.kind == "conversation.note", Event.at >= at))
    event_rows = session.execute(select(Event.id, Event.origin_conversation_id).where(
        Event.conversation_id == source.id, or_(*about)).order_by(Event.id)).all()
    origins = {name: dict(session.execute(select(model.id, model.origin_conversation_id)
                                          .where(model.id.in_(ids or [0]))).all())
               for name, model, ids in (("messages", Message, msg_ids),
                                        ("replies", Reply, reply_ids))}
    origins["events"] = {r.id: r.origin_conversation_id for r in event_rows}

    last = session.scalar(select(func.max(Message.received_at)).where(Message.id.in_(msg_ids)))
    first_sent = session.scalar(select(func.min(Reply.sent_at)).where(
        Reply.id.in_(reply_ids or [0])))
    new = Conversation(
        customer_id=source.customer_id, channel=message.channel,
        status=ConversationStatus.OPEN, subject=_subject(message), team_id=team,
        assignee_id=person, opened_at=at, last_message_at=last or at,
        first_response_at=first_sent)
    session.add(new)
    session.flush()
    # its targets run from its first message, in its team's business time, like any other
    service_clock.refresh(session, new, utcnow(), no_pauses=True)
    moves: Moves = {name: [(i, o if o is not None else source.id) for i, o in found.items()]
                    for name, found in origins.items()}
    move_rows(session, moves, new.id)
    remaining = session.scalar(select(func.max(Message.received_at)).where(
        Message.conversation_id == source.id))
    if remaining is not None:
        source.last_message_at = remaining
    counts = {"messages": len(msg_ids), "replies": len(reply_ids), "events": len(event_rows)}
    audit.record(session, "conversation.split", actor=actor, conversation_id=source.id,
                 customer_id=source.customer_id, other_id=new.id, split_message=message.id,
                 following=following, **counts)
    audit.record(session, "conversation.split_from", actor=actor, conversation_id=new.id,
                 customer_id=new.customer_id, other_id=source.id, split_message=message.id,
                 following=following, to_person=person, to_team=team, **counts)
    session.flush()
    return new
