"""The website chat widgets in the console (admins only): the list, the form, the snippet.

- ``GET /widgets``: every widget, with its origins and team (a coordinator or an agent
  gets a page saying that admins manage them, and nothing of any widget).
- ``GET /widgets/new`` and ``GET /widgets/{id}``: the form; an existing widget's page also
  shows the snippet to paste into the site, the CSP lines the site needs, and the secret
  for signed identities (an admin's page only; never logged).
- ``POST /widgets`` and ``POST /widgets/{id}``: one change each (CSRF-checked, audited), 303
  back with a message; a refused change shows the form again with the reason.

The snippet's address is ``KARTABL_BASE_URL`` (else the web's host and port), never the
request's Host header (threats.md: links built from Host).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from channels.webchat import admin
from config.settings import Settings
from console.deps import PathId, Principal, app_settings, get_db, page_principal
from console.http_errors import http_status
from console.pages._ui import back, optional_id, render
from kartabl.errors import KartablError, NotFound
from kartabl.models import Role, Team, Widget

router = APIRouter(include_in_schema=False)
Short = Annotated[str, Form(max_length=4000)]
FIELDS = ("name", "origins", "team_id", "color", "text_color", "greeting_fa", "greeting_en",
          "offline_fa", "offline_en")


def public_base(settings: Settings) -> str:
    return (settings.base_url or f"http://{settings.web_host}:{settings.web_port}").rstrip("/")


def _values(w: Widget) -> dict[str, str]:
    return {"name": w.name, "origins": "\n".join(w.origins or []),
            "team_id": str(w.team_id or ""), "color": w.color, "text_color": w.text_color,
            "greeting_fa": w.greeting_fa, "greeting_en": w.greeting_en,
            "offline_fa": w.offline_fa, "offline_en": w.offline_en,
            "ask_phone": "1" if w.ask_phone else "", "ask_email": "1" if w.ask_email else "",
            "active": "1" if w.active else ""}


def _form(request: Request, db: Session, row: Widget | None, *, error: str = "",
          kept: dict[str, str] | None = None, status: int = 200) -> Response:
    base = public_base(app_settings(request))
    values = kept or (_values(row) if row is not None else {
        "color": "#1f6feb", "text_color": "#ffffff", "active": "1"})
    return render(request, "widget_form.html", {
        "row": row, "v": values, "error": error, "base": base,
        "teams": list(db.scalars(select(Team).order_by(Team.name))),
        "snippet": (f'<script src="{base}/widget/{row.public_id}/loader.js" async></script>'
                    if row is not None else ""),
        "csp": f"script-src {base}; connect-src {base}",
    }, status_code=status)


def _only_admins(request: Request) -> Response:
    """What a coordinator or an agent sees here (a link may lead anyone): who manages
    widgets, and nothing of them (a widget's page shows its secret)."""
    return render(request, "widgets.html", {"rows": [], "teams": {}, "done": "",
                                            "only_admins": True})


def _is_admin(p: Principal) -> bool:
    return p.person.role is Role.ADMIN


@router.get("/widgets", response_class=HTMLResponse)
def widget_list(request: Request, p: Principal = Depends(page_principal),
                db: Session = Depends(get_db)) -> Response:
    if not _is_admin(p):
        return _only_admins(request)
    rows = admin.listed(db, p.person)
    teams = {t.id: t for t in db.scalars(select(Team))}
    return render(request, "widgets.html", {
        "rows": rows, "teams": teams, "done": request.query_params.get("done", "")[:40]})


@router.get("/widgets/new", response_class=HTMLResponse)
def new_form(request: Request, p: Principal = Depends(page_principal),
             db: Session = Depends(get_db)) -> Response:
    if not _is_admin(p):
        return _only_admins(request)
    return _form(request, db, None)


@router.get("/widgets/{widget_id}", response_class=HTMLResponse)
def edit_form(request: Request, widget_id: PathId, p: Principal = Depends(page_principal),
              db: Session = Depends(get_db)) -> Response:
    if not _is_admin(p):
        return _only_admins(request)
    return _form(request, db, admin.get(db, p.person, widget_id))


def _input(kept: dict[str, str]) -> admin.WidgetInput:
    return admin.WidgetInput(
        name=kept["name"], origins=kept["origins"], team_id=optional_id(kept["team_id"], "team"),
        color=kept["color"], text_color=kept["text_color"],
        greeting_fa=kept["greeting_fa"], greeting_en=kept["greeting_en"],
        offline_fa=kept["offline_fa"], offline_en=kept["offline_en"],
        ask_phone=bool(kept["ask_phone"]), ask_email=bool(kept["ask_email"]),
        active=bool(kept["active"]))


async def _kept(request: Request) -> dict[str, str]:
    form = await request.form()
    kept = {k: str(form.get(k, ""))[:4000] for k in FIELDS}
    for flag in ("ask_phone", "ask_email", "active"):
        kept[flag] = "1" if form.get(flag) else ""
    return kept


def _save(request: Request, db: Session, p: Principal, widget_id: int | None,
          kept: dict[str, str]) -> Response:
    admin.require_admin("change a widget", p.person)  # before anything: a 403, no rollback
    try:
        if widget_id is None:
            row = admin.create(db, p.person, _input(kept))
            done = "widget_created"
        else:
            row = admin.edit(db, p.person, widget_id, _input(kept))
            done = "widget_saved"
    except NotFound:
        raise
    except KartablError as exc:
        db.rollback()
        fresh = db.get(Widget, widget_id) if widget_id is not None else None
        return _form(request, db, fresh, error=str(exc), kept=kept, status=http_status(exc))
    db.commit()
    return back(f"/widgets/{row.id}", done)


@router.post("/widgets")
async def create(request: Request, p: Principal = Depends(page_principal),
                 db: Session = Depends(get_db)) -> Response:
    return _save(request, db, p, None, await _kept(request))


@router.post("/widgets/{widget_id}")
async def edit(request: Request, widget_id: PathId, p: Principal = Depends(page_principal),
               db: Session = Depends(get_db)) -> Response:
    return _save(request, db, p, widget_id, await _kept(request))
