"""IMAP over implicit TLS and STARTTLS against the real Dovecot, whose certificate is
self-signed: trusted through the mailbox's ``ca_file``, and refused without it. A refused
certificate, or a server without STARTTLS, fails the mailbox like an outage (recorded on
its state, retried), and never leads to a login in clear text."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from imapclient import IMAPClient
from pydantic import ValidationError

from channels.email.service import make_poller
from config.channels import ImapAccount, get_channels
from config.settings import get_settings
from tests.channels.email.conftest import NO_TLS_HOST, REQUIRE, Dovecot, WriteChannels
from tests.channels.email.imap_helpers import (
    append,
    count_messages,
    email_messages,
    flags_by_uid,
    mail,
    maybe_health,
)
from tests.channels.email.test_imap_watch import NEVER, running, wait_for

FLAG = b"$Kartabl"


@pytest.fixture
def tls(dovecot: Dovecot) -> Dovecot:
    """The session's Dovecot, which offers TLS only when openssl made it a certificate."""
    if dovecot.ca_file is None:
        msg = "the openssl CLI is missing: Dovecot runs without TLS"
        if REQUIRE:
            pytest.fail(msg + "; it is required in CI", pytrace=False)
        pytest.skip(msg)
    return dovecot


def _port(server: Dovecot, security: str) -> int:
    if security == "tls":
        assert server.tls_port is not None
        return server.tls_port
    return server.port  # STARTTLS: the plain port, upgraded


def _logins(server: Dovecot, user: str) -> list[str]:
    """Dovecot's log lines of ``user``'s successful logins: they end with how the
    connection was protected ("TLS" for imaps and STARTTLS; "secured" for clear text on
    loopback, which Dovecot trusts)."""
    return [
        line for line in server.log().splitlines()
        if "imap-login: " in line and f" Login: user=<{user}>," in line
    ]


def _no_login_for(server: Dovecot, user: str) -> None:
    # Dovecot's log process writes a little after the fact: give a login the time to show.
    time.sleep(0.5)
    assert _logins(server, user) == [], "the poller logged in although TLS failed"


@pytest.mark.parametrize("security", ["tls", "starttls"])
def test_mail_is_ingested_over_tls_with_the_certificate_trusted_by_ca_file(
    db, session, imap, imap_user, write_channels: WriteChannels, tls: Dovecot, security: str
):
    # Given a mailbox reached over TLS, trusting the server's self-signed certificate
    mailbox = write_channels(security=security, port=_port(tls, security), ca_file=tls.ca_file)
    assert mailbox.imap is not None and mailbox.imap.ca_file == tls.ca_file
    append(imap, mail(1, subject=f"over {security}"))
    # When the poller makes a pass
    result = make_poller(get_settings(), get_channels(), mailbox).poll_once()
    # Then the mail is one message, flagged as processed on the server
    assert (result.fetched, result.created) == (1, 1)
    [msg] = email_messages(session)
    assert msg.subject == f"over {security}" and msg.meta["mailbox"] == "support"
    assert FLAG in flags_by_uid(imap)[1]
    # And the poller's login went over TLS (the test's own client logs in in clear text)
    wait_for(lambda: any(", TLS" in line for line in _logins(tls, imap_user)), 5,
             "Dovecot to log the TLS login")


@pytest.mark.parametrize("security", ["tls", "starttls"])
def test_an_untrusted_certificate_fails_the_mailbox_clearly_and_never_logs_in(
    db, session, imap_user, write_channels: WriteChannels, tls: Dovecot, security: str
):
    # Given a mailbox over TLS without ca_file: the system's CAs, which never signed the
    # test server's self-signed certificate
    mailbox = write_channels(security=security, port=_port(tls, security))
    poller = make_poller(get_settings(), get_channels(), mailbox, threading.Event(),
                         backoff_base_s=0.05, backoff_cap_s=0.2)
    # When it runs
    with running(poller) as thread:
        wait_for(lambda: (maybe_health(session) or NEVER).failing_since is not None, 10,
                 "the failure to be recorded")
        # Then it keeps running (retrying with backoff), the failure recorded and named
        assert thread.is_alive()
    row = maybe_health(session)
    assert row is not None and row.last_error is not None
    assert row.last_error.startswith("SSLCertVerificationError")
    assert "certificate verify failed" in row.last_error
    assert row.last_ok_at is None and count_messages(session) == 0
    # And no login was made in clear text instead
    _no_login_for(tls, imap_user)


def test_starttls_not_offered_by_the_server_fails_without_logging_in_in_clear_text(
    db, session, imap_user, write_channels: WriteChannels, tls: Dovecot
):
    # Given a server (the same Dovecot, on an address where its TLS is off) that does
    # not offer STARTTLS, though it is up and would take a clear-text login
    assert tls.no_tls_port is not None
    probe = IMAPClient(NO_TLS_HOST, port=tls.no_tls_port, ssl=False, timeout=5)
    try:
        capabilities = probe.capabilities()
        assert b"STARTTLS" not in capabilities and b"IMAP4REV1" in capabilities
    finally:
        probe.shutdown()
    mailbox = write_channels(security="starttls", host=NO_TLS_HOST, port=tls.no_tls_port,
                             ca_file=tls.ca_file)
    poller = make_poller(get_settings(), get_channels(), mailbox, threading.Event(),
                         backoff_base_s=0.05, backoff_cap_s=0.2)
    # When the poller runs
    with running(poller) as thread:
        wait_for(lambda: (maybe_health(session) or NEVER).failing_since is not None, 10,
                 "the failure to be recorded")
        assert thread.is_alive()
    # Then the mailbox fails, saying why, and the poller never sent the password
    row = maybe_health(session)
    assert row is not None and row.last_error is not None
    assert "STARTTLS" in row.last_error and row.last_ok_at is None
    _no_login_for(tls, imap_user)


def test_ca_file_must_exist_and_needs_tls(tmp_path: Path):
    base = {"host": "imap.example.com", "username": "u", "password": "p"}
    with pytest.raises(ValidationError, match="ca_file"):
        ImapAccount.model_validate({**base, "ca_file": str(tmp_path / "missing.pem")})
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    # A CA for a clear-text connection would only suggest a protection that is not there.
    with pytest.raises(ValidationError, match="ca_file needs security"):
        ImapAccount.model_validate({**base, "security": "plain", "ca_file": str(ca)})
    assert ImapAccount.model_validate({**base, "ca_file": str(ca)}).ca_file == ca
