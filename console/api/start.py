"""``POST /api/v1/conversations``: start a conversation (scope ``act``), as the console's
"New conversation" page does (:mod:`console.starting`, :mod:`kartabl.workflow.start`).

Status codes: **201** started; **400** bad input (no recipient or both, a bad address, a
typed Telegram/Bale id, no subject for email, an empty or too long text, an unknown
template); **403** a team not the agent's own, an address of a customer outside their
teams, a token without ``act``; **404** an identity (or team) that does not exist or is
outside the caller's scope; **409** a messenger identity that never wrote to our bot.
Nothing is stored on any 4xx.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from config.channels import ChannelsConfig
from console.api.schemas import (
    ConversationStateOut,
    ReplyOut,
    RowId,
    Short,
    Text,
    errors,
)
from console.deps import Approval, Principal, get_db, require_scope
from console.starting import StartRequest, begin

router = APIRouter(prefix="/api/v1", tags=["conversations"])

Act = Annotated[Principal, Depends(require_scope("act"))]
Db = Annotated[Session, Depends(get_db)]


class StartIn(BaseModel):
    identity_id: RowId | None = Field(
        default=None, description="One of the customer's identities (GET "
        "/api/v1/customers/{id} lists them). Telegram and Bale: only users who wrote to our "
        "bot. Give this or kind and address.")
    kind: Literal["phone", "email"] | None = Field(
        default=None, description="A new address's kind: a phone number (for SMS) or an "
        "email address.")
    address: Short | None = Field(
        default=None, description="A phone number in any digit form or an email address; "
        "an existing one lands on its customer, a new one creates the customer.")
    name: Short = Field(default="", description="A new customer's name (optional).")
    team_id: RowId | None = Field(
        default=None, description="The team (default: the author's one team; an agent only "
        "their own teams).")
    subject: Short = Field(default="", description="The subject; required for email.")
    body: Text = Field(description="The first message, sent once approved.")
    template: Short | None = Field(default=None, description="A reply template.")
    submit: bool = Field(default=True, description="Submit for approval at once (false: "
                         "leave it a draft).")


class StartedOut(BaseModel):
    conversation: ConversationStateOut
    customer_id: int
    customer_created: bool
    reply: ReplyOut


@router.post("/conversations", status_code=201, summary="Start a conversation",
             responses=errors(400, 401, 403, 404, 409))
def start_conversation(body: StartIn, p: Act, db: Db, policy: Approval,
                       request: Request) -> StartedOut:
    """A person writes to a customer first: the conversation is assigned to them in the
    team, and its first reply follows the approval rule of every reply (pending approval
    unless the approval policy lets the author skip review)."""
    channels: ChannelsConfig = request.app.state.channels
    started = begin(db, p.person, channels, policy, StartRequest(
        identity_id=body.identity_id, kind=body.kind or "", address=body.address or "",
        name=body.name, team_id=body.team_id, subject=body.subject, body=body.body,
        template=body.template, submit=body.submit))
    db.commit()
    db.refresh(started.reply)
    return StartedOut(
        conversation=ConversationStateOut.model_validate(started.conversation),
        customer_id=started.conversation.customer_id,
        customer_created=started.customer_created,
        reply=ReplyOut.model_validate(started.reply))
