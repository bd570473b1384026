"""``kartabl email ...``: poll, backfill, quarantine and reimport, with their bad-input answers."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bench.ports import free_port
from boot.cli import app
from channels.email.service import make_poller
from config.channels import get_channels
from config.settings import get_settings
from kartabl.models import MailboxState
from tests.channels.email.imap_helpers import (
    BAD_MAIL,
    append,
    count_messages,
    email_messages,
    flags_by_uid,
    mail,
    mailbox_state,
    quarantined,
)

runner = CliRunner()
KARTABL = Path(sys.executable).with_name("kartabl")


def cli(*args: str):
    return runner.invoke(app, list(args))


def test_poll_once_as_the_procfile_process_runs_it(db, session, imap, mailbox):
    append(imap, mail(1))
    append(imap, mail(2))
    # When `kartabl email poll --once` runs as its own process (the environment carries
    # this test's database and channels file)
    done = subprocess.run([str(KARTABL), "email", "poll", "--once"], capture_output=True,
                          text=True, timeout=60)
    # Then both mails are stored
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 new" in done.stdout
    assert count_messages(session) == 2


def test_backfill_since_ingests_older_mail_exactly_once(db, session, imap, mailbox):
    # Given two mails received in January, before Kartabl's state started (last_uid past
    # them, as when a mailbox is connected with history the poller will not read), and
    # one new mail
    old = datetime(2026, 1, 10, 9, 0, tzinfo=UTC)
    append(imap, mail(1), when=old)
    append(imap, mail(2), when=old)
    uidvalidity = imap.select_folder("INBOX")[b"UIDVALIDITY"]
    with db() as s:
        s.add(MailboxState(name="support", folder="INBOX", uidvalidity=uidvalidity,
                           last_uid=2))
        s.commit()
    append(imap, mail(3))
    assert make_poller(get_settings(), get_channels(), mailbox).poll_once().created == 1
    # When the history since January 1st is backfilled
    r = cli("email", "backfill", "--since", "2026-01-01")
    # Then the two older mails come in, the new one is recognised, and last_uid is untouched
    assert r.exit_code == 0, r.output
    assert "3 mail since 2026-01-01: 2 new, 1 already stored" in r.output
    assert sorted(m.sender for m in email_messages(session)) == [
        f"customer{i}@example.ir" for i in (1, 2, 3)]
    assert mailbox_state(session).last_uid == 3
    # And backfilling again stores nothing; a later date only sees the recent mail
    assert "0 new, 3 already stored" in cli("email", "backfill", "--since", "2026-01-01").output
    assert "1 mail since" in cli("email", "backfill", "--since", "2026-02-01",
                                 "--mailbox", "support").output
    assert count_messages(session) == 3


def test_quarantine_list_and_reimport_all(db, session, imap, mailbox, monkeypatch):
    append(imap, BAD_MAIL)
    append(imap, mail(1))
    make_poller(get_settings(), get_channels(), mailbox).poll_once()
    [row] = quarantined(session)
    # The list shows the quarantined mail
    r = cli("email", "quarantine")
    assert r.exit_code == 0, r.output
    assert "1 quarantined mail" in r.output and "unparseable" in r.output
    # status counts it
    status = json.loads(cli("status", "--json").output)
    assert status["quarantined"] == 1 and status["mailboxes_failing"] == []
    # --all tries every one; this one still fails, so it stays, and the exit code says so
    r = cli("email", "reimport", "--all")
    assert r.exit_code == 1 and "still quarantined" in r.output
    r = cli("email", "reimport", str(row.id))
    assert r.exit_code == 1 and f"#{row.id}: still quarantined" in r.output
    assert len(quarantined(session)) == 1


@pytest.mark.parametrize(
    ("args", "expect"),
    [
        (("email", "backfill", "--since", "last week"), "is not a date"),
        (("email", "backfill", "--since", "2026-01-01", "--mailbox", "nope"),
         "no mailbox named 'nope'"),
        (("email", "poll", "--once", "--mailbox", "nope"), "no mailbox named 'nope'"),
        (("email", "reimport"), "give one quarantined mail's id, or --all"),
        (("email", "reimport", "12345"), "no quarantined mail #12345"),
    ],
)
def test_bad_input_is_refused_clearly_and_changes_nothing(db, session, mailbox, args, expect):
    r = cli(*args)
    assert r.exit_code == 2, r.output
    assert expect in " ".join(r.output.split())
    assert count_messages(session) == 0


def test_without_a_channels_file_the_commands_say_what_to_set(db, monkeypatch):
    import config.settings

    monkeypatch.delenv("KARTABL_CHANNELS_FILE", raising=False)
    config.settings.get_settings.cache_clear()
    for args in (("email", "poll", "--once"), ("email", "backfill", "--since", "2026-01-01")):
        r = cli(*args)
        assert r.exit_code == 2
        assert "KARTABL_CHANNELS_FILE" in r.output


def test_backfill_of_an_unreachable_mailbox_exits_non_zero(db, session, write_channels):

    write_channels(port=free_port())
    r = cli("email", "backfill", "--since", "2026-01-01")
    assert r.exit_code == 1 and "unreachable" in r.output


def test_a_poll_process_killed_mid_fetch_loses_and_duplicates_nothing(
    db, session, imap, write_channels
):
    mailbox = write_channels(fetch_batch=1)
    total = 60
    for i in range(total):
        append(imap, mail(i))
    # Given `kartabl email poll --once` is killed (SIGKILL) in the middle of its batches
    proc = subprocess.Popen([str(KARTABL), "email", "poll", "--once"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while count_messages(session) < 3 and proc.poll() is None:
            assert time.monotonic() < deadline, "the poll process stored nothing"
            time.sleep(0.01)
    finally:
        proc.kill()
        proc.wait()
    stored_before = count_messages(session)
    assert stored_before < total, "the process finished before it could be killed"
    # When a new poller runs
    make_poller(get_settings(), get_channels(), mailbox).poll_once()
    # Then every mail is there exactly once, and every one is acknowledged
    msgs = email_messages(session)
    assert sorted(m.sender for m in msgs) == sorted(f"customer{i}@example.ir" for i in range(total))
    assert len({m.external_id for m in msgs}) == total
    assert all(b"$Kartabl" in f for f in flags_by_uid(imap).values())
    assert mailbox_state(session).last_uid == total


def test_the_poll_process_watches_and_stops_gracefully_on_sigterm(
    db, session, imap, write_channels
):
    # (IDLE itself is proven in test_imap_watch; a short poll_interval_s bounds the delay of
    # a mail that lands just before IDLE starts, which Dovecot may announce only 30 s later)
    write_channels(idle=True, poll_interval_s=1)
    proc = subprocess.Popen([str(KARTABL), "email", "poll"], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        append(imap, mail(1))
        deadline = time.monotonic() + 30
        while count_messages(session) < 1:
            assert proc.poll() is None and time.monotonic() < deadline, "no mail ingested"
            time.sleep(0.05)
        append(imap, mail(2))  # arrives while it watches
        while count_messages(session) < 2:
            assert proc.poll() is None and time.monotonic() < deadline, "a mail was missed"
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, out
    assert "poller stopped" in out


def test_the_processes_that_sign_refuse_the_development_secret_with_real_channels(
        db, session, imap, mailbox, monkeypatch):
    # Given real mailboxes but the secret key left at its development default
    monkeypatch.delenv("KARTABL_SECRET_KEY")
    append(imap, mail(1))
    # Then the scheduler, which resends mail with signed reply tokens in its Message-IDs,
    # refuses to start (boot.kinds: the sweep role needs the signing key)
    done = subprocess.run([str(KARTABL), "sweep", "--once"], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode != 0
    assert "KARTABL_SECRET_KEY" in done.stderr
    # While the poller, which signs and verifies nothing (the router does), fetches and stores
    done = subprocess.run([str(KARTABL), "email", "poll", "--once"], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    assert count_messages(session) == 1


def test_quarantine_reasons_are_shown_as_text_not_rich_markup(db, session, mailbox):
    from kartabl.models import QuarantinedMail

    # A reason quotes the mail; mail can contain anything, markup included
    reason = "bad [/][b]x"  # short: the table wraps long reasons
    session.add(QuarantinedMail(mailbox="support", reason=reason, size=3, raw=b"abc"))
    session.commit()
    r = cli("email", "quarantine")
    assert r.exit_code == 0, r.output
    assert "bad [/][b]x" in r.output


@pytest.mark.parametrize("command", [("email", "poll"), ("telegram", "poll")])
def test_a_procfile_poller_with_nothing_configured_waits_instead_of_exiting(
    tmp_path, command
):
    # A Procfile runner stops the whole fleet when one process ends: with no channels
    # file, the poller says why it has nothing to do and waits for SIGTERM
    env = {k: v for k, v in os.environ.items() if not k.startswith("KARTABL_")}
    env["KARTABL_DATABASE_URL"] = f"sqlite:///{tmp_path / 'k.db'}"
    proc = subprocess.Popen([str(KARTABL), *command], env=env, stderr=subprocess.PIPE,
                            stdout=subprocess.DEVNULL, text=True)
    seen: list[str] = []
    try:
        # Wait for the poller to say it is waiting (its SIGTERM handler is installed by
        # then): a fixed sleep raced a slow start on a busy machine (killed by the signal).
        assert proc.stderr is not None
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not any("waiting for SIGTERM" in x for x in seen):
            line = proc.stderr.readline()
            if not line:
                break
            seen.append(line)
        time.sleep(0.5)
        assert proc.poll() is None, "".join(seen)
    finally:
        proc.send_signal(signal.SIGTERM)
        _, rest = proc.communicate(timeout=20)
    err = "".join(seen) + rest
    assert proc.returncode == 0, err
    assert "KARTABL_CHANNELS_FILE" in err and "waiting for SIGTERM" in err
