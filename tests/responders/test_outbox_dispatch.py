"""The outbox: claim, send, record; exactly once under a race; retryable and permanent
errors; delivery polling."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from kartabl import outbound
from kartabl.errors import OutcomeUnknown, PermanentDeliveryError, RetryableDeliveryError
from kartabl.models import (
    Channel,
    Conversation,
    Direction,
    Message,
    MessageKind,
    Reply,
    ReplyState,
    SandboxDelivery,
)
from responders.dispatch import dispatch_reply, poll_delivery
from tests.factories import events, inbound

RS = ReplyState


def deliveries(db: sessionmaker[Session]) -> list[SandboxDelivery]:
    with db() as s:
        return list(s.scalars(select(SandboxDelivery).order_by(SandboxDelivery.id)))


def load(db: sessionmaker[Session], reply_id: int) -> tuple[Reply, Conversation]:
    with db() as s:
        reply = s.get(Reply, reply_id)
        assert reply is not None
        conv = s.get(Conversation, reply.conversation_id)
        assert conv is not None
        return reply, conv


def test_an_approved_email_is_sent_threaded_and_recorded(db, sandbox, approved_reply) -> None:
    rid = approved_reply(Channel.EMAIL, body="بسته امروز ارسال شد")
    # When the outbox dispatches it
    assert dispatch_reply(db, rid) == "sent"
    # Then the provider got it once, under the reply's Message-ID
    reply, conv = load(db, rid)
    [d] = deliveries(db)
    assert sandbox["email"].calls == 1
    assert (d.idempotency_key, d.body, d.subject) == (
        reply.idempotency_key, "بسته امروز ارسال شد", "Re: سفارش ۱۲")
    # and the reply is sent, with the provider's id, and answers the customer's message
    assert reply.state == RS.SENT and reply.provider_id == f"sandbox-{d.id}"
    assert reply.attempts == 1 and reply.sending_at and reply.sent_at
    assert conv.first_response_at == reply.sent_at
    with db() as s:
        [first_in] = s.scalars(select(Message).where(Message.direction == Direction.IN))
        [out] = s.scalars(select(Message).where(Message.direction == Direction.OUT))
        assert d.recipient == first_in.sender == out.recipient
        assert (out.external_id, out.conversation_id, out.in_reply_to) == (
            reply.idempotency_key, conv.id, first_in.external_id)
        assert out.references == [first_in.external_id] and out.routed_at is not None
        assert [e.kind for e in events(s, "reply.sending") + events(s, "reply.sent")] == [
            "reply.sending", "reply.sent"]
        assert events(s, "reply.sent")[0].data["provider_id"] == reply.provider_id


def test_a_second_dispatch_is_skipped_without_calling_the_sender(
    db, sandbox, approved_reply
) -> None:
    rid = approved_reply(Channel.SMS)
    assert dispatch_reply(db, rid) == "sent"
    assert dispatch_reply(db, rid) == "skipped"
    assert sandbox["sms"].calls == 1 and len(deliveries(db)) == 1
    assert load(db, rid)[0].idempotency_key == str(rid)


def test_first_response_time_is_the_first_reply_sent(db, sandbox, approved_reply) -> None:
    rid = approved_reply(Channel.TELEGRAM)
    dispatch_reply(db, rid)
    first = load(db, rid)[1].first_response_at
    with db() as s:  # a second reply on the same conversation
        r = s.get(Reply, rid)
        second = Reply(conversation_id=r.conversation_id, author_id=r.author_id,
                       state=RS.APPROVED, channel=r.channel, body="و یک نکته")
        s.add(second)
        s.commit()
        second_id = second.id
    assert dispatch_reply(db, second_id) == "sent"
    assert load(db, second_id)[1].first_response_at == first


@pytest.mark.parametrize("rounds", [3])
def test_two_racing_dispatchers_send_exactly_once(db, sandbox, approved_reply, rounds) -> None:
    for _ in range(rounds):
        rid = approved_reply(Channel.EMAIL)
        barrier = threading.Barrier(2)
        outcomes: list[str] = []
        errors: list[BaseException] = []

        def run(rid: int = rid, barrier: threading.Barrier = barrier) -> None:
            try:
                barrier.wait(timeout=10)
                outcomes.append(dispatch_reply(db, rid))
            except BaseException as exc:
                errors.append(exc)

        # Given two dispatchers with their own sessions, released at the same instant
        threads = [threading.Thread(target=run) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=30)
        # Then one sends and the other skips
        assert errors == [] and sorted(outcomes) == ["sent", "skipped"]
    # and every reply reached the provider exactly once
    assert sandbox["email"].calls == rounds
    assert len(deliveries(db)) == rounds
    with db() as s:
        assert s.scalar(select(func.count()).select_from(Reply).where(Reply.state == RS.SENT)) \
            == rounds


def test_a_retryable_error_returns_the_reply_to_approved_then_it_is_sent(
    db, sandbox, approved_reply
) -> None:
    rid = approved_reply(Channel.SMS)
    sandbox["sms"].inject(RetryableDeliveryError("429 too many requests", retry_after_s=3))
    # When the provider refuses for now, the error reaches the worker (for its backoff)
    with pytest.raises(RetryableDeliveryError) as err:
        dispatch_reply(db, rid)
    assert err.value.retry_after_s == 3
    reply, _ = load(db, rid)
    assert (reply.state, reply.error, reply.attempts) == (RS.APPROVED, "429 too many requests", 1)
    assert deliveries(db) == []
    with db() as s:
        assert events(s, "reply.retry")[0].data["retry_after_s"] == 3
    # And the retry sends it
    assert dispatch_reply(db, rid) == "sent"
    reply, _ = load(db, rid)
    assert (reply.state, reply.error, reply.attempts) == (RS.SENT, None, 2)
    assert len(deliveries(db)) == 1


def test_a_permanent_error_fails_the_reply_for_the_coordinator(
    db, sandbox, approved_reply
) -> None:
    rid = approved_reply(Channel.TELEGRAM)
    sandbox["telegram"].inject(PermanentDeliveryError("403: bot was blocked by the user"))
    assert dispatch_reply(db, rid) == "failed"
    reply, conv = load(db, rid)
    assert (reply.state, reply.error) == (RS.FAILED, "403: bot was blocked by the user")
    assert conv.first_response_at is None
    with db() as s:
        [ev] = events(s, "reply.failed")
        assert ev.data == {"reason": "403: bot was blocked by the user"}
        assert ev.conversation_id == conv.id
    assert dispatch_reply(db, rid) == "skipped"


def test_an_unknown_outcome_leaves_the_reply_sending(db, sandbox, approved_reply) -> None:
    rid = approved_reply(Channel.BALE)
    sandbox["bale"].inject(TimeoutError("read timed out"))  # after the request left
    with pytest.raises(OutcomeUnknown, match="TimeoutError: read timed out"):
        dispatch_reply(db, rid)
    assert load(db, rid)[0].state == RS.SENDING
    # A retried task does not send blindly
    assert dispatch_reply(db, rid) == "skipped"
    assert sandbox["bale"].calls == 1


def test_without_a_sender_the_reply_stays_approved(db, sandbox, approved_reply) -> None:
    rid = approved_reply(Channel.SMS)
    outbound.unregister("sms")
    with pytest.raises(LookupError, match="no sender registered for channel 'sms'"):
        dispatch_reply(db, rid)
    reply, _ = load(db, rid)
    assert (reply.state, reply.attempts) == (RS.APPROVED, 0)


def test_the_reply_answers_the_latest_real_message_never_an_auto_reply(
    db, sandbox, approved_reply
) -> None:
    rid = approved_reply(Channel.EMAIL)
    with db() as s:
        conv = s.get(Conversation, load(db, rid)[1].id)
        later = inbound(s, conv, text="new address", sender="new@example.ir")
        inbound(s, conv, kind=MessageKind.AUTO_REPLY, sender="mailer-daemon@example.ir",
                references=[later.external_id])
        s.commit()
        later_id, later_ext = later.id, later.external_id
    dispatch_reply(db, rid)
    [d] = deliveries(db)
    assert d.recipient == "new@example.ir"
    with db() as s:
        out = s.scalar(select(Message).where(Message.direction == Direction.OUT))
        assert out.in_reply_to == later_ext and s.get(Message, later_id) is not None


def test_nobody_to_answer_is_a_permanent_failure(db, sandbox, approved_reply) -> None:
    rid = approved_reply(Channel.EMAIL)
    with db() as s:
        for m in s.scalars(select(Message)):
            m.kind = MessageKind.BOUNCE
        s.commit()
    assert dispatch_reply(db, rid) == "failed"
    assert "no customer message" in (load(db, rid)[0].error or "")
    assert sandbox["email"].calls == 0


def test_template_text_in_a_reply_is_sent_literally(db, sandbox, approved_reply) -> None:
    body = "{{ 7*7 }} {{ ''.__class__.__mro__ }} {% if 1 %}x{% endif %}"
    rid = approved_reply(Channel.SMS, body=body)
    assert dispatch_reply(db, rid) == "sent"
    assert deliveries(db)[0].body == body


def test_delivery_polling_marks_delivered(db, sandbox, approved_reply) -> None:
    rid = approved_reply(Channel.SMS)
    dispatch_reply(db, rid)
    assert poll_delivery(db, limit=10) == 1
    reply, _ = load(db, rid)
    assert reply.state == RS.DELIVERED and reply.delivered_at is not None
    assert poll_delivery(db, limit=10) == 0  # delivered replies are no longer polled


def test_delivery_polling_brings_failures_back(db, sandbox, approved_reply) -> None:
    failing, waiting = approved_reply(Channel.SMS), approved_reply(Channel.EMAIL)
    dispatch_reply(db, failing)
    dispatch_reply(db, waiting)
    sandbox["sms"].report_status = "failed"
    sandbox["email"].report_status = None  # the provider does not know yet
    assert poll_delivery(db, limit=10) == 1
    assert load(db, failing)[0].state == RS.FAILED
    assert load(db, waiting)[0].state == RS.SENT
    with db() as s:
        [ev] = events(s, "reply.failed")
        assert ev.reply_id == failing and "delivery failed" in ev.data["reason"]


def test_delivery_polling_gives_up_on_old_replies(db, sandbox, approved_reply) -> None:
    # Given a reply sent longer ago than providers keep reporting on it
    from datetime import timedelta

    from kartabl.models import Reply, utcnow
    from responders.dispatch import DELIVERY_POLL_WINDOW

    rid = approved_reply(Channel.SMS)
    dispatch_reply(db, rid)
    with db() as s, s.begin():
        s.get(Reply, rid).sent_at = utcnow() - DELIVERY_POLL_WINDOW - timedelta(hours=1)
    # When the sweep polls delivery, then it is not asked about any more: it stays 'sent'
    assert poll_delivery(db, limit=10) == 0
    assert load(db, rid)[0].state == RS.SENT
