"""Notifications (a per-person feed) and what each person has seen of each conversation.

A :class:`Notification` is written in the transaction of the step that causes it
(:mod:`kartabl.notifications`); ``read_at`` NULL is unread. ``key`` makes a notification
that must exist once (a breach warning per conversation, per person, per target) unique.

A :class:`ConversationSeen` row is the conversation's ``last_message_at`` (the newest
customer message: only inbound messages move it, :mod:`router.threading`) as it stood when
the person last opened the conversation. A queue row is "new" for the person when the
conversation's ``last_message_at`` is later, or when no row exists: one primary-key lookup
per row of the page, never a scan.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from kartabl.models.base import Base, utcnow


class Notification(Base):
    __tablename__ = "notification"
    __table_args__ = (
        # the feed, newest first, and mark-all-read
        Index("ix_notification_person", "person_id", "id"),
        # the header's unread count: the unread rows alone
        Index("ix_notification_unread", "person_id",
              postgresql_where=text("read_at IS NULL"), sqlite_where=text("read_at IS NULL")),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id", ondelete="CASCADE"))
    # assigned | referred | team_referred | approved | rejected | answered | mentioned | breach
    # | schedule_held
    kind: Mapped[str] = mapped_column(String(24))
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("person.id", ondelete="SET NULL"))
    conversation_id: Mapped[int | None] = mapped_column(
        ForeignKey("conversation.id", ondelete="CASCADE"))
    reply_id: Mapped[int | None] = mapped_column(ForeignKey("reply.id", ondelete="CASCADE"))
    # the reviewer's comment, the referral note, the note's start; plain text
    text: Mapped[str] = mapped_column(Text, default="")
    key: Mapped[str | None] = mapped_column(String(120), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    read_at: Mapped[datetime | None]


class ConversationSeen(Base):
    __tablename__ = "conversation_seen"
    person_id: Mapped[int] = mapped_column(
        ForeignKey("person.id", ondelete="CASCADE"), primary_key=True)
    conversation_id: Mapped[int] = mapped_column(
        ForeignKey("conversation.id", ondelete="CASCADE"), primary_key=True)
    last_message_at: Mapped[datetime]
    seen_at: Mapped[datetime] = mapped_column(default=utcnow)
