"""The inbound contract, one test run over every polled adapter (email on Dovecot, Telegram
and Bale on the Bot API stand-in, SMS on the Kavenegar stand-in), each through the one
runner (channels/runner.py): one active poller per source across processes, and takeover;
acknowledgement only after the commit; the commit retried; backoff on errors; the source's
status visible. The adapters' own tests (tests/channels/<channel>/) cover their protocol."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

import config.settings
from channels import health, runner
from channels.email.ingest import MailIngester
from channels.email.poller import MailboxSource
from channels.polled import POLLED
from channels.rubika.poller import RubikaSource
from channels.rubika.standin import RubikaStandin
from channels.rubika.standin import text_update as rubika_update
from channels.runner import Runner
from channels.sms.poller import SmsLine
from channels.sms.standin import KavenegarStandin
from channels.telegram.poller import BotSource
from channels.telegram.standin import BotApiStandin
from channels.telegram.standin_wire import text_update
from config.channels import get_channels
from config.rubika import RubikaBot
from config.sms import SmsConfig
from config.telegram import BotConfig
from kartabl.models import Message, PollerState
from tests.channels.email.conftest import (  # noqa: F401  (fixtures)
    dovecot,
    imap,
    imap_user,
    write_channels,
    write_channels_file,
)
from tests.channels.email.imap_helpers import Proxy, append, flags_by_uid, mail
from tests.channels.email.test_imap_watch import port_outside_ephemeral_range
from tests.channels.inbound_harness import Counting, Died, Harness, failing_inserts

ADAPTERS = ["email", "telegram", "bale", "sms", "rubika"]
FLAG = b"$Kartabl"
TOKEN = {"telegram": "7100001:contract-telegram-token", "bale": "8100001:contract-bale-token"}
KAVENEGAR_KEY, LINE = "contract-kavenegar-key", "10008663"


def _email(request: pytest.FixtureRequest, db: sessionmaker[Session]) -> Iterator[Harness]:
    dovecot_ = request.getfixturevalue("dovecot")
    client = request.getfixturevalue("imap")
    proxy = Proxy(port_outside_ephemeral_range(), (dovecot_.host, dovecot_.port))
    proxy.start()
    mailbox = request.getfixturevalue("write_channels")(port=proxy.port, poll_interval_s=0.2)

    def source() -> MailboxSource:
        ingester = MailIngester(mailbox, config.settings.get_settings(), db,
                                get_channels().email.our_addresses)
        return MailboxSource(ingester)

    try:
        yield Harness(
            make_source=source,
            deliver=lambda n: append(client, mail(n)),
            pending=lambda: sum(FLAG not in f for f in flags_by_uid(client).values()),
            break_source=proxy.stop, mend_source=proxy.start)
    finally:
        proxy.stop()


def _bot(kind: str, db: sessionmaker[Session]) -> Iterator[Harness]:
    standin = BotApiStandin().start()
    token = TOKEN[kind]
    standin.add_bot(token, f"contract_{kind}_bot")
    bot = BotConfig(name=f"contract-{kind}", kind=kind, token=token,
                    base_url=standin.base_url, mode="polling", poll_timeout_s=1, timeout_s=2.0)

    def pending() -> int:
        offset = BotSource(bot, db).offset()
        return sum(u["update_id"] >= offset for u in standin.bot(token).updates)

    try:
        yield Harness(
            make_source=lambda: BotSource(bot, db),
            deliver=lambda n: standin.add_update(token, text_update(5000 + n, f"پیام {n}")),
            pending=pending,
            break_source=lambda: standin.fail_next("getUpdates", "server_error", 502,
                                                   times=10**6),
            mend_source=standin.clear_faults)
    finally:
        standin.stop()


def _sms() -> Iterator[Harness]:
    standin = KavenegarStandin(KAVENEGAR_KEY).start()
    sms = SmsConfig(api_key=KAVENEGAR_KEY, base_url=standin.base_url, line=LINE,
                    poll_interval_s=0.2, connect_timeout_s=1.0, timeout_s=1.0)
    try:
        yield Harness(
            make_source=lambda: SmsLine(sms, LINE),
            deliver=lambda n: standin.inbound(f"0912{n:07d}", f"پیام {n}", LINE, via="queue"),
            pending=None,  # sms/receive marks what it returns read: nothing to acknowledge
            break_source=lambda: standin.fail_next("receive", "http", 503, times=10**6),
            mend_source=standin.clear_faults)
    finally:
        standin.stop()


def _rubika(db: sessionmaker[Session], tmp_path: Path) -> Iterator[Harness]:
    standin = RubikaStandin().start()
    token = "RUBIKA-contract-token-PlOkMn"
    standin.add_bot(token)
    bot = RubikaBot(name="contract", token=token, base_url=standin.base_url,
                    poll_interval_s=0.2, timeout_s=2.0)

    def source() -> RubikaSource:
        return RubikaSource(bot, db, attachments_dir=tmp_path, attachment_max_bytes=10**6)

    def pending() -> int:  # updates after the stored (opaque) offset
        return len(standin.bot(token).updates) - standin.position(token, source().offset())

    try:
        yield Harness(
            make_source=source,
            deliver=lambda n: standin.add_update(token, rubika_update(
                f"b0chat{n}", f"u0user{n}", f"پیام {n}", message_id=str(7000 + n))),
            pending=pending,
            break_source=lambda: standin.fail_next("getUpdates", "server_error", 502,
                                                   times=10**6),
            mend_source=standin.clear_faults)
    finally:
        standin.stop()


@pytest.fixture(params=ADAPTERS)
def adapter(request: pytest.FixtureRequest, db: sessionmaker[Session]) -> Iterator[Harness]:
    if request.param == "email":
        yield from _email(request, db)
    elif request.param == "sms":
        yield from _sms()
    elif request.param == "rubika":
        yield from _rubika(db, request.getfixturevalue("tmp_path"))
    else:
        yield from _bot(request.param, db)


def test_every_registered_polled_channel_is_under_this_contract() -> None:
    # (Bale bots are the telegram adapter's, with a kind of their own)
    assert set(POLLED) <= set(ADAPTERS), "a polled channel without a harness here"


def stored(db: sessionmaker[Session]) -> int:
    with db() as s:
        return int(s.scalar(select(func.count()).select_from(Message)) or 0)


def distinct_stored(db: sessionmaker[Session]) -> int:
    with db() as s:
        return int(s.scalar(select(func.count(func.distinct(Message.external_id)))) or 0)


def wait_for(check: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(0.05)


def test_a_pass_commits_then_acknowledges(adapter: Harness, db) -> None:
    # Given two customers wrote
    adapter.deliver(1)
    adapter.deliver(2)
    # When a pass runs
    result = Runner(adapter.make_source(), db).poll_once()
    # Then both are stored, once, and the provider holds nothing unacknowledged
    assert (result.fetched, result.created, result.duplicates) == (2, 2, 0)
    assert stored(db) == 2
    if adapter.pending is not None:
        assert adapter.pending() == 0
    assert Runner(adapter.make_source(), db).poll_once().fetched == 0


def test_nothing_is_fetched_while_the_database_is_down(adapter: Harness, db, tmp_path) -> None:
    # Given a message waiting, and a runner whose database cannot be reached
    adapter.deliver(1)
    source = Counting(adapter.make_source())
    down = sessionmaker(create_engine(f"sqlite:///{tmp_path}/gone/x.db"))
    # When a pass runs, it fails before asking the provider (a fetch may mark input read)
    with pytest.raises(OperationalError):
        Runner(source, down).poll_once()
    assert source.fetches == 0
    # And the message is still there for the next pass on a working database
    assert Runner(adapter.make_source(), db).poll_once().created == 1


def test_a_failed_commit_acknowledges_nothing_and_loses_nothing(
        adapter: Harness, db, caplog: pytest.LogCaptureFixture) -> None:
    adapter.deliver(1)
    adapter.deliver(2)
    slept: list[float] = []
    # Given the database refuses the batch through every retry
    with failing_inserts(db.kw["bind"], times=100), pytest.raises(OperationalError):
        Runner(adapter.make_source(), db, sleep=slept.append).poll_once()
    # Then it was tried again with backoff, nothing is stored, and the batch is named
    assert slept == list(runner.COMMIT_RETRIES)
    assert stored(db) == 0
    assert "could not be stored (external ids " in caplog.text
    if adapter.pending is None:
        return  # the provider forgot it at fetch: the logged ids (and the callback) remain
    # And nothing was acknowledged: the provider delivers the batch again, once
    assert adapter.pending() == 2
    result = Runner(adapter.make_source(), db).poll_once()
    assert (result.fetched, result.created) == (2, 2)
    assert stored(db) == 2 and adapter.pending() == 0


def test_a_crash_between_commit_and_acknowledgement_duplicates_nothing(
        adapter: Harness, db) -> None:
    adapter.deliver(1)
    adapter.deliver(2)
    # Given the process dies after the commit, before the acknowledgement
    source = Counting(adapter.make_source())
    source.die_at_ack = True
    with pytest.raises(Died):
        Runner(source, db).poll_once()
    assert stored(db) == 2
    # When a new process polls
    result = Runner(adapter.make_source(), db).poll_once()
    # Then what comes again is a duplicate, nothing is stored twice, and all is acknowledged
    if adapter.pending is not None:
        assert (result.fetched, result.created, result.duplicates) == (2, 0, 2)
        assert adapter.pending() == 0
    assert stored(db) == 2 == distinct_stored(db)


def test_the_commit_is_retried(adapter: Harness, db, caplog: pytest.LogCaptureFixture) -> None:
    adapter.deliver(1)
    slept: list[float] = []
    # Given the database refuses the first two commits of the batch
    with failing_inserts(db.kw["bind"], times=2):
        result = Runner(adapter.make_source(), db, sleep=slept.append).poll_once()
    # Then the third commits it, after backoff, and it is acknowledged
    assert result.created == 1 and stored(db) == 1
    assert slept == list(runner.COMMIT_RETRIES[:2])
    assert "storing 1 messages failed, again in 0.5 s" in caplog.text
    if adapter.pending is not None:
        assert adapter.pending() == 0


def test_errors_back_off_and_the_outage_is_visible_until_it_ends(
        adapter: Harness, db, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="channels.runner")
    source = adapter.make_source()

    def health_row() -> PollerState | None:
        with db() as s:
            return s.get(PollerState, source.name)

    # Given the provider fails
    adapter.break_source()
    poller = Runner(source, db, backoff_base_s=0.05, backoff_cap_s=0.2)
    thread = threading.Thread(target=poller.run, daemon=True)
    thread.start()
    try:
        # Then the runner backs off, again and again, and the outage is on its status
        wait_for(lambda: poller.backoff.attempt >= 3, 15, "repeated backoff")
        row = health_row()
        assert row is not None and row.failing_since is not None and row.last_error
        with db() as s:
            assert [f["name"] for f in health.failing(s)] == [source.name]
        assert f"{source.name} unreachable" in caplog.text
        # When the provider is back, with a message waiting
        adapter.mend_source()
        adapter.deliver(1)
        # Then it is stored, and the outage is over
        wait_for(lambda: stored(db) == 1, 15, "the message after the outage")
        wait_for(lambda: (r := health_row()) is not None and r.failing_since is None, 15,
                 "the outage to be cleared")
        assert poller.backoff.attempt == 0
        wait_for(lambda: "reachable again" in caplog.text, 10, "the recovery line")
    finally:
        poller.stop.set()
        thread.join(15)
    assert not thread.is_alive()


def test_one_poller_per_source_across_processes_and_takeover(adapter: Harness, db,
                                                             db_url: str) -> None:
    if not db_url.startswith("postgresql"):
        pytest.skip("SQLite is the single-process embedded mode: no lock to share")
    # Given two runners of one source, each with its own lock connection, as two processes
    sources = [Counting(adapter.make_source()), Counting(adapter.make_source())]
    runners = [Runner(s, db) for s in sources]
    threads = [threading.Thread(target=r.run, daemon=True) for r in runners]
    for t in threads:
        t.start()
    try:
        wait_for(lambda: sum(s.fetches for s in sources) >= 2, 15, "polling")
        # Then exactly one of them fetches
        before = [s.fetches for s in sources]
        time.sleep(2.5)
        moved = [s.fetches > b for s, b in zip(sources, before, strict=True)]
        assert sorted(moved) == [False, True], f"fetching: {moved}"
        leader = moved.index(True)
        standby = 1 - leader
        # When the leader stops (its lock goes with it) and a customer writes
        runners[leader].stop.set()
        threads[leader].join(15)
        adapter.deliver(1)
        # Then the standby takes over and stores it
        wait_for(lambda: stored(db) == 1, 15, "the standby to take over")
        assert sources[standby].fetches > before[standby]
    finally:
        for r in runners:
            r.stop.set()
        for t in threads:
            t.join(15)
    assert not any(t.is_alive() for t in threads)
