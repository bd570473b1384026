"""The JSON API of the caller's own notifications (:mod:`kartabl.notifications`).

Scopes: listing and marking read both take ``read``: a notification is something the caller
reads, and marking it read changes nothing but their own feed (as reading mail does). A
token without ``read`` (say, ``reports`` alone) gets 403 on all three. Every route works on
the caller's own feed only: another person's notification is a 404, exactly as a missing
one. A notification about a conversation the caller may no longer open comes without its
conversation, subject and text.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from console.api.schemas import MAX_ID, PathId, errors
from console.deps import Principal, get_db, require_scope
from kartabl import notifications
from kartabl.errors import NotFound
from kartabl.notifications import FeedItem

router = APIRouter(prefix="/api/v1", tags=["notifications"])

Read = Annotated[Principal, Depends(require_scope("read"))]
Db = Annotated[Session, Depends(get_db)]


class NotificationOut(BaseModel):
    id: int
    kind: str = Field(description="assigned, referred, team_referred, approved, rejected, "
                      "answered, mentioned, breach or snooze_ended (back from a snooze).")
    created_at: datetime
    read: bool
    actor: str | None = Field(description="Who caused it; null: the system.")
    conversation_id: int | None = Field(
        description="Null when the caller may no longer open the conversation.")
    subject: str
    text: str = Field(description="The reviewer's comment, the referral note, the note; for "
                      "breach the target (first_response or resolution).")


class FeedOut(BaseModel):
    unread: int = Field(description="The caller's unread notifications, all of them.")
    items: list[NotificationOut]


class MarkedOut(BaseModel):
    marked: int
    unread: int


def _out(item: FeedItem) -> NotificationOut:
    return NotificationOut(id=item.id, kind=item.kind, created_at=item.created_at,
                           read=item.read, actor=item.actor_name,
                           conversation_id=item.conversation_id, subject=item.subject,
                           text=item.text)


@router.get("/notifications", summary="List your notifications", responses=errors(401, 403))
def list_notifications(
    p: Read, db: Db,
    unread: Annotated[bool, Query(description="Only the unread ones.")] = False,
    before: Annotated[int | None, Query(ge=1, le=MAX_ID,
                                        description="Older than this id (paging).")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> FeedOut:
    """The caller's notifications, newest first."""
    items = notifications.feed(db, p.person, limit=limit, before=before, unread_only=unread)
    return FeedOut(unread=notifications.unread_count(db, p.person.id),
                   items=[_out(i) for i in items])


@router.post("/notifications/read-all", summary="Mark all your notifications read",
             responses=errors(401, 403))
def read_all(p: Read, db: Db) -> MarkedOut:
    marked = notifications.mark_all_read(db, p.person.id)
    db.commit()
    return MarkedOut(marked=marked, unread=0)


@router.post("/notifications/{nid}/read", summary="Mark one notification read",
             responses=errors(401, 403, 404))
def read_one(nid: PathId, p: Read, db: Db) -> MarkedOut:
    if not notifications.mark_read(db, p.person.id, nid):
        raise NotFound(f"notification {nid} does not exist")
    db.commit()
    return MarkedOut(marked=1, unread=notifications.unread_count(db, p.person.id))
