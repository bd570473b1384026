"""Helpers of the search tests: conversations whose texts are indexed as the router would."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from console.search import SearchFilters, search
from kartabl import search as index
from kartabl.models import Conversation, Message, Person
from tests import factories as f


def indexed_conversation(s: Session, text: str, **kw: object) -> Conversation:
    """A conversation holding one inbound message with ``text``, indexed by the router's
    own call (:func:`kartabl.search.index_messages`): the factories bypass the router."""
    conv = f.conversation(s, text=text, **kw)  # type: ignore[arg-type]
    index.index_messages(s, s.scalars(select(Message).where(Message.conversation_id == conv.id)))
    return conv


def found(s: Session, actor: Person, query: str, **filters: object) -> set[int]:
    """The conversations the search finds for ``actor``."""
    page = search(s, actor, query, SearchFilters(**filters))  # type: ignore[arg-type]
    return {h.conversation_id for h in page.hits}
