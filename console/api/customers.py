"""The JSON API of customers: search, a customer's page, tags, linking an identity, and
merging (previewed first).

Every rule is :mod:`console.customers`'s; this module parses, commits and answers.

Status codes (after 401 unsigned and 403 for a token without the scope: ``read`` for
search, detail and the merge preview; ``customers`` for tags and links; ``merge`` to merge):

- **404** a customer that does not exist *or that the caller cannot see* (an agent sees a
  customer only through a conversation of theirs or of their teams): one answer for both.
- **403** the caller sees the customer but may not take the step: linking needs the
  coordinator or admin role or the merge permission, merging the merge permission (or the
  admin role), and a merge or a link is refused when either customer has a conversation
  outside the caller's scope (it never moves data out of a scope they cannot see). A merge
  without the permission is refused before either customer is looked up.
- **409** merging a customer into itself or one already merged; an identity that belongs
  to another customer (merge the two instead).
- **400** a tag or an address that is not one; **422** a malformed request.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, HTTPException, Query
from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from console import customers as svc
from console.api.schemas import MAX_ID, PathId, RowId, Short, Tags, clean_text, errors
from console.deps import Principal, get_db, require_scope
from router.identity import IdentityTaken

router = APIRouter(prefix="/api/v1", tags=["customers"])

Read = Annotated[Principal, Depends(require_scope("read"))]
Edit = Annotated[Principal, Depends(require_scope("customers"))]
Merge = Annotated[Principal, Depends(require_scope("merge"))]
Db = Annotated[Session, Depends(get_db)]
TagText = Annotated[str, Field(min_length=1, max_length=100), AfterValidator(clean_text)]


class _Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class IdentityOut(_Out):
    id: int
    kind: str = Field(description="email, phone, telegram or bale.")
    address: str = Field(description="Normalised: +98… for phones, lower-case mail.")
    display: str


class CustomerHitOut(_Out):
    id: int
    display_name: str
    tags: Tags
    identities: list[IdentityOut]


class CustomerConversationOut(_Out):
    id: int
    channel: str
    status: str
    subject: str
    team_id: int | None
    assignee_id: int | None
    opened_at: datetime
    last_message_at: datetime


class CustomerOut(_Out):
    id: int
    requested_id: int = Field(description="The id asked for; differs when it was merged into "
                                          "this one.")
    display_name: str
    tags: Tags
    identities: list[IdentityOut]
    conversations: list[CustomerConversationOut] = Field(
        description="In the caller's scope, newest first, on every channel.")
    hidden_conversations: int = Field(description="Their conversations outside that scope.")


class MergePreviewOut(_Out):
    source_id: int
    target_id: int
    identities: list[IdentityOut] = Field(description="The identities that will move.")
    conversations: dict[str, dict[str, int]] = Field(
        description="Conversations that will move: channel -> status -> count.")
    conversation_count: int
    messages: int
    tags: Tags = Field(description="Tags the target gains.")
    display_name: str | None = Field(description="The name the target takes (it has none).")
    may_merge: bool = Field(description="Whether the caller has the merge permission.")
    reason: str


class TagIn(BaseModel):
    tag: TagText


class TagsOut(BaseModel):
    customer_id: int
    tags: Tags


class LinkIn(BaseModel):
    kind: Literal["email", "phone", "telegram", "bale"]
    address: Short = Field(description="Any common form: 0912…, ۰۹۱۲…, +98912…, a mail address, "
                                       "a numeric messenger id.")


class MergeIn(BaseModel):
    into: RowId = Field(description="The customer that absorbs this one.")


def _detail(db: Session, p: Principal, customer_id: int) -> CustomerOut:
    return CustomerOut.model_validate(svc.customer_detail(db, p.person, customer_id),
                                      from_attributes=True)


@router.get("/customers", summary="Search customers", responses=errors(401, 403))
def search(
    p: Read, db: Db,
    q: Annotated[str, Query(max_length=svc.MAX_QUERY, description=(
        "A name (any Persian/Arabic letter form), a phone number in any digit form, an email "
        "address or part of one, a messenger id or @username; tag:vip filters by tag."
    )), AfterValidator(clean_text)],
    limit: Annotated[int, Query(ge=1, le=svc.MAX_LIMIT)] = 50,
) -> list[CustomerHitOut]:
    """Exact identity matches first, then newest first; only customers the caller can see
    (an agent: through their own or their teams' conversations). Merged customers are left
    out: their survivor holds their identities."""
    hits = svc.search_customers(db, p.person, q, limit)
    return [CustomerHitOut.model_validate(h, from_attributes=True) for h in hits]


@router.get("/customers/{customer_id}", summary="A customer: identities, conversations, tags",
            responses=errors(401, 403, 404))
def customer(customer_id: PathId, p: Read, db: Db) -> CustomerOut:
    """A merged customer answers with its survivor (``id`` differs from ``requested_id``)."""
    return _detail(db, p, customer_id)


@router.post("/customers/{customer_id}/tags", summary="Add a tag",
             responses=errors(400, 401, 403, 404))
def add_tag(customer_id: PathId, body: TagIn, p: Edit, db: Db) -> TagsOut:
    """Idempotent; the tag is stored normalised ("VIP" and "vip" are one tag)."""
    tags = svc.add_tag(db, p.person, customer_id, body.tag)
    db.commit()
    return TagsOut(customer_id=_survivor_id(db, p, customer_id), tags=tags)


@router.delete("/customers/{customer_id}/tags", summary="Remove a tag",
               responses=errors(400, 401, 403, 404))
def remove_tag(
    customer_id: PathId, p: Edit, db: Db,
    tag: Annotated[str, Query(min_length=1, max_length=100), AfterValidator(clean_text)],
) -> TagsOut:
    """Idempotent; compared in normalised form. (A query parameter, not a body: DELETE
    bodies are dropped by some clients and proxies.)"""
    tags = svc.remove_tag(db, p.person, customer_id, tag)
    db.commit()
    return TagsOut(customer_id=_survivor_id(db, p, customer_id), tags=tags)


def _survivor_id(db: Session, p: Principal, customer_id: int) -> int:
    return svc.customer_detail(db, p.person, customer_id, conversation_limit=0).id


@router.post("/customers/{customer_id}/identities", status_code=201,
             summary="Link one more identity to a customer",
             responses=errors(400, 401, 403, 404, 409))
def link(customer_id: PathId, body: LinkIn, p: Edit, db: Db) -> IdentityOut:
    """The address's future messages join this customer's history. Linking one the customer
    has already is a no-op; one that belongs to another customer is 409 (merge instead)."""
    try:
        identity = svc.link(db, p.person, customer_id, body.kind, body.address)
    except IdentityTaken as exc:
        raise HTTPException(409, str(exc)) from None
    db.commit()
    return IdentityOut.model_validate(identity, from_attributes=True)


@router.get("/customers/{customer_id}/merge-preview", summary="What a merge would move",
            responses=errors(401, 403, 404, 409))
def merge_preview(
    customer_id: PathId, p: Read, db: Db,
    into: Annotated[int, Query(ge=1, le=MAX_ID, description="The customer to merge into.")],
) -> MergePreviewOut:
    """Identities, conversations by channel and status, messages and tags that would move,
    and whether the caller may merge. Refused as the merge itself would be refused."""
    return MergePreviewOut.model_validate(
        svc.merge_preview(db, p.person, customer_id, into), from_attributes=True)


@router.post("/customers/{customer_id}/merge", summary="Merge this customer into another",
             responses=errors(401, 403, 404, 409))
def merge(customer_id: PathId, body: MergeIn, p: Merge, db: Db) -> CustomerOut:
    """Moves identities, conversations and messages to ``into``; this customer keeps a
    pointer to it. Audited. Answers with the customer it was merged into."""
    target = svc.merge(db, p.person, customer_id, body.into)
    db.commit()
    return _detail(db, p, target.id)
