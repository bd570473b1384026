"""Polling a Rubika bot through the one runner, on the stand-in over HTTP, on both
databases: the opaque offset stored only after the commit, a restart that stores nothing
twice, pages, files within the cap, and Rubika's customers kept apart from Telegram's."""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from boot.cli.customers import _contact_hints
from channels.rubika.poller import RubikaSource
from channels.rubika.standin import RubikaStandin, text_update
from channels.runner import Runner
from channels.telegram import updates as telegram_updates
from channels.telegram.standin_wire import text_update as telegram_update
from config.rubika import RubikaBot
from config.telegram import BotConfig
from kartabl import ingest
from kartabl.inbound import SourceUnavailable
from kartabl.models import ChannelCursor, Customer, Identity, Message
from router.batch import route_batch
from tests.channels.inbound_harness import failing_inserts
from tests.channels.rubika.conftest import POLL_TOKEN
from tests.factories import routing_args

CAP = 1000


def source(bot: RubikaBot, db: sessionmaker[Session], tmp_path: Path) -> RubikaSource:
    return RubikaSource(bot, db, attachments_dir=tmp_path, attachment_max_bytes=CAP)


def deliver(standin: RubikaStandin, n: int, **message: object) -> None:
    standin.add_update(POLL_TOKEN, text_update(f"b0chat{n}", f"u0user{n}", f"پیام {n}",
                                               message_id=str(100 + n), **message))


def cursor(db: sessionmaker[Session]) -> str | None:
    with db() as s:
        row = s.get(ChannelCursor, "rubika:poller")
        return row.text_value if row is not None else None


def stored(db: sessionmaker[Session]) -> int:
    with db() as s:
        return s.scalar(select(func.count()).select_from(Message)) or 0


def test_the_opaque_offset_is_stored_after_the_commit_and_a_restart_stores_nothing_twice(
        standin: RubikaStandin, poller: RubikaBot, db, tmp_path: Path) -> None:
    for n in range(5):
        deliver(standin, n)
    # When a pass runs (pages of 2: the runner asks again at once while pages are full)
    r = Runner(source(poller, db, tmp_path), db).poll_once()
    # Then all five are stored, and the cursor is the string Rubika handed out last
    assert (r.fetched, r.created) == (5, 5) and stored(db) == 5
    offset = cursor(db)
    assert offset is not None and standin.position(POLL_TOKEN, offset) == 5
    # When the process restarts (a new source) and polls again, nothing comes twice
    assert Runner(source(poller, db, tmp_path), db).poll_once().fetched == 0
    deliver(standin, 9)
    again = Runner(source(poller, db, tmp_path), db).poll_once()
    assert (again.fetched, again.created, again.duplicates) == (1, 1, 0) and stored(db) == 6
    with db() as s:
        row = s.get(ChannelCursor, "rubika:poller")
        assert row is not None and row.value == 0  # the number column is not Rubika's


def test_a_failed_commit_leaves_the_offset_where_it_was(
        standin: RubikaStandin, poller: RubikaBot, db, tmp_path: Path) -> None:
    deliver(standin, 1)
    with failing_inserts(db.kw["bind"], times=100), pytest.raises(Exception):
        Runner(source(poller, db, tmp_path), db, sleep=lambda s: None).poll_once()
    assert cursor(db) is None and stored(db) == 0
    # The next pass gets the same page from Rubika and stores it
    assert Runner(source(poller, db, tmp_path), db).poll_once().created == 1


def test_an_offset_rubika_refuses_is_an_outage_without_the_token(
        standin: RubikaStandin, poller: RubikaBot, db, tmp_path: Path) -> None:
    with db() as s, s.begin():
        s.add(ChannelCursor(name="rubika:poller", value=0, text_value="never-handed-out"))
    src = source(poller, db, tmp_path)
    with src.open() as feed, pytest.raises(SourceUnavailable) as caught:
        list(feed.batches())
    assert "INVALID_INPUT" in str(caught.value) and POLL_TOKEN not in str(caught.value)


def test_files_are_fetched_within_the_cap(standin: RubikaStandin, poller: RubikaBot, db,
                                         tmp_path: Path) -> None:
    small, big = b"%PDF-1.7 " + b"x" * 200, b"y" * (CAP + 1)
    deliver(standin, 1, file={"file_id": standin.add_file(small), "file_name": "فاکتور.pdf",
                              "size": str(len(small))})
    # a file whose declared size lies: the download stops at the cap
    deliver(standin, 2, file={"file_id": standin.add_file(big), "file_name": "big.bin",
                              "size": "10"})
    deliver(standin, 3, file={"file_id": "no-such-file", "file_name": "gone.jpg",
                              "size": "5"})
    assert Runner(source(poller, db, tmp_path), db).poll_once().created == 3
    with db() as s:
        atts = [m.attachments[0] for m in s.scalars(select(Message).order_by(Message.id))]
    key = hashlib.sha256(small).hexdigest()
    assert atts[0]["storage_key"] == key and atts[0]["size"] == len(small)
    assert (tmp_path / key[:2] / key).read_bytes() == small
    assert atts[1]["storage_key"] is None and atts[1]["filename"] == "big.bin"
    assert atts[2]["storage_key"] is None  # Rubika refused getFile: listed, not lost


def test_a_file_server_outage_fails_the_pass_and_nothing_is_acknowledged(
        standin: RubikaStandin, poller: RubikaBot, db, tmp_path: Path,
        caplog: pytest.LogCaptureFixture) -> None:
    data = b"\x89PNG\r\n\x1a\n" + b"p" * 50
    deliver(standin, 1, file={"file_id": standin.add_file(data), "file_name": "a.png",
                              "size": str(len(data))})
    standin.fail_next("getFile", "server_error", 503)
    with pytest.raises(SourceUnavailable):
        Runner(source(poller, db, tmp_path), db).poll_once()
    assert stored(db) == 0 and cursor(db) is None
    # After the outage the same page comes again, file and all
    assert Runner(source(poller, db, tmp_path), db).poll_once().created == 1
    with db() as s:
        (msg,) = s.scalars(select(Message))
        assert msg.attachments[0]["storage_key"] == hashlib.sha256(data).hexdigest()
    assert POLL_TOKEN not in caplog.text


def test_rubika_user_42_and_telegram_user_42_are_two_customers(
        standin: RubikaStandin, poller: RubikaBot, db, tmp_path: Path) -> None:
    standin.add_update(POLL_TOKEN, text_update("b0chat42", "42", "از روبیکا"))
    Runner(source(poller, db, tmp_path), db).poll_once()
    tg = telegram_updates.to_message({"update_id": 1, **telegram_update(42, "از تلگرام")},
                                     BotConfig(name="tg", token="1:T", mode="polling"))
    assert tg is not None
    with db() as s:
        ingest.store(s, tg)
        route_batch(s, list(s.scalars(select(Message.id))), **routing_args())
        idents = s.execute(select(Identity.kind, Identity.address, Identity.customer_id)
                           .order_by(Identity.kind)).all()
        assert [(k, a) for k, a, _ in idents] == [("rubika", "42"), ("telegram", "42")]
        assert idents[0].customer_id != idents[1].customer_id
        assert s.scalar(select(func.count()).select_from(Customer)) == 2


def test_a_phone_shared_in_the_chat_is_a_hint_on_the_customer(
        standin: RubikaStandin, poller: RubikaBot, db, tmp_path: Path,
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    deliver(standin, 1, contact_message={"phone_number": "09121234567", "first_name": "S",
                                         "last_name": ""})
    Runner(source(poller, db, tmp_path), db).poll_once()
    with db() as s:
        route_batch(s, list(s.scalars(select(Message.id))), **routing_args())
        (msg,) = s.scalars(select(Message))
        assert msg.customer_id is not None
        hints = _contact_hints(s, msg.customer_id)
        # a hint, never an identity: only a person links it
        assert hints == [{"phone": "+989121234567", "own": None, "channel": "rubika",
                          "message": msg.id}]
        assert s.scalar(select(func.count()).select_from(Identity)
                        .where(Identity.kind == "phone")) == 0
