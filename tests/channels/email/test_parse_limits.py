"""One small mail must never block a mailbox: the parse runs before the mail is committed
and acknowledged, so a slow or failing parse repeats on every pass. Inputs that made
Python's HTMLParser and the header registry quadratic, and bodies that were lost to a
parser exception."""

from __future__ import annotations

import base64
import time

import pytest

from channels.email import html as html_body
from channels.email.parse import UnparseableMail, parse
from tests.channels.email.mails import OURS, literal, mail, raw

# Generous for a loaded 2-core machine; the inputs below took 3.5 s to 41 s before.
FAST = 2.0
ENCODED_NAME = "=?utf-8?b?" + base64.b64encode("سلام".encode()).decode() + "?="


def _timed(data: bytes) -> tuple[float, object]:
    start = time.perf_counter()
    try:
        result: object = parse(data, our_addresses=OURS)
    except UnparseableMail as exc:
        result = exc
    return time.perf_counter() - start, result


@pytest.mark.parametrize("repeat", [10_000, 20_000])  # 30 KB (7.7 s before), 60 KB (31 s)
def test_unclosed_tags_in_an_html_only_mail_parse_quickly(repeat: int) -> None:
    elapsed, msg = _timed(raw(mail(None, html="<p>hello</p>" + "<a " * repeat)))
    assert elapsed < FAST, elapsed
    assert not isinstance(msg, Exception)
    assert msg.text == "hello"  # type: ignore[attr-defined]
    assert msg.html is not None and msg.html.startswith("<p>hello</p>")  # type: ignore[attr-defined]


def _addresses(count: int, ours_last: bool = False) -> str:
    names = [f"{ENCODED_NAME} <u{i}@example.com>" for i in range(count)]
    if ours_last:
        names.append("Support <support@kartabl.example>")
    return ",\n ".join(names)


def test_a_huge_header_block_is_refused_quickly() -> None:
    to = _addresses(20_000)  # 0.8 MB of encoded-word names: 41 s before
    assert len(to) > 800_000
    elapsed, result = _timed(literal(f"From: a@example.com\nTo: {to}\nSubject: x", b"hi"))
    assert elapsed < FAST, elapsed
    assert isinstance(result, UnparseableMail) and "header" in str(result)


def test_a_long_to_header_parses_quickly_and_still_finds_our_address() -> None:
    to = _addresses(4_500, ours_last=True)  # 0.2 MB, under the header block limit
    elapsed, msg = _timed(literal(f"From: a@example.com\nTo: {to}\nSubject: x", b"hi"))
    assert elapsed < FAST, elapsed
    assert msg.recipient == "support@kartabl.example"  # type: ignore[attr-defined]


def test_a_long_from_list_parses_quickly_and_takes_the_first_address() -> None:
    sender = _addresses(4_500)  # 0.2 MB From: list
    assert len(sender) > 200_000
    elapsed, msg = _timed(literal(f"From: {sender}\nSubject: x", b"hi"))
    assert elapsed < FAST, elapsed
    assert msg.sender == "u0@example.com"  # type: ignore[attr-defined]
    assert msg.text == "hi"  # type: ignore[attr-defined]


def test_a_long_subject_is_decoded_from_its_start() -> None:
    subject = " ".join([ENCODED_NAME] * 3000)
    msg = parse(literal(f"From: a@example.com\nSubject: {subject}", b"hi"))
    assert msg.subject.startswith("سلامسلام") and len(msg.subject) <= 1000


@pytest.mark.parametrize("junk", ["<![foo]>", "<![ x"])
def test_broken_markup_in_the_html_part_loses_nothing(junk: str) -> None:
    # HTMLParser raises AssertionError on these; the whole body used to be dropped.
    html = f'<p>new text</p><div class="gmail_quote">old quote</div>{junk}'
    msg = parse(raw(mail("the plain text", html=html)))
    assert "mime_error" not in msg.meta
    assert msg.text == "the plain text"
    assert msg.html is not None and "new text" in msg.html and "old quote" not in msg.html

    msg = parse(raw(mail(None, html=html)))
    assert "mime_error" not in msg.meta
    assert msg.text == "new text"


@pytest.mark.parametrize("junk", ["<![foo]>", "<![ x"])
def test_when_htmlparser_fails_the_html_falls_back_instead_of_raising(
    junk: str, monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The last line of defence, should a normalised document still make HTMLParser raise.
    monkeypatch.setattr(html_body, "_normalise", lambda html: html)
    html = f'<p>new &amp; text</p><div class="gmail_quote">old</div>{junk}'
    assert html_body.strip_quotes(html) == html
    assert html_body.html_to_text(html) == ("new & textold", False)


def test_html_over_the_parse_limit_keeps_its_quotes_and_truncates_its_text() -> None:
    html = '<p>new</p><div class="gmail_quote">old</div>' + "<p>line</p>" * 60_000
    msg = parse(raw(mail(None, html=html)))
    assert msg.html is not None and "old" in msg.html
    assert msg.text.startswith("new\nold\nline") and msg.meta["text_truncated"] is True
    assert "html_truncated" not in msg.meta


def _nested_messages(levels: int) -> bytes:
    inner = b"From: inner@example.com\r\nSubject: deepest\r\n\r\ndeepest text\r\n"
    for _ in range(levels):
        inner = b"Content-Type: message/rfc822\r\n\r\n" + inner
    return literal(
        "From: nest@example.com\nSubject: nested\nMIME-Version: 1.0\n"
        'Content-Type: multipart/mixed; boundary="b"',
        b"--b\r\nContent-Type: text/plain\r\n\r\nthe real text\r\n"
        b"--b\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment; "
        b"filename=invoice.pdf\r\n\r\n%PDF-1.4\r\n"
        b"--b\r\n" + inner + b"\r\n--b--\r\n",
    )


def test_deeply_nested_attached_mails_keep_the_text_and_attachments() -> None:
    data = _nested_messages(2000)
    assert len(data) > 60_000
    elapsed, msg = _timed(data)
    assert elapsed < FAST, elapsed
    assert not isinstance(msg, Exception)
    meta = msg.meta  # type: ignore[attr-defined]
    assert "mime_error" not in meta and meta["parts_truncated"] is True
    assert msg.text == "the real text"  # type: ignore[attr-defined]
    assert "invoice.pdf" in [a.filename for a in msg.attachments]  # type: ignore[attr-defined]


def test_a_few_nested_attached_mails_are_kept_whole() -> None:
    msg = parse(_nested_messages(5))
    assert "parts_truncated" not in msg.meta
    assert [a.filename for a in msg.attachments] == ["invoice.pdf", "message.eml"]
