"""A bounce of one of our replies marks it failed, with the reason; a forged one changes
nothing. Through the router (route_message → route_batch), on both backends."""

from __future__ import annotations

from sqlalchemy import select

from kartabl import reply_tokens
from kartabl.models import Event, Reply, ReplyState, Role
from router.bounces import DEFAULT_REASON

RS = ReplyState
DAEMON = "mailer-daemon@mx.example.ir"


def _reply(session, conversation_id: int, author_id: int, state: RS = RS.SENT) -> Reply:
    reply = Reply(conversation_id=conversation_id, author_id=author_id, body="پاسخ ما",
                  state=state, channel="email", provider_id="<x@y>")
    session.add(reply)
    session.flush()
    reply.idempotency_key = reply_tokens.make_message_id(reply.id, "kartabl.example")
    session.commit()
    return reply


def _setup(session, inbound, route, make_person, state: RS = RS.SENT) -> Reply:
    conv = route(inbound(sender="customer@example.ir"))
    return _reply(session, conv.conversation_id, make_person(role=Role.AGENT).id, state)


def _state(session, reply_id: int) -> tuple[RS, str | None]:
    session.expire_all()
    reply = session.get(Reply, reply_id)
    return reply.state, reply.error


def _bounced_events(session) -> list[Event]:
    return list(session.scalars(select(Event).where(Event.kind == "reply.bounced")))


def test_a_bounce_of_our_sent_reply_marks_it_failed_with_the_reason(
    session, inbound, route, make_person
) -> None:
    # Given a sent reply
    reply = _setup(session, inbound, route, make_person)
    # When its bounce comes back, naming it in the delivery report
    reason = "550 5.1.1 <customer@example.ir>: Recipient address rejected: User unknown"
    bounce = route(inbound(sender=DAEMON, kind="bounce", subject="Undelivered Mail",
                           meta={"bounced_message_ids": [reply.idempotency_key],
                                 "bounce_reason": reason}))
    # Then the reply is failed with the server's reason, and the coordinator sees it
    assert _state(session, reply.id) == (RS.FAILED, reason)
    [event] = _bounced_events(session)
    assert (event.reply_id, event.conversation_id, event.message_id) == (
        reply.id, reply.conversation_id, bounce.message_id)
    assert event.data == {"previous_state": "sent", "reason": reason}
    # The bounce itself is filed with the mail server's identity, never in the customer's
    # conversation, and its genuine token is no forgery
    assert bounce.conversation_id != reply.conversation_id
    assert session.scalars(select(Event).where(Event.kind.like("router.%_reference"))).all() == []


def test_the_fallback_is_in_reply_to_and_a_delivered_reply_fails_too(
    session, inbound, route, make_person
) -> None:
    reply = _setup(session, inbound, route, make_person, RS.DELIVERED)
    route(inbound(sender=DAEMON, kind="bounce", in_reply_to=reply.idempotency_key.strip("<>"),
                  references=(reply.idempotency_key,)))
    assert _state(session, reply.id) == (RS.FAILED, DEFAULT_REASON)
    assert _bounced_events(session)[0].data["previous_state"] == "delivered"


def test_a_bounce_with_a_forged_token_changes_nothing(
    session, inbound, route, make_person
) -> None:
    reply = _setup(session, inbound, route, make_person)
    key = reply.idempotency_key
    forged = [
        key[:-22] + "0123456789abcdef0123" + "@kartabl.example>",  # our shape, a made-up MAC
        # a genuine signature, but not this reply's key (another nonce)
        reply_tokens.make_message_id(reply.id, "kartabl.example"),
        key.replace(f"kartabl.{reply.id}.", f"kartabl.{reply.id + 1}."),
    ]
    route(inbound(sender=DAEMON, kind="bounce", in_reply_to=forged[0], references=forged[1:],
                  meta={"bounced_message_ids": forged, "bounce_reason": "fake"}))
    assert _state(session, reply.id) == (RS.SENT, None)
    assert _bounced_events(session) == []


def test_only_bounces_fail_replies_and_only_sent_ones(
    session, inbound, route, make_person
) -> None:
    reply = _setup(session, inbound, route, make_person)
    approved = _reply(session, reply.conversation_id, reply.author_id, RS.APPROVED)
    # A customer's answer carrying the token is an answer, not a bounce
    route(inbound(sender="customer@example.ir", in_reply_to=reply.idempotency_key,
                  meta={"bounced_message_ids": [reply.idempotency_key]}))
    assert _state(session, reply.id) == (RS.SENT, None)
    # A bounce naming a reply that was never sent changes nothing
    route(inbound(sender=DAEMON, kind="bounce",
                  meta={"bounced_message_ids": [approved.idempotency_key]}))
    assert _state(session, approved.id) == (RS.APPROVED, None)
    # A second bounce of a failed reply changes nothing either
    named = [reply.idempotency_key]
    route(inbound(sender=DAEMON, kind="bounce", meta={"bounced_message_ids": named}))
    route(inbound(sender=DAEMON, kind="bounce",
                  meta={"bounced_message_ids": named, "bounce_reason": "again"}))
    assert _state(session, reply.id) == (RS.FAILED, DEFAULT_REASON)
    assert len(_bounced_events(session)) == 1
