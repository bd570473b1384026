"""Sign-in state of the console and the API: sessions, API tokens, login attempts and
password resets.

No secret is stored in the clear: a session cookie, an API token and a reset link carry a
random token; the table keeps its SHA-256 (the tokens are 256-bit random, so a slow hash
adds nothing and a fast one keeps every request's lookup one index probe).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from kartabl.models.base import Base, utcnow
from kartabl.models.people import Person


class WebSession(Base):
    """A signed-in browser. Revoked rows stay (who was signed in from where, and when)."""

    __tablename__ = "web_session"
    __table_args__ = (Index("ix_web_session_person", "person_id", "revoked_at"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]
    ip: Mapped[str] = mapped_column(String(64), default="")
    user_agent: Mapped[str] = mapped_column(String(300), default="")
    # The last refused form of this browser (post/redirect/get: console/flash.py): its id,
    # the reason and what the person typed, shown by the page the refusal redirects to.
    flash: Mapped[dict[str, Any] | None]
    person: Mapped[Person] = relationship()


class ApiToken(Base):
    """A token for an integration. It acts as its person, narrowed to its scopes."""

    __tablename__ = "api_token"
    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    # The first characters of the token, shown in listings so people can tell tokens apart.
    prefix: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(100))
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id", ondelete="CASCADE"), index=True)
    scopes: Mapped[list[Any]] = mapped_column(default=list)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime | None]
    expires_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
    person: Mapped[Person] = relationship()


class LoginAttempt(Base):
    """One sign-in attempt, for rate limiting across processes (and for the audit)."""

    __tablename__ = "login_attempt"
    __table_args__ = (
        Index("ix_login_attempt_username", "username", "at"),
        Index("ix_login_attempt_ip", "ip", "at"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    username: Mapped[str] = mapped_column(String(64))
    ip: Mapped[str] = mapped_column(String(64))
    ok: Mapped[bool] = mapped_column(default=False)


class PasswordReset(Base):
    """A one-time link to set a new password, made by an admin (console or CLI)."""

    __tablename__ = "password_reset"
    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id", ondelete="CASCADE"))
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("person.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]
