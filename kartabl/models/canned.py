"""Canned responses: saved replies an agent inserts into the composer by ``/shortcut``.

Global (``team_id`` NULL) or one team's. Each has a Persian and an English text; the one
inserted follows the customer's language (:mod:`kartabl.language`). The shortcut is unique
across all of them, global and per team: an agent sees the global ones and their teams' at
once, and ``/refund`` must mean one thing in the composer.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from kartabl.models.base import Base, utcnow
from kartabl.models.people import Team


class CannedResponse(Base):
    __tablename__ = "canned_response"
    __table_args__ = (Index("ix_canned_response_team", "team_id", "shortcut"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    # Lower-case ASCII letters, digits, "-" and "_" (kartabl.canned.SHORTCUT), so typing it
    # after "/" needs no keyboard switch in a Persian layout's ASCII mode.
    shortcut: Mapped[str] = mapped_column(String(40), unique=True)
    team_id: Mapped[int | None] = mapped_column(ForeignKey("team.id", ondelete="CASCADE"))
    body_fa: Mapped[str] = mapped_column(Text, default="")
    body_en: Mapped[str] = mapped_column(Text, default="")
    # How many times it was expanded into a composer (kartabl.canned.expand counts).
    use_count: Mapped[int] = mapped_column(Integer, default=0)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("person.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    team: Mapped[Team | None] = relationship()
