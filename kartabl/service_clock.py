"""The service clock: a conversation's first-response and resolution due times.

:func:`refresh` is called by every step that can move them (waiting on and off, snoozing,
resuming); the due times themselves are filled in by the business-time targets.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from kartabl.models import Conversation


def refresh(session: Session, conv: Conversation, now: datetime) -> None:
    """Recompute ``conv``'s due times (nothing stored yet at this step)."""
    del session, conv, now
