"""The embedded mode: StubBroker and an in-process worker, on SQLite and on PostgreSQL."""

from __future__ import annotations

import threading
import time

import dramatiq
from sqlalchemy import select

from kartabl import ingest, tasks
from kartabl.messages import InboundMessage
from kartabl.models import Direction, Message, Reply, ReplyState
from tests.workers.worker_helpers import (
    add_unqueued_message,
    make_approved_reply,
    needs_dispatcher,
    needs_router,
    routed_events,
    unrouted,
)
from workers.broker import bind_actors, setup_broker
from workers.embedded import EmbeddedWorker


def _sms(n: int, sender: str = "+989121110000") -> InboundMessage:
    return InboundMessage(channel="sms", external_id=f"emb-{n}", sender=sender, text=f"پیام {n}")


def _queued(broker: dramatiq.Broker, queue: str) -> list[dramatiq.Message]:
    q = broker.queues[queue]
    return [dramatiq.Message.decode(data) for data in list(q.queue)]


def test_enqueue_happens_only_after_commit(settings, db):
    broker = setup_broker(settings)  # stub, and no worker: the queue keeps what it gets
    with db() as session:
        # Given a message row whose routing is enqueued "after commit"
        row = Message(channel="sms", external_id="rb-1", direction=Direction.IN, sender="+98912")
        session.add(row)
        session.flush()
        tasks.enqueue_after_commit(session, "route_messages", [row.id])
        # When the transaction rolls back
        session.rollback()
    # Then nothing was enqueued
    assert _queued(broker, "inbound") == []

    # And when ingest commits a message, exactly its id is enqueued, as a JSON-safe list
    with db() as session:
        stored = ingest.store(session, _sms(1))
    [msg] = _queued(broker, "inbound")
    assert (msg.actor_name, msg.args) == ("route_messages", ([stored.message_id],))


def test_stored_message_is_routed_through_the_queue(embedded, db):
    needs_router()
    # Given an embedded worker; When two messages from one customer are stored
    with db() as session:
        ids = [ingest.store(session, _sms(n)).message_id for n in (1, 2)]
    embedded.join()
    # Then each was routed exactly once, by the queue
    assert routed_events(db) == {i: 1 for i in ids}
    assert unrouted(db) == 0


def test_stop_waits_for_the_message_in_flight(settings, db):
    # Given an embedded worker busy with a slow message
    runner = EmbeddedWorker.start(settings, threads=1)
    started, finished = threading.Event(), threading.Event()

    def slow() -> None:
        started.set()
        time.sleep(0.5)
        finished.set()

    actor = dramatiq.actor(slow, broker=runner.broker, queue_name="inbound", max_retries=0)
    bind_actors(runner.broker, actor)
    actor.send()
    assert started.wait(5)
    # When it is stopped
    runner.stop()
    # Then stop returned only after the message finished
    assert finished.is_set()


def test_sweep_reroutes_a_message_whose_enqueue_was_lost(settings, db, embedded):
    needs_router()
    from workers.sweeps import sweep_once

    # Given a committed message whose enqueue was lost
    with db() as session:
        mid = add_unqueued_message(session, "lost-1", "+989121110001", age_s=60)
    embedded.join()
    assert unrouted(db) == 1
    # When the sweep runs
    report = sweep_once(db, settings.model_copy(update={"sweep_grace_s": 30}))
    embedded.join()
    # Then the message is routed, once
    assert (report.messages, report.errors) == (1, ())
    assert routed_events(db) == {mid: 1}
    # And the next sweep has nothing left to do
    assert sweep_once(db, settings.model_copy(update={"sweep_grace_s": 0})).messages == 0


def test_sweep_respects_the_grace_and_the_batch(settings, db):
    from workers.sweeps import sweep_once

    broker = setup_broker(settings)  # no worker: inspect what the sweep enqueues
    with db() as session:
        old = [add_unqueued_message(session, f"old-{n}", "+989121110002", age_s=120)
               for n in range(3)]
        add_unqueued_message(session, "fresh", "+989121110002", age_s=0)
    # Given three messages unrouted for longer than the grace and one younger
    # When the sweep runs with a batch of two
    report = sweep_once(db, settings.model_copy(update={"sweep_grace_s": 30}), batch=2)
    # Then the two oldest are re-enqueued, and nothing else
    assert report.messages == 2
    assert [m.args for m in _queued(broker, "inbound")] == [([old[0], old[1]],)]


def test_sweep_dispatches_an_approved_reply_whose_enqueue_was_lost(
    settings, db, embedded, sandbox_senders
):
    needs_dispatcher()
    from workers.sweeps import sweep_once

    # Given a reply approved a minute ago that never reached the queue
    with db() as session:
        reply_id = make_approved_reply(session, age_s=60)
    # When the sweep runs
    report = sweep_once(db, settings.model_copy(update={"sweep_grace_s": 30}))
    embedded.join()
    # Then it was dispatched
    assert report.replies == 1
    with db() as session:
        state = session.scalar(select(Reply.state).where(Reply.id == reply_id))
    assert state in (ReplyState.SENT, ReplyState.DELIVERED)
    # And a second sweep finds nothing more to send
    assert sweep_once(db, settings.model_copy(update={"sweep_grace_s": 0})).replies == 0


def test_sweep_enqueues_old_approved_replies_only(settings, db):
    from workers.sweeps import sweep_once

    broker = setup_broker(settings)  # no worker: inspect what the sweep enqueues
    with db() as session:
        old = make_approved_reply(session, age_s=120)
        make_approved_reply(session, age_s=0)
    report = sweep_once(db, settings.model_copy(update={"sweep_grace_s": 30}))
    assert report.replies == 1
    assert [(m.actor_name, m.args) for m in _queued(broker, "outbound")] == [
        ("dispatch_reply", (old,))
    ]


def test_a_swept_reply_is_not_offered_again_before_another_grace(settings, db):
    from workers.sweeps import sweep_once

    broker = setup_broker(settings)  # no worker: the queue keeps every job it gets
    with db() as session:
        old = make_approved_reply(session, age_s=120)
    later = settings.model_copy(update={"sweep_grace_s": 30})
    # Given a reply the sweep offered once, and no worker taking it yet (a backlog)
    assert sweep_once(db, later).replies == 1
    # When the next ticks come within the grace
    assert sweep_once(db, later).replies == 0
    assert sweep_once(db, later).replies == 0
    # Then the queue holds one job for it, not one per tick
    assert [(m.actor_name, m.args) for m in _queued(broker, "outbound")] == [
        ("dispatch_reply", (old,))
    ]
    # And once the grace has passed again, it is offered again
    assert sweep_once(db, later.model_copy(update={"sweep_grace_s": 0})).replies == 1


def test_stub_dead_letters_are_listed_and_requeued(settings, db, embedded):
    from workers.deadletters import count_dead_letters, list_dead_letters, requeue

    calls: list[int] = []

    def flaky(n: int) -> None:
        calls.append(n)
        if len(calls) == 1:
            raise ValueError(f"boom {n}")

    # Given an actor with no retries that fails the first time
    actor = dramatiq.actor(flaky, broker=embedded.broker, queue_name="inbound", max_retries=0)
    bind_actors(embedded.broker, actor)
    actor.send(5)
    embedded.join()
    # Then the message is a dead letter, listed with its error
    [letter] = list_dead_letters(embedded.broker)
    assert (letter.actor, letter.args, letter.error) == ("flaky", (5,), "ValueError: boom 5")
    # When it is requeued
    assert requeue(embedded.broker, letter.message_id) == 1
    embedded.join()
    # Then it ran again, and succeeded
    assert calls == [5, 5]
    assert count_dead_letters(embedded.broker) == 0


def test_status_counts_queue_and_backlog(settings, db):
    from workers.status import queue_status

    broker = setup_broker(settings)  # stub, no worker
    # Given one queued message and one approved reply whose enqueue was lost
    with db() as session:
        ingest.store(session, _sms(9))
        make_approved_reply(session, age_s=0)
    # When the status is asked; Then it shows both, from the queue and from the database
    with db() as session:
        status = queue_status(broker, session, settings)
    assert status["broker"] == "stub"
    assert status["queues"]["inbound"] == {"ready": 1, "in_flight": 0, "delayed": 0}
    assert status["queues"]["outbound"]["ready"] == 0
    assert (status["unrouted"], status["unsent"], status["sending"]) == (1, 1, 0)
    assert status["dead_letters"] == 0


def test_retry_after_from_the_provider_sets_the_retry_delay(settings, db, embedded,
                                                             sandbox_senders):
    from kartabl.errors import RetryableDeliveryError
    from kartabl.outbound import get_sender

    # Given a provider that answers "429, retry after 0.2 s" once
    get_sender("sms").inject(RetryableDeliveryError("429", retry_after_s=0.2))
    with db() as session:
        reply_id = make_approved_reply(session)
    # When the reply is dispatched through the queue
    t0 = time.monotonic()
    tasks.enqueue_now("dispatch_reply", reply_id)
    embedded.join()
    # Then it was sent on the second attempt, after the delay the provider asked for (not
    # dramatiq's default 15 s backoff)
    elapsed = time.monotonic() - t0
    with db() as session:
        assert session.scalar(select(Reply.state).where(Reply.id == reply_id)) in (
            ReplyState.SENT, ReplyState.DELIVERED)
    assert 0.2 <= elapsed < 5
    assert get_sender("sms").calls == 2
