"""The website chat widget (issue 16): widgets, their visitors, and each visitor's event log.

- :class:`Widget`: one embeddable chat of a business's site. Its ``public_id`` is in the
  snippet (public); its ``secret`` signs the identities the site passes (HMAC-SHA256), made
  at creation, shown to admins only.
- :class:`WebchatVisitor`: an anonymous browser of a widget, known by a random ``key``
  (the signed visitor token carries it). ``last_seq`` hands out the sequence numbers of its
  log, under the row's lock, in the transaction that writes the event.
- :class:`WebchatEvent`: the visitor's chat as the visitor sees it, in order: their own
  messages, the approved replies, "your answer is being prepared" notices, closes. ``seq``
  is the SSE id: a reconnect with ``Last-Event-ID`` gets every row after it. ``key`` makes
  each event idempotent (``m:<client id>``, ``r:<reply idempotency key>``, ``p:<reply id>``,
  ``c:<conversation id>:<closed at>``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from kartabl.models.base import Base, utcnow


class Widget(Base):
    __tablename__ = "webchat_widget"
    id: Mapped[int] = mapped_column(primary_key=True)
    public_id: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    # The HMAC key of the identities the site passes: random, made at creation.
    secret: Mapped[str] = mapped_column(String(100))
    # Exact origins ("https://shop.example"), the only ones the widget's endpoints answer.
    origins: Mapped[list[Any]] = mapped_column(default=list)
    team_id: Mapped[int | None] = mapped_column(ForeignKey("team.id", ondelete="SET NULL"))
    color: Mapped[str] = mapped_column(String(16), default="#1f6feb")
    text_color: Mapped[str] = mapped_column(String(16), default="#ffffff")
    greeting_fa: Mapped[str] = mapped_column(Text, default="")
    greeting_en: Mapped[str] = mapped_column(Text, default="")
    offline_fa: Mapped[str] = mapped_column(Text, default="")
    offline_en: Mapped[str] = mapped_column(Text, default="")
    ask_phone: Mapped[bool] = mapped_column(default=False)
    ask_email: Mapped[bool] = mapped_column(default=False)
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class WebchatVisitor(Base):
    __tablename__ = "webchat_visitor"
    id: Mapped[int] = mapped_column(primary_key=True)
    widget_id: Mapped[int] = mapped_column(ForeignKey("webchat_widget.id", ondelete="CASCADE"),
                                           index=True)
    key: Mapped[str] = mapped_column(String(64), unique=True)  # the message's sender
    last_seq: Mapped[int] = mapped_column(Integer, default=0)
    # A verified identity (the site's HMAC): the visitor's messages are the customer's.
    identity_kind: Mapped[str | None] = mapped_column(String(10))
    identity_address: Mapped[str | None] = mapped_column(String(320))
    # What the pre-chat form gave, unverified: a hint for staff and the reply path only.
    contact_kind: Mapped[str | None] = mapped_column(String(10))
    contact_address: Mapped[str | None] = mapped_column(String(320))
    locale: Mapped[str] = mapped_column(String(5), default="fa")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    # -- offline continuation --
    # When an event stream of this visitor was last seen open: set when one opens, at least
    # every third of the "away" time while it stays open, and when it ends. Older than the
    # away time (or NULL): the visitor is gone (channels.webchat.offline.is_gone).
    stream_seen_at: Mapped[datetime | None]


class WebchatEvent(Base):
    __tablename__ = "webchat_event"
    __table_args__ = (
        UniqueConstraint("visitor_id", "seq", name="uq_webchat_event_visitor_seq"),
        UniqueConstraint("visitor_id", "key", name="uq_webchat_event_visitor_key"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    visitor_id: Mapped[int] = mapped_column(
        ForeignKey("webchat_visitor.id", ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(16))  # message | reply | preparing | closed
    key: Mapped[str] = mapped_column(String(600))
    text: Mapped[str] = mapped_column(Text, default="")
    # No foreign keys: a merge or a split moves messages and replies, the log stays as shown.
    message_id: Mapped[int | None] = mapped_column(Integer, index=True)
    reply_id: Mapped[int | None] = mapped_column(Integer, index=True)
    conversation_id: Mapped[int | None] = mapped_column(Integer, index=True)  # a close's
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class WebchatOffline(Base):
    """An approved widget reply that also went by SMS (or email) to the contact the visitor
    typed in the pre-chat form (:mod:`channels.webchat.offline`): ``reply_id`` is that
    second, outbound reply row in the same conversation; ``source_reply_id`` the widget
    reply it copies (unique: one continuation per reply, however often the widget's send
    is retried). ``address`` is unverified and is never made an identity: the customer's
    answer from it joins this conversation only (router.offline_answers)."""

    __tablename__ = "webchat_offline"
    id: Mapped[int] = mapped_column(primary_key=True)
    reply_id: Mapped[int] = mapped_column(ForeignKey("reply.id", ondelete="CASCADE"),
                                          unique=True)
    source_reply_id: Mapped[int] = mapped_column(Integer, unique=True)
    conversation_id: Mapped[int] = mapped_column(Integer, index=True)
    visitor_id: Mapped[int | None] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(10))  # phone | email
    address: Mapped[str] = mapped_column(String(320), index=True)
    reason: Mapped[str] = mapped_column(String(16))  # gone | closed_hours
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
