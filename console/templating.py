"""The console's Jinja2 environment. Every page gets, through a context processor:

- ``t(key, **values)``: the text in the reader's language (:mod:`console.i18n`);
- ``num(value)``: a number with Persian digits for a Persian reader;
- ``locale``, ``dir`` (``rtl`` / ``ltr``) for ``<html lang dir>``;
- ``me``: the signed-in person or None; ``csrf``: the token forms and htmx must send.

Autoescaping is on for every template (Starlette's default): customer text is always shown
as text. The only markup that reaches a page from outside is mail HTML, sanitised by nh3
first and marked safe in one place (the conversation timeline).

Bidi: every value a page prints (``{{ ... }}``, safe markup included) loses the explicit
direction controls U+202A-U+202E and U+2066-U+2069 (:func:`strip_bidi_controls`, the
environment's ``finalize``): a customer's name with U+202E (right-to-left override) would
otherwise show its text reversed to staff. Customer-controlled strings are shown isolated
from the text around them, with ``|bdi`` (``<bdi>...</bdi>``) or in an element with
``dir="auto"`` (console.css gives both ``unicode-bidi: isolate``).
"""

from __future__ import annotations

import re
import unicodedata
from functools import partial
from pathlib import Path
from typing import Any, Final

from fastapi import Request
from fastapi.templating import Jinja2Templates
from markupsafe import Markup

from console.countdown import countdown
from console.i18n import DIRECTION, LOCALE_COOKIE, digits, gettext, pick_locale
from kartabl import notifications
from responders.render import template_title

TEMPLATE_DIR = Path(__file__).resolve().parent.parent / "templates" / "console"


def request_locale(request: Request) -> str:
    p = getattr(request.state, "principal", None)
    wanted = p.person.locale if p is not None else request.cookies.get(LOCALE_COOKIE)
    return pick_locale(wanted, request.headers.get("accept-language"))


def _context(request: Request) -> dict[str, Any]:
    p = getattr(request.state, "principal", None)
    loc = request_locale(request)
    return {
        "t": partial(gettext, loc),
        "num": partial(_num, loc),
        "locale": loc,
        "dir": DIRECTION[loc],
        "me": p.person if p is not None else None,
        "csrf": (p.csrf or "") if p is not None else "",
    }


def _num(locale: str, value: object) -> str:
    return digits(value, locale)


# Embeddings and overrides (LRE, RLE, PDF, LRO, RLO) and isolates (LRI, RLI, FSI, PDI). The
# page isolates customer text itself; marks (LRM, RLM) and joiners stay: Persian needs them.
_BIDI_CONTROLS: Final = re.compile("[\u202a-\u202e\u2066-\u2069]")


def strip_bidi_controls(value: Any) -> Any:
    """``value`` without direction controls; anything else (numbers, None) as it is."""
    if not isinstance(value, str) or _BIDI_CONTROLS.search(value) is None:
        return value
    cleaned = _BIDI_CONTROLS.sub("", value)
    if isinstance(value, Markup):
        # Safe stays safe: taking characters out of markup makes no tag (a "<" is only ever
        # followed by a tag name's ASCII letter in it, or is "&lt;" already).
        return Markup(cleaned)  # noqa: S704 - see above
    return cleaned


# Leading words that say nothing of the text's language: @mentions, #tags, links, numbers.
_NEUTRAL_LEAD: Final = re.compile(r"(?:\s*(?:[@#]\S+|https?://\S+|[\d\W_]+))*\s*")


def text_dir(value: Any) -> str:
    """The direction of a person's text for its element's ``dir``: that of its first strong
    letter after any leading @mention, #tag, link or number, so "@ali لطفاً پیگیری کن" is
    right to left (``dir="auto"`` would take the "a" of the mention and show it left to
    right). "auto" when there is no letter at all."""
    text = str(value or "")
    rest = text[_NEUTRAL_LEAD.match(text).end():]  # type: ignore[union-attr]  # always matches
    for ch in rest or text:
        kind = unicodedata.bidirectional(ch)
        if kind in ("R", "AL"):
            return "rtl"
        if kind == "L":
            return "ltr"
    return "auto"


def bdi(value: Any) -> Markup:
    """``value`` as text inside ``<bdi>``: its direction is its own and does not run into the
    text around it."""
    return Markup("<bdi>%s</bdi>") % strip_bidi_controls("" if value is None else value)


TEMPLATES = Jinja2Templates(directory=str(TEMPLATE_DIR), context_processors=[_context])
TEMPLATES.env.finalize = strip_bidi_controls  # before any template is compiled: it is used then
TEMPLATES.env.filters["bdi"] = bdi
# A reply wrapper's name in the reader's language: ``wrapper_title(name, locale)``.
TEMPLATES.env.globals["wrapper_title"] = template_title
TEMPLATES.env.filters["textdir"] = text_dir
# The header's and the title's unread count: ``unread_count(me)`` (kartabl.notifications).
TEMPLATES.env.globals["unread_count"] = notifications.unread_of
# A queue row's countdown to a service target: ``countdown(due)`` (console.countdown).
TEMPLATES.env.globals["countdown"] = countdown
