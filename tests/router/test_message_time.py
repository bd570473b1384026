"""A message's time is when we received it, not the sender's ``Date`` header (threats.md,
"Trusted headers"): a mail back-dated to 2001 sorted before our reply and reopened a
conversation closed years ago, whatever the reopen window."""

from datetime import UTC, datetime, timedelta

from channels.email.parse import parse
from console.timeline import MessageItem, ReplyItem, conversation_view
from kartabl import ingest
from kartabl.models import Conversation, ConversationStatus, Reply, ReplyState, Role, utcnow

BACK_DATED = "Mon, 01 Jan 2001 09:00:00 +0000"


def _mail(n: int, date: str) -> bytes:
    return (f"From: Sara <sara@example.ir>\r\nTo: support@kartabl.example\r\n"
            f"Subject: order\r\nDate: {date}\r\nMessage-ID: <t{n}@example.ir>\r\n\r\n"
            f"message {n}\r\n").encode()


def test_a_back_dated_mail_after_our_reply_sorts_after_it(session, route, make_person):
    # Given a conversation we have just answered
    first = route(ingest.store(session, parse(_mail(1, "Tue, 03 Oct 2023 10:30:00 +0000")))
                  .message_id)
    author = make_person(role=Role.AGENT)
    reply = Reply(conversation_id=first.conversation_id, author_id=author.id, body="پاسخ",
                  state=ReplyState.SENT, channel="email", idempotency_key="<r1@kartabl>",
                  sent_at=utcnow())
    session.add(reply)
    session.commit()
    # When the customer writes again, with a Date header of 2001
    before = utcnow()
    msg = parse(_mail(2, BACK_DATED))
    assert msg.received_at >= before and msg.meta["sent_at"] == "2001-01-01T09:00:00+00:00"
    second = route(ingest.store(session, msg).message_id)
    assert second.conversation_id == first.conversation_id
    # Then it is shown after our reply, where it arrived
    coordinator = make_person(role=Role.COORDINATOR)
    order = [("reply" if isinstance(i, ReplyItem) else i.message_id)
             for i in conversation_view(session, coordinator, first.conversation_id).timeline
             if isinstance(i, MessageItem | ReplyItem)]
    assert order == [first.message_id, "reply", second.message_id]


def test_a_back_dated_mail_does_not_reopen_a_conversation_closed_long_ago(session, route):
    # Given a conversation closed two years ago, and a reopen window of a week
    first = route(ingest.store(session, parse(_mail(3, "Tue, 03 Oct 2023 10:30:00 +0000")))
                  .message_id)
    conv = session.get(Conversation, first.conversation_id)
    conv.status, conv.resolved_at = ConversationStatus.CLOSED, utcnow() - timedelta(days=730)
    session.commit()
    # When the customer's new mail claims to be from 2001
    again = route(ingest.store(session, parse(_mail(4, BACK_DATED))).message_id,
                  reopen_window=timedelta(days=7))
    # Then it is treated as written now: a new conversation, linked to the old one
    assert again.how == "new_linked" and again.conversation_id != first.conversation_id
    assert session.get(Conversation, first.conversation_id).status is ConversationStatus.CLOSED
    new = session.get(Conversation, again.conversation_id)
    assert new.last_message_at > datetime(2020, 1, 1, tzinfo=UTC)
