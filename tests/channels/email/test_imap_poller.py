"""The IMAP poller against a real Dovecot: every mail becomes exactly one message, whatever
happens between the fetch, the commit and the acknowledgement."""

from __future__ import annotations

import errno
import logging
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

import channels.email.imap
import channels.email.ingest
import channels.email.state
import kartabl.ingest
from channels.email.service import make_poller
from config.channels import get_channels
from config.settings import get_settings
from kartabl.models import Conversation, MailboxState, Team
from router.batch import route_batch
from router.teams import sync_teams
from tests.channels.email.imap_helpers import (
    append,
    count_messages,
    email_messages,
    flags_by_uid,
    mail,
    mailbox_health,
    mailbox_state,
)
from tests.factories import routing_args

FLAG = b"$Kartabl"


class Crash(Exception):
    """Stands for the process dying at that point (nothing after it runs)."""


def _state(session) -> MailboxState:
    return mailbox_state(session)


def test_appended_mail_becomes_one_routed_message_of_the_mailbox_team(
    db, session, imap, write_channels, routing_file
):
    # Given routing rules that choose no team for email, and a mailbox whose team is billing
    routing_file.write_text(
        '[[teams]]\nname = "support"\n[[teams]]\nname = "billing"\n'
        '[[rules]]\nname = "sms"\nchannels = ["sms"]\nteam = "support"\n'
    )
    mailbox = write_channels(team="billing")
    # And a customer's mail delivered by IMAP APPEND
    append(imap, mail(1, subject="سفارش من"))
    # When the poller makes a pass
    result = make_poller(get_settings(), get_channels(), mailbox).poll_once()
    # Then it is exactly one message, of this mailbox, sent to our address
    assert (result.fetched, result.created) == (1, 1)
    [msg] = email_messages(session)
    assert msg.sender == "customer1@example.ir"
    assert msg.subject == "سفارش من"
    assert msg.recipient == "support@kartabl.example"
    assert msg.meta["mailbox"] == "support" and msg.meta["default_team"] == "billing"
    # And the router places it as usual, in the mailbox's team
    from config.routing import get_routing

    sync_teams(session, get_routing())
    session.commit()
    route_batch(session, [msg.id], **routing_args())
    session.expire_all()
    conv = session.get(Conversation, session.get(type(msg), msg.id).conversation_id)
    assert session.get(Team, conv.team_id).name == "billing"
    session.commit()
    # And the mail is flagged as processed, and a second pass finds nothing new
    assert FLAG in flags_by_uid(imap)[1]
    assert make_poller(get_settings(), get_channels(), mailbox).poll_once().fetched == 0
    assert _state(session).last_uid == 1


@pytest.mark.parametrize("crash_at", ["acknowledge", "advance"])
def test_a_crash_between_commit_and_acknowledgement_loses_and_duplicates_nothing(
    db, session, imap, write_channels, monkeypatch, crash_at
):
    mailbox = write_channels(fetch_batch=2)
    raws = [mail(i) for i in range(1, 6)]
    for raw in raws:
        append(imap, raw)
    # Given the process dies after the second batch is committed, before it is
    # acknowledged on IMAP (or before last_uid moves)
    calls = {"n": 0}
    real = getattr(channels.email.imap if crash_at == "acknowledge" else channels.email.state,
                   crash_at)

    def dying(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise Crash(crash_at)
        return real(*args, **kwargs)

    target = channels.email.imap if crash_at == "acknowledge" else channels.email.state
    monkeypatch.setattr(target, crash_at, dying)
    with pytest.raises(Crash):
        make_poller(get_settings(), get_channels(), mailbox).poll_once()
    # Then batch 2 is committed, but last_uid still says batch 1
    assert count_messages(session) == 4
    assert _state(session).last_uid == 2
    # When the process restarts and polls again
    monkeypatch.setattr(target, crash_at, real)
    result = make_poller(get_settings(), get_channels(), mailbox).poll_once()
    # Then every mail is there exactly once, and all are acknowledged
    assert (result.fetched, result.created, result.duplicates) == (3, 1, 2)
    msgs = email_messages(session)
    assert len(msgs) == 5 == len({m.external_id for m in msgs})
    assert sorted(m.sender for m in msgs) == [f"customer{i}@example.ir" for i in range(1, 6)]
    assert all(FLAG in f for f in flags_by_uid(imap).values())
    assert _state(session).last_uid == 5


def test_nothing_is_acknowledged_when_the_commit_fails(
    db, session, imap, mailbox, monkeypatch
):
    append(imap, mail(1))
    append(imap, mail(2))
    seen_at_commit: list[dict[int, set[bytes]]] = []
    real = kartabl.ingest.add_many

    def failing_store(*args, **kwargs):
        seen_at_commit.append(flags_by_uid(imap))
        raise RuntimeError("database went away")

    # Given the database fails when the batch is committed
    monkeypatch.setattr(kartabl.ingest, "add_many", failing_store)
    with pytest.raises(RuntimeError):
        make_poller(get_settings(), get_channels(), mailbox).poll_once()
    # Then nothing was flagged (nor before the commit), and last_uid did not move
    assert all(FLAG not in f for f in seen_at_commit[0].values())
    assert all(FLAG not in f for f in flags_by_uid(imap).values())
    assert _state(session).last_uid == 0
    assert mailbox_health(session).failing_since is not None
    # When the database is back, the next pass ingests both and then flags them
    flags_during_commit: list[dict[int, set[bytes]]] = []

    def observed_store(*args, **kwargs):
        flags_during_commit.append(flags_by_uid(imap))
        return real(*args, **kwargs)

    monkeypatch.setattr(kartabl.ingest, "add_many", observed_store)
    assert make_poller(get_settings(), get_channels(), mailbox).poll_once().created == 2
    assert all(FLAG not in f for f in flags_during_commit[0].values())
    assert all(FLAG in f for f in flags_by_uid(imap).values())
    assert mailbox_health(session).failing_since is None


def test_processed_mail_is_moved_to_the_processed_folder_after_commit(
    db, session, imap, write_channels
):
    mailbox = write_channels(processed_folder="Kartabl.Done")
    append(imap, mail(1))
    append(imap, mail(2))
    # When the poller makes a pass (the folder does not exist yet: it is created)
    assert make_poller(get_settings(), get_channels(), mailbox).poll_once().created == 2
    # Then the mail left the INBOX for the processed folder, and both are stored
    assert flags_by_uid(imap, "INBOX") == {}
    assert len(flags_by_uid(imap, "Kartabl.Done")) == 2
    assert count_messages(session) == 2
    # And new mail after that is still found (last_uid, not the folder's content, counts)
    append(imap, mail(3))
    assert make_poller(get_settings(), get_channels(), mailbox).poll_once().created == 1


def test_uidvalidity_change_resyncs_without_duplicates(
    db, session, imap, write_channels, caplog
):
    mailbox = write_channels(folder="Support")
    imap.create_folder("Support")
    raws = [mail(i) for i in range(1, 4)]
    for raw in raws:
        append(imap, raw, folder="Support")
    assert make_poller(get_settings(), get_channels(), mailbox).poll_once().created == 3
    before = _state(session).uidvalidity
    # Given the folder is recreated (a new UIDVALIDITY) with the same mail, plus one new
    imap.delete_folder("Support")
    imap.create_folder("Support")
    for raw in [*raws, mail(4)]:
        append(imap, raw, folder="Support")
    # When the poller makes a pass
    with caplog.at_level(logging.WARNING, logger="channels.email.state"):
        result = make_poller(get_settings(), get_channels(), mailbox).poll_once()
    # Then it read the folder again from the start and stored only the new mail
    assert (result.fetched, result.created, result.duplicates) == (4, 1, 3)
    assert count_messages(session) == 4
    state = _state(session)
    assert state.uidvalidity != before and state.last_uid == 4
    assert "UIDVALIDITY" in caplog.text and "resync" in caplog.text


def test_mail_marked_seen_by_another_client_is_still_ingested_and_unseen_stays_unseen(
    db, session, imap, dovecot, imap_user, mailbox
):
    append(imap, mail(1))
    append(imap, mail(2))
    # Given another mail client read the first mail (\Seen) before the poll
    other = dovecot.client(imap_user)
    other.select_folder("INBOX")
    other.add_flags([1], [b"\\Seen"])
    other.logout()
    # When the poller makes a pass
    assert make_poller(get_settings(), get_channels(), mailbox).poll_once().created == 2
    # Then both are stored; the read one stays read, and fetching did not mark the other
    flags = flags_by_uid(imap)
    assert b"\\Seen" in flags[1] and b"\\Seen" not in flags[2]


def test_mail_without_message_id_and_reused_message_ids_are_ingested(
    db, session, imap, mailbox
):
    # Given two different mails without a Message-ID, and two different mails that reuse
    # one Message-ID, and one mail delivered twice
    append(imap, mail(1, message_id=None))
    append(imap, mail(2, message_id=None))
    append(imap, mail(3, message_id="<same@customer.example>"))
    append(imap, mail(4, message_id="<same@customer.example>"))
    twice = mail(5)
    append(imap, twice)
    append(imap, twice)
    # When the poller makes a pass
    result = make_poller(get_settings(), get_channels(), mailbox).poll_once()
    # Then every distinct mail is one message; the identical copy is a duplicate
    assert (result.fetched, result.created, result.duplicates) == (6, 5, 1)
    senders = sorted(m.sender for m in email_messages(session))
    assert senders == [f"customer{i}@example.ir" for i in range(1, 6)]


def test_state_rows_are_per_mailbox(db, session, imap, mailbox):
    append(imap, mail(1))
    make_poller(get_settings(), get_channels(), mailbox).poll_once()
    rows = session.scalars(select(MailboxState)).all()
    session.commit()
    assert [(r.name, r.folder, r.last_uid) for r in rows] == [("support", "INBOX", 1)]
    health = mailbox_health(session)
    assert health.last_ok_at is not None and health.failing_since is None


def test_fetch_brings_bodies_in_groups_within_the_byte_budget(imap, mailbox, caplog):
    raws = [mail(i) for i in (1, 2, 3)]
    for raw in raws:
        append(imap, raw)
    with channels.email.imap.connect(mailbox.imap) as client:
        client.select_folder("INBOX")
        # A budget below one mail: each body comes in its own FETCH, none is lost
        with caplog.at_level(logging.WARNING, "channels.email.imap"):
            got = channels.email.imap.fetch(client, [1, 2, 3, 99], budget_bytes=1)
    assert [(f.uid, f.raw.replace(b"\r\n", b"\n")) for f in got] == [
        (i, raw.replace(b"\r\n", b"\n")) for i, raw in zip((1, 2, 3), raws, strict=True)]
    assert all(f.oversized is None for f in got)
    # And the UID that was not there (expunged meanwhile) is named, not silently skipped
    assert "UIDs 99 vanished before they could be fetched" in caplog.text


def test_a_storage_error_is_logged_as_such_not_as_an_unreachable_mailbox(
    db, session, imap, mailbox, monkeypatch, caplog
):
    def disk_full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    # Given the attachments cannot be written
    monkeypatch.setattr(channels.email.ingest, "store_payloads", disk_full)
    append(imap, mail(1))
    with caplog.at_level(logging.WARNING), pytest.raises(OSError) as raised:
        make_poller(get_settings(), get_channels(), mailbox).poll_once()
    # Then the error is ours, with its traceback, named a storage error
    assert not isinstance(raised.value, channels.email.imap.MailboxUnavailable)
    [error] = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert "storage error" in error.getMessage() and error.exc_info is not None
    assert "unreachable" not in caplog.text
    state = _state(session)
    assert mailbox_health(session).last_error.startswith("storage error: OSError: [Errno 28]")
    # And nothing was acknowledged nor passed
    assert state.last_uid == 0 and all(FLAG not in f for f in flags_by_uid(imap).values())


def test_the_message_time_is_the_servers_internaldate_not_the_date_header(
    db, session, imap, mailbox
):
    # Given a mail whose Date header says 2001, received by our server an hour ago
    # (APPEND sets the INTERNALDATE), and one in an hour (a server clock ahead of ours)
    received = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    append(imap, mail(1, date="Mon, 01 Jan 2001 09:00:00 +0000"), when=received)
    append(imap, mail(2), when=datetime.now(UTC) + timedelta(hours=1))
    # When the poller makes a pass
    before = datetime.now(UTC)
    make_poller(get_settings(), get_channels(), mailbox).poll_once()
    # Then the message's time is the INTERNALDATE, and the header is metadata
    first, second = sorted(email_messages(session), key=lambda m: m.sender)
    assert first.received_at == received
    assert first.meta["sent_at"] == "2001-01-01T09:00:00+00:00"
    # And a time ahead of ours is taken as now: nothing is ever received in the future
    assert before <= second.received_at <= datetime.now(UTC)
    assert second.meta["sent_at"] == "2026-11-23T06:30:00+00:00"
