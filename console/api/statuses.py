"""Waiting on the customer, snoozing and resuming, in the JSON API (scope ``act``), with
the permission checks of the pages (:mod:`kartabl.workflow.waiting`): 404 outside the
caller's scope, 409 from a status that does not allow the step, 400 for a bad time."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from console.api.schemas import errors
from console.deps import PathId, Principal, get_db, require_scope
from console.timeline import visible
from kartabl.models import Conversation, ConversationStatus
from kartabl.workflow import waiting

router = APIRouter(prefix="/api/v1", tags=["conversations"])
Act = Annotated[Principal, Depends(require_scope("act"))]
Db = Annotated[Session, Depends(get_db)]


class SnoozeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    until: AwareDatetime = Field(description="When it comes back (with a UTC offset); in "
                                 "the future, at most a year ahead.")


class HoldStateOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    status: ConversationStatus
    snoozed_until: datetime | None = Field(description="While snoozed: when it comes back.")
    team_id: int | None
    assignee_id: int | None


def _state(db: Session, conv: Conversation) -> HoldStateOut:
    db.commit()
    return HoldStateOut.model_validate(conv)


@router.post("/conversations/{cid}/waiting", summary="Wait on the customer",
             responses=errors(401, 403, 404, 409))
def wait(cid: PathId, p: Act, db: Db) -> HoldStateOut:
    """From open or snoozed. The resolution clock pauses until the customer writes (which
    opens it again) or someone resumes it."""
    visible(db, p.person, cid)
    return _state(db, waiting.wait(db, p.person, cid))


@router.post("/conversations/{cid}/snooze", summary="Snooze until a time",
             responses=errors(400, 401, 403, 404, 409))
def snooze(cid: PathId, body: SnoozeIn, p: Act, db: Db) -> HoldStateOut:
    """Out of the working queues until ``until`` or until the customer writes, whichever is
    first; it then comes back at the top, and its holder is notified."""
    visible(db, p.person, cid)
    return _state(db, waiting.snooze(db, p.person, cid, body.until))


@router.post("/conversations/{cid}/resume", summary="Back to open from waiting or snoozed",
             responses=errors(401, 403, 404, 409))
def resume(cid: PathId, p: Act, db: Db) -> HoldStateOut:
    """409 when it is neither waiting nor snoozed (a closed one: ``/reopen``)."""
    visible(db, p.person, cid)
    return _state(db, waiting.resume(db, p.person, cid))
