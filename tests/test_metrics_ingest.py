"""The ingest counters count messages: ``kartabl_messages_ingested_total`` moves by the
number of new rows a batch committed, ``kartabl_messages_duplicate_total`` by the number of
messages already stored, and neither moves for a batch that was rolled back. Read from the
registry and from the ``/metrics`` text the web process serves."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from config.settings import Settings
from kartabl import ingest
from kartabl.messages import InboundMessage
from tests.metric_values import Deltas, from_text

INGESTED = ("kartabl_messages_ingested_total", {})
DUPLICATE = ("kartabl_messages_duplicate_total", {})


def sms(n: int) -> InboundMessage:
    return InboundMessage(channel="sms", external_id=f"kv:{n}", sender="+989121112233",
                          text=f"پیام {n}")


def test_a_batch_counts_each_new_message_and_each_duplicate(session: Session) -> None:
    # Given two messages already stored
    ingest.store_many(session, [sms(1), sms(2)])
    counts = Deltas(INGESTED, DUPLICATE)
    # When a batch brings 3 new messages and those 2 again (the duplicates last, so the last
    # message of the batch is not new)
    stored = ingest.store_many(session, [sms(3), sms(4), sms(5), sms(1), sms(2)])
    # Then the ingested counter moved by 3 and the duplicate counter by 2
    assert [s.created for s in stored] == [True, True, True, False, False]
    assert counts.now() == {"kartabl_messages_ingested_total": 3,
                            "kartabl_messages_duplicate_total": 2}


def test_a_message_twice_in_one_batch_is_one_new_and_one_duplicate(session: Session) -> None:
    counts = Deltas(INGESTED, DUPLICATE)
    stored = ingest.store_many(session, [sms(7), sms(8), sms(7)])
    assert [s.created for s in stored] == [True, True, False]
    assert counts.now() == {"kartabl_messages_ingested_total": 2,
                            "kartabl_messages_duplicate_total": 1}


def test_single_stores_count_one_each(session: Session) -> None:
    counts = Deltas(INGESTED, DUPLICATE)
    for n in (10, 11, 10):
        ingest.store(session, sms(n))
    assert counts.now() == {"kartabl_messages_ingested_total": 2,
                            "kartabl_messages_duplicate_total": 1}


def test_a_rolled_back_batch_counts_nothing(session: Session) -> None:
    # Given a caller that adds messages in its own transaction (as the mail ingester does)
    counts = Deltas(INGESTED, DUPLICATE)
    ingest.add_many(session, [sms(20), sms(21)])
    # When it rolls back, nothing was stored and nothing is counted
    session.rollback()
    assert counts.now() == {"kartabl_messages_ingested_total": 0,
                            "kartabl_messages_duplicate_total": 0}
    # and the same messages committed later count once
    ingest.add_many(session, [sms(20), sms(21)])
    session.commit()
    assert counts.now() == {"kartabl_messages_ingested_total": 2,
                            "kartabl_messages_duplicate_total": 0}


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    from console.app import create_app
    from workers.broker import setup_broker

    setup_broker(settings)
    with TestClient(create_app()) as c:
        yield c


def test_metrics_serves_the_counts(client: TestClient, session: Session) -> None:
    def served() -> tuple[float, float]:
        text = client.get("/metrics").text
        return (from_text(text, "kartabl_messages_ingested_total"),
                from_text(text, "kartabl_messages_duplicate_total"))

    ingested, duplicates = served()
    ingest.store_many(session, [sms(30), sms(31), sms(32), sms(30)])
    after = served()
    assert (after[0] - ingested, after[1] - duplicates) == (3, 1)
