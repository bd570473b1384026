"""The JSON API of canned responses: the library (read by everyone in scope, managed by
coordinators and admins) and the composer's expansion of ``/shortcut`` for a conversation.

Every rule is :mod:`kartabl.canned`'s; scopes, in the order they are decided:

- **401** nobody signed in; **403** a token without the route's scope: reading the library
  takes ``read``; expanding into a reply takes ``act`` (it counts a use); creating, editing
  and deleting take ``review``, the coordinators' scope (an agent's token cannot carry it,
  and an agent's session answers 403 too).
- **404** a response outside the caller's scope (another team's) or a conversation
  outside it, exactly as a missing one: an agent cannot expand team B's response, nor
  any response into team B's conversation.
- **400** bad input (a taken shortcut, an unknown ``{{ variable }}``, both texts empty).
"""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Response
from pydantic import AfterValidator, BaseModel, Field
from sqlalchemy.orm import Session

from console.api.schemas import PathId, RowId, _Out, clean_text, errors
from console.deps import Principal, get_db, require_scope
from kartabl import canned
from kartabl.errors import InputError
from kartabl.models import CannedResponse

router = APIRouter(prefix="/api/v1", tags=["canned responses"])

Read = Annotated[Principal, Depends(require_scope("read"))]
Act = Annotated[Principal, Depends(require_scope("act"))]
Manage = Annotated[Principal, Depends(require_scope("review"))]
Db = Annotated[Session, Depends(get_db)]
Body = Annotated[str, Field(max_length=canned.MAX_BODY), AfterValidator(clean_text)]
Name = Annotated[str, Field(max_length=canned.MAX_NAME), AfterValidator(clean_text)]
Shortcut = Annotated[str, Field(max_length=41, description="Typed after '/': a-z, 0-9, - _."),
                     AfterValidator(clean_text)]
Language = Literal["fa", "en"]


class CannedIn(BaseModel):
    name: Name
    shortcut: Shortcut
    body_fa: Body = Field(default="", description="The Persian text; may use "
                          "{{ customer_name }}, {{ agent_name }}, {{ conversation_number }}.")
    body_en: Body = Field(default="", description="The English text; the same variables.")
    team_id: RowId | None = Field(default=None, description="A team's own (default: global).")


class CannedPatch(BaseModel):
    name: Name | None = None
    shortcut: Shortcut | None = None
    body_fa: Body | None = None
    body_en: Body | None = None
    team_id: RowId | None = None
    global_: bool = Field(default=False, alias="global",
                          description="true: make it global (team_id is ignored).")


class CannedOut(_Out):
    id: int
    name: str
    shortcut: str
    team_id: int | None
    body_fa: str
    body_en: str
    use_count: int = Field(description="How many times it was expanded into a reply.")
    created_at: datetime
    updated_at: datetime


class ExpandIn(BaseModel):
    shortcut: Shortcut | None = Field(default=None, description="With or without the '/'.")
    canned_id: RowId | None = None
    language: Language | None = Field(
        default=None, description="Default: the customer's, from what they wrote.")


class ExpansionOut(BaseModel):
    canned_id: int
    shortcut: str
    text: str = Field(description="The variant, variables filled: insert it into the reply.")
    language: Language = Field(description="The variant inserted.")
    customer_language: Language = Field(
        description="The customer's; differs from language when that variant is empty.")


def _out(row: CannedResponse) -> CannedOut:
    return CannedOut.model_validate(row, from_attributes=True)


@router.get("/canned", summary="List canned responses", responses=errors(401, 403))
def list_canned(
    p: Read, db: Db,
    q: Annotated[str, Query(max_length=41, description="A shortcut's start.")] = "",
    limit: Annotated[int, Query(ge=1, le=500)] = 200,
) -> list[CannedOut]:
    """The global responses and those of the caller's teams (every one for coordinators
    and admins), by shortcut."""
    return [_out(r) for r in canned.list_visible(db, p.person, prefix=q.lstrip("/"),
                                                 limit=limit)]


@router.get("/canned/{canned_id}", summary="Read a canned response",
            responses=errors(401, 403, 404))
def read_canned(canned_id: PathId, p: Read, db: Db) -> CannedOut:
    return _out(canned.get_visible(db, p.person, canned_id))


@router.post("/canned", status_code=201, summary="Create a canned response",
             responses=errors(400, 401, 403, 404))
def create_canned(body: CannedIn, p: Manage, db: Db) -> CannedOut:
    row = canned.create(db, p.person, canned.CannedInput(
        body.name, body.shortcut, body.body_fa, body.body_en, body.team_id))
    db.commit()
    return _out(row)


@router.patch("/canned/{canned_id}", summary="Edit a canned response",
              responses=errors(400, 401, 403, 404))
def edit_canned(canned_id: PathId, body: CannedPatch, p: Manage, db: Db) -> CannedOut:
    """Fields left out keep their value; ``"global": true`` makes a team's response global."""
    row = canned.get_visible(db, p.person, canned_id)
    team = None if body.global_ else (body.team_id if body.team_id is not None else row.team_id)
    row = canned.edit(db, p.person, canned_id, canned.CannedInput(
        body.name if body.name is not None else row.name,
        body.shortcut if body.shortcut is not None else row.shortcut,
        body.body_fa if body.body_fa is not None else row.body_fa,
        body.body_en if body.body_en is not None else row.body_en, team))
    db.commit()
    return _out(row)


@router.delete("/canned/{canned_id}", status_code=204, summary="Delete a canned response",
               responses=errors(401, 403, 404))
def delete_canned(canned_id: PathId, p: Manage, db: Db) -> Response:
    canned.delete(db, p.person, canned_id)
    db.commit()
    return Response(status_code=204)


@router.post("/conversations/{cid}/canned/expand", summary="Expand a canned response",
             responses=errors(400, 401, 403, 404))
def expand(cid: PathId, body: ExpandIn, p: Act, db: Db) -> ExpansionOut:
    """The response (by ``shortcut`` or ``canned_id``) in the customer's language, its
    variables filled from this conversation; counts one use. Stores no reply: the text goes
    into the composer, and the reply is drafted as any other."""
    if (body.shortcut is None) == (body.canned_id is None):
        raise InputError("give a shortcut or a canned_id (one of them)")
    found = canned.expand(db, p.person, cid, shortcut=body.shortcut, canned_id=body.canned_id,
                          language=body.language)
    db.commit()
    # validated, not constructed: the languages are checked against the Literal
    return ExpansionOut.model_validate(dataclasses.asdict(found))
