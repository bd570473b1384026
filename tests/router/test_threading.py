from datetime import timedelta

from sqlalchemy import func, select

from kartabl.models import (
    Conversation,
    ConversationStatus,
    Direction,
    Event,
    Message,
    Reply,
    ReplyState,
    Role,
    utcnow,
)


def _close(session, conversation_id, ago):
    conv = session.get(Conversation, conversation_id)
    conv.status = ConversationStatus.CLOSED
    conv.resolved_at = utcnow() - ago
    session.commit()


def _our_reply(session, conversation_id, key, make_person):
    author = make_person(role=Role.AGENT)
    session.add(Reply(conversation_id=conversation_id, author_id=author.id, body="پاسخ",
                      state=ReplyState.SENT, channel="email", idempotency_key=key))
    session.commit()


def test_open_conversation_on_the_same_channel_continues(session, inbound, route):
    first = route(inbound(sender="a@example.ir", subject="سفارش"))
    second = route(inbound(sender="A@Example.ir", text="و یک چیز دیگر"))
    assert (first.how, second.how) == ("new", "open")
    assert second.conversation_id == first.conversation_id
    # A message on another channel opens its own conversation, for the same customer
    # (after linking; without a link an SMS is a different customer).
    assert session.scalar(select(func.count()).select_from(Conversation)) == 1


def test_reference_picks_the_referenced_conversation(session, inbound, route, make_person):
    # Given a customer with two open email conversations, we answered the older one
    old = route(inbound(sender="a@example.ir", subject="old"))
    new_id = inbound(sender="a@example.ir", subject="new")
    session.add(Conversation(customer_id=old.customer_id, channel="email", subject="new"))
    session.commit()
    newest = session.scalars(select(Conversation).order_by(Conversation.id.desc())).first()
    newest.last_message_at = utcnow() + timedelta(seconds=1)
    session.commit()
    route(new_id)
    _our_reply(session, old.conversation_id, "<r1@kartabl.test>", make_person)
    # When the customer replies to our answer (In-Reply-To without angle brackets)
    reply = route(inbound(sender="a@example.ir", in_reply_to="r1@kartabl.test"))
    # Then the reply continues the referenced conversation, not the newest open one
    assert reply.how == "reference" and reply.conversation_id == old.conversation_id


def test_reference_to_outbound_message_external_id(session, inbound, route):
    old = route(inbound(sender="a@example.ir"))
    session.add(Message(channel="email", external_id="<out-1@kartabl.test>",
                        direction=Direction.OUT, sender="support@kartabl.test",
                        conversation_id=old.conversation_id, customer_id=old.customer_id))
    session.commit()
    _close(session, old.conversation_id, timedelta(hours=1))
    reply = route(inbound(sender="a@example.ir", references=("<x@y>", "<out-1@kartabl.test>")))
    # a reference to a closed conversation within the window reopens it
    assert reply.how == "reopened" and reply.conversation_id == old.conversation_id


def test_forged_reference_to_another_customers_conversation_does_not_attach(
    session, inbound, route, make_person
):
    # Given a victim's conversation, answered with a known Message-ID
    victim = route(inbound(sender="victim@example.ir", subject="secret"))
    _our_reply(session, victim.conversation_id, "<r-victim@kartabl.test>", make_person)
    # When an attacker sends mail whose In-Reply-To carries that Message-ID
    forged = route(inbound(sender="attacker@evil.ir", in_reply_to="<r-victim@kartabl.test>",
                           references=("<r-victim@kartabl.test>",)))
    # Then the mail opens the attacker's own conversation, and the attempt is audited
    assert forged.conversation_id != victim.conversation_id and forged.how == "new"
    assert forged.customer_id != victim.customer_id
    victim_conv = session.get(Conversation, victim.conversation_id)
    assert session.scalar(select(func.count()).select_from(Message)
                          .where(Message.conversation_id == victim_conv.id)) == 1
    event = session.scalars(select(Event).where(Event.kind == "router.foreign_reference")).one()
    assert event.data["conversations"] == [victim.conversation_id]


def test_reply_within_window_reopens(session, inbound, route):
    first = route(inbound(channel="telegram", sender="42", text="سلام"))
    _close(session, first.conversation_id, timedelta(hours=2))
    again = route(inbound(channel="telegram", sender="42", text="باز هم من"))
    conv = session.get(Conversation, first.conversation_id)
    assert again.how == "reopened" and again.conversation_id == conv.id
    assert conv.status is ConversationStatus.OPEN and conv.resolved_at is None
    assert session.scalar(select(func.count()).select_from(Event)
                          .where(Event.kind == "conversation.reopened")) == 1


def test_reply_after_window_opens_a_linked_conversation(session, inbound, route):
    first = route(inbound(channel="sms", sender="09121234567", text="سلام"))
    _close(session, first.conversation_id, timedelta(days=30))
    again = route(inbound(channel="sms", sender="09121234567", text="دوباره"),
                  reopen_window=timedelta(days=7))
    assert again.how == "new_linked" and again.conversation_id != first.conversation_id
    new = session.get(Conversation, again.conversation_id)
    assert new.previous_id == first.conversation_id and new.status is ConversationStatus.OPEN
    assert session.get(Conversation, first.conversation_id).status is ConversationStatus.CLOSED


def test_automatic_mail_is_filed_without_reopening(session, inbound, route):
    first = route(inbound(sender="a@example.ir"))
    _close(session, first.conversation_id, timedelta(minutes=5))
    auto = route(inbound(sender="a@example.ir", kind="auto_reply", subject="Out of office"))
    assert auto.how == "closed" and auto.conversation_id == first.conversation_id
    assert session.get(Conversation, first.conversation_id).status is ConversationStatus.CLOSED


def test_last_message_at_moves_forward(session, inbound, route):
    first = route(inbound(sender="a@example.ir"))
    before = session.get(Conversation, first.conversation_id).last_message_at
    later = utcnow() + timedelta(minutes=1)
    route(inbound(sender="a@example.ir", received_at=later))
    assert session.get(Conversation, first.conversation_id).last_message_at == later > before


def test_window_is_measured_from_when_the_customer_wrote(session, inbound, route):
    # Given a conversation closed 5 hours ago
    first = route(inbound(channel="telegram", sender="43", text="سلام"))
    _close(session, first.conversation_id, timedelta(hours=5))
    # When a reply the customer sent 1 hour after the close is routed only now (an outage)
    late = route(inbound(channel="telegram", sender="43", text="یک سؤال دیگر",
                         received_at=utcnow() - timedelta(hours=4)),
                 reopen_window=timedelta(hours=2))
    # Then it reopens, as it would have on time
    assert late.how == "reopened" and late.conversation_id == first.conversation_id


def test_a_messenger_reply_to_our_message_threads_there(session, inbound, route, make_person):
    # Given a Telegram customer with two open conversations; we answered the older one in
    # two parts (Telegram message ids 500 and 501)
    first = route(inbound(channel="telegram", sender="42", text="سفارش ۱"))
    author = make_person(role=Role.AGENT)
    session.add(Reply(conversation_id=first.conversation_id, author_id=author.id, body="پاسخ",
                      state=ReplyState.SENT, channel="telegram", idempotency_key="k-tg-1",
                      provider_id="shop_bot:42:500,501"))
    newer = Conversation(customer_id=first.customer_id, channel="telegram", subject="",
                         last_message_at=utcnow() + timedelta(seconds=1))
    session.add(newer)
    session.commit()
    # When the customer answers our second part with Telegram's "reply"
    answer = route(inbound(channel="telegram", sender="42", in_reply_to="shop_bot:42:501",
                           text="هنوز نرسیده"))
    # Then it continues the conversation of that reply, not the newest open one
    assert answer.how == "reference" and answer.conversation_id == first.conversation_id
    # A reply to a message id we never sent (50 is not 500), or through another bot whose
    # name only matches as a LIKE pattern, goes to the newest open conversation instead
    for ref in ("shop_bot:42:50", "shopXbot:42:501"):
        other = route(inbound(channel="telegram", sender="42", in_reply_to=ref, text="؟"))
        assert (other.how, other.conversation_id) == ("open", newer.id), ref


def test_a_rubika_reply_to_our_message_threads_there(session, inbound, route, make_person):
    # Given a Rubika customer with two open conversations; we answered the older one in the
    # chat b0chat42 (Rubika message ids are digit strings, as the sender records them)
    first = route(inbound(channel="rubika", sender="u0sara", text="سفارش ۱"))
    author = make_person(role=Role.AGENT)
    session.add(Reply(conversation_id=first.conversation_id, author_id=author.id, body="پاسخ",
                      state=ReplyState.SENT, channel="rubika", idempotency_key="k-rb-1",
                      provider_id="shop:b0chat42:9100000000000000001"))
    newer = Conversation(customer_id=first.customer_id, channel="rubika", subject="",
                         last_message_at=utcnow() + timedelta(seconds=1))
    session.add(newer)
    session.commit()
    # When she answers our message with Rubika's "reply" (channels.rubika.updates)
    answer = route(inbound(channel="rubika", sender="u0sara", text="هنوز نرسیده",
                           in_reply_to="shop:b0chat42:9100000000000000001"))
    # Then it continues the conversation of that reply, not the newest open one
    assert answer.how == "reference" and answer.conversation_id == first.conversation_id
    other = route(inbound(channel="rubika", sender="u0sara", text="؟",
                          in_reply_to="shop:b0chat42:910000000000000000"))
    assert (other.how, other.conversation_id) == ("open", newer.id)
