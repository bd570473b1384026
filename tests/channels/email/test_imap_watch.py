"""Watching a mailbox: IDLE against a real Dovecot, and the way back from an outage."""

from __future__ import annotations

import logging
import random
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest
from imapclient import IMAPClient
from sqlalchemy import text

from channels.email.service import make_poller, start_pollers
from channels.email.state import failing_mailboxes
from channels.runner import PassResult, Runner
from config.channels import get_channels
from config.settings import get_settings
from kartabl import locks
from kartabl.inbound import Feed
from kartabl.models import PollerState
from tests.channels.email.imap_helpers import (
    Proxy,
    append,
    count_messages,
    mail,
    mailbox_health,
    maybe_health,
)

NEVER = PollerState(name="none")  # stands in until the poller has written its row


def port_outside_ephemeral_range() -> int:
    """A free port that no outgoing connection can get as its own: retrying connections
    to a closed port of the ephemeral range can end up connected to themselves (TCP
    simultaneous open), and that socket would then hold the port the proxy needs."""
    low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    for _ in range(100):
        port = random.randrange(max(1024, low - 10_000), low)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port below the ephemeral range")


def wait_for(condition: Callable[[], bool], timeout_s: float, what: str) -> float:
    """Seconds it took for ``condition`` to hold; fails after ``timeout_s``."""
    start = time.monotonic()
    while time.monotonic() - start < timeout_s:
        if condition():
            return time.monotonic() - start
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")


def first_pass_done(session) -> Callable[[], bool]:
    return lambda: (maybe_health(session) or NEVER).last_ok_at is not None


def failing(session) -> Callable[[], bool]:
    return lambda: (maybe_health(session) or NEVER).failing_since is not None


@contextmanager
def running(poller: Runner) -> Iterator[threading.Thread]:
    thread = threading.Thread(target=poller.run, daemon=True)
    thread.start()
    try:
        yield thread
    finally:
        poller.stop.set()
        thread.join(timeout=15)
        assert not thread.is_alive(), "the poller did not stop on its stop event"


def test_mail_appended_while_idling_is_ingested_within_seconds(db, session, imap, write_channels):
    # Given a poller on IDLE, whose polling fallback would take an hour
    mailbox = write_channels(idle=True, poll_interval_s=3600)
    poller = make_poller(get_settings(), get_channels(), mailbox, threading.Event(),
                         idle_check_s=0.2, idle_renew_s=600)
    with running(poller):
        wait_for(first_pass_done(session), 10, "the first pass")
        time.sleep(0.5)  # in IDLE by now
        # When a mail arrives
        append(imap, mail(1))
        # Then the IDLE notification brings it in at once
        took = wait_for(lambda: count_messages(session) == 1, 10, "the mail")
    assert took < 5


def test_idle_is_renewed_and_keeps_working(db, session, imap, write_channels, monkeypatch):
    idles: list[float] = []
    real_idle = IMAPClient.idle

    def counting_idle(self: IMAPClient) -> object:
        idles.append(time.monotonic())
        return real_idle(self)

    monkeypatch.setattr(IMAPClient, "idle", counting_idle)
    mailbox = write_channels(idle=True, poll_interval_s=3600)
    poller = make_poller(get_settings(), get_channels(), mailbox, threading.Event(),
                         idle_check_s=0.1, idle_renew_s=0.4)
    with running(poller):
        # When IDLE has been renewed several times on the same connection
        wait_for(lambda: len(idles) >= 4, 10, "IDLE renewals")
        append(imap, mail(1))
        wait_for(lambda: count_messages(session) == 1, 10, "the mail")
    # Then the connection stayed usable throughout
    assert mailbox_health(session).failing_since is None


def test_polling_fallback_without_idle(db, session, imap, write_channels):
    mailbox = write_channels(idle=False, poll_interval_s=0.3)
    with running(make_poller(get_settings(), get_channels(), mailbox, threading.Event())):
        wait_for(first_pass_done(session), 10, "the first pass")
        append(imap, mail(1))
        wait_for(lambda: count_messages(session) == 1, 10, "the mail")


def test_an_unreachable_mailbox_is_recorded_and_warned_about_then_recovers(
    db, session, imap, dovecot, write_channels, caplog
):
    # Given the mailbox's server is unreachable: nothing listens on its port
    proxy = Proxy(port_outside_ephemeral_range(), (dovecot.host, dovecot.port))
    mailbox = write_channels(port=proxy.port, idle=True)
    poller = make_poller(
        get_settings(), get_channels(), mailbox, threading.Event(), idle_check_s=0.1,
        backoff_base_s=0.05, backoff_cap_s=0.2, unreachable_warn_s=0.5,
    )
    caplog.set_level(logging.INFO, logger="channels.runner")
    try:
        with running(poller):
            # Then the outage is on the mailbox's state, in status, and in a warning
            wait_for(failing(session), 10, "the failure")
            wait_for(lambda: "has been unreachable for" in caplog.text, 10, "the warning")
            assert "ConnectionRefusedError" in (mailbox_health(session).last_error or "")
            with db() as s:
                [down] = failing_mailboxes(s)
            assert down["name"] == "support" and down["failing_since"]
            # When the server is back, with mail waiting
            append(imap, mail(1))
            proxy.start()
            # Then the poller reconnects, ingests it, and the outage is cleared
            wait_for(lambda: count_messages(session) == 1, 10, "the mail after recovery")
            wait_for(lambda: mailbox_health(session).failing_since is None, 10, "recovery")
            # the state is committed before the poller logs it: wait for the line as well
            wait_for(lambda: "reachable again" in caplog.text, 10, "the recovery message")
            # And a connection cut in the middle of IDLE is noticed and reconnected too
            proxy.stop()
            wait_for(failing(session), 10, "the cut")
            append(imap, mail(2))
            proxy.start()
            wait_for(lambda: count_messages(session) == 2, 10, "the mail after the cut")
            wait_for(lambda: mailbox_health(session).failing_since is None, 10, "recovery")
    finally:
        proxy.stop()


def test_start_pollers_runs_a_thread_per_configured_mailbox_until_stopped(
    db, session, imap, mailbox
):
    # (what `kartabl run` and `kartabl email poll` start)
    stop = threading.Event()
    threads = start_pollers(get_settings(), get_channels(), stop)
    try:
        assert [t.name for t in threads] == ["imap-support"]
        append(imap, mail(1))
        wait_for(lambda: count_messages(session) == 1, 10, "the mail")
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=15)
    assert not any(t.is_alive() for t in threads)


def test_mail_announced_during_a_pass_is_not_left_for_the_idle_renewal(
    db, session, imap, write_channels, monkeypatch
):
    import channels.email.imap as imap_module

    # Given a mail arrives while the poller acknowledges the first one: the server
    # announces it (EXISTS) in its reply to the STORE, not later in IDLE
    real = imap_module.acknowledge
    arrived = []

    def acknowledge_while_mail_arrives(*args, **kwargs):
        if not arrived:
            arrived.append(True)
            append(imap, mail(2))
        return real(*args, **kwargs)

    monkeypatch.setattr(imap_module, "acknowledge", acknowledge_while_mail_arrives)
    append(imap, mail(1))
    mailbox = write_channels(idle=True, poll_interval_s=3600)
    poller = make_poller(get_settings(), get_channels(), mailbox, threading.Event(),
                         idle_check_s=0.2, idle_renew_s=600)
    with running(poller):
        # Then it is fetched at once, not after the 10-minute renewal
        wait_for(lambda: count_messages(session) == 2, 10, "the mail announced mid-pass")


def test_one_poller_per_mailbox_leads_and_a_standby_takes_over(
    db, session, imap, write_channels, db_url
):
    if not db_url.startswith("postgresql"):
        pytest.skip("SQLite is the single-process embedded mode: no lock to share")
    # Given two pollers of one mailbox, as two `email` processes on two machines would run
    mailbox = write_channels(idle=False, poll_interval_s=0.2)
    first = make_poller(get_settings(), get_channels(), mailbox, threading.Event())
    second = make_poller(get_settings(), get_channels(), mailbox, threading.Event())
    passes = {"first": 0, "second": 0}

    def counted(poller: Runner, name: str) -> None:
        real = poller.drain

        def drain(feed: Feed) -> PassResult:
            passes[name] += 1
            return real(feed)

        poller.drain = drain  # type: ignore[method-assign]

    counted(first, "first")
    counted(second, "second")
    with running(first):
        wait_for(lambda: passes["first"] > 0, 10, "the first poller's pass")
        with running(second):
            time.sleep(1.0)
            # Then only the lock holder polls; the other stands by
            assert passes["second"] == 0 and passes["first"] >= 2
            # When the leader stops (its process dies: its connection and lock go)
            first.stop.set()
            wait_for(lambda: passes["second"] > 0, 10, "the standby to take over")
            append(imap, mail(1))
            wait_for(lambda: count_messages(session) == 1, 10, "the mail")


def _lock_backends(session, name: str) -> list[int]:
    rows = session.execute(
        text("SELECT pid FROM pg_stat_activity WHERE application_name = :n"),
        {"n": locks.application_name(name)},
    ).scalars().all()
    session.commit()
    return list(rows)


def _lock_holders(session, name: str) -> list[int]:
    """The lock's connections that hold it already (a connection is named before it takes
    the lock: killed in between, the poller fails to take it, not loses it)."""
    rows = session.execute(
        text("SELECT a.pid FROM pg_stat_activity a JOIN pg_locks l ON l.pid = a.pid "
             "WHERE a.application_name = :n AND l.locktype = 'advisory' AND l.granted"),
        {"n": locks.application_name(name)},
    ).scalars().all()
    session.commit()
    return list(rows)


def test_many_held_locks_leave_the_connection_pool_alone(db, session, db_url):
    if not db_url.startswith("postgresql"):
        pytest.skip("SQLite needs no lock")
    engine = db.kw["bind"]
    # Given 25 leases held at once, as 25 mailboxes' pollers in one process would hold them
    # (more than the pool's 10 + 10 overflow)
    with ExitStack() as stack:
        leases = [stack.enter_context(locks.lease(engine, f"many {i}")) for i in range(25)]
        assert all(leases)
        # Then none of them took a connection of the pool, and a session still works
        assert engine.pool.checkedout() == 0
        with db() as other:
            assert other.scalar(text("SELECT 1")) == 1
        # And each is a lock indeed: a second lease on the same name is refused
        with locks.lease(engine, "many 3") as again:
            assert not again
        assert all(lease.still_held() for lease in leases)
    # And released at the end of the block
    with locks.lease(engine, "many 3") as again:
        assert again


def test_a_leader_whose_lock_connection_dies_steps_down_and_leads_again(
    db, session, imap, write_channels, db_url, caplog
):
    if not db_url.startswith("postgresql"):
        pytest.skip("SQLite is the single-process embedded mode: no lock to lose")
    mailbox = write_channels(idle=False, poll_interval_s=0.1)
    poller = make_poller(get_settings(), get_channels(), mailbox, threading.Event())
    name = poller.lock_name  # "poller email:support"
    with caplog.at_level(logging.WARNING, "channels.runner"), running(poller):
        wait_for(lambda: len(_lock_holders(session, name)) == 1, 10, "the poller's lock")
        [first] = _lock_holders(session, name)
        # When the lock's backend dies (a PostgreSQL restart, an operator's kill)
        session.execute(text("SELECT pg_terminate_backend(:p)"), {"p": first})
        session.commit()
        # Then the leader notices between passes, steps down, and takes the lock again on
        # a new connection
        wait_for(lambda: "lock was lost" in caplog.text, 10, "the leader to step down")
        wait_for(lambda: _lock_backends(session, name) not in ([], [first]), 10,
                 "the lock to be taken again")
        # And it polls on
        append(imap, mail(1))
        wait_for(lambda: count_messages(session) == 1, 10, "the mail")
