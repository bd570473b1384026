"""People and teams: who works in the inbox, and with what role."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from kartabl.models.base import Base, Role, enum_column, utcnow


class Team(Base):
    __tablename__ = "team"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    title: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    members: Mapped[list[TeamMember]] = relationship(back_populates="team")


class Person(Base):
    __tablename__ = "person"
    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(200), default="")
    email: Mapped[str | None] = mapped_column(String(320))
    role: Mapped[Role] = mapped_column(enum_column(Role, "role"))
    password_hash: Mapped[str | None] = mapped_column(String(200))
    available: Mapped[bool] = mapped_column(Boolean, default=True)
    # How many open conversations the router may give this person at once.
    capacity: Mapped[int] = mapped_column(Integer, default=20)
    locale: Mapped[str] = mapped_column(String(8), default="fa")
    # Merging two customers moves conversations between them: a permission of its own.
    can_merge: Mapped[bool] = mapped_column(Boolean, default=False)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    teams: Mapped[list[TeamMember]] = relationship(back_populates="person")

    def __repr__(self) -> str:  # never show the password hash
        return f"<Person {self.id} {self.username!r} {self.role}>"


class TeamMember(Base):
    __tablename__ = "team_member"
    team_id: Mapped[int] = mapped_column(
        ForeignKey("team.id", ondelete="CASCADE"), primary_key=True
    )
    person_id: Mapped[int] = mapped_column(
        ForeignKey("person.id", ondelete="CASCADE"), primary_key=True
    )
    team: Mapped[Team] = relationship(back_populates="members")
    person: Mapped[Person] = relationship(back_populates="teams")
