"""One conversation: ``GET /conversations/{id}`` and every workflow action on it.

The page is :func:`console.timeline_page.conversation_page` (NotFound outside the reader's
scope, so an agent cannot tell another team's conversation from a missing one) plus the
forms of :mod:`kartabl.workflow`. Every action is a POST form with the CSRF token; it runs
one workflow step, commits, and answers 303 back to the page with ``?done=<action>`` (the
page shows it as a message). A refused step (the workflow's IllegalTransition,
PermissionDenied, InputError, a reply too long for its channel) rolls back and answers 303
to the page with ``?failed=<id>`` (:mod:`console.flash`): the page shows the reason in the
reader's language and the text the person typed, and a reload submits nothing.

What the page shows (its context, also for the inbox's pane) is
:mod:`console.pages.conversation_view`; this module holds the routes.

The timeline shows its newest window, and only that is read (:mod:`console.timeline_page`;
``?all=1``: all of it); earlier windows come from :mod:`console.pages.timeline`.

Live parts, by htmx: ``GET /conversations/{id}/status`` re-renders each reply's delivery
status out of band every few seconds (not the whole timeline: a reader's open details and
scroll stay put) and says when something new arrived; ``POST /conversations/{id}/preview``
renders a draft through its template and counts SMS parts / chat messages as one types.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session

from console.deps import Approval, PathId, Principal, get_db, page_principal
from console.flash import refused
from console.pages._ui import back, form_text, optional_id, render
from console.pages.conversation_view import (
    PreviewShown,
    known_reply,
    page_context,
    page_version,
    preview_shown,
)
from console.pages.reply_attachments import ReplyFiles
from console.pages.timeline import mail_html
from console.schedule_view import apply_send_at
from console.timeline import visible
from console.timeline_items import ReplyItem
from console.timeline_news import new_items, parse_version
from console.timeline_page import earlier_window, poll_replies
from console.timeline_window import decode_cursor, item_key
from kartabl import workflow
from kartabl.errors import (
    InputError,
    KartablError,
    NotFound,
)
from kartabl.models import (
    Conversation,
    Reply,
    ReplyState,
)
from kartabl.notifications import mark_seen
from kartabl.workflow.access import REVIEWERS
from responders import render as reply_render
from responders.preview import REPLY_CHECK

router = APIRouter(include_in_schema=False)
Text = Annotated[str, Form(max_length=20_000)]
MaybeText = Annotated[str | None, Form(max_length=20_000)]  # absent: not sent by the form
Short = Annotated[str, Form(max_length=40)]
SendAt = Annotated[str, Form(max_length=60)]  # scheduled send: console.schedule_view
# What the actions say when they are done (``flash.<key>`` in the catalogs).
FLASHES = ("assigned", "referred", "closed", "reopened", "noted", "drafted", "submitted",
           "edited", "approved", "rejected",
           "waiting", "snoozed", "resumed")  # the last three: console.pages.statuses


def _visible(db: Session, p: Principal, cid: int) -> Conversation:
    """The conversation, or NotFound (also outside the reader's scope: no IDOR, no hint)."""
    return visible(db, p.person, cid)


def _visible_reply(db: Session, p: Principal, rid: int) -> Reply:
    reply = db.get(Reply, rid)
    if reply is None:
        raise NotFound(f"reply {rid} does not exist")
    _visible(db, p, reply.conversation_id)
    return reply


def _page(request: Request, db: Session, p: Principal, cid: int) -> Response:
    return render(request, "conversation.html", page_context(request, db, p, cid))


def _act(request: Request, db: Session, p: Principal, cid: int, done: str,
         step: Callable[[], object], kept: dict[str, str] | None = None) -> Response:
    """Run one workflow step on a conversation the reader can see; commit and 303 back, or
    roll back and 303 to the page showing the reason (post/redirect/get)."""
    try:
        step()
    except KartablError as exc:
        return refused(db, p, exc, f"/conversations/{cid}", kept)
    db.commit()
    return back(f"/conversations/{cid}", done)


# -- reading ---------------------------------------------------------------------------------


@router.get("/conversations/{cid}", response_class=HTMLResponse)
def conversation_page(
    request: Request, cid: PathId, p: Principal = Depends(page_principal),
    db: Session = Depends(get_db),
) -> Response:
    page = _page(request, db, p, cid)
    mark_seen(db, p.person.id, cid)  # the queues' "new" marker goes (kartabl.notifications)
    db.commit()
    return page


def _moved_in(replies: list[ReplyItem], start: str, version: str) -> set[int]:
    """The replies sent after the page was rendered (their outbound message is newer than
    the page's ``version``) that were before its window then (created before ``start``):
    not on the page, though their key is in its range now."""
    known = parse_version(version)
    if not start or known is None:
        return set()
    first = decode_cursor(start)
    return {r.reply_id for r in replies if r.message_id is not None and r.message_id > known[0]
            and item_key(replace(r, at=r.created_at)) < first}


@router.get("/conversations/{cid}/status", response_class=HTMLResponse)
def conversation_status(
    request: Request, cid: PathId, v: str = "", start: str = Query("", alias="from"),
    p: Principal = Depends(page_principal), db: Session = Depends(get_db),
) -> Response:
    """Each reply's status block out of band, and what is new since ``v``: its timeline
    items appended to the page's timeline out of band, with the version they bring the page
    to (``#live-version``, static/live.js asks with it next); a reload notice
    only when appending will not do (a version not ours, more than a window of news).

    Only replies the page has: known when it was rendered (``v``) and in its window (item
    key at or after ``from``, the window's first; no ``from``: all). A key only grows (a
    sent reply moves to its sent_at), so a shown reply stays in. Replies loaded later by
    "earlier" are not refreshed live. An older reply sent since the page was rendered moves
    into the range without being on the page: it is left out (an out-of-band swap without
    its target is an htmx error), and the page offers a reload to show it in its place."""
    conversation, replies = poll_replies(db, p.person, cid, start or None, known_reply(v))
    moved = _moved_in(replies, start, v)
    replies = [r for r in replies if r.reply_id not in moved]
    version = page_version(db, cid)
    news = None
    if v != version:  # what is new is in the newest window, unless a whole window is new
        _, newest = earlier_window(db, p.person, cid, None)
        news = new_items(newest.items, v)
        if news is not None and newest.earlier and len(news.items) == len(newest.items):
            news = None  # more may lie beyond the window: the page offers a reload
    response = render(request, "_conversation_status.html", {
        "c": conversation, "replies": replies, "version": version,
        "stale": v != version and (news is None or bool(moved)), "news": news,
        "mail_html": mail_html(news.items) if news is not None else {}})
    response.headers["Cache-Control"] = "no-store"
    return response


@router.post("/conversations/{cid}/preview", response_class=HTMLResponse)
def reply_preview(
    request: Request, cid: PathId, body: Text = "", edited_body: Text = "",
    template: Short = "", reply_id: Short = "", p: Principal = Depends(page_principal),
    db: Session = Depends(get_db),
) -> Response:
    """The draft (or the approver's edit) as the customer will get it, with its SMS part or
    chat message count. A POST for the CSRF check and the body's size; it stores nothing."""
    conv = _visible(db, p, cid)
    rid = optional_id(reply_id, "reply_id")
    text = form_text(body or edited_body)
    if rid is not None:
        reply = _visible_reply(db, p, rid)
        if reply.conversation_id != cid:
            raise NotFound(f"reply {rid} does not exist")
    else:
        name = template.strip() or None
        if name is not None and not reply_render.has_template(name, conv.channel):
            raise InputError(f"no reply template {name!r} for {conv.channel.value}")
        # Not added to the session: preview_reply only reads it.
        reply = Reply(conversation_id=cid, channel=conv.channel, body=text, template=name)
    shown = preview_shown(db, reply, text) if text.strip() else PreviewShown(conv.channel.value)
    return render(request, "_preview.html", {"pv": shown, "empty": not text.strip()})


# -- conversation actions --------------------------------------------------------------------


@router.post("/conversations/{cid}/assign")
def assign(
    request: Request, cid: PathId, person_id: Short = "", team_id: Short = "",
    p: Principal = Depends(page_principal), db: Session = Depends(get_db),
) -> Response:
    _visible(db, p, cid)
    return _act(request, db, p, cid, "assigned", lambda: workflow.assign(
        db, p.person, cid, person_id=optional_id(person_id, "person"),
        team_id=optional_id(team_id, "team")))


@router.post("/conversations/{cid}/refer")
def refer(
    request: Request, cid: PathId, note: Text = "", person_id: Short = "", team_id: Short = "",
    p: Principal = Depends(page_principal), db: Session = Depends(get_db),
) -> Response:
    _visible(db, p, cid)
    return _act(request, db, p, cid, "referred", lambda: workflow.refer(
        db, p.person, cid, person_id=optional_id(person_id, "person"),
        team_id=optional_id(team_id, "team"), note=form_text(note)),
        # kept for the page's one hand-over panel (_handover.html)
        {"handover_note": note, "handover_person": person_id, "handover_team": team_id})


@router.post("/conversations/{cid}/close")
def close(
    request: Request, cid: PathId, p: Principal = Depends(page_principal),
    db: Session = Depends(get_db),
) -> Response:
    _visible(db, p, cid)
    return _act(request, db, p, cid, "closed", lambda: workflow.close(db, p.person, cid))


@router.post("/conversations/{cid}/reopen")
def reopen(
    request: Request, cid: PathId, p: Principal = Depends(page_principal),
    db: Session = Depends(get_db),
) -> Response:
    _visible(db, p, cid)
    return _act(request, db, p, cid, "reopened", lambda: workflow.reopen(db, p.person, cid))


@router.post("/conversations/{cid}/notes")
def add_note(
    request: Request, cid: PathId, text: Text = "", p: Principal = Depends(page_principal),
    db: Session = Depends(get_db),
) -> Response:
    _visible(db, p, cid)
    return _act(request, db, p, cid, "noted",
                lambda: workflow.note(db, p.person, cid, form_text(text)), {"note": text})


@router.post("/conversations/{cid}/replies")
def new_draft(
    request: Request, cid: PathId, policy: Approval, files: ReplyFiles, body: Text = "",
    template: Short = "", then: Short = "save", send_at: SendAt = "",
    p: Principal = Depends(page_principal), db: Session = Depends(get_db),
) -> Response:
    """Draft a reply (with its files); with ``then=submit`` (the second button) submit it
    at once. A ``send_at`` schedules it (it still needs its approval)."""
    _visible(db, p, cid)

    def step() -> None:
        reply = workflow.draft(db, p.person, cid, form_text(body),
                               template=template.strip() or None, check=REPLY_CHECK)
        files.apply(db, p.person, reply.id)
        apply_send_at(db, p.person, reply.id, send_at)
        if then == "submit":
            workflow.submit(db, p.person, reply.id, policy=policy, check=REPLY_CHECK)

    done = "submitted" if then == "submit" else "drafted"
    return _act(request, db, p, cid, done, step,
                {"body": body, "template": template, "send_at": send_at})


# -- reply actions ---------------------------------------------------------------------------


@router.post("/replies/{rid}/edit")
def edit_draft(
    request: Request, rid: PathId, files: ReplyFiles, body: Text = "",
    p: Principal = Depends(page_principal), db: Session = Depends(get_db),
) -> Response:
    cid = _visible_reply(db, p, rid).conversation_id

    def step() -> None:
        workflow.update_draft(db, p.person, rid, form_text(body))
        files.apply(db, p.person, rid)

    return _act(request, db, p, cid, "edited", step, {f"edit_{rid}": body})


@router.post("/replies/{rid}/submit")
def submit(
    request: Request, rid: PathId, policy: Approval, files: ReplyFiles,
    body: MaybeText = None, send_at: SendAt = "", p: Principal = Depends(page_principal),
    db: Session = Depends(get_db),
) -> Response:
    """Submit for approval; a changed body (or a rejected reply) is saved as a draft first.
    A ``send_at`` schedules it."""
    reply = _visible_reply(db, p, rid)
    cid, state, stored = reply.conversation_id, reply.state, reply.body

    def step() -> None:
        text = form_text(body) if body is not None else None
        if state == ReplyState.REJECTED or (text is not None and text != stored):
            workflow.update_draft(db, p.person, rid, text if text is not None else stored)
        files.apply(db, p.person, rid)
        apply_send_at(db, p.person, rid, send_at)
        workflow.submit(db, p.person, rid, policy=policy, check=REPLY_CHECK)

    return _act(request, db, p, cid, "submitted", step,
                {f"edit_{rid}": body or "", f"send_at_{rid}": send_at})


@router.post("/replies/{rid}/approve")
def approve(
    request: Request, rid: PathId, edited_body: MaybeText = None, send_at: SendAt = "",
    p: Principal = Depends(page_principal), db: Session = Depends(get_db),
) -> Response:
    """Approve; a body that differs from the author's is the approver's edit (kept and
    shown as before/after in the timeline). A ``send_at`` (re)schedules it: approved, it
    leaves then, not now."""
    reply = _visible_reply(db, p, rid)
    cid, stored = reply.conversation_id, reply.body
    text = form_text(edited_body) if edited_body is not None else None
    edit = text if text is not None and text.strip() != stored.strip() else None

    def step() -> None:
        workflow.approve(db, p.person, rid, edited_body=edit, check=REPLY_CHECK)
        apply_send_at(db, p.person, rid, send_at)

    return _act(request, db, p, cid, "approved", step,
                {f"approve_{rid}": edited_body or "", f"send_at_{rid}": send_at})


@router.post("/replies/{rid}/reject")
def reject(
    request: Request, rid: PathId, comment: Text = "", p: Principal = Depends(page_principal),
    db: Session = Depends(get_db),
) -> Response:
    cid = _visible_reply(db, p, rid).conversation_id
    return _act(request, db, p, cid, "rejected",
                lambda: workflow.reject(db, p.person, rid, form_text(comment)),
                {f"reject_{rid}": comment})


# -- the hand-over panel ---------------------------------------------------------------------


@router.post("/conversations/{cid}/handover")
def handover(
    request: Request, cid: PathId, note: Text = "", person_id: Short = "", team_id: Short = "",
    p: Principal = Depends(page_principal), db: Session = Depends(get_db),
) -> Response:
    """The one "hand over" panel: to a person and/or a team, with an optional note.

    With a note it is a referral (``conversation.referred``, the note in the event); without
    one an assignment (``conversation.assigned``), which the workflow leaves to coordinators
    and admins: an agent's hand-over is always a referral, so it needs its note (refused with
    the workflow's own reason, the form kept). A person of another team takes the
    conversation into their team (:func:`kartabl.workflow.access.handover_team`)."""
    _visible(db, p, cid)
    text = form_text(note)
    kept = {"handover_note": note, "handover_person": person_id, "handover_team": team_id}
    if text.strip() or p.person.role not in REVIEWERS:
        return _act(request, db, p, cid, "referred", lambda: workflow.refer(
            db, p.person, cid, person_id=optional_id(person_id, "person"),
            team_id=optional_id(team_id, "team"), note=text), kept)
    return _act(request, db, p, cid, "assigned", lambda: workflow.assign(
        db, p.person, cid, person_id=optional_id(person_id, "person"),
        team_id=optional_id(team_id, "team")), kept)
