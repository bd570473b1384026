"""What the page of one conversation shows (``conversation.html``): its context, for
``GET /conversations/{id}`` and for the inbox's pane (``/queues?open=<id>``, :func:`pane`),
and the version the live parts compare with. The routes are :mod:`console.pages.conversation`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import Request
from markupsafe import Markup
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from console.deps import Principal, app_settings
from console.flash import failed_id, recall
from console.merging import panel as merge_panel
from console.pages._ui import handover_choices, render
from console.pages.reply_windows import windows_of
from console.pages.timeline import mail_html
from console.refusals import refusal_text
from console.schedule_view import schedule_context
from console.templating import request_locale
from console.timeline_page import conversation_page as page_view
from kartabl.errors import PermanentDeliveryError
from kartabl.language import conversation_language
from kartabl.models import Channel, ConversationStatus, Event, Message, Reply
from kartabl.workflow.access import REVIEWERS
from kartabl.workflow.states import ACTIVE, ON_HOLD
from responders import render as reply_render
from responders.preview import preview_reply
from responders.reply_files import Limits, files_of
from responders.sms_length import sms_length


@dataclass(frozen=True)
class PreviewShown:
    """A preview as the page shows it; ``error`` when the template cannot render it."""

    channel: str
    parts: int = 0
    limit: int = 0
    fits: bool = True
    encoding: str = ""
    units: int = 0
    text: str = ""
    error: str = ""


def reply_templates(channel: Channel, locale: str) -> list[tuple[str, str]]:
    """The reply wrappers for ``channel`` besides the default, as (name, title in the
    reader's language). They fill ``{{ customer_name }}`` and ``{{ subject }}`` around the
    agent's ``{{ body }}``, in the customer's language (:mod:`responders.render`)."""
    return [(n, reply_render.template_title(n, locale))
            for n in reply_render.template_names(channel) if n != reply_render.DEFAULT_TEMPLATE]


def preview_shown(db: Session, reply: Reply, body: str | None = None) -> PreviewShown:
    try:
        pv = preview_reply(db, reply, body)
    except PermanentDeliveryError as exc:
        return PreviewShown(reply.channel.value, error=str(exc))
    units = sms_length(pv.text).units if pv.channel is Channel.SMS else len(pv.text)
    return PreviewShown(pv.channel.value, pv.parts, pv.limit, pv.fits, pv.encoding or "",
                        units, pv.text)


def page_version(db: Session, cid: int) -> str:
    """``<last message>.<last non-reply event>.<last reply>``: changes when something new
    lands, and the page offers a reload. (Steps of the replies already shown are updated
    live by the status poll, so they do not count.)"""
    last_msg = db.scalar(select(func.max(Message.id)).where(Message.conversation_id == cid))
    last_event = db.scalar(select(func.max(Event.id)).where(
        Event.conversation_id == cid, Event.reply_id.is_(None)))
    last_reply = db.scalar(select(func.max(Reply.id)).where(Reply.conversation_id == cid))
    return f"{last_msg or 0}.{last_event or 0}.{last_reply or 0}"


def known_reply(version: str) -> int:
    """The newest reply id the page was rendered with (the status poll swaps only those:
    an out-of-band swap without its target element is an htmx error)."""
    last = version.rpartition(".")[2]
    return int(last) if last.isascii() and last.isdigit() and len(last) < 19 else 0


def page_context(request: Request, db: Session, p: Principal, cid: int) -> dict[str, Any]:
    """What conversation.html needs: for its own page, and for the inbox's pane
    (:func:`pane`). NotFound outside the reader's scope. Only the newest window of the
    timeline is read and rendered (the whole timeline with ?all=1, the "earlier" link
    without JavaScript); the panels' replies are read apart, by state: a pending one may be
    older than the window (:mod:`console.timeline_page`)."""
    everything = request.query_params.get("all") == "1"
    view = page_view(db, p.person, cid, everything=everything)
    flash = recall(db, p, failed_id(request))  # a refused form's reason and text
    me = p.person
    pending, drafts, win = view.pending, view.drafts, view.window
    previews = {}
    for item in (*pending, *drafts):
        reply = db.get(Reply, item.reply_id)
        if reply is not None:
            previews[item.reply_id] = preview_shown(db, reply)
    # waiting and snoozed are open for work (drafts, hand-over, close); ``held`` says which
    status = ConversationStatus(view.conversation.status)
    is_open = status in ACTIVE
    reviewer = me.role in REVIEWERS
    people, teams = handover_choices(db) if is_open else ([], [])
    return {
        "view": view, "c": view.conversation, "customer": view.customer,
        "history": view.history, "win": win, "mail_html": mail_html(win.items),
        "pending": pending, "drafts": drafts, "previews": previews,
        "templates": reply_templates(view.conversation.channel, request_locale(request)),
        "customer_language": conversation_language(db, cid),  # wrappers' and canned texts
        "people": people, "teams": teams, "is_open": is_open, "reviewer": reviewer,
        "held": status if status in ON_HOLD else None,
        "can_refer": reviewer or view.conversation.assignee_id == me.id,
        "done": request.query_params.get("done", "")[:40],
        "error": refusal_text(request_locale(request), flash.refusal) if flash else "",
        "kept": flash.kept if flash else {}, "version": page_version(db, cid),
        "reply_files": files_of(db, previews),  # the approver sees them before approving
        "file_limits": Limits.of(app_settings(request)),
        **schedule_context(db, me, cid, request_locale(request)),
        "merging": merge_panel(db, me, cid),  # merge, undo, split (console.merging)
        "windows": windows_of(db, previews),  # Instagram, WhatsApp: console.pages.reply_windows
    }


def pane(request: Request, db: Session, p: Principal, cid: int) -> Markup:
    """The conversation without the page around it (``_pane.html`` for a layout), for the
    inbox's pane (``/queues?open=<id>``): the same markup, ids and forms as its page."""
    response = render(request, "conversation.html",
                      page_context(request, db, p, cid) | {"layout": "_pane.html"})
    return Markup(bytes(response.body).decode())  # noqa: S704 - rendered by autoescaping Jinja
