"""Untrusted input: XSS through every field, attachment names, SVG, and resource limits."""

from __future__ import annotations

import time
from email.message import EmailMessage
from pathlib import Path

import pytest

from channels.email.attachments import display_filename, store_payloads
from channels.email.parse import MailLimits, UnparseableMail, parse, parse_mail
from config.settings import Settings
from tests.channels.email.mails import literal, mail, raw

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32
SVG = b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"><script>alert(2)</script></svg>'


def _no_active_content(html: str) -> None:
    lowered = html.lower()
    for bad in ("<script", "onerror", "onload", "onclick", "javascript:", "<svg", "<iframe",
                "<style", "<object", "data:"):
        assert bad not in lowered, bad


def test_script_in_subject_and_display_name_stays_inert_text() -> None:
    msg = parse(literal(
        'From: "<img src=x onerror=alert(1)>" <customer@example.com>\n'
        "Subject: <script>alert(1)</script>\n Bcc: victim@example.com",  # folded
        b"hi",
    ))
    # Text fields are data, kept as written for the console to escape; the header
    # folding is gone, so a reply's "Re: <subject>" cannot grow a header line.
    assert msg.subject == "<script>alert(1)</script> Bcc: victim@example.com"
    assert "\r" not in msg.subject and "\n" not in msg.subject
    assert msg.sender_name == "<img src=x onerror=alert(1)>"
    assert msg.sender == "customer@example.com"


def test_crlf_in_an_encoded_word_subject_is_collapsed() -> None:
    data = literal("From: c@example.com\nSubject: =?utf-8?q?a=0D=0ABcc:_x@example.com?=",
                   b"body")
    subject = parse(data).subject
    assert "\r" not in subject and "\n" not in subject


@pytest.mark.parametrize("payload", [
    "<script>alert(1)</script>",
    '<img src=x onerror="alert(1)">',
    '<a href="javascript:alert(1)">click</a>',
    '<a href="JaVaScRiPt:alert(1)">click</a>',
    '<svg onload="alert(1)"><circle r="4"/></svg>',
    '<iframe src="https://evil.example"></iframe>',
    '<div onclick="alert(1)" style="background:url(javascript:alert(1))">x</div>',
    '<style>body{display:none}</style>',
    '<img src="data:image/svg+xml;base64,PHN2ZyBvbmxvYWQ9YWxlcnQoMSk+">',
    '<object data="x.swf"></object><form action="https://evil"><input></form>',
])
def test_html_body_is_sanitised(payload: str) -> None:
    msg = parse(raw(mail("text", html=f'<div dir="rtl">سلام</div>{payload}')))
    assert msg.html is not None
    assert msg.html.startswith('<div dir="rtl">سلام</div>')
    _no_active_content(msg.html)


@pytest.mark.parametrize("tag", ["blockquote", "q", "del", "ins"])
def test_cite_attributes_are_dropped(tag: str) -> None:
    # nh3 allows cite on these and does not check it as a URL.
    msg = parse(raw(mail("t", html=f'<{tag} cite="javascript:alert(1)">quoted</{tag}>')))
    assert msg.html is not None and "quoted" in msg.html
    assert "cite" not in msg.html and "javascript" not in msg.html


def test_style_cannot_reorder_text_but_dir_stays() -> None:
    # bidi-override shows "fdp.exe" as "exe.pdf" and an amount backwards.
    html = ('<p dir="rtl" style="unicode-bidi:bidi-override;direction:rtl;color:red">'
            "fdp.exe</p>")
    msg = parse(raw(mail("t", html=html)))
    assert msg.html is not None
    assert "bidi" not in msg.html and "direction" not in msg.html
    assert 'dir="rtl"' in msg.html and "color:red" in msg.html.replace(" ", "")


def test_links_get_rel_noopener_and_remote_images_are_dropped() -> None:
    msg = parse(raw(mail("t", html='<a href="https://shop.example/x">shop</a>'
                                   '<img src="https://tracker.example/p.gif" alt="logo">')))
    assert msg.html is not None
    assert 'rel="noopener noreferrer nofollow"' in msg.html
    assert "tracker.example" not in msg.html
    assert 'alt="logo"' in msg.html


def _with_inline(image: bytes, subtype: str, cid: str) -> EmailMessage:
    msg = mail("see image", html=f'<p>see</p><img src="cid:{cid}" alt="i">')
    html_part = msg.get_payload()[1]
    html_part.add_related(image, maintype="image", subtype=subtype, cid=f"<{cid}>")
    return msg


def test_cid_raster_image_is_mapped_to_its_stored_part() -> None:
    parsed = parse_mail(raw(_with_inline(PNG, "png", "logo@x")))
    (att,) = parsed.message.attachments
    assert att.content_type == "image/png" and att.content_id == "logo@x"
    assert att.storage_key is not None and parsed.payloads[att.storage_key] == PNG
    assert parsed.message.html is not None
    assert f'src="attachment:{att.storage_key}"' in parsed.message.html


def test_svg_part_is_never_inlined_but_stays_downloadable() -> None:
    parsed = parse_mail(raw(_with_inline(SVG, "svg+xml", "pic@x")))
    (att,) = parsed.message.attachments
    assert att.content_type == "image/svg+xml"
    assert att.storage_key is not None and parsed.payloads[att.storage_key] == SVG
    html = parsed.message.html
    assert html is not None
    assert "attachment:" not in html and "cid:" not in html
    _no_active_content(html)


def test_svg_disguised_as_png_is_not_inlined() -> None:
    parsed = parse_mail(raw(_with_inline(SVG, "png", "pic@x")))
    assert parsed.message.html is not None and "attachment:" not in parsed.message.html


def test_sender_cannot_point_at_another_stored_attachment() -> None:
    msg = parse(raw(mail("t", html=f'<img src="attachment:{"a" * 64}">')))
    assert msg.html is not None and "attachment:" not in msg.html


@pytest.mark.parametrize("name,expected", [
    ("<img src=x onerror=alert(1)>.pdf", "_img src=x onerror=alert(1)_.pdf"),
    ("../../etc/passwd", "passwd"),
    ("..\\..\\windows\\system32\\cmd.exe", "cmd.exe"),
    ("invoice\u202egpj.exe", "invoicegpj.exe"),
    ("a\r\nb\x00.txt", "a b.txt"),
    ("..", "attachment.pdf"),
    ("فاکتور مهر‌ماه.pdf", "فاکتور مهر‌ماه.pdf"),
])
def test_attachment_filenames_are_display_text_without_path(name: str, expected: str) -> None:
    assert display_filename(name, "application/pdf") == expected


def test_long_filename_is_capped_and_keeps_its_extension() -> None:
    name = display_filename("x" * 1000 + ".pdf", "application/pdf")
    assert len(name) <= 150 and name.endswith(".pdf")


def test_hostile_attachment_is_stored_under_a_generated_key_only(tmp_path: Path) -> None:
    msg = mail("see attached")
    msg.add_attachment(b"root:x:0:0", maintype="application", subtype="octet-stream",
                       filename="../../etc/passwd")
    msg.add_attachment(b"%PDF-1.4", maintype="application", subtype="pdf",
                       filename="<img src=x onerror=alert(1)>.pdf")
    parsed = parse_mail(raw(msg))
    names = [a.filename for a in parsed.message.attachments]
    assert names == ["passwd", "_img src=x onerror=alert(1)_.pdf"]
    store_payloads(parsed.payloads, tmp_path)
    written = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file())
    keys = sorted(f"{a.storage_key[:2]}/{a.storage_key}" for a in parsed.message.attachments
                  if a.storage_key)
    assert written == keys
    assert not (tmp_path.parent / "etc").exists()


def test_store_payloads_refuses_keys_that_are_not_hashes(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        store_payloads({"../../x": b"x"}, tmp_path)


def test_store_payloads_is_idempotent(tmp_path: Path) -> None:
    key = "ab" + "0" * 62
    store_payloads({key: b"one"}, tmp_path)
    store_payloads({key: b"two"}, tmp_path)  # same key: the first write stands
    assert (tmp_path / "ab" / key).read_bytes() == b"one"
    assert [p.name for p in (tmp_path / "ab").iterdir()] == [key]  # no temp files left


def test_attachment_over_the_limit_is_listed_without_payload() -> None:
    msg = mail("big one")
    msg.add_attachment(b"x" * 5000, maintype="application", subtype="zip", filename="big.zip")
    msg.add_attachment(b"y" * 10, maintype="text", subtype="plain", filename="small.txt")
    parsed = parse_mail(raw(msg), limits=MailLimits(attachment_max_bytes=1000))
    big, small = parsed.message.attachments
    assert (big.filename, big.size, big.storage_key) == ("big.zip", 5000, None)
    assert small.storage_key in parsed.payloads
    assert len(parsed.payloads) == 1


def test_oversized_mail_is_unparseable() -> None:
    with pytest.raises(UnparseableMail, match="limit"):
        parse(raw(mail("x" * 5000)), limits=MailLimits(mail_max_bytes=2048))


def test_the_default_limits_are_the_settings_defaults() -> None:
    # parse(raw) alone must behave as a process started with default settings
    defaults = Settings.model_construct()
    assert MailLimits() == MailLimits.from_settings(defaults)
    assert MailLimits.from_settings(Settings.model_construct(
        mail_max_bytes=7, attachment_max_bytes=3)) == MailLimits(7, 3)


def _nested(levels: int) -> bytes:
    body = b"Content-Type: text/plain\r\n\r\ndeep text\r\n"
    for i in range(levels):
        b = f"b{i}".encode()
        body = (b'Content-Type: multipart/mixed; boundary="' + b + b'"\r\n\r\n--' + b + b"\r\n"
                + body + b"\r\n--" + b + b"--\r\n")
    # The mail's own text comes first, as in a forward of a nested mail: it must survive.
    return (b"From: deep@example.com\r\nSubject: deep\r\nMIME-Version: 1.0\r\n"
            b'Content-Type: multipart/mixed; boundary="top"\r\n\r\n'
            b"--top\r\nContent-Type: text/plain\r\n\r\ntop text\r\n--top\r\n"
            + body + b"\r\n--top--\r\n")


def test_moderate_nesting_is_read_whole() -> None:
    msg = parse(_nested(15))
    assert msg.text == "top text\ndeep text"
    assert "parts_truncated" not in msg.meta and "mime_error" not in msg.meta


@pytest.mark.parametrize("levels", [200, 3000])
def test_deep_nesting_finishes_quickly(levels: int) -> None:
    start = time.perf_counter()
    msg = parse(_nested(levels))
    assert time.perf_counter() - start < 5.0
    assert msg.sender == "deep@example.com" and msg.subject == "deep"
    assert msg.meta.get("parts_truncated") is True
    assert "mime_error" not in msg.meta  # the body was read, not lost to a fallback
    assert msg.text == "top text"


def test_ten_thousand_parts_finish_quickly() -> None:
    parts = b"".join(b"--zz\r\nContent-Type: application/octet-stream\r\n\r\npart %d\r\n" % i
                     for i in range(10_000))
    data = (b"From: wide@example.com\r\nMIME-Version: 1.0\r\n"
            b"Content-Type: multipart/mixed; boundary=zz\r\n\r\n"
            b"--zz\r\nContent-Type: text/plain\r\n\r\nthe text\r\n" + parts + b"--zz--\r\n")
    start = time.perf_counter()
    msg = parse(data)
    assert time.perf_counter() - start < 5.0
    assert msg.text == "the text"
    assert msg.meta["parts_truncated"] is True
    assert 0 < len(msg.attachments) <= 1000


def test_not_a_mail_is_unparseable() -> None:
    with pytest.raises(UnparseableMail):
        parse(b"\x89PNG\r\n\x1a\n\x00\x00binary")
    with pytest.raises(UnparseableMail):
        parse(b"")


def test_no_sender_is_unparseable_and_a_bad_address_is_not_taken() -> None:
    with pytest.raises(UnparseableMail, match="sender"):
        parse(literal("To: support@kartabl.example\nSubject: x", b"x"))
    with pytest.raises(UnparseableMail, match="sender"):
        parse(literal('From: "alice@example.org"@evil.example\nSubject: x', b"x"))


def test_sender_header_is_the_fallback_sender() -> None:
    msg = parse(literal("From: undisclosed:;\nSender: real@example.com\nSubject: x", b"x"))
    assert msg.sender == "real@example.com"
