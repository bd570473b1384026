"""A reply's cost on its channel is known before approval: SMS parts (UCS-2: 70 in one, 67
per part), chat messages of 4096; what the sender would refuse cannot be submitted or
approved."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session

from kartabl import workflow
from kartabl.models import Channel, ReplyState
from responders.preview import (
    MAX_SMS_PARTS,
    REPLY_CHECK,
    ReplyCannotRender,
    ReplyTooLong,
    preview,
    preview_reply,
)
from tests.factories import conversation, events

FA = "س"  # one Persian letter: UCS-2


@pytest.mark.parametrize(("text", "parts", "encoding"), [
    (FA * 70, 1, "ucs2"), (FA * 71, 2, "ucs2"), (FA * 134, 2, "ucs2"), (FA * 135, 3, "ucs2"),
    ("a" * 160, 1, "gsm7"), ("a" * 161, 2, "gsm7"), ("a" * 159 + "س", 3, "ucs2"),
    ("a" * 80 + "€" * 40, 1, "gsm7"),  # € takes two septets: exactly 160
])
def test_sms_parts(text: str, parts: int, encoding: str) -> None:
    p = preview(Channel.SMS, text)
    assert (p.parts, p.encoding, p.limit) == (parts, encoding, MAX_SMS_PARTS)
    assert p.text == text


def test_chat_messages_and_mail() -> None:
    assert preview(Channel.TELEGRAM, "x" * 4096).parts == 1
    assert preview(Channel.BALE, "x" * 4097).describe() == "2 messages"
    assert preview(Channel.EMAIL, "x" * 100_000).parts == 1


def test_the_preview_is_rendered_with_the_reply_context(session: Session, org) -> None:
    sms = conversation(session, channel=Channel.SMS, team=org.support, assignee=org.ali)
    reply = workflow.draft(session, org.ali, sms.id, FA * 100, check=REPLY_CHECK)
    p = preview_reply(session, reply)
    assert (p.parts, p.describe()) == (2, "2 SMS (UCS2, 100 characters)")
    assert preview_reply(session, reply, body=FA * 10).parts == 1  # an unsaved edit


def test_an_sms_too_long_to_send_cannot_be_submitted(session: Session, org) -> None:
    sms = conversation(session, channel=Channel.SMS, team=org.support, assignee=org.ali)
    reply = workflow.draft(session, org.ali, sms.id, FA * (67 * MAX_SMS_PARTS + 1),
                           check=REPLY_CHECK)
    session.commit()
    with pytest.raises(ReplyTooLong, match=r"^cannot submit: the reply is 9 SMS \(UCS2, 537 "
                       r"characters\), and sms replies are at most 8 SMS; shorten it$"):
        workflow.submit(session, org.ali, reply.id, check=REPLY_CHECK)
    session.rollback()
    assert reply.state == ReplyState.DRAFT and events(session, "reply.submitted") == []
    # 8 parts exactly is accepted
    workflow.update_draft(session, org.ali, reply.id, FA * (67 * MAX_SMS_PARTS))
    workflow.submit(session, org.ali, reply.id, check=REPLY_CHECK)
    assert reply.state == ReplyState.PENDING_APPROVAL


def test_an_edit_at_approval_that_is_too_long_is_refused(session: Session, org) -> None:
    sms = conversation(session, channel=Channel.SMS, team=org.support, assignee=org.ali)
    reply = workflow.draft(session, org.ali, sms.id, "سفارش شما ارسال شد", check=REPLY_CHECK)
    workflow.submit(session, org.ali, reply.id, check=REPLY_CHECK)
    session.commit()
    with pytest.raises(ReplyTooLong, match="cannot approve"):
        workflow.approve(session, org.maryam, reply.id, edited_body=FA * 600, check=REPLY_CHECK)
    session.rollback()
    assert (reply.state, reply.body) == (ReplyState.PENDING_APPROVAL, "سفارش شما ارسال شد")
    workflow.approve(session, org.maryam, reply.id, edited_body=FA * 71, check=REPLY_CHECK)
    assert reply.state == ReplyState.APPROVED and preview_reply(session, reply).parts == 2


def test_a_template_that_cannot_render_is_refused_at_submit(session: Session, org) -> None:
    reply = workflow.draft(session, org.ali, org.conv.id, "سلام", check=REPLY_CHECK)
    reply.template = "no-such-template"  # e.g. removed after the draft was written
    with pytest.raises(ReplyCannotRender, match="cannot submit: template 'no-such-template'"):
        workflow.submit(session, org.ali, reply.id, check=REPLY_CHECK)
