from sqlalchemy import func, select

from kartabl import ingest
from kartabl.messages import InboundMessage
from kartabl.models import Message


def test_store_is_idempotent(session):
    # Given a message stored once
    msg = InboundMessage(channel="sms", external_id="k-1", sender="+989121234567", text="سلام")
    first = ingest.store(session, msg)
    # When the same external id arrives again
    second = ingest.store(session, msg)
    # Then there is one row, and the second call says it was not new
    assert first.created and not second.created
    assert first.message_id == second.message_id
    assert session.scalar(select(func.count()).select_from(Message)) == 1


def test_store_many_mixes_new_and_known(session):
    a = InboundMessage(channel="email", external_id="<a@x>", sender="a@x.ir", text="a")
    b = InboundMessage(channel="telegram", external_id="b", sender="42", text="b")
    ingest.store(session, a)
    out = ingest.store_many(session, [a, b, b])
    assert [o.created for o in out] == [False, True, False]
    assert out[1].message_id == out[2].message_id
    assert session.scalar(select(func.count()).select_from(Message)) == 2


def test_store_many_enqueues_routing_in_batches(session):
    from kartabl import tasks

    calls: list[tuple[str, object]] = []
    tasks.set_enqueuer(lambda task, payload: calls.append((task, payload)))
    try:
        # Given ROUTE_BATCH + 50 new messages and one already stored
        known = InboundMessage(channel="sms", external_id="q-0", sender="+989121234567", text="")
        ingest.store(session, known)
        calls.clear()
        msgs = [known, *(InboundMessage(channel="sms", external_id=f"q-{n}",
                                        sender="+989121234567", text="")
                      for n in range(1, tasks.ROUTE_BATCH + 51))]
        # When they are stored in one call
        out = ingest.store_many(session, msgs)
    finally:
        tasks.set_enqueuer(None)
    # Then routing is enqueued as lists of at most ROUTE_BATCH new ids, in id order
    new = [o.message_id for o in out if o.created]
    b = tasks.ROUTE_BATCH
    assert len(new) == b + 50
    assert calls == [("route_messages", new[:b]), ("route_messages", new[b:])]
