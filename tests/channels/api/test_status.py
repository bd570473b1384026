"""Delivery statuses the external system reports (``/webhooks/api/<name>/status``), signed:
mapped to the reply as polled SMS statuses are (sent → delivered, or failed with the
system's reason), idempotent, and only for the channel's own replies. Both databases."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from config.api_channel import ApiChannelConfig
from kartabl import outbound
from kartabl.models import Channel, Reply, ReplyState
from responders.api_channel import ApiChannelSender
from responders.dispatch import dispatch_reply
from tests.channels.api.conftest import OTHER_SECRET, signed_post
from tests.channels.api.flow import approved_reply
from tests.factories import events

RS = ReplyState
URL = "/webhooks/api/shop/status"


@pytest.fixture
def sender(api_config: ApiChannelConfig) -> Iterator[ApiChannelSender]:
    before = outbound.registered()
    with ApiChannelSender([api_config]) as sender:
        outbound.register(sender)
        yield sender
    outbound.unregister(Channel.API)
    for s in before.values():
        outbound.register(s)


def sent_reply(db: sessionmaker[Session]) -> int:
    rid = approved_reply(db)
    assert dispatch_reply(db, rid) == "sent"
    return rid


def reply(db: sessionmaker[Session], rid: int) -> Reply:
    with db() as s:
        r = s.get(Reply, rid)
        assert r is not None
        return r


def test_delivered_then_read_then_failed(client: TestClient, sender, db) -> None:
    rid = sent_reply(db)
    # When the system reports it delivered, twice (a resent report)
    first = signed_post(client, URL, {"reply_id": rid, "status": "delivered"})
    again = signed_post(client, URL, {"reply_id": str(rid), "status": "delivered"})
    # Then the reply is delivered once
    assert first.json() == {"ok": True, "reply_id": rid, "state": "delivered", "changed": True}
    assert again.json() == {"ok": True, "reply_id": rid, "state": "delivered", "changed": False}
    r = reply(db, rid)
    assert r.state == RS.DELIVERED and r.delivered_at is not None
    # And a later "read" or a late "failed" changes nothing
    for status in ("read", "failed"):
        late = signed_post(client, URL, {"reply_id": rid, "status": status})
        assert late.status_code == 200 and late.json()["changed"] is False
    assert reply(db, rid).state == RS.DELIVERED
    with db() as s:
        assert len(events(s, "reply.delivered")) == 1


def test_read_counts_as_delivered(client: TestClient, sender, db) -> None:
    rid = sent_reply(db)
    assert signed_post(client, URL, {"reply_id": rid, "status": "read"}).json()["changed"]
    assert reply(db, rid).state == RS.DELIVERED
    with db() as s:
        [event] = events(s, "reply.delivered")
        assert event.data["reported"] == "read"


def test_failed_goes_back_to_the_coordinator_with_the_systems_reason(
        client: TestClient, sender, db) -> None:
    rid = sent_reply(db)
    answer = signed_post(client, URL, {"reply_id": rid, "status": "failed",
                                       "reason": "the user\nblocked the shop's bot"})
    assert answer.json() == {"ok": True, "reply_id": rid, "state": "failed", "changed": True}
    r = reply(db, rid)
    assert r.state == RS.FAILED
    assert r.error == ("the API channel shop reported that delivery failed: the user "
                       "blocked the shop's bot")


def test_a_report_before_the_send_is_recorded_is_409_retry(client: TestClient, sender,
                                                           db) -> None:
    rid = approved_reply(db)  # approved, not sent yet: the system answered faster than us
    answer = signed_post(client, URL, {"reply_id": rid, "status": "delivered"})
    assert answer.status_code == 409 and answer.headers["Retry-After"] == "1"
    assert reply(db, rid).state == RS.APPROVED


def test_a_channel_reports_on_its_own_replies_only(client: TestClient, sender, db) -> None:
    rid = sent_reply(db)
    unsent = approved_reply(db)
    for some in (rid, unsent, 999_999):
        # crm signs correctly with its own secret, about shop's replies (or none at all)
        answer = signed_post(client, "/webhooks/api/crm/status",
                             {"reply_id": some, "status": "failed"}, secret=OTHER_SECRET)
        assert answer.status_code == 404, some
        assert answer.json()["detail"] == "no such reply on this channel"
    assert signed_post(client, URL, {"reply_id": 999_999, "status": "read"}).status_code == 404
    assert (reply(db, rid).state, reply(db, unsent).state) == (RS.SENT, RS.APPROVED)


def test_bad_reports_are_refused_and_change_nothing(client: TestClient, sender, db) -> None:
    rid = sent_reply(db)
    bad = [{"reply_id": rid}, {"reply_id": rid, "status": "seen"},
           {"reply_id": "x", "status": "read"}, {"reply_id": True, "status": "read"},
           {"reply_id": -1, "status": "read"}, {"reply_id": rid, "status": "failed", "reason": 5},
           {"reply_id": rid, "status": "read", "extra": 1}, ["not", "an", "object"]]
    for body in bad:
        answer = signed_post(client, URL, body)
        assert answer.status_code == 400, body
        assert answer.json()["detail"].startswith("not a generic API status: "), body
    forged = signed_post(client, URL, {"reply_id": rid, "status": "failed"},
                         secret=OTHER_SECRET)
    assert forged.status_code == 403
    assert reply(db, rid).state == RS.SENT
