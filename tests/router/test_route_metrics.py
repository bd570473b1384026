"""The routing metrics count messages: ``kartabl_messages_routed_total`` and the
``kartabl_route_latency_seconds`` histogram move once per message routed now (a message
routed again counts nothing), and a bounce that fails our reply moves
``kartabl_replies_total{state="failed"}`` by one, once committed."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy.orm import Session

from config.routing import RoutingConfig
from kartabl import reply_tokens
from kartabl.models import Reply, ReplyState, Role
from router.batch import route_batch
from tests.metric_values import Deltas, value
from tests.router.conftest import WINDOW

ROUTED = ("kartabl_messages_routed_total", {})
LATENCY_COUNT = ("kartabl_route_latency_seconds_count", {})
FAILED = ("kartabl_replies_total", {"state": "failed"})


def test_each_message_routed_counts_once(
    session: Session, inbound: Any, routing: RoutingConfig
) -> None:
    # Given three stored messages from two customers
    ids = [inbound(sender="a@example.ir"), inbound(sender="b@example.ir"),
           inbound(sender="a@example.ir", text="و یک سؤال دیگر")]
    counts = Deltas(ROUTED, LATENCY_COUNT)
    latency_sum = value("kartabl_route_latency_seconds_sum")
    # When one batch routes them
    outcomes = route_batch(session, ids, routing=routing, reopen_window=WINDOW)
    # Then both the counter and the latency histogram moved by 3
    assert len(outcomes) == 3
    assert counts.now() == {"kartabl_messages_routed_total": 3,
                            "kartabl_route_latency_seconds_count": 3}
    assert value("kartabl_route_latency_seconds_sum") >= latency_sum
    # and routing them again (a redelivery, a sweep) counts nothing
    assert route_batch(session, ids, routing=routing, reopen_window=WINDOW) == []
    assert counts.now()["kartabl_messages_routed_total"] == 3


def test_a_message_that_waits_in_the_latency_histogram(
    session: Session, inbound: Any, routing: RoutingConfig
) -> None:
    # The histogram observes commit → routing: a message routed at once lands in a small
    # bucket (on a loaded machine still well under 10 s)
    mid = inbound(sender="c@example.ir")
    under_10s = value("kartabl_route_latency_seconds_bucket", le="10.0")
    route_batch(session, [mid], routing=routing, reopen_window=WINDOW)
    assert value("kartabl_route_latency_seconds_bucket", le="10.0") - under_10s == 1


def _sent_reply(session: Session, inbound: Any, route: Any, make_person: Any) -> Reply:
    conv = route(inbound(sender="customer@example.ir"))
    reply = Reply(conversation_id=conv.conversation_id, author_id=make_person(role=Role.AGENT).id,
                  body="پاسخ ما", state=ReplyState.SENT, channel="email", provider_id="<x@y>")
    session.add(reply)
    session.flush()
    reply.idempotency_key = reply_tokens.make_message_id(reply.id, "kartabl.example")
    session.commit()
    return reply


def _bounce(inbound: Any, reply: Reply) -> int:
    return int(inbound(sender="mailer-daemon@mx.example.ir", kind="bounce",
                       subject="Undelivered Mail",
                       meta={"bounced_message_ids": [reply.idempotency_key],
                             "bounce_reason": "550 5.1.1 user unknown"}))


def test_a_bounce_of_our_reply_counts_one_failed_reply(
    session: Session, inbound: Any, route: Any, make_person: Any
) -> None:
    reply = _sent_reply(session, inbound, route, make_person)
    counts = Deltas(FAILED, ROUTED)
    # When its bounce is routed, twice (the second finds the reply failed already)
    route(_bounce(inbound, reply))
    route(_bounce(inbound, reply))
    # Then one reply failed, and two messages were routed
    assert counts.now() == {"kartabl_replies_total{state=failed}": 1,
                            "kartabl_messages_routed_total": 2}


def test_a_bounce_in_a_batch_that_rolls_back_counts_nothing(
    session: Session, inbound: Any, route: Any, make_person: Any, routing: RoutingConfig,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a sent reply and its bounce
    reply = _sent_reply(session, inbound, route, make_person)
    bounce = _bounce(inbound, reply)
    counts = Deltas(FAILED, ROUTED)

    # When the batch fails after the reply was marked failed (the last step before commit)
    from router import batch

    real = batch.fail_bounced_replies

    def then_boom(*args: Any, **kw: Any) -> None:
        real(*args, **kw)
        raise RuntimeError("the database went away")

    monkeypatch.setattr(batch, "fail_bounced_replies", then_boom)
    with pytest.raises(RuntimeError):
        route_batch(session, [bounce], routing=routing, reopen_window=WINDOW)
    # Then nothing happened, and nothing was counted
    session.expire_all()
    assert session.get(Reply, reply.id).state == ReplyState.SENT  # type: ignore[union-attr]
    assert counts.now() == {"kartabl_replies_total{state=failed}": 0,
                            "kartabl_messages_routed_total": 0}
    # and the retry counts it once
    monkeypatch.undo()
    route_batch(session, [bounce], routing=routing, reopen_window=WINDOW)
    assert counts.now() == {"kartabl_replies_total{state=failed}": 1,
                            "kartabl_messages_routed_total": 1}
