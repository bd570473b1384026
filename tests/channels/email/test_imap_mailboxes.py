"""Several mailboxes in one process, against the real Dovecot: each is polled by its own
thread, its mail is marked as its own, and mail that no routing rule places goes to its
own team."""

from __future__ import annotations

import threading

import config.routing
import config.settings
from channels.email.service import imap_mailboxes, start_pollers
from config.channels import get_channels
from config.settings import get_settings
from kartabl import service_clock
from kartabl.models import Conversation, Message, Team
from router.batch import route_batch
from router.teams import sync_teams
from tests.channels.email.conftest import Dovecot, WriteChannelsFile, mailbox_toml
from tests.channels.email.imap_helpers import (
    append,
    count_messages,
    email_messages,
    mail,
    mailbox_state,
)
from tests.channels.email.test_imap_watch import wait_for
from tests.factories import routing_args

# The example routing file ends with a catch-all "mail to support" rule, which would hide
# the mailboxes' teams; here only keywords and the messengers have rules, so mail without
# those keywords falls to its mailbox's team.
ROUTING = """
[[teams]]
name = "support"
[[teams]]
name = "sales"
[[teams]]
name = "billing"

[[rules]]
name = "billing words"
keywords = ["invoice", "فاکتور"]
team = "billing"

[[rules]]
name = "messengers to support"
channels = ["telegram", "bale", "sms"]
team = "support"
"""


def _to(raw: bytes, address: str) -> bytes:
    """``raw`` (addressed to support@) addressed to ``address`` instead."""
    header = b"To: Support <support@kartabl.example>"
    assert header in raw
    return raw.replace(header, f"To: <{address}>".encode())


def _team_of(session, message_id: int) -> str:
    session.expire_all()
    msg = session.get(Message, message_id)
    conv = session.get(Conversation, msg.conversation_id)
    name = session.get(Team, conv.team_id).name
    session.commit()
    return name


def test_two_mailboxes_polled_in_one_process_feed_their_own_inbox_and_team(
    db, session, dovecot: Dovecot, write_channels_file: WriteChannelsFile, routing_file
):
    # Given routing rules that place no plain email, and two mailboxes on two Dovecot
    # users, support@ for team "support" and sales@ for team "sales"
    routing_file.write_text(ROUTING, encoding="utf-8")
    config.routing.get_routing.cache_clear()
    service_clock.configure(config.settings.get_settings(), config.routing.get_routing())
    support_user, sales_user = dovecot.add_user(), dovecot.add_user()
    write_channels_file(
        mailbox_toml(dovecot, support_user, name="support", address="support@kartabl.example",
                     team="support"),
        mailbox_toml(dovecot, sales_user, name="sales", address="sales@kartabl.example",
                     team="sales"),
    )
    assert [m.name for m in imap_mailboxes(get_channels())] == ["support", "sales"]
    # And a customer's mail delivered to each
    for user, raw in (
        (support_user, mail(1, subject="order 1")),
        (sales_user, _to(mail(2, subject="order 2"), "sales@kartabl.example")),
    ):
        client = dovecot.client(user)
        try:
            append(client, raw)
        finally:
            client.logout()
    # When both are polled, one thread each in this process (as `kartabl email poll` does)
    stop = threading.Event()
    threads = start_pollers(get_settings(), get_channels(), stop)
    try:
        assert sorted(t.name for t in threads) == ["imap-sales", "imap-support"]
        wait_for(lambda: count_messages(session) == 2, 15, "the mail of both mailboxes")
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=15)
    assert not any(t.is_alive() for t in threads)
    # Then each mail is a message of its own mailbox, to that mailbox's address
    by_mailbox = {m.meta["mailbox"]: m for m in email_messages(session)}
    assert sorted(by_mailbox) == ["sales", "support"]
    support, sales = by_mailbox["support"], by_mailbox["sales"]
    assert (support.sender, support.recipient, support.subject) == (
        "customer1@example.ir", "support@kartabl.example", "order 1")
    assert (sales.sender, sales.recipient, sales.subject) == (
        "customer2@example.ir", "sales@kartabl.example", "order 2")
    assert support.meta["default_team"] == "support" and sales.meta["default_team"] == "sales"
    # And each mailbox keeps its own IMAP state
    assert mailbox_state(session, "support").last_uid == 1
    assert mailbox_state(session, "sales").last_uid == 1
    # And routed, each lands in its mailbox's team, no rule having chosen one
    sync_teams(session, config.routing.get_routing())
    session.commit()
    route_batch(session, [support.id, sales.id], **routing_args())
    assert _team_of(session, support.id) == "support"
    assert _team_of(session, sales.id) == "sales"
