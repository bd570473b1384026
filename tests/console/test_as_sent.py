"""What the customer received: a sent reply's rendered text as its channel carried it (SMS
parts, chat messages, one mail), shown under the reply in the timeline."""

from __future__ import annotations

import random

import pytest
from sqlalchemy.orm import Session, sessionmaker

from console.timeline import ReplyItem, conversation_view
from kartabl import workflow
from kartabl.models import Channel, Role
from responders.as_sent import pieces
from responders.dispatch import dispatch_reply
from responders.preview import REPLY_CHECK
from responders.sms_length import sms_length, sms_parts, split_sms
from tests.console.test_timeline import sandbox  # noqa: F401  (a fixture)
from tests.factories import conversation, person


def _units(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def test_a_persian_sms_splits_into_parts_of_67() -> None:
    text = "س" * 200
    parts = split_sms(text)
    assert [len(p) for p in parts] == [67, 67, 66] and "".join(parts) == text
    assert len(parts) == sms_parts(text)


def test_a_latin_sms_splits_into_parts_of_153_and_one_that_fits_is_whole() -> None:
    assert [len(p) for p in split_sms("a" * 320)] == [153, 153, 14]
    assert split_sms("a" * 160) == ["a" * 160] and split_sms("") == []


def test_no_character_is_cut_in_two() -> None:
    # An emoji (two UTF-16 units) across the 67th unit starts the next part
    text = "س" * 66 + "😀" + "س" * 10
    parts = split_sms(text)
    assert parts[0] == "س" * 66 and parts[1].startswith("😀")
    assert all(_units(p) <= 67 for p in parts)
    # a GSM extension character (two septets) across the 153rd starts the next part too
    gsm = "a" * 152 + "€" + "a" * 20
    assert sms_length(gsm).encoding == "gsm7"
    assert split_sms(gsm)[1].startswith("€") and "".join(split_sms(gsm)) == gsm


def test_random_texts_rejoin_and_agree_with_the_count_shown_before_approval() -> None:
    rnd = random.Random(7)
    for _ in range(300):
        alphabet = rnd.choice(["abc d", "سلام ", "aس "])
        text = "".join(rnd.choice(alphabet) for _ in range(rnd.randrange(1, 600)))
        parts = split_sms(text)
        assert "".join(parts) == text
        assert len(parts) == sms_parts(text)  # no emoji or extension: nothing straddles


@pytest.mark.parametrize(("channel", "body", "count"), [
    (Channel.SMS, "پاسخ " * 40, 3),  # 199 UCS-2 units (stripped): 67 + 67 + 65
    (Channel.TELEGRAM, ("word " * 900 + "\n\n") * 2, 3),  # over 4096 twice
    (Channel.EMAIL, "x " * 5000, 1),
])
def test_the_timeline_shows_each_piece_the_customer_received(
        session: Session, db: sessionmaker[Session], sandbox: None,  # noqa: F811
        channel: Channel, body: str, count: int) -> None:
    maryam = person(session, "maryam", Role.COORDINATOR)
    ali = person(session, "ali")
    conv = conversation(session, channel=channel, assignee=ali)
    session.commit()
    reply = workflow.draft(session, ali, conv.id, body, check=REPLY_CHECK)
    workflow.submit(session, ali, reply.id, check=REPLY_CHECK)
    workflow.approve(session, maryam, reply.id, check=REPLY_CHECK)
    session.commit()
    assert dispatch_reply(db, reply.id) == "sent"
    session.expire_all()
    [item] = [i for i in conversation_view(session, maryam, conv.id).timeline
              if isinstance(i, ReplyItem)]
    assert item.message_id is not None
    assert len(item.sent) == count
    # the outbound row's text (what the sender sent), cut as its channel cuts it
    sent_text = _sent_text(session, item.message_id)
    assert body.strip() in sent_text
    assert item.sent == pieces(channel, sent_text)


def _sent_text(session: Session, message_id: int) -> str:
    from kartabl.models import Message

    row = session.get(Message, message_id)
    assert row is not None
    return row.text


def test_a_reply_not_sent_yet_shows_no_pieces(session: Session) -> None:
    maryam = person(session, "maryam", Role.COORDINATOR)
    conv = conversation(session, channel=Channel.SMS)
    session.commit()
    workflow.draft(session, maryam, conv.id, "سلام", check=REPLY_CHECK)
    session.commit()
    [item] = [i for i in conversation_view(session, maryam, conv.id).timeline
              if isinstance(i, ReplyItem)]
    assert item.sent == []
