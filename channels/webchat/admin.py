"""Making and editing widgets: admins only, every change audited.

A widget's secret is made at creation (256 random bits, hex) and never typed by anyone; the
public id is random too, so one shop cannot guess another's. Origins are exact
``scheme://host[:port]`` (what a browser sends as ``Origin``), one per line; nothing else
is accepted, so a typo cannot widen the list (no wildcard, no path).
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session

from kartabl import audit
from kartabl.errors import InputError, NotFound, PermissionDenied
from kartabl.models import Person, Role, Team, Widget

COLOR = re.compile(r"#[0-9a-fA-F]{6}")
MAX_ORIGINS = 20
MAX_TEXT = 1000


@dataclass(frozen=True, slots=True)
class WidgetInput:
    name: str
    origins: str  # one per line
    team_id: int | None
    color: str
    text_color: str
    greeting_fa: str
    greeting_en: str
    offline_fa: str
    offline_en: str
    ask_phone: bool
    ask_email: bool
    active: bool = True


def require_admin(step: str, actor: Person | None) -> Person:
    if actor is None or not actor.active or actor.role is not Role.ADMIN:
        name = actor.username if actor is not None else "nobody"
        raise PermissionDenied(step, name, "only an admin may manage website widgets")
    return actor


def parse_origins(text: str) -> list[str]:
    """Each line an origin exactly as a browser sends it; :class:`InputError` otherwise."""
    out: list[str] = []
    for line in text.replace(",", "\n").splitlines():
        line = line.strip().rstrip("/")
        if not line:
            continue
        parts = urlsplit(line)
        if (parts.scheme not in ("http", "https") or not parts.hostname or parts.path
                or parts.query or parts.fragment or parts.username or "*" in line):
            raise InputError(f"not an origin (scheme://host[:port]): {line[:80]!r}")
        try:
            port = parts.port
        except ValueError:
            raise InputError(f"not an origin (a bad port): {line[:80]!r}") from None
        # a browser's Origin leaves out the scheme's default port (RFC 6454): so must we
        default = {"http": 80, "https": 443}[parts.scheme]
        origin = f"{parts.scheme}://{parts.hostname.lower()}" + (
            f":{port}" if port and port != default else "")
        if origin not in out:
            out.append(origin)
    if not out:
        raise InputError("a widget needs at least one allowed origin (the site's address)")
    if len(out) > MAX_ORIGINS:
        raise InputError(f"at most {MAX_ORIGINS} origins")
    return out


def _apply(session: Session, widget: Widget, data: WidgetInput) -> None:
    name = data.name.strip()
    if not name or len(name) > 200:
        raise InputError("a widget needs a name (at most 200 characters)")
    for color in (data.color, data.text_color):
        if not COLOR.fullmatch(color.strip()):
            raise InputError(f"a colour is #rrggbb, not {color[:20]!r}")
    texts = (data.greeting_fa, data.greeting_en, data.offline_fa, data.offline_en)
    if any(len(t) > MAX_TEXT for t in texts):
        raise InputError(f"a greeting or offline text is at most {MAX_TEXT} characters")
    if data.team_id is not None and session.get(Team, data.team_id) is None:
        raise InputError(f"no team {data.team_id}")
    widget.name, widget.origins, widget.team_id = name, parse_origins(data.origins), data.team_id
    widget.color, widget.text_color = data.color.strip().lower(), data.text_color.strip().lower()
    widget.greeting_fa, widget.greeting_en = data.greeting_fa.strip(), data.greeting_en.strip()
    widget.offline_fa, widget.offline_en = data.offline_fa.strip(), data.offline_en.strip()
    widget.ask_phone, widget.ask_email, widget.active = (data.ask_phone, data.ask_email,
                                                         data.active)


def create(session: Session, actor: Person | None, data: WidgetInput) -> Widget:
    admin = require_admin("create a widget", actor)
    widget = Widget(public_id="w" + secrets.token_hex(8), secret=secrets.token_hex(32))
    _apply(session, widget, data)
    session.add(widget)
    session.flush()
    audit.record(session, "widget.created", actor=admin, widget=widget.public_id,
                 origins=widget.origins)
    return widget


def get(session: Session, actor: Person | None, widget_id: int) -> Widget:
    require_admin("see a widget", actor)
    widget = session.get(Widget, widget_id)
    if widget is None:
        raise NotFound(f"no widget {widget_id}")
    return widget


def edit(session: Session, actor: Person | None, widget_id: int, data: WidgetInput) -> Widget:
    widget = get(session, actor, widget_id)
    _apply(session, widget, data)
    audit.record(session, "widget.edited", actor=actor, widget=widget.public_id,
                 origins=widget.origins)
    return widget


def listed(session: Session, actor: Person | None) -> list[Widget]:
    require_admin("list widgets", actor)
    return list(session.scalars(select(Widget).order_by(Widget.id)))
