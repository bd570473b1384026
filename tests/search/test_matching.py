"""Persian-aware matching, English stemming, digits and phone numbers, on both databases:
every pair of spellings finds the other, in both directions."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session

from kartabl.models import Role
from tests import factories as f
from tests.search.conftest import found, indexed_conversation

# (written in the message, typed in the search box): each pair is tested both ways
PAIRS = [
    ("فاكتور", "فاکتور"),  # Arabic kaf
    ("علي", "علی"),  # Arabic yeh
    ("مصطفى", "مصطفی"),  # alef maksura
    ("مدرسة", "مدرسه"),  # teh marbuta
    ("می‌خواهم", "میخواهم"),  # ZWNJ / joined
    ("می‌خواهم", "می خواهم"),  # ZWNJ / space
    ("میخواهم", "می خواهم"),  # joined / space
    ("سفارش ۴۵۸۲۱", "45821"),  # Persian / ASCII digits
    ("سفارش ٤٥٨٢١", "۴۵۸۲۱"),  # Arabic-Indic / Persian digits
    ("سفارش 45821", "٤٥٨٢١"),  # ASCII / Arabic-Indic digits
    ("مُحَمَّد", "محمد"),  # harakat
    ("سلـــام", "سلام"),  # tatweel
]


@pytest.mark.parametrize(("written", "typed"), PAIRS)
@pytest.mark.parametrize("direction", ["forward", "backward"])
def test_each_spelling_finds_the_other(session: Session, written: str, typed: str,
                                       direction: str) -> None:
    if direction == "backward":
        written, typed = typed, written
    # Given a message with one spelling, and another conversation without the word
    coord = f.person(session, role=Role.COORDINATOR)
    hit = indexed_conversation(session, f"سلام. {written} لطفاً")
    indexed_conversation(session, "پیامی دیگر بی‌ربط")
    session.commit()
    # When the other spelling is searched; then the message is found, the other is not
    assert found(session, coord, typed) == {hit.id}


def test_english_is_stemmed(session: Session) -> None:
    coord = f.person(session, role=Role.COORDINATOR)
    refund = indexed_conversation(session, "Could you please refund one of them?")
    charged = indexed_conversation(session, "I was CHARGED twice")
    indexed_conversation(session, "unrelated text")
    session.commit()
    assert found(session, coord, "refunds") == {refund.id}
    assert found(session, coord, "refunding") == {refund.id}
    assert found(session, coord, "charges") == {charged.id}
    # a quoted phrase needs its words together, in order
    assert found(session, coord, '"charged twice"') == {charged.id}
    assert found(session, coord, '"twice charged"') == set()
    # every word must occur; a minus excludes
    assert found(session, coord, "refund please") == {refund.id}
    assert found(session, coord, "refund -please") == set()
    # English stop words are left out (PostgreSQL's stemmer drops them) except in quotes
    assert found(session, coord, "the refund of them") == {refund.id}
    assert found(session, coord, '"one of them"') == {refund.id}
    assert found(session, coord, "the") == set()


def test_a_phone_number_in_any_form_finds_the_customer_and_the_texts(session: Session) -> None:
    coord = f.person(session, role=Role.COORDINATOR)
    theirs = indexed_conversation(session, "پیام بدون شماره", channel="sms",
                                  sender="+989121234567")
    mentions = indexed_conversation(session, "شماره من ۰۹۱۲ ۱۲۳ ۴۵۶۷ است")
    indexed_conversation(session, "شماره دیگر 09351112233", channel="sms")
    session.commit()
    for typed in ("09121234567", "+989121234567", "۰۹۱۲۱۲۳۴۵۶۷", "0912 123 4567",
                  "00989121234567"):
        assert found(session, coord, typed) == {theirs.id, mentions.id}, typed


ODD = ['"', "-", "*", "AND", "NEAR(a b)", "'", "%", "_", "\\", "a", "ab", "۱", "a*b",
       '"unclosed', "--x", "x:y", "(", "\x00x", "ك", "‌", "😀", "OR -OR", "^"]


@pytest.mark.parametrize("query", ODD)
def test_no_query_is_an_error_and_operators_are_text(session: Session, query: str) -> None:
    coord = f.person(session, role=Role.COORDINATOR)
    hit = indexed_conversation(session, "50% off_code \\ a*b x:y ۱ NEAR(a b) 😀 ^")
    session.commit()
    found(session, coord, query)  # no database error, whatever the characters
    if query in ("%", "_", "a*b", "x:y", "NEAR(a b)", "😀"):
        assert found(session, coord, query) == {hit.id}  # plain text, not operators
