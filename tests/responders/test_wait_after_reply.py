"""A team whose policy is ``wait_after_reply``: its conversation waits on the customer once
a reply is sent (the outbox's transaction), audited as the system; other teams' stay open."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

import config.routing
import config.settings
from kartabl import service_clock, workflow
from kartabl.models import Conversation, ConversationPause, ConversationStatus, Role
from responders.dispatch import dispatch_reply
from responders.preview import REPLY_CHECK
from tests.factories import conversation, events, person, team


def _reply(db: sessionmaker[Session], team_name: str) -> tuple[int, int]:
    with db() as s:
        t = team(s, team_name)
        agent = person(s, teams=[t])
        coordinator = person(s, role=Role.COORDINATOR)
        conv = conversation(s, team=t, assignee=agent)
        reply = workflow.draft(s, agent, conv.id, "ارسال شد", check=REPLY_CHECK)
        workflow.submit(s, agent, reply.id, check=REPLY_CHECK)
        workflow.approve(s, coordinator, reply.id, check=REPLY_CHECK)
        s.commit()
        return reply.id, conv.id


def test_sent_reply_sets_waiting_per_team_policy(
    db: sessionmaker[Session], sandbox, routing_file: Path
) -> None:
    routing_file.write_text(
        '[[teams]]\nname = "patient"\nwait_after_reply = true\n\n'
        '[[teams]]\nname = "eager"\n', encoding="utf-8")
    config.routing.get_routing.cache_clear()
    service_clock.configure(config.settings.get_settings(), config.routing.get_routing())
    waiting_reply, waiting_conv = _reply(db, "patient")
    open_reply, open_conv = _reply(db, "eager")
    assert dispatch_reply(db, waiting_reply) == "sent"
    assert dispatch_reply(db, open_reply) == "sent"
    with db() as s:
        assert s.get(Conversation, waiting_conv).status == ConversationStatus.WAITING
        assert s.get(Conversation, open_conv).status == ConversationStatus.OPEN
        [pause] = s.scalars(select(ConversationPause))
        assert (pause.conversation_id, pause.ended_at) == (waiting_conv, None)
        [event] = events(s, "conversation.waiting")
        assert (event.actor_id, event.data["reason"]) == (None, "reply_sent")
