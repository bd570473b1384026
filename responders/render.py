"""Render an approved reply for its channel from ``templates/replies/<name>/``.

One folder per template, one file per channel: ``email.subject.txt``, ``email.txt`` and
``email.html`` for mail, ``<channel>.txt`` (``sms.txt``, ``telegram.txt``, ...) for the others.

A template that speaks (a greeting, a signature) has a folder per customer language,
``<name>/fa/`` and ``<name>/en/``; a file there wins over the same file directly in
``<name>/`` (for what needs no language, such as ``{{ body }}`` alone). The language is the
customer's (:func:`kartabl.language.conversation_language`), never the agent's: an English
customer gets the English greeting whoever answers. A template is offered for a channel
only when it renders in every language (:func:`has_template`), so no customer ever gets
the other language's wrapper as a fallback. ``<name>/title.toml`` names it for the console
(``fa = "..."``, ``en = "..."``; without it, the folder's name).

Templates are written by staff and run in Jinja2's immutable sandbox with StrictUndefined.
Everything from a customer or an agent (the body, the subject, names) is passed as *data*
in the context and never compiled as template source, so ``{{ 7*7 }}`` in a reply is sent
literally. HTML is autoescaped. Output is capped at :data:`MAX_RENDER_CHARS`, and string or
list repetition and powers are bounded, so a bad template cannot exhaust memory.
"""

from __future__ import annotations

import operator
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache, lru_cache
from pathlib import Path
from typing import Any, Final

from jinja2 import FileSystemLoader, StrictUndefined, TemplateError, TemplateNotFound
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError

from config.settings import ROOT
from kartabl.errors import PermanentDeliveryError
from kartabl.language import DEFAULT_LANGUAGE, LANGUAGES
from kartabl.models import Channel

TEMPLATES_DIR: Final = ROOT / "templates" / "replies"
DEFAULT_TEMPLATE: Final = "default"
MAX_RENDER_CHARS: Final = 200_000
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


class _BoundedEnvironment(ImmutableSandboxedEnvironment):
    intercepted_binops = frozenset({"*", "**"})

    def call_binop(self, context: Any, op: str, left: Any, right: Any) -> Any:
        if op == "**" and isinstance(right, int) and abs(right) > 64:
            raise SecurityError("exponent too large")
        if op == "*":
            for seq, times in ((left, right), (right, left)):
                sized = isinstance(seq, (str, list, tuple)) and isinstance(times, int)
                if sized and len(seq) * times > MAX_RENDER_CHARS:
                    raise SecurityError("repetition too large")
            return operator.mul(left, right)
        return super().call_binop(context, op, left, right)


@lru_cache(maxsize=1)
def _env() -> ImmutableSandboxedEnvironment:
    return _BoundedEnvironment(
        loader=FileSystemLoader(TEMPLATES_DIR),
        undefined=StrictUndefined,
        autoescape=lambda name: bool(name and name.endswith(".html")),
        auto_reload=False,
    )


@dataclass(frozen=True, slots=True)
class Rendered:
    text: str
    subject: str = ""
    html: str | None = None


def _source(name: str, language: str, file: str) -> str | None:
    """The loader path of ``file`` of template ``name`` for ``language``: the language's own
    file, else the one shared by every language; None when neither exists."""
    for path in (f"{name}/{language}/{file}", f"{name}/{file}"):
        if (TEMPLATES_DIR / path).is_file():
            return path
    return None


def has_template(name: str, channel: Channel | str) -> bool:
    """Whether reply template ``name`` exists for ``channel`` in every customer language."""
    file = f"{Channel(channel)}.txt"
    return bool(_NAME.match(name)) and all(_source(name, lang, file) for lang in LANGUAGES)


def template_names(channel: Channel | str) -> list[str]:
    """Every template for ``channel`` (folders of :data:`TEMPLATES_DIR`), by name."""
    root = TEMPLATES_DIR
    names = (d.name for d in root.iterdir() if d.is_dir()) if root.is_dir() else ()
    return sorted(n for n in names if has_template(n, channel))


def template_title(name: str, locale: str) -> str:
    """What the console calls template ``name`` in ``locale`` (``title.toml``), else its name."""
    return _titles(TEMPLATES_DIR / name / "title.toml").get(locale) or name


@cache
def _titles(path: Path) -> dict[str, str]:
    try:
        with path.open("rb") as f:
            data = tomllib.load(f)
    except (OSError, tomllib.TOMLDecodeError):
        return {}
    return {k: v for k, v in data.items() if isinstance(v, str)}


def _render(path: str, context: Mapping[str, Any]) -> str:
    out: list[str] = []
    size = 0
    for chunk in _env().get_template(path).generate(**context):
        size += len(chunk)
        if size > MAX_RENDER_CHARS:
            raise SecurityError(f"{path} renders more than {MAX_RENDER_CHARS} characters")
        out.append(chunk)
    return "".join(out).strip()


def render_reply(
    channel: Channel | str, body: str, *, template: str | None = None,
    context: Mapping[str, Any] | None = None, language: str = DEFAULT_LANGUAGE,
) -> Rendered:
    """Render ``body`` for ``channel`` through ``template`` (default: ``default``) in the
    customer's ``language``.

    ``context`` adds data (``subject``, ``customer_name`` ...); keys ``body``, ``channel``
    and ``language`` are always set. Any template problem is a
    :class:`PermanentDeliveryError`: retrying would render the same thing.
    """
    name = template or DEFAULT_TEMPLATE
    ch = Channel(channel)
    if not _NAME.match(name):
        raise PermanentDeliveryError(f"invalid template name {name!r}")
    if language not in LANGUAGES:
        raise PermanentDeliveryError(f"unknown language {language!r}")
    data = {"subject": "", "customer_name": "", **(context or {})}
    data.update(body=body, channel=ch.value, language=language)

    def source(file: str) -> str:
        found = _source(name, language, file)
        if found is None:
            raise TemplateNotFound(f"{name}/{file}")
        return found

    try:
        text = _render(source(f"{ch.value}.txt"), data)
        if ch != Channel.EMAIL:
            return Rendered(text=text)
        # A subject is one header line: collapse any CR/LF a customer smuggled in.
        subject = " ".join(_render(source("email.subject.txt"), data).split())
        try:
            html: str | None = _render(source("email.html"), data)
        except TemplateNotFound:
            html = None
        return Rendered(text=text, subject=subject, html=html)
    except (TemplateError, SecurityError) as exc:
        raise PermanentDeliveryError(f"template {name!r} for {ch.value}: {exc}") from exc


def reply_subject(subject: str) -> str:
    """The customer's subject without the reply prefixes it already carries (Re:, پاسخ:)."""
    return re.sub(r"^\s*((re|fwd?|aw|پاسخ)\s*:\s*)+", "", subject, flags=re.IGNORECASE).strip()
