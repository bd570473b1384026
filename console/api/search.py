"""The JSON API of search inside messages: ``GET /api/v1/search`` (token scope ``read``).

The same service as the console's page (:func:`console.search.search`): the same syntax
(README "Search"), filters and scope. Only what the caller may open is ever returned: an
agent's search leaves out other teams' conversations entirely (no count, no hint).

Status codes (after 401 unsigned and 403 for a token without ``read``): **400** a date,
a range or a cursor that is not one; **422** a malformed request.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from console.api.schemas import MAX_ID, errors
from console.deps import Principal, get_db, require_scope
from console.search import DEFAULT_LIMIT, MAX_LIMIT, SearchFilters, parse_day, search
from console.search_query import MAX_QUERY
from kartabl.models import Channel, ConversationStatus

router = APIRouter(prefix="/api/v1", tags=["search"])

Read = Annotated[Principal, Depends(require_scope("read"))]
Db = Annotated[Session, Depends(get_db)]
Id = Annotated[int | None, Query(ge=1, le=MAX_ID)]
_DAY = "A day, inclusive, in Tehran time: ISO 2026-12-01 or Jalali 1405/09/10 (any digits)."


class SearchHitOut(BaseModel):
    conversation_id: int
    source: Literal["message", "note", "reply"] = Field(
        description="Where it matched: an inbound message (subject or text), a private "
                    "note, or a sent reply.")
    source_id: int = Field(description="The message's, note event's or reply's id.")
    at: datetime = Field(description="When the message came, the note was written or the "
                                     "reply was sent.")
    subject: str = Field(description="The conversation's subject.")
    channel: str
    status: str = Field(description="The conversation's status.")
    customer_id: int
    customer_name: str
    snippet_html: str = Field(description=(
        "Around the first match, as HTML: the text escaped, each match in <mark>…</mark>."))


class SearchPageOut(BaseModel):
    query: str
    hits: list[SearchHitOut] = Field(description="Newest first.")
    next_cursor: str | None = Field(description="Pass as cursor for the next page; null at "
                                                "the end.")


@router.get("/search", summary="Search inside messages, notes and sent replies",
            responses=errors(400, 401, 403))
def search_messages(
    p: Read, db: Db,
    q: Annotated[str, Query(min_length=1, max_length=MAX_QUERY, description=(
        'Words (all must occur), "quoted phrases", -excluded words; Persian letter '
        "forms, digits, half-spaces and diacritics do not matter; English is stemmed; a "
        "phone number in any form finds that customer's conversations."))],
    channel: Channel | None = None, team_id: Id = None, assignee_id: Id = None,
    status: ConversationStatus | None = None,
    since: Annotated[str | None, Query(alias="from", max_length=40, description=_DAY)] = None,
    until: Annotated[str | None, Query(alias="to", max_length=40, description=_DAY)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    cursor: Annotated[str | None, Query(max_length=60, description=(
        "The previous page's next_cursor."))] = None,
) -> SearchPageOut:
    """Hits in the caller's scope, newest first, keyset-paged: follow ``next_cursor``."""
    filters = SearchFilters(channel=channel, team_id=team_id, assignee_id=assignee_id,
                            status=status, since=parse_day(since, "en"),
                            until=parse_day(until, "en"), limit=limit, cursor=cursor)
    page = search(db, p.person, q, filters)
    return SearchPageOut(query=page.query, next_cursor=page.next_cursor, hits=[
        SearchHitOut(conversation_id=h.conversation_id, source=h.source,  # type: ignore[arg-type]
                     source_id=h.source_id, at=h.at, subject=h.subject, channel=h.channel,
                     status=h.status, customer_id=h.customer_id,
                     customer_name=h.customer_name, snippet_html=str(h.snippet))
        for h in page.hits])
