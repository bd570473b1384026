"""The console's Jinja2 environment. Every page gets, through a context processor:

- ``t(key, **values)``: the text in the reader's language (:mod:`console.i18n`);
- ``num(value)``: a number with Persian digits for a Persian reader;
- ``locale``, ``dir`` (``rtl`` / ``ltr``) for ``<html lang dir>``;
- ``me``: the signed-in person or None; ``csrf``: the token forms and htmx must send.

Autoescaping is on for every template (Starlette's default): customer text is always shown
as text. The only markup that reaches a page from outside is mail HTML, sanitised by nh3
first and marked safe in one place (the conversation timeline).
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.templating import Jinja2Templates

from console.i18n import DIRECTION, LOCALE_COOKIE, digits, gettext, pick_locale

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


TEMPLATES = Jinja2Templates(directory=str(TEMPLATE_DIR), context_processors=[_context])
