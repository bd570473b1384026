"""The reply windows of Instagram and WhatsApp in the approval step
(:mod:`kartabl.workflow.windows`, :mod:`console.pages.reply_windows`): a pending reply
shows when its window closes; approving past it is refused at once, nothing sent, with the
SMS offer; the re-target to SMS is audited and the reply then leaves as an SMS to the
customer's number."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from kartabl import outbound, workflow
from kartabl.errors import InputError
from kartabl.models import (
    Channel,
    Conversation,
    Customer,
    Direction,
    Identity,
    Message,
    Person,
    Reply,
    ReplyState,
    SandboxDelivery,
    utcnow,
)
from kartabl.workflow.windows import WindowClosed, to_sms, window_of
from responders.dispatch import dispatch_reply
from responders.preview import REPLY_CHECK
from responders.sandbox import SandboxSender
from tests import factories as f
from tests.console.pages.conftest import World, post_refused, sign_in

Db = sessionmaker[Session]
RS = ReplyState


def pending_reply(db: Db, world: World, channel: Channel, *, age: timedelta,
                  phone: bool = True, human_agent: bool = False, template: str = "") -> int:
    """A conversation on ``channel`` whose customer last wrote ``age`` ago, and ali's reply
    to it awaiting approval."""
    with db() as s:
        customer = Customer(display_name="مشتری متا")
        s.add(customer)
        s.flush()
        address = "+989121110000" if channel is Channel.WHATSAPP else "2000000000000042"
        kind = "phone" if channel is Channel.WHATSAPP else "instagram"
        s.add(Identity(customer_id=customer.id, kind=kind, address=address))
        if phone and channel is Channel.INSTAGRAM:
            s.add(Identity(customer_id=customer.id, kind="phone", address="+989351112233"))
        conv = Conversation(customer_id=customer.id, channel=channel, team_id=world.support,
                            assignee_id=world.ali, subject="")
        s.add(conv)
        s.flush()
        s.add(Message(channel=channel, external_id=f"mid-{conv.id}", direction=Direction.IN,
                      conversation_id=conv.id, customer_id=customer.id, sender=address,
                      recipient="17841400000000001", text="قیمت؟", routed_at=utcnow(),
                      received_at=utcnow() - age,
                      meta={"human_agent": human_agent, **({"template": template}
                                                             if template else {})}))
        ali = s.get(Person, world.ali)
        reply = workflow.draft(s, ali, conv.id, "سلام، موجود است", check=REPLY_CHECK)
        workflow.submit(s, ali, reply.id, check=REPLY_CHECK)
        s.commit()
        return reply.id


@pytest.mark.parametrize(("channel", "age", "human", "hours"), [
    (Channel.WHATSAPP, timedelta(hours=2), False, 22),
    (Channel.INSTAGRAM, timedelta(hours=2), False, 22),
    (Channel.INSTAGRAM, timedelta(hours=30), True, 7 * 24 - 30),
])
def test_the_window_of_a_pending_reply(db: Db, world: World, channel: Channel,
                                       age: timedelta, human: bool, hours: int) -> None:
    rid = pending_reply(db, world, channel, age=age, human_agent=human)
    with db() as s:
        w = window_of(s, s.get(Reply, rid))
    assert w is not None and w.is_open() and w.human_agent is human
    assert w.closes_at is not None
    left = (w.closes_at - utcnow()).total_seconds() / 3600
    assert hours - 0.1 < left < hours + 0.1


def test_a_pending_reply_shows_its_window_and_approving_past_it_is_refused_with_the_sms_offer(
        client: TestClient, db: Db, world: World, enqueued) -> None:
    rid = pending_reply(db, world, Channel.WHATSAPP, age=timedelta(hours=25))
    with db() as s:
        cid = s.get(Reply, rid).conversation_id
    token = sign_in(client, "maryam")
    page = client.get(f"/conversations/{cid}").text
    # Given the pending WhatsApp reply shows its window closed, and the way out by SMS
    assert f'id="window-{rid}"' in page and 'data-open="false"' in page
    assert "reply window closed" in page and f'id="to-sms-button-{rid}"' in page
    assert "+989121110000" in page
    # When the coordinator approves it anyway
    shown = post_refused(client, f"/replies/{rid}/approve", {"csrf_token": token},
                         f"/conversations/{cid}")
    # Then it is refused at once, saying why and offering SMS; nothing is sent or queued
    assert "reply window closed" in shown and "by SMS instead" in shown
    with db() as s:
        assert s.get(Reply, rid).state == RS.PENDING_APPROVAL
    assert ("dispatch_reply", rid) not in enqueued


def test_an_open_window_is_shown_and_approval_goes_through(client, db, world, enqueued
                                                           ) -> None:
    rid = pending_reply(db, world, Channel.INSTAGRAM, age=timedelta(hours=1))
    with db() as s:
        cid = s.get(Reply, rid).conversation_id
    token = sign_in(client, "maryam")
    page = client.get(f"/conversations/{cid}").text
    assert 'data-open="true"' in page and f'id="to-sms-button-{rid}"' not in page
    r = client.post(f"/replies/{rid}/approve", data={"csrf_token": token},
                    follow_redirects=False)
    assert r.status_code == 303 and "failed" not in r.headers["location"]
    assert ("dispatch_reply", rid) in enqueued


def test_without_a_phone_number_there_is_no_sms_offer(db: Db, world: World) -> None:
    rid = pending_reply(db, world, Channel.INSTAGRAM, age=timedelta(days=2), phone=False)
    with db() as s:
        coord = s.get(Person, world.coord)
        with pytest.raises(WindowClosed) as refused:
            workflow.approve(s, coord, rid, check=REPLY_CHECK)
        assert refused.value.code == "meta_window.closed"
        assert refused.value.params["sms"] == "no"
        with pytest.raises(InputError) as no_phone:
            to_sms(s, coord, rid)
        assert no_phone.value.code == "meta_window.no_phone"


def test_the_sms_retarget_is_audited_and_the_reply_leaves_as_an_sms(
        client: TestClient, db: Db, world: World, enqueued) -> None:
    rid = pending_reply(db, world, Channel.INSTAGRAM, age=timedelta(hours=26))
    token = sign_in(client, "maryam")
    # When the coordinator sends it by SMS instead
    r = client.post(f"/replies/{rid}/to-sms", data={"csrf_token": token},
                    follow_redirects=False)
    assert r.status_code == 303 and "done=meta_window.retargeted" in r.headers["location"]
    # Then it is an SMS, still pending, audited with where it goes
    with db() as s:
        reply = s.get(Reply, rid)
        assert (reply.channel, reply.state) == (Channel.SMS, RS.PENDING_APPROVAL)
        [event] = f.events(s, "reply.retargeted")
        assert event.data["from_channel"] == "instagram" and event.data["to"] == "+989351112233"
        assert event.actor_id == world.coord
    # and once approved it leaves as one SMS to the customer's number
    assert client.post(f"/replies/{rid}/approve", data={"csrf_token": token},
                       follow_redirects=False).status_code == 303
    before = outbound.registered()
    outbound.register(SandboxSender(Channel.SMS, session_factory=db))
    try:
        assert dispatch_reply(db, rid) == "sent"
    finally:
        outbound.unregister(Channel.SMS)
        for sender in before.values():
            outbound.register(sender)
    with db() as s:
        [sms] = s.scalars(select(SandboxDelivery)).all()
        assert (sms.channel, sms.recipient) == ("sms", "+989351112233")
        assert "موجود است" in sms.body
        assert s.get(Reply, rid).state == RS.SENT


def test_an_agent_cannot_retarget(client: TestClient, db: Db, world: World) -> None:
    rid = pending_reply(db, world, Channel.WHATSAPP, age=timedelta(hours=26))
    with db() as s:
        cid = s.get(Reply, rid).conversation_id
    token = sign_in(client, "ali")
    post_refused(client, f"/replies/{rid}/to-sms", {"csrf_token": token},
                 f"/conversations/{cid}")
    with db() as s:
        assert s.get(Reply, rid).channel == Channel.WHATSAPP


def test_a_whatsapp_number_with_a_template_approves_past_the_window(
        client: TestClient, db: Db, world: World, enqueued) -> None:
    rid = pending_reply(db, world, Channel.WHATSAPP, age=timedelta(hours=30),
                        template="kartabl_reply")
    with db() as s:
        cid = s.get(Reply, rid).conversation_id
    token = sign_in(client, "maryam")
    page = client.get(f"/conversations/{cid}").text
    assert 'data-open="false"' in page and "approved WhatsApp template" in page
    r = client.post(f"/replies/{rid}/approve", data={"csrf_token": token},
                    follow_redirects=False)
    assert r.status_code == 303 and "failed" not in r.headers["location"]
    assert ("dispatch_reply", rid) in enqueued


def test_a_reply_longer_than_one_message_is_refused_at_submit(db: Db, world: World,
                                                              client: TestClient) -> None:
    from responders.preview import ReplyTooLong

    rid = pending_reply(db, world, Channel.INSTAGRAM, age=timedelta(hours=1))
    with db() as s:
        cid = s.get(Reply, rid).conversation_id
        ali = s.get(Person, world.ali)
        draft = workflow.draft(s, ali, cid, "ب" * 600, check=REPLY_CHECK)  # 1,200 bytes
        with pytest.raises(ReplyTooLong):
            workflow.submit(s, ali, draft.id, check=REPLY_CHECK)
    sign_in(client, "maryam")
    assert "One Instagram message" in client.get(f"/conversations/{cid}").text
