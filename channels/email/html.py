"""HTML bodies: quoted history removed, then sanitised for display with nh3.

Every nh3 call here gets its input with its nesting capped (:mod:`channels.email.html_depth`):
html5ever's cost grows with the square of the depth.

Order matters: quote containers are found by their ``class``/``id``/``type``, which the
sanitiser drops, so they are removed first (:func:`strip_quotes`), from input already capped
at :data:`MAX_HTML_CHARS`.

Python's :class:`html.parser.HTMLParser` (quote stripping, :func:`html_to_text`) is never
given the customer's HTML: it is quadratic on unclosed tags (``"<a " * 10000``, 30 KB, took
7.7 s; 60 KB, 31 s) and raises on some markup (``<![foo]>``). It gets :func:`_normalise`'s
output instead: the same document re-serialised by html5ever (nh3, linear), with every tag
closed, every attribute quoted and every ``<`` in text escaped, capped at
:data:`MAX_PARSE_CHARS`. If it still fails, quotes stay in and the text comes from a plain
tag strip: one odd HTML part never costs the mail its body.

What survives :func:`sanitize` (nh3 / ammonia, configured here):

* nh3's default tag set (no ``script``, ``style``, ``iframe``, ``form``, ``svg``,
  ``object``; the content of those is dropped, not shown as text), its per-tag attributes
  except ``cite`` (a URL that nh3 does not check: ``cite="javascript:..."``), plus ``dir``
  and ``lang`` everywhere (Persian mail is ``dir="rtl"``) and ``style`` reduced to a few
  properties that cannot load anything (colour, alignment, weight). Not ``direction`` nor
  ``unicode-bidi``: ``bidi-override`` shows text in another order than it reads (a
  disguised link or amount); the ``dir`` attribute is the honest way to say RTL.
* Links: ``http``, ``https``, ``mailto`` and ``tel`` only (no ``javascript:``, no relative
  URLs), with ``rel="noopener noreferrer nofollow"`` and ``target="_blank"``.
* Images: only inline parts of the same mail. ``<img src="cid:X">`` becomes
  ``<img src="attachment:<storage_key>">`` when part X is a stored raster image (PNG,
  JPEG, GIF, WebP, checked by its bytes, see :mod:`channels.email.attachments`); the console
  serves ``attachment:<sha256>`` from the message's own attachments, with the part's
  content type. Any other ``src`` (remote images, which track the reader; ``data:``
  URIs; SVG parts; an ``attachment:`` written by the sender) is dropped, keeping ``alt``.
"""

from __future__ import annotations

import html as html_lib
import logging
import re
from collections.abc import Mapping
from html.parser import HTMLParser
from urllib.parse import unquote

import nh3

from channels.email.html_depth import cap_depth
from kartabl.messages import SafeHtml

log = logging.getLogger(__name__)

MAX_HTML_CHARS = 1_000_000
# HTMLParser is linear on normalised HTML, ~0.4 s/MB; entities can make the normalised text
# 4x its source ("<" -> "&lt;"), hence a cap of its own.
MAX_PARSE_CHARS = 500_000

_QUOTE_CLASSES = {
    "gmail_quote", "gmail_quote_container", "yahoo_quoted", "moz-cite-prefix",
    "protonmail_quote",
}
_OUTLOOK_IDS = {"divrplyfwdmsg", "x_divrplyfwdmsg", "appendonsend", "x_appendonsend"}
_VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source",
         "track", "wbr"}


class _QuoteStripper(HTMLParser):
    """Re-emits the HTML as written, minus quote containers and everything after Outlook's
    reply header. Comments and declarations are dropped (the sanitiser would drop them)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=False)
        self.out: list[str] = []
        self.skip_tag: str | None = None
        self.skip_depth = 0
        self.stop = False

    def _container(self, tag: str, attrs: list[tuple[str, str | None]]) -> str | None:
        values = {k.lower(): (v or "") for k, v in attrs}
        if values.get("id", "").lower() in _OUTLOOK_IDS:
            return "rest"
        if tag in ("div", "blockquote", "section"):
            if _QUOTE_CLASSES & set(values.get("class", "").lower().split()):
                return "element"
            if tag == "blockquote" and values.get("type", "").lower() == "cite":
                return "element"
        return None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self.stop:
            return
        if self.skip_tag is not None:
            self.skip_depth += tag == self.skip_tag
            return
        kind = self._container(tag, attrs)
        if kind == "rest":
            self.stop = True
            # Outlook draws an <hr> above its reply header: it belongs to the quote.
            while self.out and not self.out[-1].strip():
                self.out.pop()
            if self.out and self.out[-1].lower().startswith("<hr"):
                self.out.pop()
            return
        if kind == "element" and tag not in _VOID:
            self.skip_tag, self.skip_depth = tag, 1
            return
        self.out.append(self.get_starttag_text() or "")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if not self.stop and self.skip_tag is None:
            self.out.append(self.get_starttag_text() or "")

    def handle_endtag(self, tag: str) -> None:
        if self.stop:
            return
        if self.skip_tag is not None:
            if tag == self.skip_tag:
                self.skip_depth -= 1
                if self.skip_depth == 0:
                    self.skip_tag = None
            return
        self.out.append(f"</{tag}>")

    def _emit(self, text: str) -> None:
        if not self.stop and self.skip_tag is None:
            self.out.append(text)

    def handle_data(self, data: str) -> None:
        self._emit(data)

    def handle_entityref(self, name: str) -> None:
        self._emit(f"&{name};")

    def handle_charref(self, name: str) -> None:
        self._emit(f"&#{name};")


_MARKERS = ("gmail_quote", "yahoo_quoted", "moz-cite-prefix", "protonmail_quote",
            "divrplyfwdmsg", "appendonsend", "cite")


def strip_quotes(html: str) -> str:
    """``html`` without quoted-history containers (gmail_quote, blockquote type=cite,
    Outlook's divRplyFwdMsg and all after it, yahoo_quoted, moz-cite-prefix). HTML the
    parser cannot take (over :data:`MAX_PARSE_CHARS` once normalised, or failing) comes
    back as given: quotes shown beat a lost body."""
    lowered = html.lower()
    if not any(m in lowered for m in _MARKERS):
        return html  # the common case costs one scan, not an HTML parse
    normal = _normalise(html)
    if len(normal) > MAX_PARSE_CHARS:
        return html
    parser = _QuoteStripper()
    try:
        parser.feed(normal)
        parser.close()
    except Exception:  # HTMLParser asserts on odd markup: keep the quotes, not lose the HTML
        log.warning("HTML quote stripping failed; the quotes stay in", exc_info=True)
        return html
    return "".join(parser.out)


_BLOCK = {"p", "div", "br", "li", "tr", "table", "h1", "h2", "h3", "h4", "h5", "h6",
          "blockquote", "pre", "hr", "ul", "ol", "section", "article", "header", "footer"}
_INVISIBLE = {"script", "style", "head", "title", "template", "noscript", "svg", "math"}


class _TextExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.hidden = 0
        self.pre = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _INVISIBLE:
            self.hidden += 1
        elif tag == "pre":
            self.pre += 1
        if tag == "br":
            self.parts.append("\n")
        elif tag in _BLOCK:
            self._soft_break()

    def _soft_break(self) -> None:
        # Adjacent block edges (</div><div>) are one line break, not one each; an explicit
        # <br> always counts (Gmail's blank line is <div><br></div>).
        if self.parts and not self.parts[-1].endswith("\n"):
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in _INVISIBLE:
            self.hidden = max(0, self.hidden - 1)
        elif tag == "pre":
            self.pre = max(0, self.pre - 1)
        if tag in _BLOCK and tag != "br":
            self._soft_break()

    def handle_data(self, data: str) -> None:
        if self.hidden:
            return
        if not self.pre:
            data = re.sub(r"[ \t\r\n\f]+", " ", data)
            if data == " " and (not self.parts or self.parts[-1].endswith(("\n", " "))):
                return  # source indentation between blocks
        self.parts.append(data)


def html_to_text(html: str) -> tuple[str, bool]:
    """``(readable text of html, truncated)`` for mail that has no text/plain part; only
    the first :data:`MAX_PARSE_CHARS` of the normalised HTML are read."""
    normal = _normalise(html)
    truncated = len(normal) > MAX_PARSE_CHARS
    normal = normal[:MAX_PARSE_CHARS]
    parser = _TextExtractor()
    try:
        parser.feed(normal)
        parser.close()
        text = "".join(parser.parts)
    except Exception:  # HTMLParser asserts on odd markup: the text without the layout
        log.warning("HTML text extraction failed; stripping tags instead", exc_info=True)
        text = html_lib.unescape(_TAG_STRIPPER.clean(normal))
    lines = [line.strip(" ") for line in text.split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip(), truncated


# The normaliser keeps what quote stripping, text extraction and sanitize() look at: the
# tags sanitize() allows plus <section>, their attributes, and class/id/type (the quote
# markers). Content that is never shown (script, style, head, title...) goes here already.
_NORMAL_ATTRIBUTES = {tag: set(attrs) for tag, attrs in nh3.ALLOWED_ATTRIBUTES.items()}
_NORMAL_ATTRIBUTES["*"] = {"dir", "lang", "style", "class", "id", "type", "title"}
_NORMAL_ATTRIBUTES["img"] = {"alt", "width", "height", "src", "align"}
_NORMALISER = nh3.Cleaner(
    tags=set(nh3.ALLOWED_TAGS) | {"section"},
    clean_content_tags={"script", "style", "title", "noscript", "template", "svg", "math",
                        "iframe", "object", "embed", "textarea", "select", "head"},
    attributes=_NORMAL_ATTRIBUTES,
    url_schemes={"http", "https", "mailto", "tel", "cid"},
    link_rel=None,
    strip_comments=True,
)
_TAG_STRIPPER = nh3.Cleaner(tags=set(), attributes={}, link_rel=None,
                            clean_content_tags={"script", "style", "title", "head"})


def _normalise(html: str) -> str:
    """``html`` as well-formed markup HTMLParser reads in linear time."""
    return _NORMALISER.clean(cap_depth(html[:MAX_HTML_CHARS])[0])


_ATTRIBUTES = {tag: set(attrs) - {"cite"} for tag, attrs in nh3.ALLOWED_ATTRIBUTES.items()}
_ATTRIBUTES["*"] = {"dir", "lang", "style"}
_ATTRIBUTES["img"] = {"alt", "width", "height", "src", "align"}
_STYLE_PROPERTIES = {
    "color", "background-color", "text-align", "font-weight", "font-style", "text-decoration",
}
_CLEAN_CONTENT = {"script", "style", "title", "noscript", "template", "svg", "math", "iframe",
                  "object", "embed", "textarea", "select", "head"}


def sanitize(html: str, inline: Mapping[str, str]) -> SafeHtml:
    """Safe HTML for display, the only maker of :class:`~kartabl.messages.SafeHtml`: what
    ingest stores for pages to serve as it is. ``inline`` maps a lower-cased Content-ID to
    the storage key of a stored raster image part; ``cid:`` images not in it lose their
    ``src``. Nesting deeper than :data:`~channels.email.html_depth.MAX_DEPTH` is flattened
    first (a no-op on what :func:`~channels.email.html_depth.cap_depth` capped already)."""

    def attribute(tag: str, name: str, value: str) -> str | None:
        if name in ("src", "href") and value[:4].lower() == "cid:":
            key = inline.get(unquote(value[4:]).strip().strip("<>").lower())
            return f"attachment:{key}" if key and tag == "img" and name == "src" else None
        if tag == "img" and name == "src":
            return None  # remote, data: or forged attachment: images are never loaded
        return value

    cleaner = nh3.Cleaner(
        tags=set(nh3.ALLOWED_TAGS),
        clean_content_tags=_CLEAN_CONTENT,
        attributes=_ATTRIBUTES,
        attribute_filter=attribute,
        url_schemes={"http", "https", "mailto", "tel", "cid"},
        url_relative="deny",
        link_rel="noopener noreferrer nofollow",
        set_tag_attribute_values={"a": {"target": "_blank"}},
        filter_style_properties=_STYLE_PROPERTIES,
        strip_comments=True,
    )
    return SafeHtml(cleaner.clean(cap_depth(html[:MAX_HTML_CHARS])[0]).strip())
