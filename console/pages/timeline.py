"""Earlier parts of a conversation's timeline: ``GET /conversations/{id}/timeline?before=``.

The conversation page renders only the newest window of its timeline, and reads only that
(:mod:`console.timeline_page`); its "earlier" entry fetches the window before it from
here and htmx puts it in the entry's place: the ``<li>`` items of that window, led by the
next "earlier" entry while more remain, in the page's own markup (``_timeline_items.html``).
Same scope as the page: NotFound (404) for a conversation the reader cannot see; a cursor
this server did not give out is an InputError (400).

:func:`mail_html` is the one place mail HTML is made fit for a page, for the page and this
fragment alike, and only for the messages shown: the HTML ingest sanitised and stored, with
its inline images pointed at this server; nothing is sanitised again here.
"""

from __future__ import annotations

from collections.abc import Iterable

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session

from console.deps import PathId, Principal, get_db, page_principal
from console.pages._ui import render
from console.pages.attachments import inline_image_urls
from console.timeline import MessageItem, TimelineItem
from console.timeline_page import earlier_window

router = APIRouter(include_in_schema=False)


def mail_html(items: Iterable[TimelineItem]) -> dict[int, str]:
    """The shown messages' mail HTML as sanitised at ingest (``Message.safe_html``, see
    channels.email.html.sanitize), inline images pointed at the attachment route; the
    template marks it safe. Per message id."""
    return {
        i.message_id: inline_image_urls(html, i.message_id)
        for i in items
        if isinstance(i, MessageItem) and (html := i.safe_html()) is not None
    }


@router.get("/conversations/{cid}/timeline", response_class=HTMLResponse)
def earlier_items(
    request: Request, cid: PathId, before: str = "", p: Principal = Depends(page_principal),
    db: Session = Depends(get_db),
) -> Response:
    """The window of items before ``before`` (no cursor: the newest, as the page shows).
    Their replies' statuses are not refreshed by the page's poll, which swaps only the
    replies the page was rendered with."""
    conversation, win = earlier_window(db, p.person, cid, before or None)
    response = render(request, "_timeline_items.html", {
        "c": conversation, "win": win, "mail_html": mail_html(win.items)})
    response.headers["Cache-Control"] = "no-store"
    return response
