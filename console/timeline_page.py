"""What the conversation page, its "earlier" fragment and its status poll read: only the
part of the timeline they render (:func:`console.timeline.load_window`), never the whole of
a long conversation.

- :func:`conversation_page`: the conversation, its customer and their other
  conversations, the newest window of the timeline (all of it with ``everything``), and
  the replies of the panels above it, each read by index wherever it sits in the timeline:
  every reply pending approval, and the reader's own drafts and rejected replies.
- :func:`earlier_window`: the window before a cursor.
- :func:`poll_replies`: the replies a rendered page shows, for its status poll.

Each raises :class:`~kartabl.errors.NotFound` for a conversation the reader may not open.
"""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from console.timeline import (
    ConversationInfo,
    CustomerHistory,
    CustomerInfo,
    ReplyItem,
    customer_history,
    customer_info,
    load_window,
    shown_replies,
    visible,
)
from console.timeline_window import TimelineWindow, decode_cursor
from kartabl.models import Person, ReplyState

EDITABLE = (ReplyState.DRAFT, ReplyState.REJECTED)


@dataclass(frozen=True, slots=True)
class ConversationPage:
    conversation: ConversationInfo
    customer: CustomerInfo
    history: CustomerHistory
    window: TimelineWindow
    pending: list[ReplyItem]  # every reply awaiting approval, oldest first
    drafts: list[ReplyItem]  # the reader's drafts and rejected replies, oldest first


def conversation_page(session: Session, actor: Person, cid: int, *,
                      everything: bool = False) -> ConversationPage:
    conv = visible(session, actor, cid)
    who = customer_info(session, conv)
    loaded = load_window(session, conv, who, None, size=0 if everything else None,
                         panel_author=actor.id)
    pending = [r for r in loaded.panel if r.state == ReplyState.PENDING_APPROVAL]
    drafts = [r for r in loaded.panel if r.author_id == actor.id and r.state in EDITABLE]
    return ConversationPage(loaded.info, who, customer_history(session, actor, conv),
                            loaded.window, pending, drafts)


def earlier_window(session: Session, actor: Person, cid: int,
                   before: str | None) -> tuple[ConversationInfo, TimelineWindow]:
    """The window of items before the cursor ``before`` (None: the newest)."""
    if before:
        decode_cursor(before)  # a bad cursor is a 400 before anything is read
    conv = visible(session, actor, cid)
    loaded = load_window(session, conv, customer_info(session, conv), before)
    return loaded.info, loaded.window


def poll_replies(session: Session, actor: Person, cid: int, first: str | None,
                 newest: int) -> tuple[ConversationInfo, list[ReplyItem]]:
    """The replies with ``id <= newest`` (those the page was rendered with) at or after the
    cursor ``first`` (the first item of its window; None: all), oldest first."""
    if first:
        decode_cursor(first)  # a bad cursor is a 400 before anything is read
    return shown_replies(session, visible(session, actor, cid), first, newest)
