"""Who else is on a conversation ("collision", issue 14): the page's heartbeat and the
small partial that shows the others (:mod:`kartabl.presence`).

``POST /conversations/{id}/presence`` with ``state`` *viewing* or *drafting*: the page beats
every ``KARTABL_PRESENCE_HEARTBEAT_S`` seconds while it is visible, and at once when the
reader starts or stops drafting; it answers with the partial, so each beat also shows who
went quiet. ``state=left`` (a ``navigator.sendBeacon`` on ``pagehide``) forgets the entry:
204. ``GET /conversations/{id}/presence``: the partial, fetched when a change is pushed
(``event: presence`` on the page's live stream, :mod:`console.live`) or a reply was saved.

Same scope as the page: NotFound (404) for a conversation the reader cannot see, for every
state, so a beat cannot probe ids and nobody shows up where they may not look. The CSRF
token is required (header or form field) as on every cookie-signed POST. A beat is not
activity: like the live stream it never renews the session (an open tab must not keep an
idle session alive), and it writes nothing to the database, so the audit log gets no row.

While the reader drafts, the partial also says who saved or submitted a reply on this
conversation since they began (the event rows), so two people do not answer twice.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Final

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from console.deps import (
    PathId,
    Principal,
    app_settings,
    get_db,
    page_principal,
    quiet_session,
)
from console.pages._ui import render
from console.timeline import visible
from kartabl import presence, workflow
from kartabl.errors import InputError
from kartabl.models import Conversation, Event, Person

router = APIRouter(include_in_schema=False)

# Steps by someone else that a person drafting a reply should know of.
DRAFT_NEWS: Final = {"reply.drafted": "drafted", "reply.edited": "edited",
                     "reply.submitted": "submitted"}
NEWS_ROWS: Final = 5


@dataclass(frozen=True, slots=True)
class Other:
    name: str
    state: str


@dataclass(frozen=True, slots=True)
class News:
    name: str
    step: str  # a DRAFT_NEWS value
    at: datetime


def _name(person: Person) -> str:
    return person.display_name or person.username


def _partial(request: Request, db: Session, person: Person, conv: Conversation) -> Response:
    cid = conv.id
    settings = app_settings(request)
    entries = presence.store().present(cid, now=time.time(),
                                       expiry_s=settings.presence_expiry_s)
    people = {p.id: p for p in db.scalars(
        select(Person).where(Person.id.in_([e.person_id for e in entries])))}
    others = [Other(_name(people[e.person_id]), e.state.value) for e in entries
              if e.person_id != person.id and e.person_id in people
              # one who lost access meanwhile (a referral) is not shown until expiry
              and workflow.can_access(people[e.person_id], conv)]
    mine = next((e for e in entries if e.person_id == person.id), None)
    news: list[News] = []
    if mine is not None and mine.drafting_since is not None:
        since = datetime.fromtimestamp(mine.drafting_since, UTC)
        rows = db.execute(
            select(Event.kind, Event.at, Person).join(Person, Person.id == Event.actor_id)
            .where(Event.conversation_id == cid, Event.kind.in_(DRAFT_NEWS),
                   Event.actor_id != person.id, Event.at >= since)
            .order_by(Event.id.desc()).limit(NEWS_ROWS))
        news = [News(_name(who), DRAFT_NEWS[kind], at) for kind, at, who in rows]
    db.rollback()
    response = render(request, "_presence_list.html", {
        "cid": cid, "others": others, "news": news,
        "beat_ms": int(settings.presence_heartbeat_s * 1000),
        "drafting": mine is not None and mine.state is presence.State.DRAFTING})
    response.headers["Cache-Control"] = "no-store"
    return response


# quiet_session first: it must be set before page_principal signs the request in.
@router.get("/conversations/{cid}/presence", response_class=HTMLResponse,
            dependencies=[Depends(quiet_session)])
def presence_partial(
    request: Request, cid: PathId, p: Principal = Depends(page_principal),
    db: Session = Depends(get_db),
) -> Response:
    return _partial(request, db, p.person, visible(db, p.person, cid))


@router.post("/conversations/{cid}/presence", response_class=HTMLResponse,
             dependencies=[Depends(quiet_session)])
def presence_beat(
    request: Request, cid: PathId, state: Annotated[str, Form(max_length=20)] = "viewing",
    p: Principal = Depends(page_principal), db: Session = Depends(get_db),
) -> Response:
    conv = visible(db, p.person, cid)
    store = presence.store()
    pid = p.person.id
    if state == "left":
        if store.leave(cid, pid):
            presence.publish(cid, pid)
        return Response(status_code=204, headers={"Cache-Control": "no-store"})
    try:
        shown = presence.State(state)
    except ValueError:
        raise InputError(
            f"presence state {state[:20]!r} is not viewing, drafting or left") from None
    settings = app_settings(request)
    if store.beat(cid, pid, shown, now=time.time(), expiry_s=settings.presence_expiry_s):
        presence.publish(cid, pid)
    return _partial(request, db, p.person, conv)
