"""``GET /refused?failed=<id>``: where a refused form without a page of its own leads
(post/redirect/get, :mod:`console.flash`): the reason in the reader's language, and a
reload that submits nothing."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session

from console.deps import Principal, get_db, page_principal
from console.flash import failed_id, recall
from console.i18n import gettext
from console.pages._ui import render
from console.refusals import refusal_text
from console.templating import request_locale

router = APIRouter(include_in_schema=False)


@router.get("/refused", response_class=HTMLResponse)
def refused_page(
    request: Request, p: Principal = Depends(page_principal), db: Session = Depends(get_db),
) -> Response:
    loc = request_locale(request)
    flash = recall(db, p, failed_id(request))
    if flash is None:  # replaced by a later refusal, or a link from someone else
        return render(request, "error.html", {"title": gettext(loc, "app.error"),
                                              "detail": gettext(loc, "error.gone")})
    return render(request, "error.html", {
        "title": gettext(loc, f"http.{flash.refusal.status}"),
        "detail": refusal_text(loc, flash.refusal)}, status_code=flash.refusal.status)
