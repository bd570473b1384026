"""Bulk actions from the queue page: ``POST /queues/bulk`` and its result page.

The queue table's checkboxes (or "all matching", which re-runs the page's filter on the
server) name the conversations; the bar above the table names the action. The step runs,
commits, and answers 303 to ``/queues/bulk/<id>``: the result is the ``bulk.applied``
audit row itself, so a reload shows it again and submits nothing; its actor may read it,
and the coordinators and admins, who oversee every queue.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from console.bulk import BulkAction, matching_ids, run
from console.deps import PathId, Principal, get_db, page_principal
from console.flash import refused
from console.pages._ui import form_text, optional_id, render
from console.pages.queues import QueueQuery, _query, _targets
from kartabl.errors import InputError, KartablError, NotFound
from kartabl.models import Conversation, Event
from kartabl.workflow.access import REVIEWERS
from kartabl.workflow.bulk import MAX_ITEMS

router = APIRouter(include_in_schema=False)
Field = Annotated[str, Form(max_length=40)]
Note = Annotated[str, Form(max_length=2_000)]


def _ids(values: list[str]) -> list[int]:
    ids = []
    for value in values[: MAX_ITEMS + 1]:
        cid = optional_id(value, "conversation")
        if cid is not None:
            ids.append(cid)
    return ids


@router.post("/queues/bulk")
def bulk(
    request: Request, q: QueueQuery = Depends(_query), action: Field = "",
    ids: Annotated[list[str] | None, Form()] = None, all_matching: Field = "",
    person_id: Field = "", team_id: Field = "", note: Note = "", tag: Field = "",
    p: Principal = Depends(page_principal), db: Session = Depends(get_db),
) -> Response:
    try:
        if all_matching == "1":
            chosen = matching_ids(db, p.person, q.queue or "triage", q.filters(),
                                  targets=_targets(request))
            if not chosen:
                raise InputError("no conversation matches the filter")
        else:
            chosen = _ids(ids or [])
        result = run(db, p.person, BulkAction(
            action, optional_id(person_id, "person"), optional_id(team_id, "team"),
            form_text(note), tag), chosen)
    except NotFound:
        raise  # nothing the reader can see: the same 404 as a missing id (nothing committed)
    except KartablError as exc:  # wrong as a whole: the reason on a GET page, in their words
        return refused(db, p, exc, "/refused")
    db.commit()
    if not result.event_id:  # nothing changed (so nothing recorded): the reasons, at once
        return render(request, "bulk_result.html", {
            "action": result.action, "done": [], "subjects": {},
            "refused": result.summary()["refused"]}, status_code=409)
    return RedirectResponse(f"/queues/bulk/{result.event_id}", status_code=303)


@router.get("/queues/bulk/{event_id}", response_class=HTMLResponse)
def bulk_result(
    request: Request, event_id: PathId, p: Principal = Depends(page_principal),
    db: Session = Depends(get_db),
) -> Response:
    event = db.get(Event, event_id)
    mine = event is not None and (event.actor_id == p.person.id or p.person.role in REVIEWERS)
    if event is None or event.kind != "bulk.applied" or not mine:
        raise NotFound(f"bulk result {event_id} does not exist")
    data = event.data
    done = list(data.get("done", []))
    subjects = dict(db.query(Conversation.id, Conversation.subject)
                    .filter(Conversation.id.in_(done)).all()) if done else {}
    return render(request, "bulk_result.html", {
        "action": data.get("action", ""), "done": done, "refused": data.get("refused", []),
        "subjects": subjects, "at": event.at,
    })

