"""Files attached to a reply, in the console: uploaded with the composer's draft form and
the edit form of a draft (``multipart/form-data``: ``files``, and ``remove_file`` ids to
take off), listed for the approver before approving, and downloaded from
``GET /replies/{rid}/attachments/{aid}``.

The forms' own routes (:mod:`console.pages.conversation`) take a :data:`ReplyFiles`
argument and call its :meth:`Uploads.apply` inside their workflow step, so a refused file
(too large, an SMS conversation: ``reply_file.*`` codes, :mod:`responders.reply_files`)
rolls the whole step back and answers by post/redirect/get with the text as typed (a
browser never refills a file input: the files must be chosen again).

The download follows the message attachments' route (:mod:`console.pages.attachments`):
only to a person who may see the reply's conversation, else 404 as if it did not exist;
only a file listed on that reply (an id alone opens nothing); always a download, its type
the sniffed one when harmless, else ``application/octet-stream``, with a ``sandbox`` CSP.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session
from starlette.datastructures import UploadFile

from console.deps import AppSettings, PathId, Principal, get_db, page_principal
from console.pages.attachments import SAFE_TYPES, SANDBOX_CSP, attachment_path, content_disposition
from kartabl.errors import NotFound
from kartabl.models import Conversation, Person, Reply, ReplyAttachment
from kartabl.workflow.access import can_access
from responders.reply_files import Limits, Upload, add, remove

router = APIRouter(include_in_schema=False)


@dataclass
class Uploads:
    """What a reply form sent besides its text: new files and the ids of files to remove."""

    files: list[Upload] = field(default_factory=list)
    remove_ids: list[int] = field(default_factory=list)
    limits: Limits = field(default_factory=Limits)
    directory: Path = Path("var/attachments")

    def apply(self, db: Session, actor: Person, reply_id: int) -> None:
        """Remove, then add (checked against the limits, with what stays), in the caller's
        transaction."""
        remove(db, actor, reply_id, self.remove_ids)
        add(db, actor, reply_id, self.files, limits=self.limits, directory=self.directory)


async def reply_uploads(request: Request, settings: AppSettings,
                        _p: Principal = Depends(page_principal)) -> Uploads:
    """The form's files, read once (Starlette keeps the parsed form: the route's text
    fields come from the same parse), and only for a signed-in person whose CSRF token
    checked out (``page_principal``, which FastAPI runs once per request, before this).
    Files are read into memory only while they fit the per-reply limits: past the number
    of files or the total size, their sizes alone refuse the form."""
    limits = Limits.of(settings)
    out = Uploads(limits=limits, directory=Path(settings.attachments_dir))
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        return out
    form = await request.form()
    total = 0
    for value in form.getlist("files"):
        if not isinstance(value, UploadFile) or not value.filename:
            continue  # an empty file input sends a part with no name
        size = value.size if value.size is not None else 0
        total += size
        fits = total <= limits.per_reply and len(out.files) < limits.max_files
        data = await value.read() if fits else b""
        out.files.append(Upload(value.filename, len(data) if data else size, data))
    for value in form.getlist("remove_file"):
        text = value if isinstance(value, str) else ""
        if text.isascii() and text.isdigit() and len(text) < 19:
            out.remove_ids.append(int(text))
    return out


ReplyFiles = Annotated[Uploads, Depends(reply_uploads)]


@router.get("/replies/{rid}/attachments/{aid}")
def download(
    rid: PathId, aid: PathId, settings: AppSettings, p: Principal = Depends(page_principal),
    db: Session = Depends(get_db),
) -> Response:
    reply = db.get(Reply, rid)
    conv = db.get(Conversation, reply.conversation_id) if reply is not None else None
    if reply is None or conv is None or not can_access(p.person, conv):
        raise NotFound(f"reply {rid} does not exist")
    att = db.get(ReplyAttachment, aid)
    if att is None or att.reply_id != reply.id:
        raise NotFound("no such file on this reply")
    path = attachment_path(settings.attachments_dir, att.storage_key)
    if not path.is_file():
        raise NotFound("the file was removed from storage")
    media_type = att.content_type if att.content_type in SAFE_TYPES else "application/octet-stream"
    return Response(path.read_bytes(), media_type=media_type, headers={
        "Content-Disposition": content_disposition("attachment", att.filename),
        "Content-Security-Policy": SANDBOX_CSP,
        "Cache-Control": "private, max-age=3600",
    })
