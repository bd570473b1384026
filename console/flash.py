"""Post/redirect/get for refused forms: a reload never submits a form again.

A refused step answers ``303`` to a page (the conversation, the customer, or the general
``/refused`` page) with ``?failed=<id>``; the reason and what the person typed wait in
their browser session's row (``web_session.flash``) under that id. The page shows them
while the id matches: a reload shows the same page, a second refusal replaces the first,
and the GET changes nothing (no GET ever writes). The id is random, and only the
session's own row is read, so a link to ``?failed=...`` shows nothing to anyone else.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import RedirectResponse
from sqlalchemy.orm import Session

from console.deps import Principal
from console.refusals import Refusal, refusal
from kartabl.errors import KartablError
from kartabl.models import WebSession

MAX_KEPT: Final = 20_000  # per field: as much as the forms accept


@dataclass(frozen=True)
class Flash:
    """What a refused form left for the page: the reason and the fields as typed."""

    refusal: Refusal
    kept: dict[str, str] = field(default_factory=dict)


def remember(db: Session, p: Principal, exc: KartablError,
             kept: dict[str, str] | None = None) -> str | None:
    """Keep the refusal for the next page; its id, or None (a token-signed request has no
    browser session to keep it in)."""
    row = db.get(WebSession, p.session_id) if p.session_id is not None else None
    if row is None:
        return None
    flash_id = secrets.token_urlsafe(9)
    row.flash = {"id": flash_id, "refusal": refusal(exc).as_json(),
                 "kept": {k: v[:MAX_KEPT] for k, v in (kept or {}).items()}}
    db.commit()
    return flash_id


def recall(db: Session, p: Principal, flash_id: str | None) -> Flash | None:
    """The refusal kept under ``flash_id`` for this browser session, if it is still there."""
    if not flash_id or p.session_id is None:
        return None
    row = db.get(WebSession, p.session_id)
    data: Any = row.flash if row is not None else None
    if not isinstance(data, dict) or data.get("id") != flash_id:
        return None
    found = Refusal.from_json(data.get("refusal"))
    if found is None:
        return None
    kept = data.get("kept")
    return Flash(found, {str(k): str(v) for k, v in kept.items()}
                 if isinstance(kept, dict) else {})


def refused(db: Session, p: Principal, exc: KartablError, path: str,
            kept: dict[str, str] | None = None) -> RedirectResponse:
    """Roll the step back, keep the refusal, and 303 to ``path`` (a GET page) to show it."""
    db.rollback()
    flash_id = remember(db, p, exc, kept)
    if flash_id is None:
        flash_id = ""
    sep = "&" if "?" in path else "?"
    return RedirectResponse(f"{path}{sep}{urlencode({'failed': flash_id})}", status_code=303)


def failed_id(request: Request) -> str:
    return request.query_params.get("failed", "")[:40]
