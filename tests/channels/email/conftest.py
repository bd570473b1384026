"""A real Dovecot for the IMAP tests, and a fresh mailbox per test.

The session starts Debian's ``dovecot-imapd`` (installed by ``make test``) on free ports of
127.0.0.1, with users in a passwd-file: plain IMAP with STARTTLS on one port, implicit TLS
(imaps) on another, both with a self-signed certificate made by the openssl CLI (without
openssl: plain IMAP only, and the TLS tests skip), and on 127.0.0.2 a port that offers no
STARTTLS at all (a server whose TLS is off). Every test gets a user of its own, so an empty
INBOX, and a channels file pointing at it. Missing Dovecot skips these tests with a reason,
except in CI (CI=true or KARTABL_REQUIRE_FLEET=1), where it fails them.
"""

from __future__ import annotations

import contextlib
import getpass
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from imapclient import IMAPClient
from pydantic import SecretStr

import config.channels
import config.settings
from bench.ports import free_port
from config.channels import ChannelsConfig, Mailbox
from kartabl import reply_tokens
from tests.tls import self_signed_cert

DOVECOT = Path("/usr/sbin/dovecot")
REQUIRE = os.environ.get("CI") == "true" or os.environ.get("KARTABL_REQUIRE_FLEET") == "1"
PASSWORD = "kartabl-test-pw"
USERS = 500  # more than the tests of one session use
RUN = uuid.uuid4().hex[:6]
# Mail processes must not run as root, and Dovecot refuses uid 0 for mail users: when we
# are root the mail belongs to this unprivileged uid (it need not exist in /etc/passwd).
MAIL_UID = 1000 if os.geteuid() == 0 else os.getuid()
MAIL_GID = 1000 if os.geteuid() == 0 else os.getgid()




# The listener without TLS: Dovecot's `ssl` is per local address (a `local` block), not per
# port, so it gets an address of its own (all of 127.0.0.0/8 is loopback on Linux).
NO_TLS_HOST = "127.0.0.2"


@dataclass
class Dovecot:
    host: str
    port: int  # plain IMAP, STARTTLS offered when ca_file is set
    root: Path
    passwd: Path

    users: Iterator[str]
    tls_port: int | None = None  # implicit TLS (imaps); None without openssl
    ca_file: Path | None = None  # the self-signed certificate, to trust as the CA
    no_tls_port: int | None = None  # on NO_TLS_HOST: plain IMAP, no STARTTLS offered

    def add_user(self) -> str:
        """A user nobody used yet, hence an empty INBOX. The users are all written before
        Dovecot starts: it re-reads a passwd-file only when its mtime changes, in whole
        seconds, so users added on the fly are not seen at once."""
        return next(self.users)

    def client(self, user: str) -> IMAPClient:
        c = IMAPClient(self.host, port=self.port, ssl=False, timeout=10)
        c.login(user, PASSWORD)
        return c

    def log(self) -> str:
        path = self.root / "dovecot.log"
        return path.read_text(errors="replace") if path.exists() else ""


@dataclass(frozen=True)
class _Tls:
    cert: Path
    key: Path
    port: int  # imaps
    no_tls_port: int  # on NO_TLS_HOST


def _config(root: Path, port: int, tls: _Tls | None = None) -> str:
    if tls is None:
        ssl = "ssl = no"
        listeners = """
  inet_listener imaps {
    port = 0
  }"""
    else:
        # ssl = yes offers STARTTLS on the plain port too; disable_plaintext_auth = no
        # (below) keeps LOGIN allowed there without it: the other tests log in in clear text.
        ssl = f"""ssl = yes
ssl_cert = <{tls.cert}
ssl_key = <{tls.key}
local {NO_TLS_HOST} {{
  ssl = no
}}"""
        listeners = f"""
  inet_listener imaps {{
    address = 127.0.0.1
    port = {tls.port}
    ssl = yes
  }}
  inet_listener imap_no_tls {{
    address = {NO_TLS_HOST}
    port = {tls.no_tls_port}
  }}"""
    unprivileged = ""
    if os.geteuid() != 0:
        # Dovecot as a plain user: its own user runs everything, and nothing is chrooted.
        me = getpass.getuser()
        unprivileged = f"""
default_internal_user = {me}
default_login_user = {me}
service anvil {{
  chroot =
}}
service imap-login {{
  chroot =
}}
"""
    return f"""
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
protocols = imap
listen = 127.0.0.1
{ssl}
disable_plaintext_auth = no
auth_mechanisms = plain login
mail_location = maildir:{root}/mail/%u/Maildir
first_valid_uid = 1
first_valid_gid = 1
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/passwd
}}
userdb {{
  driver = passwd-file
  args = username_format=%u {root}/passwd
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}{listeners}
}}
service stats {{
  unix_listener stats-writer {{
    mode = 0666
  }}
}}
{unprivileged}
"""


def _wait_for_greeting(port: int, proc: subprocess.Popen[bytes], deadline_s: float) -> None:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"dovecot exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                if s.recv(100).startswith(b"* OK"):
                    return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("dovecot did not answer in time")


@pytest.fixture(scope="session")
def dovecot() -> Iterator[Dovecot]:
    if not DOVECOT.exists():
        msg = f"{DOVECOT} not installed (make test installs Debian's dovecot-imapd)"
        if REQUIRE:
            pytest.fail(msg + "; it is required in CI", pytrace=False)
        pytest.skip(msg)
    # Not pytest's tmp_path: its 0700 parents would keep the mail uid out.
    root = Path(tempfile.mkdtemp(prefix="kartabl-dovecot-"))
    root.chmod(0o755)
    (root / "mail").mkdir()
    if os.geteuid() == 0:
        os.chown(root / "mail", MAIL_UID, MAIL_GID)
    passwd = root / "passwd"
    names = [f"u{RUN}{i:04d}" for i in range(USERS)]
    passwd.write_text("".join(
        f"{n}:{{PLAIN}}{PASSWORD}:{MAIL_UID}:{MAIL_GID}::{root / 'mail' / n}\n" for n in names
    ))
    passwd.chmod(0o644)
    port = free_port()
    server = Dovecot("127.0.0.1", port, root, passwd, iter(names))
    tls = None
    pair = self_signed_cert(root)
    if pair is not None:
        cert, key = pair
        tls = _Tls(cert, key, free_port(), free_port(NO_TLS_HOST))
        server.tls_port, server.no_tls_port, server.ca_file = tls.port, tls.no_tls_port, cert
    conf = root / "dovecot.conf"
    conf.write_text(_config(root, port, tls))
    proc = subprocess.Popen([str(DOVECOT), "-F", "-c", str(conf)], stdin=subprocess.DEVNULL)
    try:
        _wait_for_greeting(port, proc, 20)
    except RuntimeError as exc:
        proc.kill()
        pytest.fail(f"{exc}; log:\n{server.log()}", pytrace=False)
    yield server
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def imap_user(dovecot: Dovecot) -> str:
    return dovecot.add_user()


@pytest.fixture
def imap(dovecot: Dovecot, imap_user: str) -> Iterator[IMAPClient]:
    """A second client on the test's mailbox: the customer's mail server delivering, or
    another mail client reading."""
    c = dovecot.client(imap_user)
    yield c
    with contextlib.suppress(Exception):  # a test may have closed it already
        c.logout()


def mailbox_toml(
    dovecot: Dovecot, user: str, *, name: str = "support",
    address: str = "support@kartabl.example", aliases: tuple[str, ...] = (),
    team: str | None = "support", host: str | None = None, port: int | None = None,
    security: str = "plain", **imap: Any,
) -> str:
    """One ``[[email.mailboxes]]`` block on a Dovecot user; ``imap`` are more options of its
    ``[imap]`` table (the test defaults: poll fast, no IDLE, short timeouts)."""
    options = {"idle": False, "poll_interval_s": 0.2, "timeout_s": 5, **imap}
    lines = "\n".join(f"{k} = {_toml(v)}" for k, v in options.items())
    team_line = f"team = {_toml(team)}" if team else ""
    return f"""
[[email.mailboxes]]
name = {_toml(name)}
address = {_toml(address)}
aliases = [{", ".join(_toml(a) for a in aliases)}]
{team_line}

[email.mailboxes.imap]
host = {_toml(host or dovecot.host)}
port = {port or dovecot.port}
security = {_toml(security)}
username = {_toml(user)}
password = {_toml(PASSWORD)}
{lines}
"""


WriteChannelsFile = Callable[..., ChannelsConfig]


@pytest.fixture
def write_channels_file(
    settings: config.settings.Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> Iterator[WriteChannelsFile]:
    """``write_channels_file(*blocks)`` writes a channels file of these mailbox blocks
    (:func:`mailbox_toml`), points KARTABL_CHANNELS_FILE at it, and returns it loaded."""

    def write(*blocks: str) -> ChannelsConfig:
        path = tmp_path / "channels.toml"
        path.write_text("".join(blocks), encoding="utf-8")
        monkeypatch.setenv("KARTABL_CHANNELS_FILE", str(path))
        config.settings.get_settings.cache_clear()
        config.channels.get_channels.cache_clear()
        return config.channels.get_channels()

    monkeypatch.setenv("KARTABL_ATTACHMENTS_DIR", str(tmp_path / "attachments"))
    # Real channels refuse the development secret (it signs the reply tokens).
    monkeypatch.setenv("KARTABL_SECRET_KEY", "test-secret-for-email")
    # This process signs with it too, as the `kartabl` processes a test starts do.
    reply_tokens.configure(SecretStr("test-secret-for-email"))
    yield write
    config.channels.get_channels.cache_clear()
    config.settings.get_settings.cache_clear()


WriteChannels = Callable[..., Mailbox]


@pytest.fixture
def write_channels(
    dovecot: Dovecot, imap_user: str, write_channels_file: WriteChannelsFile,
) -> WriteChannels:
    """``write_channels(**imap_options)`` writes a channels file with one mailbox,
    "support", on the test's Dovecot user, points KARTABL_CHANNELS_FILE at it, and returns
    the mailbox. ``team``, ``host``, ``port`` and ``security`` are the mailbox's own."""

    def write(**options: Any) -> Mailbox:
        block = mailbox_toml(dovecot, imap_user, aliases=("help@kartabl.example",), **options)
        mailbox = write_channels_file(block).email.mailbox("support")
        assert mailbox is not None
        return mailbox

    return write


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | Path):
        # A TOML basic string is a JSON string (paths and names here are plain text).
        return json.dumps(str(value))
    return str(value)


@pytest.fixture
def mailbox(write_channels: WriteChannels) -> Mailbox:
    """The default test mailbox: flag processed mail, poll (no IDLE), team 'support'."""
    return write_channels()
