"""The queue rows' countdown to a service target (issue 15): "2 h 10 min left" or "late by
45 min", in the reader's language and digits, from a due time of :mod:`kartabl.service_clock`.
Wall time to the due moment (the due moment itself is in business time)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from jinja2 import pass_context

from console.i18n import duration, gettext
from kartabl.models import utcnow


def _span(locale: str, seconds: float) -> str:
    return duration(locale, max(1, round(seconds / 60)))  # at least "1 min", never "0"


def countdown_text(locale: str, due: datetime | None, now: datetime | None = None) -> str:
    if due is None:
        return ""
    left = (due - (now or utcnow())).total_seconds()
    key = "clock.left" if left > 0 else "clock.late"
    return gettext(locale, key, span=_span(locale, abs(left)))


@pass_context
def countdown(ctx: Any, due: datetime | None) -> str:
    """``countdown(due)`` in a template: in the page's locale."""
    return countdown_text(str(ctx.get("locale", "fa")), due)
