"""``POST /api/v1/conversations/bulk``: one action over many conversations, as the queue
page's bulk bar does (:mod:`console.bulk`). The answer says what was done and what was
refused, item by item, with the reason; the request is audited as ``bulk.applied``."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from console.api.schemas import errors
from console.bulk import BulkAction, run
from console.deps import MAX_ID, Principal, get_db, require_scope
from kartabl.workflow.bulk import MAX_ITEMS

router = APIRouter(prefix="/api/v1", tags=["conversations"])
ConversationId = Annotated[int, Field(ge=1, le=MAX_ID)]


class BulkIn(BaseModel):
    action: Literal["assign", "refer", "close", "tag"]
    ids: list[ConversationId] = Field(min_length=1, max_length=MAX_ITEMS)
    person_id: Annotated[int, Field(ge=1, le=MAX_ID)] | None = None
    team_id: Annotated[int, Field(ge=1, le=MAX_ID)] | None = None
    note: str = Field(default="", max_length=2_000, description="Required to refer.")
    tag: str = Field(default="", max_length=40, description="Required to tag.")


class RefusalOut(BaseModel):
    conversation_id: int
    reason: str
    error: str = Field(description="not_found (or not visible to you), PermissionDenied, "
                                   "IllegalTransition, InputError")


class BulkOut(BaseModel):
    action: str
    done: list[int]
    refused: list[RefusalOut]
    event_id: int = Field(description="The bulk.applied audit event.")


@router.post("/conversations/bulk", summary="One action over many conversations",
             responses=errors(400, 401, 403, 404))
def bulk(body: BulkIn, p: Annotated[Principal, Depends(require_scope("act"))],
         db: Annotated[Session, Depends(get_db)]) -> BulkOut:
    """Each conversation goes through the same step as one at a time, in its own savepoint:
    those refused (outside your scope, a reply awaiting approval, ...) are listed with the
    reason and the others are done. A request wrong as a whole (a referral without a note,
    an agent assigning) changes nothing (400/403)."""
    result = run(db, p.person, BulkAction(body.action, body.person_id, body.team_id,
                                          body.note, body.tag), body.ids)
    db.commit()
    return BulkOut(action=result.action, done=result.done, event_id=result.event_id,
                   refused=[RefusalOut(conversation_id=r.conversation_id, reason=r.reason,
                                       error=r.error) for r in result.refused])
