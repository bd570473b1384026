"""Deeply nested HTML (threats.md, "Nested HTML"): html5ever's cost grows with the square of
the nesting depth, so 25,000 nested ``<div>`` (122 KB) cost 25 s to ingest and 100,000
(488 KB) 273 s. The nesting is now capped by a linear pass before any parser sees the HTML;
what is deeper is flattened to text, and the HTML as sent is kept as an attachment."""

from __future__ import annotations

import re
import time
from html.parser import HTMLParser

import pytest

from channels.email.html import sanitize
from channels.email.html_depth import MAX_DEPTH, cap_depth
from channels.email.parse import ORIGINAL_HTML_NAME, parse_mail
from kartabl.messages import SafeHtml
from tests.channels.email.mails import OURS, mail, raw


def deep_html(depth: int, tail: str = "deep text") -> str:
    """The attack as reported: unclosed ``<div>`` (about 5 bytes a level)."""
    return '<p dir="rtl">سلام</p>' + "<div>" * depth + tail


class _Depth(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.depth = self.deepest = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in ("br", "hr", "img", "wbr"):
            self.depth += 1
            self.deepest = max(self.deepest, self.depth)

    def handle_endtag(self, tag: str) -> None:
        self.depth -= 1


def nesting(html: str) -> int:
    parser = _Depth()
    parser.feed(html)
    parser.close()
    return parser.deepest


@pytest.mark.parametrize(("depth", "limit"), [(25_000, 1.0), (100_000, 4.0)])
def test_a_deeply_nested_mail_parses_quickly_and_keeps_everything(depth: int,
                                                                  limit: float) -> None:
    html = deep_html(depth)
    data = raw(mail(None, html=html))
    assert len(data) > depth * 5
    start = time.perf_counter()
    parsed = parse_mail(data, our_addresses=OURS)
    elapsed = time.perf_counter() - start
    assert elapsed < limit, elapsed  # 25 s and 273 s before

    msg = parsed.message
    assert isinstance(msg.html, SafeHtml)
    assert msg.html.startswith('<p dir="rtl">سلام</p>')
    assert "deep text" in msg.html and msg.text == "سلام\ndeep text"  # flattened, not lost
    assert MAX_DEPTH <= nesting(msg.html) <= MAX_DEPTH + 1
    assert msg.meta["html_flattened"] is True
    [original] = [a for a in msg.attachments if a.filename == ORIGINAL_HTML_NAME]
    assert original.content_type == "text/html" and original.storage_key is not None
    assert parsed.payloads[original.storage_key].decode().rstrip("\n") == html


def test_html_within_the_cap_is_not_flattened_and_gets_no_attachment() -> None:
    html = "<table><tr><td>" * 40 + "cell" + "</td></tr></table>" * 40
    parsed = parse_mail(raw(mail("cell", html=html)), our_addresses=OURS)
    assert "html_flattened" not in parsed.message.meta
    assert parsed.message.attachments == () and parsed.payloads == {}
    assert parsed.message.html is not None and parsed.message.html.count("<table>") == 40


def test_content_beyond_the_cap_is_text_and_never_markup() -> None:
    payload = ('<img src=x onerror=alert(1)><script>alert(2)</script><a href="javascript:x">'
               'link</a><svg onload=alert(3)></svg>&lt;b&gt;escaped&lt;/b&gt;<iframe src=//e>')
    msg = parse_mail(raw(mail(None, html=deep_html(MAX_DEPTH + 50, payload))),
                     our_addresses=OURS).message
    assert msg.html is not None
    for banned in ("<img", "<script", "alert(2)", "javascript", "<svg", "onload", "<iframe",
                   "<b>", "onerror"):
        assert banned not in msg.html, banned
    assert "link" in msg.html and "&lt;b&gt;escaped&lt;/b&gt;" in msg.html


def test_formatting_elements_cannot_multiply_the_depth() -> None:
    """html5ever reopens formatting elements it closed itself (``<b>`` in a ``<p>`` that a
    ``<div>`` closes): each is open in the capped output too, so they count."""
    tricky = "<p>" + "".join(f'<b id="{i}">' for i in range(400)) + "<div>x" * 2000
    start = time.perf_counter()
    msg = parse_mail(raw(mail(None, html=tricky)), our_addresses=OURS).message
    assert time.perf_counter() - start < 1.0
    assert msg.html is not None and "x" in msg.html


@pytest.mark.parametrize("html", [
    '<div title="a>b" class=\'c\' data-x=y>t</div>',
    "<p>a<p>b<li>c<li>d</ul>",
    "a < b, <3, </> </ bogus> <!doctype html><!-- c -->",
    '<div title="unterminated',
    "<style>div{}</style><script>if (a<b) x('</div>')</script>after",
    "<xmp><b>shown</b></xmp>",
])
def test_capping_is_idempotent_and_keeps_the_text(html: str) -> None:
    once, _ = cap_depth(html, 3)
    assert cap_depth(once, 3) == (once, False)
    assert nesting(once) <= 3


def test_the_cap_reserialises_what_it_reads() -> None:
    capped, flattened = cap_depth(
        '<div title="a>b" data-x=y z=\'&amp;\'>t<b>u</div>v<br/>a < b<!-- c --><script>'
        "alert(1)</script><xmp><i>x</i></xmp>", 5)
    assert not flattened
    assert capped == ('<div title="a&gt;b" data-x="y" z="&amp;">t<b>u</b></div>v<br>'
                      "a &lt; b&lt;i&gt;x&lt;/i&gt;")
    assert cap_depth("a<!-->b<!--->c<!-- d -->e", 5) == ("abce", False)
    deep, flattened = cap_depth("<div>" * 5 + "<p>x</p>", 3)
    assert flattened and deep == "<div><div><div>   x</div></div></div>"


def test_sanitize_caps_on_its_own() -> None:
    """Whoever calls the sanitiser gets a linear cost, whether or not parse capped first."""
    start = time.perf_counter()
    out = sanitize("<div>" * 25_000 + "x", {})
    assert time.perf_counter() - start < 1.0
    assert re.search(r"x</div>", out) and nesting(out) <= MAX_DEPTH
