"""Walking a parsed mail's MIME tree, with limits.

The walk sorts the leaves into the body (inline text/plain and text/html parts, the best
alternative only), files (everything else, attachments and inline images alike), and the
parts a bounce is read from (``message/delivery-status``, ``message/rfc822``,
``text/rfc822-headers``). Attached mails (``message/rfc822``) are leaves: they are kept
whole as an ``.eml`` file, their own parts belong to them.

Limits, because a mail is attacker-sized (OTRS CVE-2026-48187): :func:`precap` cuts the raw
bytes before the stdlib parser sees more than :data:`MAX_BOUNDARY_LINES` part boundaries,
:data:`MAX_BOUNDARIES` distinct multipart containers or :data:`MAX_MESSAGE_PARTS` attached
mails (``policy.default`` costs ~0.4 ms per part, and deep nesting ends in RecursionError:
``message/rfc822`` parts nest without any boundary, 2,000 of them in 100 KB, and the parser
and generator recurse once per level); :func:`walk` then stops
below :data:`MAX_DEPTH` levels and after :data:`MAX_PARTS` parts. Both report truncation
instead of failing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from email.message import Message

MAX_DEPTH = 20
MAX_PARTS = 500
MAX_BOUNDARY_LINES = 1000
MAX_BOUNDARIES = 100
# Attached mails, nested or not (a cheap byte scan cannot tell): with MAX_BOUNDARIES this
# keeps any nesting to ~150 levels, well under the generator's recursion limit (~250).
MAX_MESSAGE_PARTS = 50

_BOUNDARY_PARAM = re.compile(rb'boundary\s*=\s*"?([^";\r\n]{1,200})', re.I)
_DASH_LINE = re.compile(rb"^--([^\r\n]{1,200})", re.M)
_MESSAGE_PART = re.compile(rb"^content-type:[ \t]*(?:\r?\n[ \t]+)?message/(?:rfc822|global)",
                           re.I | re.M)


def precap(raw: bytes) -> tuple[bytes, bool]:
    """``raw`` cut before its ``MAX_BOUNDARY_LINES``-th boundary line, before the
    ``MAX_BOUNDARIES``-th multipart declaration, or before the ``MAX_MESSAGE_PARTS``-th
    attached mail's Content-Type line; ``(raw, truncated)``."""
    cut = _message_cut(raw)
    boundary_cut = _boundary_cut(raw, cut if cut is not None else len(raw))
    if boundary_cut is not None:
        cut = boundary_cut
    if cut is None:
        return raw, False
    return raw[:cut], True


def _message_cut(raw: bytes) -> int | None:
    for n, m in enumerate(_MESSAGE_PART.finditer(raw)):
        if n + 1 >= MAX_MESSAGE_PARTS:
            return m.start()
    return None


def _boundary_cut(raw: bytes, end: int) -> int | None:
    declared: set[bytes] = set()
    cut: int | None = None
    for n, m in enumerate(_BOUNDARY_PARAM.finditer(raw, 0, end)):
        declared.add(m.group(1).strip())
        if n + 1 >= MAX_BOUNDARIES:
            # Cut at the boundary line that opens the part declaring it.
            cut = raw.rfind(b"\n--", 0, m.start())
            cut = m.start() if cut < 0 else cut + 1
            break
    if not declared:
        return None
    lines = 0
    for m in _DASH_LINE.finditer(raw, 0, cut if cut is not None else end):
        token = m.group(1).rstrip()
        if token.endswith(b"--"):
            token = token[:-2]
        if token in declared:
            lines += 1
            if lines >= MAX_BOUNDARY_LINES:
                return m.start()
    return cut


@dataclass
class Walk:
    texts: list[Message] = field(default_factory=list)
    htmls: list[Message] = field(default_factory=list)
    files: list[Message] = field(default_factory=list)
    reports: list[Message] = field(default_factory=list)  # message/delivery-status
    originals: list[Message] = field(default_factory=list)  # message/rfc822, rfc822-headers
    truncated: bool = False
    parts: int = 0
    # Each part's (content type, parameters), parsed once: policy.default re-parses the
    # Content-Type header on every get_content_type()/get_param() call, and that parse is
    # most of a mail's cost.
    types: dict[int, tuple[str, dict[str, str]]] = field(default_factory=dict)

    def content_type(self, part: Message) -> tuple[str, dict[str, str]]:
        known = self.types.get(id(part))
        if known is None:
            known = self.types[id(part)] = content_type(part)
        return known


def content_type(part: Message) -> tuple[str, dict[str, str]]:
    """``(type/subtype, params)`` of ``part`` with the stdlib's defaults, parsed once."""
    try:
        header = part.get("content-type")
    except Exception:  # a Content-Type the registry cannot parse: RFC 2045's default
        return "text/plain", {}
    if header is None:
        return part.get_default_type(), {}
    ctype = str(getattr(header, "content_type", "") or "").lower()
    if ctype.count("/") != 1:
        return "text/plain", {}
    params = getattr(header, "params", None)
    return ctype, {str(k).lower(): str(v) for k, v in (params or {}).items()}


def _is_inline_text(part: Message, ctype: str) -> bool:
    if ctype not in ("text/plain", "text/html"):
        return False
    return part.get_content_disposition() != "attachment" and not part.get_filename()


def walk(root: Message) -> Walk:
    out = Walk()
    _visit(root, 0, out, alternative=None)
    return out


def _visit(part: Message, depth: int, out: Walk, alternative: dict[str, bool] | None) -> None:
    if out.parts >= MAX_PARTS:
        out.truncated = True
        return
    out.parts += 1
    ctype, _ = out.content_type(part)
    if ctype == "message/delivery-status":
        out.reports.append(part)
        return
    if ctype in ("message/rfc822", "message/global", "text/rfc822-headers"):
        out.originals.append(part)
        out.files.append(part)
        return
    if part.is_multipart() and not ctype.startswith("message/"):
        if depth >= MAX_DEPTH:
            out.truncated = True
            return
        payload = part.get_payload()
        items = payload if isinstance(payload, list) else []
        children = [c for c in items if isinstance(c, Message)]
        if ctype == "multipart/alternative":
            # Only the first plain and the first HTML alternative are the body; the others
            # say the same thing again. Non-text alternatives (text/calendar) are files.
            seen: dict[str, bool] = alternative if alternative is not None else {}
            for child in children:
                _visit(child, depth + 1, out, seen)
        else:
            for child in children:
                _visit(child, depth + 1, out, alternative)
        return
    if _is_inline_text(part, ctype):
        if alternative is not None:
            if alternative.get(ctype):
                return
            alternative[ctype] = True
        (out.texts if ctype == "text/plain" else out.htmls).append(part)
        return
    out.files.append(part)
