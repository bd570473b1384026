"""Helpers of the search tests: conversations whose texts are indexed as the router would."""

from __future__ import annotations

from sqlalchemy.orm import Session

from console.search import SearchFilters, search
from kartabl import search as index
from kartabl.models import Conversation, Person
from tests import factories as f


def indexed_conversation(s: Session, text: str, **kw: object) -> Conversation:
    """A conversation holding one inbound message with ``text``, indexed (the router's
    call, :func:`kartabl.search.index_messages`)."""
    conv = f.conversation(s, text=text, **kw)  # type: ignore[arg-type]
    s.flush()
    index.index_messages(s, [m for m in s.new if False] or _messages(s, conv))
    return conv


def _messages(s: Session, conv: Conversation) -> list:  # type: ignore[type-arg]
    from sqlalchemy import select

    from kartabl.models import Message

    return list(s.scalars(select(Message).where(Message.conversation_id == conv.id)))


def found(s: Session, actor: Person, query: str, **filters: object) -> set[int]:
    """The conversations the search finds for ``actor``."""
    page = search(s, actor, query, SearchFilters(**filters))  # type: ignore[arg-type]
    return {h.conversation_id for h in page.hits}
