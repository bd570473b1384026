"""What the console's pages share: rendering with the reader's date helpers, form parsing,
and the 303-with-a-message redirect after every action.

Not a page module (no ``router``): the app imports every module of this package, which is
harmless here.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any, Final
from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import RedirectResponse, Response
from markupsafe import Markup
from sqlalchemy import select
from sqlalchemy.orm import Session

from console.dates import display_tz, format_date
from console.deps import MAX_ID
from console.i18n import DIRECTION, digits, duration, gettext
from console.refusals import template_label
from console.templating import TEMPLATES, bdi, request_locale
from kartabl.errors import InputError
from kartabl.models import Person, Team, utcnow


def when(locale: str, value: datetime | None) -> str:
    """A moment as its reader expects it, in the display time zone: "۱۴۰۵/۰۹/۱۰ ۱۴:۳۰"
    (Jalali, Persian digits) or "2026-12-01 14:30"."""
    if value is None:
        return ""
    local = value.astimezone(display_tz())
    return f"{format_date(value, locale)} {digits(local.strftime('%H:%M'), locale)}"


def age(locale: str, value: datetime | None, now: datetime | None = None) -> str:
    """How long ago, in the largest whole unit: "5m", "3h", "2d" (translated)."""
    if value is None:
        return ""
    seconds = max(0, int(((now or utcnow()) - value).total_seconds()))
    if seconds < 60:
        return gettext(locale, "age.now")
    if seconds < 3600:
        return gettext(locale, "age.minutes", n=seconds // 60)
    if seconds < 86400:
        return gettext(locale, "age.hours", n=seconds // 3600)
    return gettext(locale, "age.days", n=seconds // 86400)




def time_tag(locale: str, value: datetime | None, text: str) -> Markup | str:
    """``text`` (a moment as :func:`when` or a day as ``format_date`` writes it) in a
    ``<time>`` of the reader's direction, isolated: beside a name of the other direction
    ("Reply by علی · 2026-12-01 14:30") neither is reordered into the other."""
    if value is None:
        return ""
    return Markup('<time datetime="%s" dir="%s">%s</time>') % (
        value.isoformat(), DIRECTION[locale], text)


# The router's reasons (audit data, English) -> their catalog keys (``route.<key>``).
ROUTE_REASONS: Final = {
    "previous assignee": "previous_assignee", "least loaded": "least_loaded",
    "no available member": "no_available_member", "team at capacity": "team_at_capacity",
    "team kept": "team_kept", "no rule matched": "no_rule_matched",
    "inbox default": "inbox_default",
}
_NO_TEAM = re.compile(r"team '(.+)' does not exist")


def route_reason(locale: str, reason: tuple[str | None, str | None]) -> Markup:
    """Why the router placed a conversation, in the reader's words: "no available member
    (rule billing words)" becomes "هیچ عضو آزادی نبود · قاعدهٔ <bdi>billing words</bdi>".
    A rule's name (and a reason this version does not know) is isolated."""
    said, rule = reason
    parts: list[Markup | str] = []
    if said:
        missing = _NO_TEAM.fullmatch(said)
        if said in ROUTE_REASONS:
            parts.append(gettext(locale, f"route.{ROUTE_REASONS[said]}"))
        elif missing:
            parts.append(gettext(locale, "route.no_team", team=bdi(missing.group(1))))
        else:
            parts.append(bdi(said))
    if rule:
        named = (gettext(locale, "route.inbox_default") if rule == "inbox default"
                 else gettext(locale, "route.rule", rule=bdi(rule)))
        parts.append(named)
    return Markup(" · ").join(parts)


def render(
    request: Request, template: str, context: dict[str, Any], status_code: int = 200
) -> Response:
    """A console page: the template gets ``when``, ``age``, ``duration``, ``day``,
    ``template_label`` and ``route_reason`` bound to the reader's locale, on top of what
    every template gets (``t``, ``num``, ...). ``when`` and ``day`` give ``<time>`` markup."""
    loc = request_locale(request)
    helpers: dict[str, Any] = {
        "when": lambda v: time_tag(loc, v, when(loc, v)),
        "age": lambda v: age(loc, v),
        "duration": lambda v: duration(loc, v),
        "day": lambda v: time_tag(loc, v, format_date(v, loc)) if v is not None else "",
        "template_label": lambda name: template_label(loc, name),
        "route_reason": lambda reason: route_reason(loc, reason),
    }
    return TEMPLATES.TemplateResponse(
        request, template, {**helpers, **context}, status_code=status_code
    )


def back(path: str, done: str) -> RedirectResponse:
    """303 back to ``path`` after an action; the page shows ``flash.<done>``. A query string,
    not a cookie: nothing to store, and a reload shows the same page."""
    sep = "&" if "?" in path else "?"
    return RedirectResponse(f"{path}{sep}{urlencode({'done': done})}", status_code=303)


def optional_id(value: str | None, what: str) -> int | None:
    """A ``<select>``'s id: "" means none chosen; anything but a positive number is refused."""
    text = (value or "").strip()
    if not text:
        return None
    if not text.isascii() or not text.isdigit() or len(text) > 10 or not 1 <= int(text) <= MAX_ID:
        raise InputError(f"{what} must be an id, not {text[:20]!r}")
    return int(text)


def form_text(value: str | None) -> str:
    """A textarea's text with the browser's CRLF line ends made LF: what the customer gets,
    and what an approver's unchanged edit is compared with."""
    return (value or "").replace("\r\n", "\n").replace("\r", "\n")


AGES: dict[str, tuple[timedelta | None, timedelta | None]] = {
    # key -> (min_age, max_age) on opened_at, for the queue filter
    "lt1h": (None, timedelta(hours=1)),
    "gt1h": (timedelta(hours=1), None),
    "gt4h": (timedelta(hours=4), None),
    "gt1d": (timedelta(days=1), None),
    "gt3d": (timedelta(days=3), None),
    "gt7d": (timedelta(days=7), None),
}


def handover_choices(db: Session) -> tuple[list[Person], list[Team]]:
    """Whom a conversation can be handed to (assign, refer, the queues' bulk bar): the
    active people and the teams, by name."""
    people = list(db.scalars(select(Person).where(Person.active.is_(True))
                             .order_by(Person.username)))
    return people, list(db.scalars(select(Team).order_by(Team.name)))
