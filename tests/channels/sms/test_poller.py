"""Polling sms/receive: what Kavenegar marks read is committed in the same pass; the same
SMS through the callback (a real uvicorn server the stand-in posts to) is one message."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from fastapi import FastAPI
from sqlalchemy import create_engine, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

import config.channels
import config.settings
import kartabl.ingest
from bench.ports import free_port
from channels import runner
from channels.sms import webhook
from channels.sms.kavenegar import NotSent
from channels.sms.standin import KavenegarStandin
from channels.webhooks import routers
from config.sms import SmsConfig
from kartabl.inbound import SourceUnavailable
from kartabl.models import Message
from tests.channels.sms.conftest import API_KEY, LINE, SECRET, poll_sms

KARTABL = Path(sys.executable).with_name("kartabl")


def messages(db: sessionmaker[Session]) -> list[Message]:
    with db() as s:
        return list(s.scalars(select(Message).order_by(Message.id)))


def test_a_pass_commits_every_unread_sms_and_kavenegar_marks_them_read(
        standin: KavenegarStandin, sms_config: SmsConfig, db) -> None:
    # Given 130 unread SMS on our line (more than one receive page) and 1 on the other line
    for n in range(130):
        standin.inbound(f"0912{n:07d}", f"پیام {n}", LINE, via="queue")
    standin.inbound("09351112233", "به خط دوم", "30001234", via="queue")
    # When one pass runs
    result = poll_sms(sms_config, db)
    # Then all are committed, in two pages of the first line and one of the second
    assert (result.fetched, result.created) == (131, 131)
    assert standin.calls.count("receive") == 3
    stored = messages(db)
    assert len(stored) == 131 and all(m.sender.startswith("+98") for m in stored)
    assert {m.recipient for m in stored} == {LINE, "30001234"}
    # And Kavenegar returns none of them again
    assert poll_sms(sms_config, db).fetched == 0


def test_an_unusable_sms_is_dropped_and_the_rest_committed(
        standin: KavenegarStandin, sms_config: SmsConfig, db) -> None:
    standin.inbound("SHOP-PROMO", "تبلیغ", LINE, via="queue")  # not a phone number
    standin.inbound("09121234567", "سلام", LINE, via="queue")
    result = poll_sms(sms_config, db)
    assert (result.fetched, result.created, result.skipped) == (2, 1, 1)
    assert [m.text for m in messages(db)] == ["سلام"]


def test_a_failing_api_stores_nothing_and_raises(standin: KavenegarStandin,
                                                 sms_config: SmsConfig, db) -> None:
    standin.inbound("09121234567", "سلام", LINE, via="queue")
    standin.fail_next("receive", "http", 503)
    with pytest.raises(SourceUnavailable) as raised:
        poll_sms(sms_config, db)
    assert isinstance(raised.value.__cause__, NotSent)
    assert messages(db) == []
    assert poll_sms(sms_config, db).created == 1  # still unread: not lost




@pytest.fixture
def web(sms_config: SmsConfig, db: sessionmaker[Session]) -> Iterator[str]:
    """The webhook behind a real uvicorn server; yields its base URL."""
    app = FastAPI()
    app.include_router(routers()["sms"], prefix="/webhooks/sms")
    app.dependency_overrides[webhook.sms_config] = lambda: sms_config
    app.dependency_overrides[webhook.session_factory] = lambda: db
    port = free_port()
    # log_config=None: uvicorn's access log propagates, so caplog sees what it prints
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(5)


def test_the_same_sms_by_callback_and_polling_over_real_http_is_one_message(
        web: str, standin: KavenegarStandin, sms_config: SmsConfig, db,
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="uvicorn.access")
    standin.callback_url = f"{web}/webhooks/sms/receive/{SECRET}"
    # Given Kavenegar calls back (three times: it got no answer in time) and queues the SMS
    entry = standin.inbound("09121234567", "سلام، سفارش ۱۲ کجاست؟", LINE, via="both")
    assert entry["callback_status"] == 200
    assert standin.post_callback(entry) == 200 and standin.post_callback(entry) == 200
    # When the poller reads the queue too
    result = poll_sms(sms_config, db)
    # Then one message
    assert (result.fetched, result.created) == (1, 0)
    [msg] = messages(db)
    assert (msg.sender, msg.external_id) == ("+989121234567", f"kv:{entry['messageid']}")
    # And uvicorn's access log printed the path without the secret
    assert "/webhooks/sms/receive/*** " in caplog.text  # access lines were logged
    assert SECRET not in caplog.text and API_KEY not in caplog.text


@pytest.fixture
def channels_file(tmp_path: Path, standin: KavenegarStandin, settings,
                  monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    path = tmp_path / "channels.toml"
    path.write_text(f'''
[sms]
api_key_env = "TEST_KAVENEGAR_KEY"
base_url = "{standin.base_url}"
line = "{LINE}"
poll = true
''', encoding="utf-8")
    monkeypatch.setenv("TEST_KAVENEGAR_KEY", API_KEY)
    monkeypatch.setenv("KARTABL_CHANNELS_FILE", str(path))
    config.settings.get_settings.cache_clear()
    config.channels.get_channels.cache_clear()
    yield path
    config.channels.get_channels.cache_clear()


def test_kartabl_sms_poll_once(standin: KavenegarStandin, channels_file, db) -> None:
    standin.inbound("09121234567", "سلام", LINE, via="queue")
    standin.inbound("09121234568", "درود", LINE, via="queue")
    # As its own process; the environment carries this test's database and channels file.
    done = subprocess.run([str(KARTABL), "sms", "poll", "--once"], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 new" in done.stdout and API_KEY not in done.stdout + done.stderr
    assert len(messages(db)) == 2


def test_the_generic_poll_command_runs_a_registered_channel(
        standin: KavenegarStandin, channels_file, db) -> None:
    # Given two SMS waiting, and a command that knows the channel only by its registry name
    standin.inbound("09121234567", "سلام", LINE, via="queue")
    standin.inbound("09121234568", "درود", LINE, via="queue")
    done = subprocess.run([str(KARTABL), "poll", "sms", "--once"], capture_output=True,
                          text=True, timeout=60)
    # Then it polls the line through the runner, as `kartabl sms poll` does
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 fetched, 2 new" in done.stdout and API_KEY not in done.stdout + done.stderr
    assert len(messages(db)) == 2
    # And a channel that is not registered is refused, saying which are
    bad = subprocess.run([str(KARTABL), "poll", "pigeon", "--once"], capture_output=True,
                         text=True, timeout=60, env={**os.environ, "COLUMNS": "300"})
    assert bad.returncode == 2 and "email, telegram, sms" in bad.stdout + bad.stderr


def test_kartabl_sms_poll_once_says_why_it_failed(standin: KavenegarStandin, channels_file,
                                                  db) -> None:
    standin.stop()
    done = subprocess.run([str(KARTABL), "sms", "poll", "--once"], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 1 and "unreachable" in done.stdout
    assert API_KEY not in done.stdout + done.stderr


def test_while_the_database_is_down_nothing_is_fetched(
        standin: KavenegarStandin, sms_config: SmsConfig, db, tmp_path: Path) -> None:
    # Given a database that cannot be reached (a SQLite file in a directory that is gone)
    standin.inbound("09121234567", "سلام", LINE, via="queue")
    down = sessionmaker(create_engine(f"sqlite:///{tmp_path}/gone/x.db"))
    # When a pass runs, it fails before asking Kavenegar, so nothing is marked read
    with pytest.raises(OperationalError):
        poll_sms(sms_config, down)
    assert "receive" not in standin.calls
    # And the SMS is still there for the next pass on a working database
    assert poll_sms(sms_config, db).created == 1


def test_a_batch_in_hand_survives_failed_commits(
        standin: KavenegarStandin, sms_config: SmsConfig, db,
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    # Given a database that fails the first two commits after the SMS were fetched
    standin.inbound("09121234567", "سلام", LINE, via="queue")
    real, failures, slept = kartabl.ingest.add_many, [2], []

    def flaky(session: Session, msgs: list) -> list:
        if failures[0]:
            failures[0] -= 1
            raise OperationalError("INSERT", {}, Exception("database is restarting"))
        return real(session, msgs)

    monkeypatch.setattr(kartabl.ingest, "add_many", flaky)
    # When a pass runs
    result = poll_sms(sms_config, db, sleep=slept.append)
    # Then the batch Kavenegar marked read is committed on the third try, after backoff
    assert result.created == 1 and [m.text for m in messages(db)] == ["سلام"]
    assert slept == [0.5, 1.0]
    assert "storing 1 messages failed, again in 0.5 s" in caplog.text


def test_a_batch_that_cannot_be_stored_is_logged_with_its_ids(
        standin: KavenegarStandin, sms_config: SmsConfig, db,
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    entry = standin.inbound("09121234567", "سلام", LINE, via="queue")

    def down(session: Session, msgs: list) -> list:
        raise OperationalError("INSERT", {}, Exception("disk full"))

    monkeypatch.setattr(kartabl.ingest, "add_many", down)
    slept: list[float] = []
    with pytest.raises(OperationalError):
        poll_sms(sms_config, db, sleep=slept.append)
    assert slept == list(runner.COMMIT_RETRIES)
    assert f"external ids kv:{entry['messageid']}" in caplog.text
