"""The outbox's classification of errors that no sender mapped: by whether the request had
left (:func:`responders.outcomes.request_leaves`), never by guessing."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy.orm import Session, sessionmaker

from kartabl import outbound
from kartabl.errors import OutcomeUnknown, RetryableDeliveryError
from kartabl.messages import OutboundMessage
from kartabl.models import Channel, Reply, ReplyState
from kartabl.outbound import DeliveryStatus, Sender, UnknownOutcomePolicy
from responders.dispatch import dispatch_reply
from responders.outcomes import request_leaves

RS = ReplyState


class BuggySender(Sender):
    """A sender with an error of its own before (or after) its provider call."""

    channel = "sms"
    unknown_outcome: UnknownOutcomePolicy = "at_least_once"
    can_look_up = True

    def __init__(self) -> None:
        self.fail_before: Exception | None = None
        self.fail_after: Exception | None = None
        self.provider: list[str] = []  # what "the provider" got

    def send(self, msg: OutboundMessage) -> str:
        if self.fail_before is not None:
            raise self.fail_before
        request_leaves()
        self.provider.append(msg.idempotency_key)
        if self.fail_after is not None:
            raise self.fail_after
        return f"p-{msg.idempotency_key}"

    def lookup(self, msg: OutboundMessage) -> str | None:
        return f"p-{msg.idempotency_key}" if msg.idempotency_key in self.provider else None

    def status(self, provider_id: str) -> DeliveryStatus | None:
        return None


@pytest.fixture
def buggy(sandbox: object) -> Iterator[BuggySender]:
    sender = BuggySender()
    outbound.register(sender)
    yield sender


def state(db: sessionmaker[Session], rid: int) -> Reply:
    with db() as s:
        r = s.get(Reply, rid)
        assert r is not None
        return r


@pytest.mark.parametrize("error", [KeyError("template"), ConnectionError("redis"),
                                   RuntimeError("database is locked")])
def test_any_error_before_the_call_releases_the_reply(db, approved_reply, buggy: BuggySender,
                                                      error: Exception) -> None:
    rid = approved_reply(Channel.SMS)
    buggy.fail_before = error
    with pytest.raises(RetryableDeliveryError, match="before the provider call") as err:
        dispatch_reply(db, rid)
    assert err.value.__cause__ is error
    r = state(db, rid)
    assert r.state == RS.APPROVED and type(error).__name__ in (r.error or "")
    buggy.fail_before = None
    assert dispatch_reply(db, rid) == "sent" and len(buggy.provider) == 1


def test_an_error_after_the_call_is_an_unknown_outcome(db, approved_reply,
                                                       buggy: BuggySender) -> None:
    rid = approved_reply(Channel.SMS)
    buggy.fail_after = ValueError("could not read the provider's id")
    with pytest.raises(OutcomeUnknown, match="after the request went out"):
        dispatch_reply(db, rid)
    assert state(db, rid).state == RS.SENDING  # the sweep looks it up; never resent blindly
    assert dispatch_reply(db, rid) == "skipped" and len(buggy.provider) == 1
