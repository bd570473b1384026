"""The customer's language, read from what they wrote (kartabl.language)."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session

from kartabl.language import conversation_language, text_language
from tests import factories as f


@pytest.mark.parametrize(("text", "expected"), [
    ("سلام، سفارشم کجاست؟", "fa"),
    ("Hello, where is my order?", "en"),
    ("سفارش ORD-123 نرسیده", "fa"),  # a Persian sentence around an order number
    ("Hi, my order سفارش 12 is still not here", "en"),  # mostly English
    ("Bonjour, où est ma commande ?", "en"),  # Latin script: the English variant
    ("مرحبا، أين طلبي؟", "fa"),  # Arabic script: the Persian variant (closest we have)
    ("۱۲۳۴ 5678 !!! 🙂", None),
    ("", None),
])
def test_text_language_counts_letters_by_script(text: str, expected: str | None) -> None:
    assert text_language(text) == expected


def test_the_latest_message_with_letters_decides(session: Session) -> None:
    conv = f.conversation(session, text="سلام")
    assert conversation_language(session, conv.id) == "fa"
    f.inbound(session, conv, text="Sorry, I prefer English")
    assert conversation_language(session, conv.id) == "en"
    f.inbound(session, conv, text="12345 🙂")  # says nothing: the one before decides
    assert conversation_language(session, conv.id) == "en"


def test_a_conversation_without_letters_is_persian(session: Session) -> None:
    conv = f.conversation(session, text="09121234567", subject="")
    assert conversation_language(session, conv.id) == "fa"


def test_texts_decide_before_subjects(session: Session) -> None:
    conv = f.conversation(session, text="12345", subject="Order 12")
    assert conversation_language(session, conv.id) == "en"  # only the subject has letters
    f.inbound(session, conv, text="بسته نرسید")  # the subject stays "Order 12"
    assert conversation_language(session, conv.id) == "fa"
