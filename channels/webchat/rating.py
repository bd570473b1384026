"""Satisfaction at close: the visitor rates a closed conversation 1-5, with an optional
comment, from the widget.

The POST names the ``closed`` event of the visitor's own log by its sequence number, so a
visitor can rate only a conversation they were shown closing (the conversation id is never
given by the browser). A conversation is rated **once**: the first rating is kept, and a
second is refused (409) unless it is the same (a retried POST answers 200 again). The
comment is at most :data:`MAX_COMMENT` characters. The rating is stored on the conversation
(``satisfaction_*`` columns) and audited as ``conversation.rated``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from channels.webchat import log as wlog
from kartabl import audit
from kartabl.models import Conversation, WebchatEvent, utcnow

MAX_COMMENT: Final = 1000


@dataclass(frozen=True, slots=True)
class Rated:
    status: int  # 200 stored (or the same again), 404 no such close, 409 rated already
    detail: str = ""


def rate(session: Session, visitor_id: int, seq: int, score: int, comment: str) -> Rated:
    """Store the rating of the conversation whose close is event ``seq`` of the visitor
    (commits)."""
    conversation_id = session.scalar(select(WebchatEvent.conversation_id).where(
        WebchatEvent.visitor_id == visitor_id, WebchatEvent.seq == seq,
        WebchatEvent.kind == wlog.CLOSED))
    if conversation_id is None:
        return Rated(404, "no such closed conversation in this chat")
    now = utcnow()
    # one statement: two racing POSTs cannot both store theirs
    result = session.execute(
        update(Conversation)
        .where(Conversation.id == conversation_id, Conversation.satisfaction_at.is_(None))
        .values(satisfaction_score=score, satisfaction_comment=comment or None,
                satisfaction_at=now)
        .execution_options(synchronize_session=False))
    if not getattr(result, "rowcount", 0):
        session.rollback()
        kept = session.execute(select(Conversation.satisfaction_score,
                                      Conversation.satisfaction_comment)
                               .where(Conversation.id == conversation_id)).one()
        if tuple(kept) == (score, comment or None):
            return Rated(200)  # the same rating again: a retry
        return Rated(409, "this conversation was rated already")
    audit.record(session, "conversation.rated", conversation_id=conversation_id,
                 score=score, comment=bool(comment))
    session.commit()
    return Rated(200)
