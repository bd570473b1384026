"""A user's message on an API channel taken the real way (ingest, routing), and a reply to it
drafted, submitted and approved through the workflow: what the outbox tests start from."""

from __future__ import annotations

import itertools

from sqlalchemy.orm import Session, sessionmaker

from kartabl import workflow
from kartabl.ingest import store
from kartabl.messages import InboundMessage
from kartabl.models import Channel, Conversation, Message, Role
from responders.preview import REPLY_CHECK
from router.batch import route_batch
from tests.factories import person, routing_args, team

_seq = itertools.count(1)


def user_message(db: sessionmaker[Session], *, channel: str = "shop", user: str = "u-1042",
                 text: str = "سفارش ۷۷ کجاست؟") -> int:
    """Store and route a message of ``user`` on API channel ``channel``; its conversation."""
    msg = InboundMessage(channel=Channel.API, external_id=f"{channel}:key-{next(_seq)}",
                         sender=f"{channel}:{user}", text=text, recipient=channel)
    with db() as s:
        stored = store(s, msg)
        route_batch(s, [stored.message_id], **routing_args())
        s.commit()
        row = s.get(Message, stored.message_id)
        assert row is not None and row.conversation_id is not None
        return row.conversation_id


def approve_reply(db: sessionmaker[Session], conversation_id: int,
                  body: str = "سفارش شما فردا می‌رسد") -> int:
    """An agent of a new team drafts ``body``, a coordinator approves it; the reply's id."""
    with db() as s:
        support = team(s)
        agent = person(s, teams=[support])
        coordinator = person(s, role=Role.COORDINATOR)
        conv = s.get(Conversation, conversation_id)
        assert conv is not None
        conv.team_id, conv.assignee_id = support.id, agent.id
        s.flush()
        reply = workflow.draft(s, agent, conv.id, body, check=REPLY_CHECK)
        workflow.submit(s, agent, reply.id, check=REPLY_CHECK)
        workflow.approve(s, coordinator, reply.id, check=REPLY_CHECK)
        s.commit()
        return reply.id


def approved_reply(db: sessionmaker[Session], **kw: str) -> int:
    return approve_reply(db, user_message(db, **kw))
