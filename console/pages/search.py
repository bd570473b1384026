"""Search inside messages: ``GET /search?q=…&channel=…&team=…&assignee=…&status=…&from=…&to=…``.

The header's search box (base.html) submits here; the filters are a GET form, so a search
is a URL one can share or reload. Dates are typed in Jalali or Gregorian whichever the
locale (:func:`console.search.parse_day`). "More" asks for the next page by htmx (the
``cursor``), which answers with the rows alone; without JavaScript the same link loads the
next page whole. Every rule (scope, matching) is :func:`console.search.search`'s.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session

from console.deps import Principal, get_db, page_principal
from console.pages._ui import handover_choices, optional_id, render
from console.queues import queue_names
from console.refusals import refusal, refusal_text
from console.search import SearchFilters, SearchPage, parse_day, search
from console.search_query import MAX_QUERY
from console.templating import request_locale
from kartabl.errors import InputError
from kartabl.models import Channel, ConversationStatus

router = APIRouter(include_in_schema=False)


def _short() -> Any:
    # one Query per parameter: FastAPI writes the parameter's name into the object it is
    # given, so a shared one would read every parameter from the first one's name
    return Query("", max_length=60)


@dataclass(frozen=True)
class SearchQuery:
    """The page's query string as given: for the form, the links and the filters."""

    q: str
    channel: str
    team: str
    assignee: str
    status: str
    since: str
    until: str
    cursor: str

    def params(self, **override: str) -> dict[str, str]:
        values = {"q": self.q, "channel": self.channel, "team": self.team,
                  "assignee": self.assignee, "status": self.status, "from": self.since,
                  "to": self.until, "cursor": self.cursor, **override}
        return {k: v for k, v in values.items() if v}

    def filters(self, locale: str) -> SearchFilters:
        if self.channel and self.channel not in set(Channel):
            raise InputError(f"unknown channel {self.channel!r}")
        if self.status and self.status not in set(ConversationStatus):
            raise InputError(f"unknown status {self.status!r}")
        return SearchFilters(
            channel=Channel(self.channel) if self.channel else None,
            team_id=optional_id(self.team, "team"),
            assignee_id=optional_id(self.assignee, "person"),
            status=ConversationStatus(self.status) if self.status else None,
            since=parse_day(self.since, locale), until=parse_day(self.until, locale),
            cursor=self.cursor or None)


def _query(q: str = Query("", max_length=2000), channel: str = _short(),
           team: str = _short(), assignee: str = _short(), status: str = _short(),
           since: str = Query("", alias="from", max_length=60),
           until: str = Query("", alias="to", max_length=60),
           cursor: str = _short()) -> SearchQuery:
    return SearchQuery(q[:MAX_QUERY], channel, team, assignee, status, since, until, cursor)


@router.get("/search", response_class=HTMLResponse)
def search_page(request: Request, sq: SearchQuery = Depends(_query),
                p: Principal = Depends(page_principal),
                db: Session = Depends(get_db)) -> Response:
    locale = request_locale(request)
    error: Any = None
    page = SearchPage(sq.q)
    try:
        if sq.q.strip():
            page = search(db, p.person, sq.q, sq.filters(locale))
    except InputError as exc:  # a date or a filter that is not one: said, the form kept
        error = refusal_text(locale, refusal(exc))
    context = {"sq": sq, "page": page, "error": error}
    if request.headers.get("HX-Request") and sq.cursor:
        return render(request, "_search_rows.html", context)
    people, _ = handover_choices(db)
    teams = [info for info in queue_names(db, p.person) if info.team_id is not None]
    return render(request, "search.html", context | {
        "channels": list(Channel), "statuses": list(ConversationStatus), "teams": teams,
        "people": people})
