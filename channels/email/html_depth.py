"""Nesting capped before any HTML parser sees the mail: :func:`cap_depth`.

html5ever (inside nh3) walks its stack of open elements for many start tags ("is there a
``p`` in button scope?"), so its cost grows with the square of the nesting depth: 25,000
nested ``<div>`` (122 KB) cost seconds per parse. Browsers cap the depth of the tree they
build (Chromium at 512); :func:`cap_depth` does the same in one linear pass of its own, with
``str.find`` and anchored regular expressions (no backtracking across the document).

The output is the document **re-serialised** from this pass's own tokens: start tags with
their attributes quoted and escaped, an explicit end tag for every element left open, every
``<`` and ``>`` of text escaped, comments and declarations dropped. So whatever this
tokenizer makes of odd markup, the parser that reads its output sees the same elements,
no deeper than ``max_depth`` (html5ever may reopen formatting elements it closed itself,
at most as many as are open here). Tags deeper than the cap are dropped and their text
kept: the content is flattened to text, nothing is hidden. Safety is not this module's job:
its output still goes through the sanitiser.
"""

from __future__ import annotations

import functools
import html as html_lib
import re
from typing import Final

MAX_DEPTH: Final = 256  # real mail (Outlook's tables in tables) stays well under 100

_VOID: Final = frozenset({
    "area", "base", "basefont", "bgsound", "br", "col", "embed", "frame", "hr", "image", "img",
    "input", "keygen", "link", "meta", "param", "source", "track", "wbr",
})
# Their content is text up to their own end tag (RAWTEXT / RCDATA / script data).
_RAW: Final = frozenset({
    "script", "style", "textarea", "title", "xmp", "iframe", "noembed", "noframes",
    "noscript",
})
_DROPPED: Final = frozenset({"script", "style", "textarea", "title", "iframe", "noscript"})
# An optional end tag: the same start tag on top closes the open one (``<li>a<li>b``).
_SIBLINGS: Final = {
    "p": {"p"}, "li": {"li"}, "dt": {"dt", "dd"}, "dd": {"dt", "dd"}, "tr": {"tr", "td", "th"},
    "td": {"td", "th"}, "th": {"td", "th"}, "option": {"option"},
}
_NAME: Final = re.compile(r"[A-Za-z][^\t\n\f\r />]*")
# An attribute name may begin with "=" (a parse error the tokenizer reads as a name).
_SIMPLE: Final = re.compile(r"<(/?)([A-Za-z][^\t\n\f\r />]*)>")
_ATTR_NAME: Final = re.compile(r"[^\t\n\f\r />][^\t\n\f\r />=]*")
_UNQUOTED: Final = re.compile(r"[^\t\n\f\r >]*")
_SPACE: Final = re.compile(r"[\t\n\f\r ]*")
_SAFE_ATTR: Final = re.compile(r"[a-z_:][a-z0-9_.:-]*")
_MAX_ATTRS: Final = 64  # per tag; html5ever keeps the first of a name, so do we


def _skip_space(s: str, pos: int) -> int:
    m = _SPACE.match(s, pos)
    assert m is not None  # it matches the empty string
    return m.end()


def _escape_text(text: str) -> str:
    return text.replace("<", "&lt;").replace(">", "&gt;")


def _attribute(value: str) -> str:
    return html_lib.escape(html_lib.unescape(value), quote=True)


class _Capper:
    def __init__(self, source: str, max_depth: int) -> None:
        self.s = source
        self.max_depth = max_depth
        self.out: list[str] = []
        self.stack: list[str] = []  # the emitted open elements
        self.counts: dict[str, int] = {}  # open elements by name, O(1) "is one open?"
        self.dropped = 0  # start tags beyond the cap

    def run(self) -> str:
        s, pos, n = self.s, 0, len(self.s)
        while pos < n:
            lt = s.find("<", pos)
            if lt < 0:
                self.out.append(_escape_text(s[pos:]))
                break
            if lt > pos:
                self.out.append(_escape_text(s[pos:lt]))
            pos = self._markup(lt)
        self.out.extend(f"</{name}>" for name in reversed(self.stack))
        return "".join(self.out)

    def _markup(self, lt: int) -> int:
        """Handle the ``<`` at ``lt`` (as the HTML tokenizer does); return where to go on."""
        s = self.s
        simple = _SIMPLE.match(s, lt)  # most tags have no attributes: the fast path
        if simple is not None:
            name = simple.group(2).lower()
            if simple.group(1):
                self._end(name)
            elif name in _RAW:
                return self._raw(simple.end(), name)
            else:
                self._start(name, [])
            return simple.end()
        nxt = s[lt + 1: lt + 2]
        if s.startswith("<!--", lt):
            for empty in ("<!-->", "<!--->"):  # comments the tokenizer ends at once
                if s.startswith(empty, lt):
                    return lt + len(empty)
            end = s.find("-->", lt + 4)
            return len(s) if end < 0 else end + 3
        closing = nxt == "/"
        name_match = _NAME.match(s, lt + 2 if closing else lt + 1)
        if name_match is None:
            if nxt in ("!", "?") or (closing and s[lt + 2: lt + 3] not in ("", ">")):
                end = s.find(">", lt + 2)  # a declaration or bogus comment: dropped
                return len(s) if end < 0 else end + 1
            if closing and s[lt + 2: lt + 3] == ">":
                return lt + 3  # "</>" is nothing
            self.out.append("&lt;")  # a "<" that starts no tag is text
            return lt + 1
        name = name_match.group().lower()
        attrs, end, complete = self._attributes(name_match.end())
        if not complete:
            return len(s)  # a tag cut by the end of the document is dropped, as html5 does
        if closing:
            self._end(name)
            return end
        if name in _RAW:
            return self._raw(end, name)
        self._start(name, attrs)
        return end

    def _attributes(self, pos: int) -> tuple[list[tuple[str, str]], int, bool]:
        """The attributes from ``pos`` to the tag's ``>``: (attrs, after the tag, whether
        the tag ends before the document does)."""
        s, n = self.s, len(self.s)
        attrs: list[tuple[str, str]] = []
        seen: set[str] = set()
        while True:
            pos = _skip_space(s, pos)
            if pos >= n:
                return attrs, n, False
            c = s[pos]
            if c == ">":
                return attrs, pos + 1, True
            if c == "/":
                pos += 1
                continue
            m = _ATTR_NAME.match(s, pos)
            assert m is not None  # the character is none that a name excludes
            name, pos, value = m.group().lower(), m.end(), ""
            after = _skip_space(s, pos)
            if s[after: after + 1] == "=":
                pos = _skip_space(s, after + 1)
                quote = s[pos: pos + 1]
                if quote in ('"', "'"):
                    close = s.find(quote, pos + 1)
                    if close < 0:
                        return attrs, n, False  # an unterminated value runs to the end
                    value, pos = s[pos + 1: close], close + 1
                else:
                    v = _UNQUOTED.match(s, pos)
                    assert v is not None  # it matches the empty string
                    value, pos = v.group(), v.end()
            if name not in seen and len(attrs) < _MAX_ATTRS:
                seen.add(name)
                attrs.append((name, value))

    def _tag(self, name: str, attrs: list[tuple[str, str]]) -> str:
        # Names no sanitiser would keep (quotes, "<" in them) are left out here already.
        body = "".join(f' {k}="{_attribute(v)}"' for k, v in attrs if _SAFE_ATTR.fullmatch(k))
        return f"<{name}{body}>"

    def _start(self, name: str, attrs: list[tuple[str, str]]) -> None:
        if name in _VOID:
            if len(self.stack) < self.max_depth:
                self.out.append(self._tag(name, attrs))
            elif name in ("br", "hr"):
                self.out.append(" ")
            return
        closes = _SIBLINGS.get(name)
        if closes and self.stack and self.stack[-1] in closes:
            self._pop()
        if len(self.stack) >= self.max_depth:
            self.dropped += 1
            self.out.append(" ")  # flattened: words of two blocks stay apart
            return
        self.out.append(self._tag(name, attrs))
        self.stack.append(name)
        self.counts[name] = self.counts.get(name, 0) + 1

    def _pop(self) -> None:
        name = self.stack.pop()
        self.counts[name] -= 1
        self.out.append(f"</{name}>")

    def _end(self, name: str) -> None:
        if not self.counts.get(name):
            return  # nothing of that name open here (or it was beyond the cap): ignored
        while self.stack[-1] != name:
            self._pop()
        self._pop()

    def _raw(self, pos: int, name: str) -> int:
        """A raw-text element: its content is text up to its own end tag. Code, styles and
        embedded documents are dropped whole (the sanitiser drops them too); the rest
        (``xmp``, ``noembed``, ``noframes``) is kept as text."""
        end = _raw_end(name).search(self.s, pos)
        if end is None:
            stop = close = len(self.s)
        else:
            stop = end.start()
            found = self.s.find(">", end.end())
            close = len(self.s) if found < 0 else found + 1
        if name not in _DROPPED:
            self.out.append(_escape_text(self.s[pos:stop]))
        return close


@functools.cache
def _raw_end(name: str) -> re.Pattern[str]:
    return re.compile(rf"</{name}(?=[\t\n\f\r />])", re.IGNORECASE)


def cap_depth(html: str, max_depth: int = MAX_DEPTH) -> tuple[str, bool]:
    """``(html re-serialised with at most max_depth nested elements, whether any tag was
    flattened)``. Linear in the length of ``html``."""
    capper = _Capper(html, max_depth)
    out = capper.run()
    return out, capper.dropped > 0
