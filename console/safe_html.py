"""Mail HTML made safe to show in a console page: :func:`safe_html`, an nh3 cleaner with
allow-lists of tags, attributes, CSS properties and URL schemes. Remote images are blocked
unless the reader asks for them; a message's own inline images (``attachment:<key>``) stay.

The conversation page shows mail HTML only through this function (or
:meth:`console.timeline_items.MessageItem.safe_html`, which calls it).
"""
from __future__ import annotations

from collections.abc import Collection
from typing import Final

import nh3

MAX_HTML_CHARS: Final = 1_000_000  # as at ingest (channels.email.html)


# -- HTML ----------------------------------------------------------------------------------

_TAGS: Final = frozenset({
    "a", "abbr", "b", "bdi", "bdo", "blockquote", "br", "caption", "center", "code", "col",
    "colgroup", "dd", "del", "div", "dl", "dt", "em", "h1", "h2", "h3", "h4", "h5", "h6", "hr",
    "i", "img", "ins", "kbd", "li", "ol", "p", "pre", "q", "s", "small", "span", "strike",
    "strong", "sub", "sup", "table", "tbody", "td", "tfoot", "th", "thead", "tr", "u", "ul",
})
# Tags whose content is dropped too (not shown as text): code, styling, embedded documents.
_DROP: Final = frozenset({
    "script", "style", "iframe", "object", "embed", "form", "textarea", "select", "button",
    "noscript", "template", "svg", "math", "title", "head", "frameset", "frame", "applet",
})
_ATTRIBUTES: Final = {"*": {"dir", "lang", "title", "style"}, "a": {"href"},
                      "img": {"src", "alt", "width", "height"}, "ol": {"start"},
                      "td": {"colspan", "rowspan", "align"}, "th": {"colspan", "rowspan", "align"}}
# Nothing that positions, loads (url(), @import) or reorders text (direction, bidi).
_STYLES: Final = frozenset({
    "color", "background-color", "text-align", "font-weight", "font-style", "text-decoration",
})
ATTACHMENT_SCHEME: Final = "attachment:"


def safe_html(
    html: str, *, inline_keys: Collection[str] = (), remote_images: bool = False
) -> str:
    """``html`` reduced to markup safe to embed in a console page.

    Kept: text, basic formatting, tables, lists; ``dir``/``lang`` (Persian mail is RTL);
    ``style`` with colour, alignment and emphasis only. Links: ``http``, ``https``,
    ``mailto``, ``tel`` only, opened in a new tab with ``rel="noopener noreferrer
    nofollow"``. Dropped with their content: script, style, iframe, object, embed, form and
    the like; every ``on*`` attribute; ``javascript:``, ``data:`` and relative URLs.

    Images are blocked by default: an ``<img>`` keeps its ``alt`` but loses its ``src``,
    because a remote image tells the sender when (and from where) the mail was read. Two
    exceptions: ``attachment:<key>`` of this message's own stored parts (``inline_keys``:
    the inline images ingest kept), and any ``https``/``http`` image when the reader asks
    for them (``remote_images=True``)."""
    keys = frozenset(inline_keys)

    def attribute(tag: str, name: str, value: str) -> str | None:
        if tag == "img" and name == "src":
            if value.startswith(ATTACHMENT_SCHEME):
                return value if value[len(ATTACHMENT_SCHEME):] in keys else None
            return value if remote_images and value.lower().startswith(("https:", "http:")) \
                else None
        if name == "href" and value.lower().startswith(ATTACHMENT_SCHEME):
            return None  # attachment: is our scheme for images, not a link target
        return value

    cleaner = nh3.Cleaner(
        tags=set(_TAGS), clean_content_tags=set(_DROP),
        attributes={tag: set(names) for tag, names in _ATTRIBUTES.items()},
        attribute_filter=attribute,
        url_schemes={"http", "https", "mailto", "tel", "attachment"},
        url_relative="deny",
        link_rel="noopener noreferrer nofollow",
        set_tag_attribute_values={"a": {"target": "_blank"}},
        filter_style_properties=set(_STYLES),
        strip_comments=True,
    )
    return cleaner.clean(html[:MAX_HTML_CHARS]).strip()
