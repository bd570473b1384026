"""Persian and Arabic mail in the charsets it really arrives in; nothing normalised."""

from __future__ import annotations

import base64
import quopri

from channels.email.parse import parse
from tests.channels.email.mails import literal, mail, raw

PERSIAN = "سلام، فاکتور ماه گذشته را نمی‌توانم پیدا کنم"  # with a ZWNJ in نمی‌توانم
ARABIC = "مرحبا، أين طلبي؟ شكرا لكم"
HEADERS = """From: Customer <customer@example.com>
To: support@kartabl.example
Subject: test
Message-ID: <cs@example.com>
MIME-Version: 1.0
Content-Transfer-Encoding: 8bit
"""


def test_windows_1256_body_decodes_and_keeps_arabic_letters_as_written() -> None:
    # windows-1256 has no Persian ye (U+06CC): such mail carries Arabic ي, and stays so.
    text = "سلام، سفارش من كي مي‌رسد؟"
    msg = parse(literal(HEADERS + "Content-Type: text/plain; charset=windows-1256",
                        text.encode("cp1256")))
    assert msg.text == text
    assert "ي" in msg.text and "ك" in msg.text
    assert "charset_fallback" not in msg.meta


def test_iso_8859_6_body_decodes() -> None:
    msg = parse(literal(HEADERS + "Content-Type: text/plain; charset=iso-8859-6",
                        ARABIC.encode("iso-8859-6")))
    assert msg.text == ARABIC


def test_utf8_base64_html_only_mail_gives_text() -> None:
    body = base64.encodebytes(f'<div dir="rtl">{PERSIAN}</div>'.encode())
    msg = parse(literal(HEADERS.replace("8bit", "base64")
                        + "Content-Type: text/html; charset=utf-8", body))
    assert msg.text == PERSIAN
    assert msg.html == f'<div dir="rtl">{PERSIAN}</div>'


def test_zwnj_is_kept_in_text_subject_and_name() -> None:
    msg = parse(raw(mail(PERSIAN, subject="درخواست‌ها", sender="نیلوفر مهر‌آیین <n@example.com>")))
    assert "\u200c" in msg.text and msg.text == PERSIAN
    assert msg.subject == "درخواست‌ها"
    assert msg.sender_name == "نیلوفر مهر‌آیین"


def _b_words(text: str, cut: int) -> str:
    data = text.encode()
    first, second = data[:cut], data[cut:]
    return (f"=?utf-8?B?{base64.b64encode(first).decode()}?=\n"
            f" =?utf-8?B?{base64.b64encode(second).decode()}?=")


def test_rfc2047_b_subject_split_inside_a_character() -> None:
    subject = "پیگیری سفارش شماره ۱۲۳"
    # Byte 7 falls inside a two-byte Persian letter: each word alone is not valid UTF-8.
    header = HEADERS.replace("Subject: test", "Subject: " + _b_words(subject, 7))
    msg = parse(literal(header + "Content-Type: text/plain; charset=utf-8", b"x"))
    assert msg.subject == subject
    assert "charset_fallback" not in msg.meta


def test_rfc2047_q_subject_and_display_name() -> None:
    q = quopri.encodestring("مشکل در پرداخت".encode(), header=True).decode()
    name = quopri.encodestring("رضا".encode(), header=True).decode()
    header = (HEADERS.replace("Subject: test", f"Subject: =?UTF-8?Q?{q}?=")
              .replace("From: Customer", f"From: =?utf-8?q?{name}?="))
    msg = parse(literal(header + "Content-Type: text/plain; charset=utf-8", b"x"))
    assert msg.subject == "مشکل در پرداخت"
    assert msg.sender_name == "رضا"


def test_windows_1256_encoded_word_subject() -> None:
    word = base64.b64encode("فاکتور".encode("cp1256")).decode()
    header = HEADERS.replace("Subject: test", f"Subject: =?windows-1256?B?{word}?=")
    msg = parse(literal(header + "Content-Type: text/plain; charset=utf-8", b"x"))
    assert msg.subject == "فاکتور"


def test_unknown_charset_falls_back_without_crashing() -> None:
    msg = parse(literal(HEADERS + "Content-Type: text/plain; charset=x-unknown",
                        PERSIAN.encode()))
    assert msg.text == PERSIAN  # it was UTF-8 all along
    assert msg.meta["charset_fallback"] is True


def test_unknown_charset_with_windows_1256_bytes_is_read_as_arabic_script() -> None:
    msg = parse(literal(HEADERS + "Content-Type: text/plain; charset=x-unknown",
                        "سلام دوست من".encode("cp1256")))
    assert msg.text == "سلام دوست من"
    assert msg.meta["charset_fallback"] is True


def test_lying_utf8_label_on_windows_1256_bytes() -> None:
    msg = parse(literal(HEADERS + "Content-Type: text/plain; charset=utf-8",
                        "سلام دوست من".encode("cp1256")))
    assert msg.text == "سلام دوست من"
    assert msg.meta["charset_fallback"] is True


def test_lying_latin1_label_on_windows_1256_bytes() -> None:
    # Old Outlook setups label windows-1256 text iso-8859-1: latin-1 decodes any byte, so
    # only the shape of the result tells.
    msg = parse(literal(HEADERS + "Content-Type: text/plain; charset=iso-8859-1",
                        "سلام دوست من".encode("cp1256")))
    assert msg.text == "سلام دوست من"


def test_real_latin1_stays_latin1() -> None:
    msg = parse(literal(HEADERS + "Content-Type: text/plain; charset=iso-8859-1",
                        "Merci, c'était très rapide".encode("latin-1")))
    assert msg.text == "Merci, c'était très rapide"
    assert "charset_fallback" not in msg.meta


def test_binary_garbage_in_a_utf8_part_is_replaced_not_fatal() -> None:
    msg = parse(literal(HEADERS + "Content-Type: text/plain; charset=utf-8",
                        b"ok \xff\xfe\x00\x81 end"))
    assert msg.text.startswith("ok ") and msg.text.endswith(" end")
    assert "\x00" not in msg.text
    msg.text.encode("utf-8")  # storable


def test_raw_8bit_utf8_subject_without_encoded_words() -> None:
    data = literal(HEADERS + "Content-Type: text/plain; charset=utf-8", b"x")
    data = data.replace(b"Subject: test", "Subject: سفارش".encode())
    assert parse(data).subject == "سفارش"


def test_raw_8bit_windows_1256_subject() -> None:
    data = literal(HEADERS + "Content-Type: text/plain; charset=utf-8", b"x")
    data = data.replace(b"Subject: test", b"Subject: " + "سفارش من".encode("cp1256"))
    msg = parse(data)
    assert msg.subject == "سفارش من"
    assert msg.meta["charset_fallback"] is True
