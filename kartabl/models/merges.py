"""Merged conversations: one row per merge, with everything it moved, so it can be undone.

A merge moves the rows of conversation ``source_id`` (B) into ``target_id`` (A) and keeps B
as a closed row pointing to A (``Conversation.merged_into_id``). ``moved`` lists, per table
(``messages``, ``replies``, ``events``), every moved row as ``[id, origin before]``: the
value ``origin_conversation_id`` had before the merge set it, which an undo puts back.
``source_state`` is B as it was (status, resolved_at, snoozed_until), ``target_state`` A's
fields the merge changed (last_message_at). An undo is allowed while nothing new happened
on A since: no event on A after ``target_event_id``, no message or reply on A newer than
``last_message_id`` / ``last_reply_id`` (:mod:`kartabl.workflow.merge`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index
from sqlalchemy.orm import Mapped, mapped_column

from kartabl.models.base import Base, utcnow


class ConversationMerge(Base):
    __tablename__ = "conversation_merge"
    __table_args__ = (
        Index("ix_conversation_merge_target", "target_id", "id"),
        Index("ix_conversation_merge_source", "source_id", "id"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    source_id: Mapped[int] = mapped_column(ForeignKey("conversation.id"))
    target_id: Mapped[int] = mapped_column(ForeignKey("conversation.id"))
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("person.id"))
    merged_at: Mapped[datetime] = mapped_column(default=utcnow)
    moved: Mapped[dict[str, Any]] = mapped_column(default=dict)
    source_state: Mapped[dict[str, Any]] = mapped_column(default=dict)
    target_state: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # the audit events the merge wrote on A and on B
    target_event_id: Mapped[int | None] = mapped_column(ForeignKey("event.id"))
    source_event_id: Mapped[int | None] = mapped_column(ForeignKey("event.id"))
    # the newest message and reply on A right after the merge: anything newer is news
    last_message_id: Mapped[int | None]
    last_reply_id: Mapped[int | None]
    undone_at: Mapped[datetime | None]
    undone_by_id: Mapped[int | None] = mapped_column(ForeignKey("person.id"))
