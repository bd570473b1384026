"""Render an approved reply for its channel from ``templates/replies/<name>/``.

One folder per template, one file per channel: ``email.subject.txt``, ``email.txt`` and
``email.html`` for mail, ``sms.txt``, ``telegram.txt``, ``bale.txt`` for the others.

Templates are written by staff and run in Jinja2's immutable sandbox with StrictUndefined.
Everything from a customer or an agent (the body, the subject, names) is passed as *data*
in the context and never compiled as template source, so ``{{ 7*7 }}`` in a reply is sent
literally. HTML is autoescaped. Output is capped at :data:`MAX_RENDER_CHARS`, and string or
list repetition and powers are bounded, so a bad template cannot exhaust memory.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Final

from jinja2 import FileSystemLoader, StrictUndefined, TemplateError, TemplateNotFound
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError

from config.settings import ROOT
from kartabl.errors import PermanentDeliveryError
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


def has_template(name: str, channel: Channel | str) -> bool:
    """Whether reply template ``name`` exists for ``channel``."""
    return bool(_NAME.match(name)) and (TEMPLATES_DIR / name / f"{Channel(channel)}.txt").is_file()


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
    context: Mapping[str, Any] | None = None,
) -> Rendered:
    """Render ``body`` for ``channel`` through ``template`` (default: ``default``).

    ``context`` adds data (``subject``, ``customer_name`` ...); keys ``body`` and
    ``channel`` are always set. Any template problem is a :class:`PermanentDeliveryError`:
    retrying would render the same thing.
    """
    name = template or DEFAULT_TEMPLATE
    ch = Channel(channel)
    if not _NAME.match(name):
        raise PermanentDeliveryError(f"invalid template name {name!r}")
    data = {"subject": "", "customer_name": "", **(context or {})}
    data.update(body=body, channel=ch.value)
    try:
        text = _render(f"{name}/{ch.value}.txt", data)
        if ch != Channel.EMAIL:
            return Rendered(text=text)
        # A subject is one header line: collapse any CR/LF a customer smuggled in.
        subject = " ".join(_render(f"{name}/email.subject.txt", data).split())
        try:
            html: str | None = _render(f"{name}/email.html", data)
        except TemplateNotFound:
            html = None
        return Rendered(text=text, subject=subject, html=html)
    except (TemplateError, SecurityError) as exc:
        raise PermanentDeliveryError(f"template {name!r} for {ch.value}: {exc}") from exc


def reply_subject(subject: str) -> str:
    """The customer's subject without the reply prefixes it already carries (Re:, پاسخ:)."""
    return re.sub(r"^\s*((re|fwd?|aw|پاسخ)\s*:\s*)+", "", subject, flags=re.IGNORECASE).strip()
