"""What a person is told when the console refuses a step, in their language.

The error tree (:mod:`kartabl.errors`) keeps its English sentence for logs and the JSON API
(``str(exc)``) and carries a ``code`` with ``params``. A :class:`Refusal` is that, as plain
JSON (a refused form's reason survives the redirect to the page that shows it:
:mod:`console.flash`), and :func:`refusal_text` turns it into a sentence of the catalogs
(``error.<code>``), each parameter shown in the reader's words (a step, a state, a field)
or isolated (``<bdi>``) when it is a name or a text of its own. An error without a sentence
of its own gets its kind's general sentence with the English detail beside it, marked as
English and isolated, so the reader still learns the specifics.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Final

from markupsafe import Markup

from console.http_errors import http_status
from console.i18n import catalog, gettext
from console.templating import bdi
from kartabl.errors import (
    IllegalTransition,
    InputError,
    KartablError,
    NotFound,
    PermissionDenied,
)
from responders.render import template_title

# The general sentence of each kind (``error.kind.<kind>``), for an error with no code.
KINDS: Final = ((NotFound, "not_found"), (PermissionDenied, "denied"),
                (IllegalTransition, "illegal"), (InputError, "input"))
# Parameters named after a catalog section: shown as that section's text for the value.
_WORDS: Final = {"step": "step_name", "item": "item", "field": "field", "channel": "channel"}


@dataclass(frozen=True)
class Refusal:
    """A refused step as plain JSON: ``kind`` (not_found, denied, illegal, input, error),
    ``code`` (the catalog's ``error.<code>``, "" for none), ``params``, the English
    ``message`` and the HTTP ``status`` the API gives it."""

    kind: str
    code: str
    message: str
    status: int
    params: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Any) -> Refusal | None:
        if not isinstance(data, dict):
            return None
        try:
            return cls(kind=str(data["kind"]), code=str(data.get("code") or ""),
                       message=str(data.get("message") or ""), status=int(data["status"]),
                       params=dict(data.get("params") or {}))
        except (KeyError, TypeError, ValueError):
            return None  # written by another version: nothing to show rather than a 500


def refusal(exc: KartablError) -> Refusal:
    kind = next((name for cls, name in KINDS if isinstance(exc, cls)), "error")
    return Refusal(kind, exc.code, str(exc), http_status(exc), dict(exc.params))


def template_label(locale: str, name: str | None) -> str | Markup:
    """A reply wrapper's name in the reader's language (its folder's ``title.toml``, the one
    source of wrapper names); a wrapper without one keeps its folder's name, isolated."""
    folder = name or "default"
    title = template_title(folder, locale)
    return title if title != folder else bdi(folder)


def _shown(locale: str, name: str, value: Any, params: dict[str, Any]) -> Any:
    if isinstance(value, bool) or value is None:
        return ""
    if isinstance(value, int | float):
        return value  # gettext writes the reader's digits
    text = str(value)
    if name in _WORDS:
        key = f"{_WORDS[name]}.{text}"
        return gettext(locale, key) if key in catalog("en") else bdi(text)
    if name == "state":
        section = "status" if params.get("item") == "conversation" else "reply_state"
        key = f"{section}.{text}"
        return gettext(locale, key) if key in catalog("en") else bdi(text)
    if name == "template":
        return template_label(locale, text)
    return bdi(text)  # a name, a date as typed, a provider's words: its own direction


def refusal_text(locale: str, r: Refusal) -> Markup:
    """The refusal as one sentence in ``locale`` (markup: its values are isolated)."""
    key = f"error.{r.code}"
    if r.code and key in catalog("en"):
        values = {k: _shown(locale, k, v, r.params) for k, v in r.params.items()}
        return Markup(gettext(locale, key, _markup=Markup(""), **values))  # noqa: S704 - escaped by gettext
    general = gettext(locale, f"error.kind.{r.kind}")
    detail = Markup('<bdi class="detail" dir="ltr" lang="en">%s</bdi>') % r.message
    return Markup("%s %s") % (general, detail)
