"""The reader's notifications (:mod:`kartabl.notifications`).

- ``GET /notifications``: the feed, newest first, 50 a page (``?before=<id>`` for older),
  each with a link to its conversation, a "mark read" button per unread one and "mark all
  read".
- ``POST /notifications/{id}/read`` and ``POST /notifications/read-all``: 303 back to the
  feed (post/redirect/get). Another person's notification is a 404, exactly as a missing one.
- ``GET /notifications/unread``: JSON for ``console/static/notify.js`` (the header's count,
  the title, desktop notifications): the count and the newest unread ones as sentences in
  the reader's language. The live hub tells the page *when* to ask (a
  ``notification.created`` event reaches its recipient alone, :mod:`console.live`).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from sqlalchemy.orm import Session

from console.deps import MAX_ID, PathId, Principal, get_db, page_principal
from console.i18n import digits, gettext
from console.pages._ui import back, render
from console.templating import request_locale
from kartabl import notifications
from kartabl.errors import NotFound
from kartabl.notifications import FeedItem

router = APIRouter(include_in_schema=False)
PAGE = 50
LATEST = 5  # unread notifications the page's script gets as sentences
# First strong isolate ... pop: a name or subject of either direction inside a sentence of
# plain text (a desktop notification has no <bdi>).
FSI, PDI = "\u2068", "\u2069"


def sentence(locale: str, item: FeedItem, *, isolate: str = "") -> str:
    """What happened, in ``locale``: "Sara sent your reply back" (the actor's name between
    ``isolate`` marks, for plain text)."""
    actor = item.actor_name or gettext(locale, "notify.system")
    named = f"{FSI}{actor}{PDI}" if isolate else actor
    # an out-of-scope notice keeps no text (which target it was is the conversation's)
    target = (gettext(locale, f"notify.target_{item.text or 'hidden'}")
              if item.kind == "breach" else "")
    return gettext(locale, f"notify.kind_{item.kind}", actor=named, target=target)


def _before(value: str | None) -> int | None:
    text = (value or "").strip()
    # beyond the database's integers is no id (a 500 from the driver otherwise): page one
    ok = text.isascii() and text.isdigit() and 0 < len(text) <= 10 and int(text) <= MAX_ID
    return int(text) if ok else None


@router.get("/notifications", response_class=HTMLResponse)
def notifications_page(
    request: Request, before: Annotated[str, Query(max_length=20)] = "",
    p: Principal = Depends(page_principal), db: Session = Depends(get_db),
) -> Response:
    items = notifications.feed(db, p.person, limit=PAGE + 1, before=_before(before))
    more, items = len(items) > PAGE, items[:PAGE]
    return render(request, "notifications.html", {
        "items": items, "older": items[-1].id if more and items else None,
        "done": request.query_params.get("done", "")[:40],
    })


@router.get("/notifications/unread")
def unread(
    request: Request, p: Principal = Depends(page_principal), db: Session = Depends(get_db),
) -> JSONResponse:
    loc = request_locale(request)
    count = notifications.unread_count(db, p.person.id)
    latest = notifications.feed(db, p.person, limit=LATEST, unread_only=True)
    body: dict[str, Any] = {
        "count": count,
        "digits": digits(count, loc),
        "items": [{
            "id": n.id, "kind": n.kind, "text": sentence(loc, n, isolate="plain"),
            "subject": n.subject, "comment": n.text if n.kind != "breach" else "",
            "url": f"/conversations/{n.conversation_id}" if n.conversation_id else "/notifications",
        } for n in latest],
    }
    return JSONResponse(body, headers={"Cache-Control": "no-store"})


@router.post("/notifications/{nid}/read")
def mark_read(
    nid: PathId, p: Principal = Depends(page_principal), db: Session = Depends(get_db),
) -> Response:
    if not notifications.mark_read(db, p.person.id, nid):
        raise NotFound(f"notification {nid} does not exist")
    db.commit()
    return back("/notifications", "notify_read")


@router.post("/notifications/read-all")
def mark_all_read(
    p: Principal = Depends(page_principal), db: Session = Depends(get_db),
) -> Response:
    notifications.mark_all_read(db, p.person.id)
    db.commit()
    return back("/notifications", "notify_all_read")
