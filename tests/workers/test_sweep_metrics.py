"""``kartabl_swept_total{kind}`` counts what the sweep repaired, by item: ``message`` per
unrouted message re-enqueued, ``reply`` per approved reply re-enqueued, ``sending`` per
reply left in 'sending' that was reconciled."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy.orm import Session, sessionmaker

from config.settings import Settings
from kartabl import ingest, outbound, workflow
from kartabl.messages import InboundMessage
from kartabl.models import Channel, Role
from responders.dispatch import dispatch_reply
from responders.preview import REPLY_CHECK
from responders.sandbox import CRASH_AFTER_RECORD, SandboxSender, SimulatedCrash
from tests.factories import conversation, person, team
from tests.metric_values import Deltas
from workers.sweeps import sweep_once

KINDS = ("message", "reply", "sending")


@pytest.fixture
def email_sandbox(db: sessionmaker[Session]) -> Iterator[SandboxSender]:
    before = outbound.registered().get("email")
    sender = SandboxSender(Channel.EMAIL, session_factory=db)
    outbound.register(sender)
    yield sender
    outbound.unregister(Channel.EMAIL)
    if before is not None:
        outbound.register(before)


def approved(db: sessionmaker[Session]) -> int:
    with db() as s:
        support = team(s)
        agent = person(s, teams=[support])
        coordinator = person(s, role=Role.COORDINATOR)
        conv = conversation(s, channel=Channel.EMAIL, team=support, assignee=agent)
        reply = workflow.draft(s, agent, conv.id, "سفارش شما ارسال شد", check=REPLY_CHECK)
        workflow.submit(s, agent, reply.id, check=REPLY_CHECK)
        workflow.approve(s, coordinator, reply.id, check=REPLY_CHECK)
        s.commit()
        return reply.id


def test_the_sweep_counts_each_item_it_repaired(
    settings: Settings, db: sessionmaker[Session], email_sandbox: SandboxSender
) -> None:
    # Given 3 unrouted messages, 2 approved replies nobody sent, and 1 reply left 'sending'
    # by a crash after the provider took it
    with db() as s:
        ingest.store_many(s, [InboundMessage(channel="sms", external_id=f"kv:{n}",
                                             sender="+989121112233", text="سلام")
                              for n in range(3)])
    waiting = [approved(db), approved(db)]
    stuck = approved(db)
    email_sandbox.inject(CRASH_AFTER_RECORD)
    with pytest.raises(SimulatedCrash):
        dispatch_reply(db, stuck)
    now = settings.model_copy(update={"sweep_grace_s": 0, "sending_stale_s": 0})
    enqueued: list[tuple[str, object]] = []
    counts = Deltas(*(("kartabl_swept_total", {"kind": k}) for k in KINDS))
    # When the sweep runs
    report = sweep_once(db, now, enqueue=lambda task, ids: enqueued.append((task, ids)))
    # Then it counted each item it repaired
    assert (report.messages, report.replies, report.reconciled) == (3, 2, 1)
    assert counts.now() == {"kartabl_swept_total{kind=message}": 3,
                            "kartabl_swept_total{kind=reply}": 2,
                            "kartabl_swept_total{kind=sending}": 1}
    assert sorted(rid for task, rid in enqueued if task == "dispatch_reply") == waiting
