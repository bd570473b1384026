"""The new text only: quoted history cut in Persian, Arabic and English, text and HTML."""

from __future__ import annotations

import pytest

from channels.email.parse import parse
from channels.email.quotes import cut_quotes
from tests.channels.email.mails import OURS, fixture, mail, raw


def test_gmail_persian_reply_fixture_gives_the_new_text_only() -> None:
    msg = parse(fixture("gmail_persian_reply.eml"), our_addresses=OURS)
    assert msg.text == "سلام،\nسفارش هنوز نرسیده. لطفاً پیگیری کنید.\nممنون"
    assert msg.html is not None
    assert "ممنون" in msg.html
    assert "کد رهگیری" not in msg.html and "نوشت" not in msg.html
    assert 'dir="rtl"' in msg.html
    assert msg.sender_name == "علی رضایی"
    assert msg.subject == "Re: پیگیری سفارش"


def test_gmail_persian_html_only_reply_derives_text_without_the_quote() -> None:
    html = fixture("gmail_persian_reply.eml").split(b'Content-Type: text/html; charset="UTF-8"')[1]
    html_part = html.split(b"\n\n", 1)[1].split(b"--0000")[0].decode()
    msg = parse(raw(mail(None, html=html_part)))
    assert msg.text == "سلام،\nسفارش هنوز نرسیده. لطفاً پیگیری کنید.\nممنون"


@pytest.mark.parametrize(
    "attribution",
    [
        "در تاریخ دوشنبه ۱۰ مهر ۱۴۰۲ ساعت ۱۲:۰۰ پشتیبانی <support@kartabl.example> نوشت:",
        "\u202bدر تاریخ دوشنبه ۱۰ مهر ۱۴۰۲ ساعت ۱۲:۰۰ پشتیبانی\n"
        "<support@kartabl.example>\u202c نوشت:",
        "در تاریخ دوشنبه ۱۰ مهر ۱۴۰۲،\nپشتیبانی نوشت:",
        "On Mon, Oct 2, 2023 at 12:00 PM Support <support@kartabl.example> wrote:",
        "On Mon, Oct 2, 2023 at 12:00 PM Support <\nsupport@kartabl.example> wrote:",
        "في الاثنين، ٢ أكتوبر ٢٠٢٣ كتب الدعم <support@kartabl.example>:",
    ],
    ids=["fa-one-line", "fa-two-lines-bidi", "fa-no-address", "en", "en-two-lines", "ar"],
)
def test_attribution_lines_cut_the_quote(attribution: str) -> None:
    text = f"پاسخ جدید من\nخط دوم\n\n{attribution}\n\n> متن قبلی\n> ادامه\n"
    assert cut_quotes(text) == "پاسخ جدید من\nخط دوم"


def test_english_on_wrote_reply() -> None:
    body = ("Yes, Tuesday works for me.\n\nOn Tue, Oct 3, 2023 at 9:00 AM Kartabl Support "
            "<support@kartabl.example> wrote:\n> Would Tuesday suit you?\n> Thanks\n")
    msg = parse(raw(mail(body)))
    assert msg.text == "Yes, Tuesday works for me."


def test_outlook_reply_fixture_text_and_html() -> None:
    msg = parse(fixture("outlook_reply.eml"), our_addresses=OURS)
    assert msg.text == "Thanks, the amount is still wrong on line 3.\n\nSara"
    assert msg.html == "<div>Thanks, the amount is still wrong on line 3.</div><div>Sara</div>"


def test_original_message_separator() -> None:
    text = "New answer\n\n-----Original Message-----\nFrom: x\nSent: y\n\nold"
    assert cut_quotes(text) == "New answer"


def test_persian_outlook_header_block() -> None:
    text = "پاسخ\n\nاز: پشتیبانی <support@kartabl.example>\nارسال شده: سه‌شنبه\nبه: من\n\nقدیمی"
    assert cut_quotes(text) == "پاسخ"


def test_inline_answers_between_quotes_are_kept() -> None:
    text = "> Which product?\nThe blue one.\n> Which size?\nLarge."
    assert cut_quotes(text) == text


def test_a_trailing_quote_without_attribution_is_cut() -> None:
    assert cut_quotes("Agreed.\n\n> old line\n> older line\n") == "Agreed."


def test_a_customer_writing_nevesht_is_not_cut() -> None:
    # "as the manager wrote:" in the customer's own text, followed by their own words.
    text = "همانطور که مدیرتان نوشت:\nباید تا فردا تحویل شود."
    assert cut_quotes(text) == text


def test_bottom_posted_reply_keeps_the_text_below_the_quote() -> None:
    text = "On Tue, Oct 3, 2023 Support wrote:\n> old question\n\nMy answer below."
    assert cut_quotes(text) == "My answer below."


def test_forwarded_mail_keeps_its_content() -> None:
    body = "FYI\n\n-----Original Message-----\nFrom: a@b.c\nSent: today\n\nthe original"
    msg = parse(raw(mail(body, subject="Fwd: invoice")))
    assert "the original" in msg.text


@pytest.mark.parametrize(
    "quote",
    [
        '<blockquote type="cite">old</blockquote>',
        '<div class="yahoo_quoted">old</div>',
        '<div class="moz-cite-prefix">On x wrote:</div><blockquote type="cite">old</blockquote>',
        '<div class="gmail_quote gmail_quote_container"><div>a</div><div>old</div></div>',
        '<hr><div id="divRplyFwdMsg"><b>From:</b> x</div><div>old</div><p>older</p>',
    ],
    ids=["apple-cite", "yahoo", "thunderbird", "gmail-new", "outlook"],
)
def test_html_quote_containers_are_removed(quote: str) -> None:
    msg = parse(raw(mail(None, html=f'<div dir="rtl">جدید</div>{quote}')))
    assert msg.html == '<div dir="rtl">جدید</div>'
    assert msg.text == "جدید"


def test_quote_cutting_is_fast_on_hostile_input() -> None:
    import time

    hostile = ("On " + "a" * 10_000 + "\n") * 200 + "در " * 50_000 + "\n" + "> " * 100_000
    start = time.perf_counter()
    cut_quotes(hostile)
    assert time.perf_counter() - start < 2.0
