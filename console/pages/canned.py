"""Canned responses in the console: the library and its forms.

- ``GET /canned``: the responses the reader sees (global and their teams'; every one for
  coordinators and admins), with their shortcut, team, texts and use count.
- ``GET /canned/new`` and ``GET /canned/{id}``: the form, for coordinators and admins (an
  agent gets the response read-only, 404 for another team's as for a conversation, and
  on ``/canned/new`` a note that coordinators manage them).
- ``POST /canned``, ``POST /canned/{id}``, ``POST /canned/{id}/delete``: one change each,
  303 back to the list with a message; a refused change shows the form again with the
  reason and what was typed.

The composer's ``/shortcut`` goes through the JSON API (``console/static/canned.js`` calls
``GET /api/v1/canned?q=`` and ``POST /api/v1/conversations/{id}/canned/expand`` with the
page's session and CSRF header). Every rule is :mod:`kartabl.canned`'s.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from console.deps import PathId, Principal, get_db, page_principal
from console.http_errors import http_status
from console.pages._ui import back, form_text, optional_id, render
from kartabl import canned
from kartabl.errors import KartablError, NotFound
from kartabl.models import CannedResponse, Team
from kartabl.workflow.access import REVIEWERS

router = APIRouter(include_in_schema=False)
Short = Annotated[str, Form(max_length=400)]
Body = Annotated[str, Form(max_length=canned.MAX_BODY + 1000)]  # the service says too long


def _teams(db: Session) -> dict[int, Team]:
    return {t.id: t for t in db.scalars(select(Team).order_by(Team.name))}


@router.get("/canned", response_class=HTMLResponse)
def canned_list(
    request: Request, p: Principal = Depends(page_principal), db: Session = Depends(get_db),
) -> Response:
    return render(request, "canned.html", {
        "rows": canned.list_visible(db, p.person), "teams": _teams(db),
        "manage": p.person.role in REVIEWERS, "done": request.query_params.get("done", "")[:40],
    })


def _form(request: Request, db: Session, p: Principal, row: CannedResponse | None, *,
          error: str = "", kept: dict[str, str] | None = None, status: int = 200) -> Response:
    values = kept or ({"name": row.name, "shortcut": row.shortcut, "body_fa": row.body_fa,
                       "body_en": row.body_en, "team_id": str(row.team_id or "")}
                      if row is not None else {})
    return render(request, "canned_form.html", {
        "row": row, "v": values, "teams": _teams(db), "error": error,
        "manage": p.person.role in REVIEWERS, "variables": canned.VARIABLES,
    }, status_code=status)


@router.get("/canned/new", response_class=HTMLResponse)
def new_form(
    request: Request, p: Principal = Depends(page_principal), db: Session = Depends(get_db),
) -> Response:
    # An agent gets the page saying who manages them (a link may lead anyone here); the
    # POST is what refuses them.
    return _form(request, db, p, None)


@router.get("/canned/{canned_id}", response_class=HTMLResponse)
def edit_form(
    request: Request, canned_id: PathId, p: Principal = Depends(page_principal),
    db: Session = Depends(get_db),
) -> Response:
    return _form(request, db, p, canned.get_visible(db, p.person, canned_id))


def _save(request: Request, db: Session, p: Principal, row: CannedResponse | None,
          kept: dict[str, str], done: str, step: Callable[[], object]) -> Response:
    try:
        step()
    except NotFound:
        raise  # not there for this reader: the app's 404 page
    except KartablError as exc:
        db.rollback()
        fresh = db.get(CannedResponse, row.id) if row is not None else None
        return _form(request, db, p, fresh, error=str(exc), kept=kept, status=http_status(exc))
    db.commit()
    return back("/canned", done)


def _input(name: str, shortcut: str, body_fa: str, body_en: str,
           team_id: str) -> canned.CannedInput:
    return canned.CannedInput(name, shortcut, form_text(body_fa), form_text(body_en),
                              optional_id(team_id, "team"))


@router.post("/canned")
def create(
    request: Request, name: Short = "", shortcut: Short = "", body_fa: Body = "",
    body_en: Body = "", team_id: Short = "", p: Principal = Depends(page_principal),
    db: Session = Depends(get_db),
) -> Response:
    kept = {"name": name, "shortcut": shortcut, "body_fa": body_fa, "body_en": body_en,
            "team_id": team_id}
    return _save(request, db, p, None, kept, "canned_created", lambda: canned.create(
        db, p.person, _input(name, shortcut, body_fa, body_en, team_id)))


@router.post("/canned/{canned_id}")
def edit(
    request: Request, canned_id: PathId, name: Short = "", shortcut: Short = "",
    body_fa: Body = "", body_en: Body = "", team_id: Short = "",
    p: Principal = Depends(page_principal), db: Session = Depends(get_db),
) -> Response:
    row = canned.get_visible(db, p.person, canned_id)
    kept = {"name": name, "shortcut": shortcut, "body_fa": body_fa, "body_en": body_en,
            "team_id": team_id}
    return _save(request, db, p, row, kept, "canned_saved", lambda: canned.edit(
        db, p.person, canned_id, _input(name, shortcut, body_fa, body_en, team_id)))


@router.post("/canned/{canned_id}/delete")
def delete(
    request: Request, canned_id: PathId, p: Principal = Depends(page_principal),
    db: Session = Depends(get_db),
) -> Response:
    row = canned.get_visible(db, p.person, canned_id)
    return _save(request, db, p, row, {}, "canned_deleted",
                 lambda: canned.delete(db, p.person, canned_id))
