"""The search index: one row per searchable text (kartabl.search writes and reads it)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from kartabl.models.base import Base, utcnow


class SearchDoc(Base):
    """An inbound message (subject and text), a private note or a sent reply, as
    :func:`kartabl.search.search_form` normalised it, written in the transaction that
    stores its source. The full-text and trigram indexes over ``text`` are expressions
    (PostgreSQL) or FTS5 tables (SQLite): migration 0002, which autogenerate cannot write."""

    __tablename__ = "search_doc"
    __table_args__ = (
        UniqueConstraint("source", "source_id", name="uq_search_doc_source"),
        # results are newest first, a page at a time: a common word walks this in order
        Index("ix_search_doc_at", "at", "id"),
        # a phone number's conversations; and moving a conversation's documents
        Index("ix_search_doc_conversation", "conversation_id", "at"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversation.id"))
    # 'message', 'note' (an event) or 'reply'; source_id is that row's id
    source: Mapped[str] = mapped_column(String(10))
    source_id: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    text: Mapped[str] = mapped_column(Text, default="")


# What migration 0002 adds beside the models (expression indexes, FTS5 tables and their
# shadow tables): the schema comparison (alembic's include_object) leaves these names out.
UNMODELLED_PREFIXES = ("search_fts", "search_tri", "ix_search_doc_fts", "ix_search_doc_trgm")


def modelled(obj: object, name: str | None, type_: str, reflected: bool,
             compare_to: object) -> bool:
    """Alembic's ``include_object``: False for what :data:`UNMODELLED_PREFIXES` names."""
    return not (name or "").startswith(UNMODELLED_PREFIXES)
