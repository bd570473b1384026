"""The reply windows of Instagram and WhatsApp on the conversation page
(:mod:`kartabl.workflow.windows`): what a pending reply shows, and the one action.

- :func:`windows_of`: for each pending reply on these channels, when its window closes (or
  closed), and whether SMS is the way out; ``_reply_window.html`` shows it above the
  approve button, so the approver knows before approving.
- ``POST /replies/{id}/to-sms``: a coordinator re-targets a pending reply whose window
  closed to SMS (:func:`kartabl.workflow.windows.to_sms`, audited); the reply stays
  pending, and is approved as an SMS, its length counted as one.
"""

from __future__ import annotations

from collections.abc import Iterable

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from console.deps import PathId, Principal, get_db, page_principal
from console.flash import refused
from console.pages._ui import back
from console.timeline import visible
from kartabl.errors import KartablError, NotFound
from kartabl.models import Reply
from kartabl.workflow.windows import ReplyWindow, to_sms, window_of

router = APIRouter(include_in_schema=False)


def windows_of(db: Session, reply_ids: Iterable[int]) -> dict[int, ReplyWindow]:
    """``{reply id: its window}`` for the replies on a channel that has one."""
    out = {}
    for rid in reply_ids:
        reply = db.get(Reply, rid)
        window = window_of(db, reply) if reply is not None else None
        if window is not None:
            out[rid] = window
    return out


@router.post("/replies/{rid}/to-sms")
def retarget_to_sms(
    request: Request, rid: PathId, p: Principal = Depends(page_principal),
    db: Session = Depends(get_db),
) -> Response:
    reply = db.get(Reply, rid)
    if reply is None:
        raise NotFound(f"reply {rid} does not exist")
    cid = visible(db, p.person, reply.conversation_id).id  # NotFound outside the scope
    try:
        to_sms(db, p.person, rid)
    except KartablError as exc:
        return refused(db, p, exc, f"/conversations/{cid}", {})
    db.commit()
    return back(f"/conversations/{cid}", "meta_window.retargeted")
