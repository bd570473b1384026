"""Persian and English for the console: message catalogs, direction, digits.

Catalogs are TOML files in ``console/locales`` (``fa.toml``, ``en.toml``), one flat table
of ``key = "text"`` per section. A missing Persian text falls back to English, a missing
English text to the key itself, so a forgotten entry shows up as ``queue.triage`` on the
page rather than as an error. Texts may name ``{placeholders}``.

Each person chooses a locale (``Person.locale``); before sign-in the ``kartabl_locale``
cookie, then ``Accept-Language``, then Persian decide.
"""

from __future__ import annotations

import tomllib
from functools import cache
from pathlib import Path
from typing import Any, Final

from markupsafe import Markup, escape

LOCALES: Final = ("fa", "en")
DEFAULT_LOCALE: Final = "fa"
DIRECTION: Final = {"fa": "rtl", "en": "ltr"}
LOCALE_COOKIE: Final = "kartabl_locale"
_DIR = Path(__file__).resolve().parent / "locales"
_FA_DIGITS = str.maketrans("0123456789", "۰۱۲۳۴۵۶۷۸۹")


def _flatten(table: dict[str, Any], prefix: str = "") -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in table.items():
        if isinstance(value, dict):
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = str(value)
    return out


@cache
def catalog(locale: str) -> dict[str, str]:
    path = _DIR / f"{locale}.toml"
    if not path.exists():
        return {}
    with path.open("rb") as f:
        return _flatten(tomllib.load(f))


def gettext(locale: str, key: str, **values: Any) -> str:
    text = catalog(locale).get(key) or catalog("en").get(key) or key
    if values:
        shown = {k: digits(v, locale) if isinstance(v, int | float) else v
                 for k, v in values.items()}
        try:
            if any(isinstance(v, Markup) for v in shown.values()):
                # a value already markup (a customer's name in <bdi>): the catalog's text is
                # escaped as text, the other values too (Markup.format escapes them)
                return escape(text).format(**shown)
            return text.format(**shown)
        except (KeyError, IndexError, ValueError):
            return text  # a translator's typo must not break the page
    return text


def digits(value: object, locale: str) -> str:
    """``value`` as text, with Persian digits for a Persian reader (numbers, dates, counts;
    never identifiers someone might copy, such as phone numbers or ids in URLs)."""
    text = f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else str(value)
    if locale == "fa":
        return text.replace(",", "٬").translate(_FA_DIGITS)
    return text


def pick_locale(wanted: str | None, accept_language: str | None = None) -> str:
    if wanted in LOCALES:
        return wanted
    for part in (accept_language or "").split(","):
        lang = part.split(";")[0].strip().lower()[:2]
        if lang in LOCALES:
            return lang
    return DEFAULT_LOCALE


def duration(locale: str, minutes: float | None) -> str:
    """A report's duration in its two largest units, a zero second one left out: "—",
    "45 min", "3 h 20 min", "4 h", "2 d 4 h", "3 d" (translated)."""
    if minutes is None:
        return "—"
    total = round(minutes)
    days, rest = divmod(total, 1440)
    hours, mins = divmod(rest, 60)
    if days:
        return gettext(locale, "dur.dh", d=days, h=hours) if hours else gettext(
            locale, "dur.d", d=days)
    if hours:
        return gettext(locale, "dur.hm", h=hours, m=mins) if mins else gettext(
            locale, "dur.h", h=hours)
    return gettext(locale, "dur.m", m=mins)
