"""The inbox, everyone's main screen: ``GET /queues``.

Tabs for each queue the reader sees (:func:`console.queues.queue_names`: triage, awaiting
approval, mine, each of their teams, all open, overdue), each with its count; filters by
channel, team, status and age in a GET form, so a filtered view is a URL one can share or
reload. ``GET /queues/live`` is the same tabs and rows without the page around them: the
page asks for it on each live event (static/live.js), so the list follows the cartable
without a reload. With ``open=<id>`` the conversation is shown in a pane beside the list
(:func:`console.pages.conversation_view.pane`); a row opens there by htmx and pushes that URL.
Scope is the service's: an agent's queries only ever return their own and their teams'
conversations.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session

from console.deps import Principal, app_settings, get_db, page_principal
from console.pages._ui import AGES, handover_choices, optional_id, render
from console.pages.conversation_view import pane as conversation_pane
from console.queue_types import Targets
from console.queues import Filters, QueueInfo, list_queue, queue_counts, queue_names
from kartabl.errors import InputError, NotFound
from kartabl.models import Channel, ConversationStatus
from kartabl.notifications import mark_seen
from kartabl.workflow.access import REVIEWERS

router = APIRouter(include_in_schema=False)


@dataclass(frozen=True)
class QueueQuery:
    """The page's query string, as given (for the form and the links) and as filters."""

    queue: str
    channel: str
    team: str
    status: str
    age: str
    cursor: str

    def params(self, **override: str) -> dict[str, str]:
        """The non-empty parameters, for links that keep the filters."""
        values = {"queue": self.queue, "channel": self.channel, "team": self.team,
                  "status": self.status, "age": self.age, "cursor": self.cursor, **override}
        return {k: v for k, v in values.items() if v}

    def filters(self) -> Filters:
        if self.age and self.age not in AGES:
            raise InputError(f"unknown age filter {self.age!r}; one of {', '.join(AGES)}")
        min_age, max_age = AGES.get(self.age, (None, None))
        return Filters(
            channel=Channel(self.channel) if self.channel in set(Channel) else None,
            team_id=optional_id(self.team, "team"),
            status=ConversationStatus(self.status) if self.status else None,
            min_age=min_age, max_age=max_age, cursor=self.cursor or None,
        )


def _query(
    queue: str = "", channel: str = "", team: str = "", status: str = "", age: str = "",
    cursor: str = "",
) -> QueueQuery:
    if channel and channel not in set(Channel):
        raise InputError(f"unknown channel {channel!r}")
    if status and status not in set(ConversationStatus):
        raise InputError(f"unknown status {status!r}")
    return QueueQuery(queue[:40], channel, team[:20], status, age, cursor[:60])


def _targets(request: Request) -> Targets:
    return Targets.from_settings(app_settings(request))


def _context(db: Session, p: Principal, q: QueueQuery, targets: Targets) -> dict[str, Any]:
    queues = queue_names(db, p.person)
    # A coordinator starts at triage, an agent at their own conversations.
    name = q.queue or ("triage" if p.person.role in REVIEWERS else "mine")
    q = QueueQuery(name, q.channel, q.team, q.status, q.age, q.cursor)
    filters = q.filters()
    counts = queue_counts(db, p.person, filters, targets=targets)
    error = None
    try:
        page = list_queue(db, p.person, name, filters, targets=targets)
    except InputError as exc:  # a status this queue does not list: say so, keep the tabs
        page, error = None, str(exc)
    current = next((info for info in queues if info.name == name), QueueInfo(name, "open"))
    return {
        "q": q, "queues": queues, "counts": counts, "page": page, "current": current,
        "error": error, "teams": [info for info in queues if info.team_id is not None],
        "channels": list(Channel), "statuses": list(ConversationStatus), "ages": list(AGES),
    }


def _pane(request: Request, db: Session, p: Principal, open_id: int | None) -> dict[str, Any]:
    """The inbox's pane: the conversation ``?open=<id>`` as its page shows it (its forms
    included), or a notice when it is not there for the reader (closed to them since the
    link was made: the list stays usable rather than the whole page answering 404)."""
    if open_id is None:
        return {"open_id": None, "pane": None, "pane_missing": False}
    try:
        return {"open_id": open_id, "pane": conversation_pane(request, db, p, open_id),
                "pane_missing": False}
    except NotFound:
        return {"open_id": open_id, "pane": None, "pane_missing": True}


@router.get("/queues", response_class=HTMLResponse)
def queues_page(
    request: Request, q: QueueQuery = Depends(_query), open: str = Query("", max_length=20),
    p: Principal = Depends(page_principal), db: Session = Depends(get_db),
) -> Response:
    """The inbox: the queue list, and with ``open=<id>`` that conversation in a pane beside
    it (rows open there by htmx and push this URL, so a reload or a shared link shows the
    same list and conversation)."""
    open_id = optional_id(open, "conversation")
    pane = _pane(request, db, p, open_id)
    if pane["pane"] is not None and open_id is not None:
        # opened here as on its own page: its "new" mark goes, in this list too
        mark_seen(db, p.person.id, open_id)
        db.commit()
    return render(request, "queues.html",
                  _context(db, p, q, _targets(request)) | dict(zip(
                      ("bulk_people", "bulk_teams"), handover_choices(db), strict=True))
                  | pane)


@router.get("/queues/live", response_class=HTMLResponse)
def queues_live(
    request: Request, q: QueueQuery = Depends(_query), p: Principal = Depends(page_principal),
    db: Session = Depends(get_db),
) -> Response:
    """The tabs and rows alone, for the page's htmx polling."""
    response = render(request, "_queue_live.html", _context(db, p, q, _targets(request)))
    response.headers["Cache-Control"] = "no-store"
    return response
