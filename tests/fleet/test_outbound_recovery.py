"""Every recovery path of the outbox, with each ``Procfile`` line its own OS process on
PostgreSQL and Redis (tests/fleet/conftest.py): customers write through the stand-ins, the
pollers and the worker route, this process approves as the coordinator would, and the
worker and the scheduler send, reconcile and poll delivery statuses.

Each test also checks the promise that no reply stays ``sending`` longer than
``KARTABL_SENDING_STALE_S`` plus one sweep interval (plus this machine's slack).
"""

from __future__ import annotations

import time
import uuid

import pytest
from sqlalchemy import select

from channels.telegram.standin_wire import text_update
from kartabl import ingest, tasks
from kartabl.messages import InboundMessage
from kartabl.models import Message, ReplyState
from tests.fleet.conftest import BOT_TOKEN, SENDING_STALE_S, SMS_LINE, SWEEP_INTERVAL_S, Deployed
from tests.fleet.helpers import approved_reply, reply_in, reply_row, routed_conversation, wait_for

pytestmark = [pytest.mark.fleet, pytest.mark.xdist_group("fleet")]

RS = ReplyState
# Stale, one sweep, and this 2-core machine's slack (a sweep tick, a worker's pick-up).
RESOLVED_WITHIN_S = SENDING_STALE_S + SWEEP_INTERVAL_S + 8
_n = iter(range(1000, 10_000))


def _phone() -> tuple[str, str]:
    """A fresh customer's phone: Kavenegar's national form, and our E.164."""
    n = next(_n) * 100 + int(uuid.uuid4().int % 100)
    return f"0912{n:07d}", f"+98912{n:07d}"


def _sms_conversation(dep: Deployed, text: str) -> int:
    national, e164 = _phone()
    dep.kavenegar.inbound(national, text, SMS_LINE, via="queue")  # read by the `sms` poller
    return wait_for(lambda: routed_conversation(dep.db, "phone", e164), 30,
                    f"the SMS of {e164} routed by the worker", dep.logs)


def _sent_sms(dep: Deployed, reply_id: int) -> int:
    reply = wait_for(lambda: reply_in(dep.db, reply_id, RS.SENT, RS.DELIVERED, RS.FAILED),
                     30, f"reply {reply_id} sent", dep.logs)
    assert reply.state == RS.SENT, (reply.state, reply.error)
    assert reply.provider_id is not None
    return int(reply.provider_id)


def _not_stuck(dep: Deployed, reply_id: int) -> None:
    reply = reply_row(dep.db, reply_id)
    assert reply.sending_at is not None
    assert reply.updated_at is not None
    took = (reply.updated_at - reply.sending_at).total_seconds()
    assert took <= RESOLVED_WITHIN_S, f"reply {reply_id} sat in 'sending' {took:.1f} s"


def test_sms_delivery_statuses_reach_the_replies(deployed: Deployed) -> None:
    dep = deployed
    # Given two SMS customers answered through the fleet
    delivered = approved_reply(dep.db, _sms_conversation(dep, "سلام، وضعیت سفارش؟"), "رسید.")
    failed = approved_reply(dep.db, _sms_conversation(dep, "سلام، کی می‌رسد؟"), "فردا.")
    ok_id, bad_id = _sent_sms(dep, delivered), _sent_sms(dep, failed)
    # When the carrier reports one delivered (10) and the other undelivered (11)
    dep.kavenegar.set_status(ok_id, 10)
    dep.kavenegar.set_status(bad_id, 11)
    # Then the scheduler's delivery polling moves both, the failure with Kavenegar's reason
    wait_for(lambda: reply_in(dep.db, delivered, RS.DELIVERED), 20, "delivered", dep.logs)
    reply = wait_for(lambda: reply_in(dep.db, failed, RS.FAILED), 20, "failed", dep.logs)
    assert reply.error is not None and "11: it did not reach the phone" in reply.error


def test_an_sms_whose_answer_timed_out_is_reconciled_and_sent_once(deployed: Deployed) -> None:
    dep = deployed
    conv = _sms_conversation(dep, "سلام، پیامک من رسید؟")
    # Given Kavenegar takes the next send but answers after our 1.5 s read timeout
    dep.kavenegar.fail_next("send", "slow", 4)
    reply_id = approved_reply(dep.db, conv, "بله، رسید.")
    # Then the outcome is unknown: the reply waits in 'sending' for the reconcile sweep
    wait_for(lambda: reply_in(dep.db, reply_id, RS.SENDING), 15, "sending", dep.logs)
    # And the scheduler asks statuslocalmessageid, finds it, and records it sent, once
    reply = wait_for(lambda: reply_in(dep.db, reply_id, RS.SENT, RS.FAILED, RS.APPROVED),
                     RESOLVED_WITHIN_S + 5, "the reconcile", dep.logs)
    assert reply.state == RS.SENT, (reply.state, reply.error)
    sends = dep.kavenegar.sends_of(str(reply_id))
    assert len(sends) == 1, sends
    assert reply.provider_id == str(sends[0].messageid)
    _not_stuck(dep, reply_id)


def _email_conversation(dep: Deployed) -> int:
    address = f"fleet-{uuid.uuid4().hex[:8]}@example.ir"
    msg = InboundMessage(channel="email", external_id=f"<{uuid.uuid4().hex}@example.ir>",
                         sender=address, sender_name="Fleet", subject="Order 12",
                         text="Hello, where is my order?")
    with dep.db() as s:
        ingest.store_many(s, [msg])  # committed; its routing goes to the fleet's queue
    return wait_for(lambda: routed_conversation(dep.db, "email", address), 30,
                    "the mail routed", dep.logs)


def test_an_smtp_answer_lost_after_the_data_is_resent_with_the_same_message_id(
    deployed: Deployed,
) -> None:
    dep = deployed
    conv = _email_conversation(dep)
    before = len(dep.smtp.messages())
    # Given the SMTP server takes the mail but its answer after the data never comes
    dep.smtp.recorder.fail("DATA", "stall:5")
    reply_id = approved_reply(dep.db, conv, "Your order left today.")
    # Then, after KARTABL_SENDING_STALE_S, the scheduler sends it again (SMTP cannot be
    # asked: at least once) and the second send is recorded
    reply = wait_for(lambda: reply_in(dep.db, reply_id, RS.SENT, RS.FAILED),
                     RESOLVED_WITHIN_S + 10, "the resend", dep.logs)
    assert reply.state == RS.SENT, (reply.state, reply.error)
    mails = dep.smtp.messages()[before:]
    ids = [m["Message-ID"] for m in mails if f"kartabl.{reply_id}." in m["Message-ID"]]
    # And the customer got it twice with one Message-ID, which mail clients collapse
    assert len(ids) == 2 and ids[0] == ids[1], ids
    _not_stuck(dep, reply_id)


def test_a_telegram_reply_with_an_unknown_outcome_fails_with_its_reason(
    deployed: Deployed,
) -> None:
    dep = deployed
    user_id = 700_000 + next(_n)
    dep.bot_api.add_update(BOT_TOKEN, text_update(user_id, "سلام از تلگرام"))
    conv = wait_for(lambda: routed_conversation(dep.db, "telegram", str(user_id)), 30,
                    "the update routed", dep.logs)
    # Given the Bot API takes the message but answers after our 0.25 s read timeout
    dep.bot_api.fail_next("sendMessage", "slow", 2)
    reply_id = approved_reply(dep.db, conv, "پاسخ ما")
    # Then the reply is failed (Telegram cannot be asked; at most once), with a reason that
    # tells the coordinator to check with the customer, and it was sent once, not twice
    reply = wait_for(lambda: reply_in(dep.db, reply_id, RS.FAILED, RS.SENT),
                     RESOLVED_WITHIN_S + 5, "the unknown outcome resolved", dep.logs)
    assert reply.state == RS.FAILED, (reply.state, reply.error)
    assert reply.error is not None and "check with the customer" in reply.error
    assert len(dep.bot_api.sent_to(user_id)) == 1
    _not_stuck(dep, reply_id)


def test_a_message_whose_routing_job_was_lost_is_routed_by_the_sweep(deployed: Deployed) -> None:
    dep = deployed
    address = f"lost-{uuid.uuid4().hex[:8]}@example.ir"
    msg = InboundMessage(channel="email", external_id=f"<{uuid.uuid4().hex}@example.ir>",
                         sender=address, sender_name="Lost", subject="Hello",
                         text="Is anybody there?")
    # Given a message committed while its routing job is lost (no queue reached)
    enqueuer = tasks._enqueuer
    tasks.set_enqueuer(None)
    try:
        with dep.db() as s:
            (stored,) = ingest.store_many(s, [msg])
    finally:
        tasks.set_enqueuer(enqueuer)
    started = time.monotonic()
    # Then the scheduler finds it unrouted after the grace and the worker routes it
    wait_for(lambda: routed_conversation(dep.db, "email", address), 30, "the sweep", dep.logs)
    with dep.db() as s:
        row = s.scalar(select(Message).where(Message.id == stored.message_id))
        assert row is not None and row.routed_at is not None
    assert time.monotonic() - started < 30
