"""The JSON API of the cartable: queues, the conversation view, and every workflow step on
conversations and replies, with the console's own permission checks.

Every rule is the services' (:mod:`console.queues`, :mod:`console.timeline`) and the
workflow's (:mod:`kartabl.workflow`); this module parses, checks scope first, runs one
step, commits, and answers with the stored result.

Status codes, in the order they are decided:

- **401** nobody signed in; **403** a token without the route's scope (reads ``read``;
  conversation and reply steps ``act``; approve and reject ``review``), or a cookie-signed
  change without its ``X-CSRF-Token`` header.
- **404** the conversation or reply does not exist *or is outside the caller's scope*:
  reads and actions alike, so an agent of team A cannot tell team B's conversation from a
  missing one (the pages answer the same). The one exception is a team's queue
  (``team:<id>`` of a team the agent is not in): 403, as teams are no secret, their
  conversations are (and a missing team is 404).
- **403** in scope, but the role may not take the step: an agent approving, assigning, or
  referring a conversation someone else holds; nobody approves their own reply.
- **409** the state forbids the step (closing with a reply awaiting approval, editing a
  sent reply); **400** bad input by the workflow's rules (an empty note, an unknown
  template, a reply too long for its channel); **422** malformed requests (FastAPI's
  validation: a missing field, an id out of range). Nothing is stored on any 4xx.

GETs change nothing (the bearer token's ``last_used_at`` aside).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Body, Depends, Path, Query
from sqlalchemy.orm import Session

from console.api.reply_files import add_api_files, with_files
from console.api.schemas import (
    MAX_ID,
    ActivityOut,
    ApproveIn,
    AssignIn,
    AttachmentOut,
    ConversationOut,
    ConversationPreviewIn,
    ConversationStateOut,
    ConversationViewOut,
    CustomerPanelOut,
    DraftIn,
    EditIn,
    HistoryOut,
    MessageOut,
    NoteIn,
    NoteOut,
    PathId,
    PreviewIn,
    PreviewOut,
    QueueOut,
    QueuePageOut,
    ReferIn,
    RejectIn,
    ReplyItemOut,
    ReplyOut,
    TimelineOut,
    errors,
)
from console.deps import Approval, AppSettings, Principal, get_db, require_scope
from console.pages.attachments import inline_image_urls
from console.queue_types import Targets
from console.queues import DEFAULT_LIMIT, MAX_LIMIT, Filters, list_queue, queue_counts, queue_names
from console.timeline import MessageItem, ReplyItem, TimelineItem, conversation_view
from kartabl import workflow
from kartabl.errors import InputError, NotFound
from kartabl.models import Channel, Conversation, ConversationStatus, Person, Reply
from responders import preview as rp
from responders.preview import REPLY_CHECK
from responders.render import has_template
from responders.sms_length import sms_length

router = APIRouter(prefix="/api/v1", tags=["conversations"])

Read = Annotated[Principal, Depends(require_scope("read"))]
Act = Annotated[Principal, Depends(require_scope("act"))]
Review = Annotated[Principal, Depends(require_scope("review"))]
Db = Annotated[Session, Depends(get_db)]
Hours = Annotated[float | None, Query(ge=0, le=24 * 3650, allow_inf_nan=False,
                                      description="Age of the conversation (since opened).")]


# -- scope -----------------------------------------------------------------------------------


def _visible(db: Session, person: Person, cid: int) -> Conversation:
    """The conversation, or NotFound also when it is outside ``person``'s scope: one answer
    for both, so its existence is not revealed (reads and actions alike)."""
    conv = db.get(Conversation, cid)
    if conv is None or not workflow.can_access(person, conv):
        raise NotFound(f"conversation {cid} does not exist")
    return conv


def _visible_reply(db: Session, person: Person, rid: int) -> Reply:
    reply = db.get(Reply, rid)
    if reply is None or not workflow.can_access(person, _conversation_of(db, reply)):
        raise NotFound(f"reply {rid} does not exist")
    return reply


def _conversation_of(db: Session, reply: Reply) -> Conversation:
    conv = db.get(Conversation, reply.conversation_id)
    assert conv is not None  # a foreign key
    return conv


# -- queues ----------------------------------------------------------------------------------


def _filters(
    channel: Channel | None = None,
    team_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    status: Annotated[ConversationStatus | None,
                      Query(description="Default: open (mine and team queues list closed too).")
                      ] = None,
    min_age_hours: Hours = None,
    max_age_hours: Hours = None,
) -> Filters:
    """The narrowing shared by the counts and the listings (Filters raises 400 when the
    ages contradict each other)."""
    return Filters(
        channel=channel, team_id=team_id, status=status,
        min_age=None if min_age_hours is None else timedelta(hours=min_age_hours),
        max_age=None if max_age_hours is None else timedelta(hours=max_age_hours),
    )


@router.get("/queues", summary="The caller's queues with their counts",
            responses=errors(400, 401, 403, 404))
def queues(p: Read, db: Db, settings: AppSettings,
           f: Annotated[Filters, Depends(_filters)]) -> list[QueueOut]:
    """Triage, approval, mine, each of the caller's teams, open, overdue, scheduled (an agent has no
    triage and sees only their teams). Counts are scoped exactly as the listings."""
    counts = queue_counts(db, p.person, f, targets=Targets.from_settings(settings))
    return [QueueOut(name=q.name, kind=q.kind, team_id=q.team_id, title=q.title,
                     count=counts.get(q.name)) for q in queue_names(db, p.person)]


@router.get("/queues/{name}", summary="One page of a queue",
            responses=errors(400, 401, 403, 404))
def queue_page(
    p: Read, db: Db, settings: AppSettings, f: Annotated[Filters, Depends(_filters)],
    name: Annotated[str, Path(max_length=40, description="triage, approval, mine, team:<id>, "
                                                         "open, overdue or scheduled.")],
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    cursor: Annotated[str | None, Query(max_length=60,
                                        description="The previous page's next_cursor.")] = None,
) -> QueuePageOut:
    """Newest activity first (approval: oldest pending reply first), keyset-paged: follow
    ``next_cursor`` until it is null. Only conversations the caller may open are listed."""
    filters = Filters(channel=f.channel, team_id=f.team_id, status=f.status, min_age=f.min_age,
                      max_age=f.max_age, limit=limit, cursor=cursor)
    page = list_queue(db, p.person, name, filters, targets=Targets.from_settings(settings))
    return QueuePageOut.model_validate(page, from_attributes=True)


# -- the conversation view -------------------------------------------------------------------


def _message(item: MessageItem) -> MessageOut:
    html = item.safe_html()
    return MessageOut(
        at=item.at, actor=item.actor, message_id=item.message_id, direction=item.direction,
        message_kind=item.message_kind, channel=item.channel, sender=item.sender,
        sender_name=item.sender_name, recipient=item.recipient, subject=item.subject,
        text=item.text, html=None if html is None else inline_image_urls(html, item.message_id),
        attachments=[AttachmentOut(
            filename=a.filename, content_type=a.content_type, size=a.size,
            url=f"/messages/{item.message_id}/attachments/{a.storage_key}"
            if a.storage_key else None,
        ) for a in item.attachments],
        origin=item.origin,
    )


def _item(item: TimelineItem) -> TimelineOut:
    if isinstance(item, MessageItem):
        return _message(item)
    if isinstance(item, ReplyItem):
        return ReplyItemOut.model_validate(item, from_attributes=True)
    return ActivityOut.model_validate(item, from_attributes=True)


@router.get("/conversations/{cid}", summary="A conversation: its customer and timeline",
            responses=errors(401, 403, 404))
def conversation(cid: PathId, p: Read, db: Db) -> ConversationViewOut:
    """Every message in and out, replies with their review and delivery history, referrals
    with their notes, private notes; the customer's identities and their other conversations
    in the caller's scope. Mail HTML is sanitised; remote images are removed."""
    view = conversation_view(db, p.person, cid)
    return ConversationViewOut(
        conversation=ConversationOut.model_validate(view.conversation, from_attributes=True),
        customer=CustomerPanelOut.model_validate(view.customer, from_attributes=True),
        history=HistoryOut.model_validate(view.history, from_attributes=True),
        timeline=[_item(i) for i in view.timeline],
    )


# -- conversation steps ----------------------------------------------------------------------


def _state(db: Session, conv: Conversation) -> ConversationStateOut:
    db.commit()
    return ConversationStateOut.model_validate(conv, from_attributes=True)


@router.post("/conversations/{cid}/assign", summary="Assign to a person and/or a team",
             responses=errors(400, 401, 403, 404, 409))
def assign(cid: PathId, body: AssignIn, p: Act, db: Db) -> ConversationStateOut:
    """Coordinators and admins; an open conversation; the person must be active."""
    _visible(db, p.person, cid)
    return _state(db, workflow.assign(db, p.person, cid, person_id=body.person_id,
                                      team_id=body.team_id))


@router.post("/conversations/{cid}/refer", summary="Refer to a person and/or a team, with a note",
             responses=errors(400, 401, 403, 404, 409))
def refer(cid: PathId, body: ReferIn, p: Act, db: Db) -> ConversationStateOut:
    """The assignee, a coordinator or an admin hands it on. To a team alone: it waits
    unassigned in that team's queue."""
    _visible(db, p.person, cid)
    return _state(db, workflow.refer(db, p.person, cid, person_id=body.person_id,
                                     team_id=body.team_id, note=body.note))


@router.post("/conversations/{cid}/close", summary="Close (resolve)",
             responses=errors(401, 403, 404, 409))
def close(cid: PathId, p: Act, db: Db) -> ConversationStateOut:
    """Refused (409) while a reply awaits approval: approve or reject it first."""
    _visible(db, p.person, cid)
    return _state(db, workflow.close(db, p.person, cid))


@router.post("/conversations/{cid}/reopen", summary="Reopen a closed conversation",
             responses=errors(401, 403, 404, 409))
def reopen(cid: PathId, p: Act, db: Db) -> ConversationStateOut:
    """Back to open (resolved_at cleared), by anyone who may open it; 409 when it is open."""
    _visible(db, p.person, cid)
    return _state(db, workflow.reopen(db, p.person, cid))


@router.post("/conversations/{cid}/notes", status_code=201, summary="Add a private note",
             responses=errors(400, 401, 403, 404))
def add_note(cid: PathId, body: NoteIn, p: Act, db: Db) -> NoteOut:
    """For staff only: shown in the timeline, never sent to the customer."""
    _visible(db, p.person, cid)
    event = workflow.note(db, p.person, cid, body.text)
    db.commit()
    return NoteOut(event_id=event.id, conversation_id=cid, at=event.at,
                   text=str(event.data.get("text", "")))


@router.post("/conversations/{cid}/replies", status_code=201, summary="Draft a reply",
             responses=errors(400, 401, 403, 404, 409))
def draft(cid: PathId, body: DraftIn, p: Act, db: Db, settings: AppSettings) -> ReplyOut:
    """A draft on an open conversation, optionally through a canned template, with its
    files (base64; refused with 400 when too large, too many, empty, not base64, or on
    SMS); submit it with ``POST /api/v1/replies/{id}/submit``."""
    _visible(db, p.person, cid)
    reply = workflow.draft(db, p.person, cid, body.body, template=body.template,
                           check=REPLY_CHECK)
    add_api_files(db, p.person, reply.id, [(f.filename, f.content_base64) for f in body.files],
                  settings)
    return _reply(db, reply)


# -- replies ---------------------------------------------------------------------------------


def _reply(db: Session, reply: Reply) -> ReplyOut:
    db.commit()
    db.refresh(reply)  # updated_at and the approval stamps as stored
    return with_files(db, ReplyOut.model_validate(reply, from_attributes=True))


@router.get("/replies/{rid}", summary="A reply and its state",
            responses=errors(401, 403, 404))
def get_reply(rid: PathId, p: Read, db: Db) -> ReplyOut:
    """Poll this for the delivery status (sent, delivered, failed with ``error``)."""
    return with_files(db, ReplyOut.model_validate(_visible_reply(db, p.person, rid),
                                                  from_attributes=True))


@router.patch("/replies/{rid}", summary="Edit a draft (or a rejected reply)",
              responses=errors(400, 401, 403, 404, 409))
def edit(rid: PathId, body: EditIn, p: Act, db: Db) -> ReplyOut:
    """The author only. A rejected reply becomes a draft again."""
    _visible_reply(db, p.person, rid)
    return _reply(db, workflow.update_draft(db, p.person, rid, body.body))


@router.post("/replies/{rid}/submit", summary="Submit a draft for approval",
             responses=errors(400, 401, 403, 404, 409))
def submit(rid: PathId, p: Act, db: Db, policy: Approval) -> ReplyOut:
    """The author only. It awaits approval, or is approved at once when the approval policy
    trusts the author. Refused (400) when too long for the channel, with the count."""
    _visible_reply(db, p.person, rid)
    return _reply(db, workflow.submit(db, p.person, rid, policy=policy,
                                               check=REPLY_CHECK))


@router.post("/replies/{rid}/approve", summary="Approve a reply, optionally edited",
             responses=errors(400, 401, 403, 404, 409))
def approve(
    rid: PathId, p: Review, db: Db, body: Annotated[ApproveIn | None, Body()] = None,
) -> ReplyOut:
    """Coordinators and admins, never on their own reply. With ``body`` the approver's edit
    is sent and the author's text kept in ``original_body``. It is dispatched after commit."""
    _visible_reply(db, p.person, rid)
    edited = body.body if body is not None else None
    return _reply(db, workflow.approve(db, p.person, rid, edited_body=edited, check=REPLY_CHECK))


@router.post("/replies/{rid}/reject", summary="Send a reply back to its author",
             responses=errors(400, 401, 403, 404, 409))
def reject(rid: PathId, body: RejectIn, p: Review, db: Db) -> ReplyOut:
    """Coordinators and admins; the comment is shown to the author, who edits the reply
    (it becomes a draft again) and submits it anew."""
    _visible_reply(db, p.person, rid)
    return _reply(db, workflow.reject(db, p.person, rid, body.comment))


# -- previews --------------------------------------------------------------------------------


def _preview_out(pv: rp.Preview) -> PreviewOut:
    units = sms_length(pv.text).units if pv.channel is Channel.SMS else len(pv.text)
    return PreviewOut(channel=pv.channel, text=pv.text, parts=pv.parts, limit=pv.limit,
                      fits=pv.fits, encoding=pv.encoding, units=units, summary=pv.describe())


def _template(name: str | None, channel: Channel) -> str | None:
    if name is not None and not has_template(name, channel):
        raise InputError(f"no reply template {name!r} for {channel.value}")
    return name


@router.post("/preview", summary="Count SMS parts or chat messages for a text",
             responses=errors(400, 401, 403))
def preview(body: PreviewIn, p: Read) -> PreviewOut:
    """The text through its template as the channel's sender will send it, counted as the
    sender counts it; stores nothing (a POST for the text's size)."""
    return _preview_out(rp.preview(body.channel, body.body, language=body.language,
                                   template=_template(body.template, body.channel)))


@router.post("/conversations/{cid}/preview", summary="Preview a reply on this conversation",
             responses=errors(400, 401, 403, 404))
def conversation_preview(
    cid: PathId, body: ConversationPreviewIn, p: Read, db: Db
) -> PreviewOut:
    """As ``POST /api/v1/preview``, on the conversation's channel and with what its template
    fills in (the customer's name, the subject), as the approved reply will read."""
    conv = _visible(db, p.person, cid)
    channel = Channel(conv.channel)
    # Not added to the session: preview_reply only reads it.
    draft = Reply(conversation_id=cid, channel=channel, body=body.body,
                  template=_template(body.template, channel))
    return _preview_out(rp.preview_reply(db, draft))
