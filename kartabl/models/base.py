"""The ground of the models: the declarative base and its conventions, and the enums.

Conventions:
- every timestamp is stored as naive UTC and read back as aware UTC (:class:`UTCDateTime`),
  so SQLite and PostgreSQL compare alike;
- enums are stored as short strings with a CHECK constraint (portable, readable in SQL):
  :func:`enum_column`;
- constraints are named, so Alembic's batch mode can alter them on SQLite.
"""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import JSON, DateTime, Enum, MetaData, TypeDecorator
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database; use kartabl.models.utcnow()")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


class Base(DeclarativeBase):
    metadata = MetaData(
        naming_convention={
            "ix": "ix_%(column_0_label)s",
            "uq": "uq_%(table_name)s_%(column_0_name)s",
            "ck": "ck_%(table_name)s_%(constraint_name)s",
            "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
            "pk": "pk_%(table_name)s",
        }
    )
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UTCDateTime(),
        dict[str, Any]: JSON,
        list[Any]: JSON,
    }


def enum_column(cls: type[enum.StrEnum], name: str) -> Enum:
    return Enum(
        cls,
        name=name,
        native_enum=False,
        create_constraint=True,
        length=24,
        values_callable=lambda e: [m.value for m in e],
    )


class Channel(enum.StrEnum):
    EMAIL = "email"
    SMS = "sms"
    TELEGRAM = "telegram"
    BALE = "bale"
    # issue 16's channels: the website chat widget, the generic signed-HTTP API channel,
    # Meta's two (Instagram Direct, WhatsApp Cloud API) and Rubika's Bot API
    WEBCHAT = "webchat"
    API = "api"
    INSTAGRAM = "instagram"
    WHATSAPP = "whatsapp"
    RUBIKA = "rubika"


class Role(enum.StrEnum):
    ADMIN = "admin"
    COORDINATOR = "coordinator"
    AGENT = "agent"


class ConversationStatus(enum.StrEnum):
    OPEN = "open"
    # Waiting on the customer: out of the working queues, the resolution clock paused
    # (a ConversationPause row); the customer's next message opens it again.
    WAITING = "waiting"
    # Snoozed until Conversation.snoozed_until, or until the customer writes, if sooner.
    SNOOZED = "snoozed"
    CLOSED = "closed"


class Direction(enum.StrEnum):
    IN = "in"
    OUT = "out"


class MessageKind(enum.StrEnum):
    MESSAGE = "message"
    AUTO_REPLY = "auto_reply"
    BOUNCE = "bounce"


class ReplyState(enum.StrEnum):
    DRAFT = "draft"
    PENDING_APPROVAL = "pending_approval"
    APPROVED = "approved"
    SENDING = "sending"
    SENT = "sent"
    DELIVERED = "delivered"
    FAILED = "failed"
    REJECTED = "rejected"
