"""The JSON API's shared types: validated inputs, the error body, and the outputs of the
queues, the conversation view and the reply actions.

Outputs are explicit models (not the services' dataclasses) so that ``/openapi.json`` is a
stable contract: a service may grow a field without the API changing under integrations.

Inputs refuse what the databases would choke on, as a 422 naming the field, before any
query runs: ids beyond a 32-bit key (SQLite raises on integers past 64 bits) and NUL
characters (PostgreSQL's text type refuses them). Lone surrogates (a valid JSON escape, not
UTF-8) are pydantic's own 422.

Not a router module (no ``router``): the app imports every module of this package, which is
harmless here.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Final, Literal

from fastapi import Path
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field

from kartabl.models import (
    Channel,
    ConversationStatus,
    Direction,
    MessageKind,
    ReplyState,
)

MAX_ID: Final = 2**31 - 1  # primary keys are 32-bit integers on PostgreSQL
MAX_TEXT: Final = 20_000  # a reply, a note, a referral note: as the pages accept


def clean_text(value: str | None) -> str | None:
    """Refuse text PostgreSQL cannot store (a 500 otherwise). ``None`` passes."""
    if value is not None and "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


Text = Annotated[str, Field(max_length=MAX_TEXT), AfterValidator(clean_text)]
Short = Annotated[str, Field(max_length=400), AfterValidator(clean_text)]
RowId = Annotated[int, Field(ge=1, le=MAX_ID)]
PathId = Annotated[int, Path(ge=1, le=MAX_ID, description="A positive id.")]
# Tags are one JSON list per customer; rows older than the tag rules are shown as text.
Tags = Annotated[list[str], BeforeValidator(lambda v: [str(t) for t in v or ()])]


class ErrorOut(BaseModel):
    """Every 4xx answer but FastAPI's 422: one sentence saying what was refused and why."""

    detail: str


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """The ``responses`` of a route: the 4xx it can answer, documented in the OpenAPI."""
    meaning = {
        400: "Bad input (the detail says which and why); nothing was stored.",
        401: "Not signed in: send 'Authorization: Bearer kt_...' or the session cookie.",
        403: "Not allowed: the token lacks the scope, the role may not take this step, "
             "or a cookie-signed change came without its X-CSRF-Token header.",
        404: "No such item, or one outside the caller's scope (the two look alike).",
        409: "The item's state does not allow this step (the detail names the state).",
    }
    return {code: {"model": ErrorOut, "description": meaning[code]} for code in codes}


class _Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


# -- inputs ------------------------------------------------------------------------------------


class AssignIn(BaseModel):
    person_id: RowId | None = Field(default=None, description="The person to assign it to.")
    team_id: RowId | None = Field(default=None, description="The team to give it to.")


class ReferIn(AssignIn):
    note: Text = Field(description="Why it is handed on; shown in the timeline.")


class NoteIn(BaseModel):
    text: Text = Field(description="A private note for staff; never sent to the customer.")


class FileIn(BaseModel):
    """A file attached to a draft: its name and its bytes in base64 (RFC 4648)."""

    filename: str = Field(min_length=1, max_length=200)
    # 50 MB (the most a setting allows per file) in base64
    content_base64: str = Field(max_length=70_000_000)


class DraftIn(BaseModel):
    body: Text
    template: Annotated[str, Field(max_length=100), AfterValidator(clean_text)] | None = Field(
        default=None, description="A canned reply template (default: 'default')."
    )
    files: list[FileIn] = Field(
        default_factory=list, max_length=10,
        description="Files to send with the reply (email, Telegram, Bale; refused for SMS), "
        "within the same limits as the console's (KARTABL_REPLY_FILE_MAX_BYTES each, "
        "KARTABL_REPLY_FILES_MAX_BYTES together).")


class EditIn(BaseModel):
    body: Text


class ApproveIn(BaseModel):
    body: Text | None = Field(
        default=None,
        description="The approver's edit; the author's text is kept and shown beside it.",
    )


class RejectIn(BaseModel):
    comment: Text = Field(description="What the author should change.")


class PreviewIn(DraftIn):
    channel: Channel
    language: Literal["fa", "en"] = Field(
        default="fa", description="The customer's language: the template's greeting in it.")


class ConversationPreviewIn(DraftIn):
    pass


# -- queues ------------------------------------------------------------------------------------


class QueueOut(_Out):
    name: str = Field(description="What GET /api/v1/queues/{name} takes.")
    kind: Literal["triage", "approval", "mine", "team", "open", "overdue", "scheduled",
                  "waiting", "snoozed"]
    team_id: int | None
    title: str
    count: int | None = Field(
        description="Rows it lists under the filters; null when it does not list that status."
    )


class PendingReplyOut(_Out):
    id: int
    author: str
    submitted_at: datetime


class QueueRowOut(_Out):
    conversation_id: int
    customer_id: int
    customer_name: str
    channel: Channel
    subject: str
    preview: str = Field(description="The first line of the last inbound message.")
    status: ConversationStatus
    team_id: int | None
    team_name: str | None
    assignee_id: int | None
    assignee_name: str | None
    opened_at: datetime
    last_message_at: datetime
    first_response_at: datetime | None
    overdue: bool
    pending_reply_id: int | None
    pending_reply: PendingReplyOut | None
    # -- scheduled send --
    scheduled_reply_id: int | None = Field(None, description="scheduled: this row's reply.")
    send_at: datetime | None = Field(None, description="scheduled: when the reply leaves.")
    schedule_held: bool = Field(False, description="scheduled: held, the customer wrote "
                                "after it was scheduled; a person must act.")


class QueuePageOut(_Out):
    queue: str
    rows: list[QueueRowOut]
    next_cursor: str | None = Field(description="Pass as ?cursor= for the next page; null: last.")
    limit: int


# -- the conversation view -------------------------------------------------------------------


class ConversationOut(_Out):
    id: int
    customer_id: int
    channel: Channel
    status: ConversationStatus
    subject: str
    team_id: int | None
    team_name: str | None
    assignee_id: int | None
    assignee_name: str | None
    opened_at: datetime
    first_response_at: datetime | None
    resolved_at: datetime | None
    last_message_at: datetime
    previous_id: int | None
    # -- merge --
    merged_into_id: int | None = Field(None, description="Set when merged into that one.")


class IdentityInfoOut(_Out):
    kind: str
    address: str
    display: str


class CustomerPanelOut(_Out):
    id: int
    display_name: str
    tags: Tags
    identities: list[IdentityInfoOut]


class ConversationRefOut(_Out):
    id: int
    channel: Channel
    status: ConversationStatus
    subject: str
    opened_at: datetime
    last_message_at: datetime


class HistoryOut(_Out):
    conversations: list[ConversationRefOut] = Field(
        description="The customer's other conversations the caller may open, newest first."
    )
    hidden: int = Field(description="Their conversations outside the caller's scope.")
    more: int = Field(description="Ones in scope beyond those listed.")


class AttachmentOut(BaseModel):
    filename: str
    content_type: str
    size: int
    url: str | None = Field(description="The download (always as a file); null: not stored.")


_ORIGIN: Final = ("The conversation this item was in before a merge or a split moved it "
                  "here; null when never moved.")


class MessageOut(BaseModel):
    kind: Literal["message"] = "message"
    at: datetime
    actor: str | None
    message_id: int
    direction: Direction
    message_kind: MessageKind
    channel: Channel
    sender: str
    sender_name: str
    recipient: str
    subject: str
    text: str
    html: str | None = Field(description="Sanitised: safe to embed; remote images removed.")
    attachments: list[AttachmentOut]
    # -- merge --
    origin: int | None = Field(None, description=_ORIGIN)


class ReplyStepOut(_Out):
    step: str
    at: datetime
    actor: str | None
    note: str | None


class ReplyItemOut(_Out):
    kind: Literal["reply"]
    at: datetime
    actor: str | None
    reply_id: int
    state: ReplyState
    channel: Channel
    body: str
    original_body: str | None = Field(description="The author's text when the approver edited.")
    template: str | None
    author_id: int
    approver_id: int | None
    approver: str | None
    review_comment: str | None
    error: str | None
    attempts: int
    created_at: datetime
    approved_at: datetime | None
    sent_at: datetime | None
    delivered_at: datetime | None
    message_id: int | None
    history: list[ReplyStepOut]
    # -- merge --
    origin: int | None = Field(None, description=_ORIGIN)


class ActivityOut(_Out):
    kind: Literal["assigned", "triaged", "referred", "note", "closed", "reopened",
                  "merged", "merged_into", "merge_undone", "split", "split_from"]
    at: datetime
    actor: str | None
    event_id: int
    note: str | None
    to_person: str | None
    to_team: str | None
    from_person: str | None
    from_team: str | None
    reason: str | None
    message_id: int | None
    # -- merge --
    origin: int | None = Field(None, description=_ORIGIN)
    other_id: int | None = Field(None, description="merged, merged_into, merge_undone, split, "
                                 "split_from: the conversation on the other side.")


TimelineOut = Annotated[MessageOut | ReplyItemOut | ActivityOut, Field(discriminator="kind")]


class ConversationViewOut(BaseModel):
    conversation: ConversationOut
    customer: CustomerPanelOut
    history: HistoryOut
    timeline: list[TimelineOut] = Field(description="Oldest first: messages, replies, activity.")


# -- action results --------------------------------------------------------------------------


class ConversationStateOut(_Out):
    id: int
    status: ConversationStatus
    team_id: int | None
    assignee_id: int | None
    resolved_at: datetime | None


class NoteOut(BaseModel):
    event_id: int
    conversation_id: int
    at: datetime
    text: str


class ReplyFileOut(_Out):
    id: int
    filename: str
    content_type: str  # sniffed from the bytes
    size: int


class ReplyOut(_Out):
    id: int
    conversation_id: int
    state: ReplyState
    channel: Channel
    body: str
    original_body: str | None
    template: str | None
    author_id: int
    approved_by_id: int | None
    review_comment: str | None
    error: str | None
    created_at: datetime
    updated_at: datetime
    approved_at: datetime | None
    sent_at: datetime | None
    delivered_at: datetime | None
    files: list[ReplyFileOut] = Field(
        default_factory=list, description="The files that go with the reply (their bytes: "
        "in the console, /replies/{id}/attachments/{file id}).")
    # -- scheduled send --
    send_at: datetime | None = Field(None, description="When it leaves (never before); "
                                     "null: as soon as it is approved.")
    schedule_held_at: datetime | None = Field(
        None, description="Set when the customer wrote after it was scheduled: it is held "
        "until someone sends it now, reschedules it, or takes it back to draft.")


class PreviewOut(BaseModel):
    channel: Channel
    text: str = Field(description="As the customer will read it (through the template).")
    parts: int = Field(description="SMS parts, chat messages; 1 for a mail.")
    limit: int = Field(description="The most parts the channel's sender accepts.")
    fits: bool
    encoding: str | None = Field(description="'ucs2' or 'gsm7' for SMS, else null.")
    units: int = Field(description="SMS characters as counted by the encoding, else length.")
    summary: str = Field(description='For people: "3 SMS (UCS2, 170 characters)".')
