"""Merging and splitting conversations from the conversation page.

- ``GET /conversations/{id}/merge``: the conversations it may be merged into (the same
  customer's, in the reader's scope, newest first); with ``?into=<id>`` the preview of
  what moves, the refusal if the merge would be refused, else the confirmation form.
  htmx asks for it from the page's merge panel and gets the fragment alone.
- ``POST /conversations/{id}/merge`` (``into``): merge it into that one; 303 to the
  conversation it joined.
- ``POST /merges/{id}/undo``: undo a merge while nothing new happened since; 303 back.
- ``POST /conversations/{id}/split`` (``message_id``, ``following``): split that message
  (and with ``following`` what comes after it) into a new conversation; 303 to it.

Every rule is the workflow's (:mod:`kartabl.workflow.merge`, :mod:`kartabl.workflow.split`).
A conversation outside the reader's scope, on either side, is a 404 like a missing one; a
refused step rolls back and shows its reason on the page, in the reader's language.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session

from console.deps import MAX_ID, PathId, Principal, get_db, page_principal
from console.flash import refused
from console.merging import candidates, preview
from console.pages._ui import back, optional_id, render
from console.refusals import refusal, refusal_text
from console.templating import request_locale
from console.timeline import visible
from kartabl.errors import InputError, KartablError, NotFound
from kartabl.workflow import merge as wm
from kartabl.workflow.split import split as split_step

router = APIRouter(include_in_schema=False)
FormId = Annotated[str, Form(max_length=20)]


def _id(value: str, what: str) -> int:
    found = optional_id(value, what)
    if found is None:
        raise InputError(f"choose a {what}", code="conv_merge.choose")
    return found


@router.get("/conversations/{cid}/merge", response_class=HTMLResponse)
def merge_page(
    request: Request, cid: PathId,
    into: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    p: Principal = Depends(page_principal), db: Session = Depends(get_db),
) -> Response:
    conv = visible(db, p.person, cid)
    shown = preview(db, p.person, cid, into) if into is not None else None
    fragment = request.headers.get("HX-Request") == "true"
    return render(request, "conv_merge.html", {
        "layout": "_pane.html" if fragment else "base.html", "source_id": conv.id,
        "candidates": candidates(db, p.person, conv) if shown is None else [],
        "preview": shown,
        "refusal": refusal_text(request_locale(request), refusal(shown.refusal))
        if shown is not None and shown.refusal is not None else "",
    })


@router.post("/conversations/{cid}/merge")
def merge(
    cid: PathId, into: FormId = "", p: Principal = Depends(page_principal),
    db: Session = Depends(get_db),
) -> Response:
    visible(db, p.person, cid)
    try:
        target = _id(into, "conversation")
    except InputError as exc:
        return refused(db, p, exc, f"/conversations/{cid}")
    visible(db, p.person, target)  # another team's: 404, as its page would be
    try:
        wm.merge(db, p.person, cid, target)
    except NotFound:
        raise  # out of scope (or gone since): 404, as the page would answer
    except KartablError as exc:
        return refused(db, p, exc, f"/conversations/{cid}")
    db.commit()
    return back(f"/conversations/{target}", "conv_merge.merged")


@router.post("/merges/{merge_id}/undo")
def undo(
    merge_id: PathId, p: Principal = Depends(page_principal), db: Session = Depends(get_db),
) -> Response:
    record = wm.load_merge(db, p.person, merge_id)  # 404 outside the reader's scope
    page = f"/conversations/{record.target_id}"
    try:
        wm.undo(db, p.person, merge_id)
    except KartablError as exc:
        return refused(db, p, exc, page)
    db.commit()
    return back(page, "conv_merge.undone")


@router.post("/conversations/{cid}/split")
def split(
    cid: PathId, message_id: FormId = "", following: FormId = "",
    person_id: FormId = "", team_id: FormId = "",
    p: Principal = Depends(page_principal), db: Session = Depends(get_db),
) -> Response:
    visible(db, p.person, cid)
    try:
        new = split_step(db, p.person, cid, _id(message_id, "message"),
                         following=following.strip() in ("1", "on", "true"),
                         person_id=optional_id(person_id, "person"),
                         team_id=optional_id(team_id, "team"))
    except NotFound:
        raise  # another conversation's message is no business of this page: 404
    except KartablError as exc:
        return refused(db, p, exc, f"/conversations/{cid}")
    db.commit()
    return back(f"/conversations/{new.id}", "conv_split.split")
