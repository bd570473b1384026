"""Files on replies through the JSON API: a draft's files arrive base64 in JSON
(:class:`console.api.schemas.FileIn`) under the console's limits and rules
(:mod:`responders.reply_files`); a reply lists its files (``ReplyOut.files``). The bytes
download from the console (``/replies/{id}/attachments/{file id}``). No ``router``: the
app includes this module's none."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from pathlib import Path

from sqlalchemy.orm import Session

from config.settings import Settings
from console.api.schemas import ReplyFileOut, ReplyOut
from kartabl.errors import InputError
from kartabl.models import Person
from responders.reply_files import Limits, Upload, add, files_of


def add_api_files(db: Session, actor: Person, reply_id: int,
                  files: Sequence[tuple[str, str]], settings: Settings) -> None:
    """Decode (strict base64: anything else is a 400 naming the file) and attach."""
    uploads = []
    for name, text in files:
        try:
            data = base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            raise InputError(f"the file {name[:100]!r} is not base64",
                             code="reply_file.not_base64", params={"filename": name[:200]}
                             ) from None
        uploads.append(Upload(name, len(data), data))
    add(db, actor, reply_id, uploads, limits=Limits.of(settings),
        directory=Path(settings.attachments_dir))


def with_files(db: Session, out: ReplyOut) -> ReplyOut:
    rows = files_of(db, [out.id]).get(out.id, [])
    return out.model_copy(update={"files": [
        ReplyFileOut(id=a.id, filename=a.filename, content_type=a.content_type, size=a.size)
        for a in rows]})
