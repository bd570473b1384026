"""A scheduled reply survives a restart of every process and leaves exactly once, after its
time: each ``Procfile`` line its own OS process on PostgreSQL and Redis
(tests/fleet/conftest.py), the SMS going out to the Kavenegar stand-in over HTTP, which
counts the send requests themselves (not only what it kept: Kavenegar's duplicate guard
would hide a second request under the same localid)."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from kartabl import workflow
from kartabl.models import Person, ReplyState, utcnow
from kartabl.workflow import schedule
from responders.preview import REPLY_CHECK
from tests.fleet.conftest import SMS_LINE, Deployed
from tests.fleet.helpers import reply_in, reply_row, routed_conversation, wait_for

pytestmark = [pytest.mark.fleet, pytest.mark.xdist_group("fleet")]

RS = ReplyState
AHEAD_S = 6  # the send time: after every process was killed and started again


@pytest.fixture
def sms_requests(deployed: Deployed) -> Iterator[list[tuple[str, float]]]:
    """Every send request the stand-in answers: (localid, when), in order."""
    seen: list[tuple[str, float]] = []
    lock = threading.Lock()
    standin = deployed.kavenegar
    original = standin.handle

    def spy(key: str, method: str, params: dict[str, str]) -> tuple[int, Any]:
        if method == "send":
            with lock:
                seen.append((params.get("localid", ""), time.time()))
        return original(key, method, params)

    standin.handle = spy  # type: ignore[method-assign]
    try:
        yield seen
    finally:
        del standin.handle  # the class's own again


def _restart_every_process(dep: Deployed) -> None:
    """SIGKILL every Procfile process (as a crash or a machine going down would), then start
    each line again, as a process manager does; the new ones replace the old in
    ``dep.procs`` (shared with the other fleet tests)."""
    for proc in list(dep.procs.values()):
        dep.fleet.kill(proc)
    assert not any(p.alive() for p in dep.procs.values())
    for line in list(dep.procs):
        dep.procs[line] = dep.fleet.start(line)


def test_a_scheduled_reply_survives_a_restart_of_every_process_and_leaves_once(
    deployed: Deployed, sms_requests: list[tuple[str, float]],
) -> None:
    dep = deployed
    n = 7_000_000 + uuid.uuid4().int % 1_000_000
    national, e164 = f"0912{n:07d}", f"+98912{n:07d}"
    dep.kavenegar.inbound(national, "سلام، فردا تماس بگیرید", SMS_LINE, via="queue")
    conv = wait_for(lambda: routed_conversation(dep.db, "phone", e164), 30,
                    "the SMS routed", dep.logs)
    # Given a reply scheduled a few seconds ahead, approved (its dispatch job is queued now)
    send_at = utcnow() + timedelta(seconds=AHEAD_S)
    with dep.db() as s:
        agent = s.scalar(select(Person).where(Person.username == "fleet-agent"))
        coordinator = s.scalar(select(Person).where(Person.username == "fleet-coordinator"))
        reply = workflow.draft(s, agent, conv, "فردا ساعت ۱۰ تماس می‌گیریم", check=REPLY_CHECK)
        schedule.schedule(s, agent, reply.id, send_at)
        workflow.submit(s, agent, reply.id, check=REPLY_CHECK)
        workflow.approve(s, coordinator, reply.id, check=REPLY_CHECK)
        s.commit()
        reply_id = reply.id
    # When every process is killed and started again, all before the time
    time.sleep(0.5)  # the old worker picks up the approval's job (and must skip it)
    _restart_every_process(dep)
    assert utcnow() < send_at, "the restart took longer than the schedule's lead"
    for proc in dep.procs.values():
        dep.fleet.wait_log(proc, "booted ", 60)
    # Then it leaves once its time has come, sent by the restarted fleet
    sent = wait_for(lambda: reply_in(dep.db, reply_id, RS.SENT, RS.DELIVERED, RS.FAILED), 30,
                    f"reply {reply_id} sent", dep.logs)
    assert sent.state in (RS.SENT, RS.DELIVERED), (sent.state, sent.error)
    assert sent.sent_at is not None and sent.sent_at >= send_at
    # And the stand-in got exactly one send request for it, none before its time, and no
    # other after a few more sweeps
    time.sleep(3)
    mine = [(localid, at) for localid, at in sms_requests if localid == str(reply_id)]
    assert len(mine) == 1, mine
    assert mine[0][1] >= send_at.timestamp(), (mine[0][1], send_at.timestamp())
    assert len(dep.kavenegar.sends_of(str(reply_id))) == 1
    assert reply_row(dep.db, reply_id).attempts == 1
