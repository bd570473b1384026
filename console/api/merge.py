"""The JSON API of merging and splitting conversations, with the pages' checks
(:mod:`kartabl.workflow.merge`, :mod:`kartabl.workflow.split`; token scope ``act``). A
merge's answer says whether it can still be undone (``undoable``).

- **404** either conversation (or the merge's) missing *or outside the caller's scope*.
- **403** conversations of two customers without the merge permission; an agent giving a
  split-off conversation to someone else.
- **409** refused by state: a reply of the merged conversation pending approval, approved
  or being sent; either conversation already merged; conversations of two customers
  (merge the customers first, ``POST /api/v1/customers/{id}/merge``); an undo after
  something new happened on the conversation; splitting its first message.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from console.api.schemas import ConversationStateOut, PathId, RowId, errors
from console.deps import Principal, get_db, require_scope
from kartabl.models import Conversation, ConversationMerge, Event, Person
from kartabl.workflow import merge as wm
from kartabl.workflow.split import split as split_step

router = APIRouter(prefix="/api/v1", tags=["merge"])

Act = Annotated[Principal, Depends(require_scope("act"))]
Db = Annotated[Session, Depends(get_db)]


class MergeIn(BaseModel):
    into: RowId = Field(description="The conversation this one joins (same customer).")


class SplitIn(BaseModel):
    message_id: RowId = Field(description="The message to split out (not the first one).")
    following: bool = Field(default=False, description="Also every later message, reply "
                            "and note of the conversation.")
    person_id: RowId | None = Field(default=None, description="Assign the new conversation "
                                    "(an agent: only themselves). Default: nobody.")
    team_id: RowId | None = Field(default=None, description="Its team. Default: the team of "
                                  "the conversation it came from.")


class MovedOut(BaseModel):
    messages: int
    replies: int
    events: int


class MergeOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    source_id: int = Field(description="The merged conversation (now closed, pointing on).")
    target_id: int = Field(description="The conversation it joined.")
    actor_id: int | None
    merged_at: datetime
    moved: MovedOut
    undone_at: datetime | None
    undoable: bool = Field(description="Whether POST /api/v1/merges/{id}/undo would succeed "
                           "now (nothing new happened on the target since).")


class SplitOut(BaseModel):
    conversation: ConversationStateOut = Field(description="The new conversation.")
    source_id: int
    moved: MovedOut


def _visible(db: Session, person: Person, cid: int) -> Conversation:
    return wm.visible_conversation(db, person, cid)


def _merge_out(db: Session, record: ConversationMerge) -> MergeOut:
    source = db.get(Conversation, record.source_id)
    target = db.get(Conversation, record.target_id)
    undoable = (source is not None and target is not None
                and wm.undo_refusal(db, record, source, target) is None)
    moved = record.moved or {}
    return MergeOut(
        id=record.id, source_id=record.source_id, target_id=record.target_id,
        actor_id=record.actor_id, merged_at=record.merged_at,
        moved=MovedOut(**{k: len(moved.get(k) or []) for k in ("messages", "replies", "events")}),
        undone_at=record.undone_at, undoable=undoable)


@router.post("/conversations/{cid}/merge", summary="Merge this conversation into another",
             responses=errors(401, 403, 404, 409))
def merge(cid: PathId, body: MergeIn, p: Act, db: Db) -> MergeOut:
    """Every message, reply and event of this conversation moves to ``into`` (each keeps
    ``origin`` = this one), this one is closed and points there; both are audited. Replies
    go out on the target's channel. Undo with ``POST /api/v1/merges/{id}/undo``."""
    _visible(db, p.person, cid)
    record = wm.merge(db, p.person, cid, body.into)
    db.commit()
    return _merge_out(db, record)


@router.post("/merges/{merge_id}/undo", summary="Undo a merge",
             responses=errors(401, 403, 404, 409))
def undo(merge_id: PathId, p: Act, db: Db) -> MergeOut:
    """Moves exactly the merged rows back and reopens the merged conversation as it was;
    409 once anything new happened on the conversation it joined."""
    wm.load_merge(db, p.person, merge_id)
    record = wm.undo(db, p.person, merge_id)
    db.commit()
    return _merge_out(db, record)


@router.post("/conversations/{cid}/split", status_code=201,
             summary="Split a message (and what follows) into a new conversation",
             responses=errors(400, 401, 403, 404, 409))
def split(cid: PathId, body: SplitIn, p: Act, db: Db) -> SplitOut:
    """The new conversation is the customer's, on the message's channel; the moved rows
    keep ``origin`` = this conversation; both are audited."""
    _visible(db, p.person, cid)
    new = split_step(db, p.person, cid, body.message_id, following=body.following,
                     person_id=body.person_id, team_id=body.team_id)
    db.commit()
    counts = {"messages": 0, "replies": 0, "events": 0}
    event = db.scalar(select(Event).where(Event.conversation_id == new.id,
                                          Event.kind == "conversation.split_from")
                      .order_by(Event.id.desc()).limit(1))
    if event is not None:
        counts = {k: int(event.data.get(k, 0)) for k in counts}
    return SplitOut(conversation=ConversationStateOut.model_validate(new, from_attributes=True),
                    source_id=int(event.data["other_id"]) if event is not None else cid,
                    moved=MovedOut(**counts))
