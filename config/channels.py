"""The channels file: how Kartabl reaches each channel (servers, accounts, credentials).

Separate from the routing file on purpose: the routing file is policy that staff edit and
review, this one holds secrets. ``KARTABL_CHANNELS_FILE`` points at it; unset, no real
channel is configured and the sandbox sender stands in (the embedded demo).

A password is given either inline (``password``, for local tests) or, better, as the name of
an environment variable (``password_env``) that is read when the file is loaded. Passwords
are :class:`~pydantic.SecretStr`: they never appear in reprs, logs or errors.

Loaded once per process and validated up front, like the routing file.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    FilePath,
    SecretStr,
    model_validator,
)

from config.api_channel import ApiChannels
from config.meta import MetaConfig
from config.rubika import RubikaConfig
from config.settings import Settings, get_settings
from config.sms import SmsConfig
from config.telegram import TelegramConfig
from config.toml import load_toml
from config.webchat import WebchatConfig

Security = Literal["tls", "starttls", "plain"]


class _Account(BaseModel):
    model_config = ConfigDict(extra="forbid")
    host: str
    port: int | None = Field(default=None, ge=1, le=65535)
    security: Security = "tls"
    username: str = ""
    password: SecretStr = SecretStr("")
    password_env: str = ""
    timeout_s: float = Field(default=30.0, gt=0)

    @model_validator(mode="after")
    def _resolve_password(self) -> _Account:
        if self.password_env:
            value = os.environ.get(self.password_env)
            if value is None:
                raise ValueError(f"environment variable {self.password_env} is not set")
            self.password = SecretStr(value)
        return self


class ImapAccount(_Account):
    folder: str = "INBOX"
    # After a mail is committed it is moved here; empty: it stays and is flagged instead.
    processed_folder: str = ""
    processed_flag: str = "$Kartabl"
    idle: bool = True  # use IMAP IDLE when the server offers it, else poll
    poll_interval_s: float = Field(default=60.0, gt=0)
    fetch_batch: int = Field(default=50, ge=1, le=1000)
    # The CA certificates (PEM) to trust for this server instead of the system's: a private
    # CA, or a test server's self-signed certificate. Verification and the hostname check
    # stay on; there is deliberately no option to turn them off.
    ca_file: FilePath | None = None

    @model_validator(mode="after")
    def _ca_file_needs_tls(self) -> ImapAccount:
        # Silently ignored on a clear-text connection, it would suggest a protection that
        # is not there.
        if self.ca_file is not None and self.security == "plain":
            raise ValueError('ca_file needs security = "tls" or "starttls"')
        return self

    @model_validator(mode="after")
    def _processed_folder_differs(self) -> ImapAccount:
        # Moved mail gets new UIDs: moved into the folder that is read, it would be fetched
        # again as new, and moved, and fetched, forever.
        if self.processed_folder and _same_folder(self.processed_folder, self.folder):
            raise ValueError(
                f"processed_folder must differ from folder ({self.folder!r}): mail moved "
                "into the folder being read would be fetched again forever; leave "
                "processed_folder empty to flag processed mail instead"
            )
        return self

    @property
    def effective_port(self) -> int:
        return self.port or (993 if self.security == "tls" else 143)


def _same_folder(a: str, b: str) -> bool:
    # INBOX is the one case-insensitive folder name (RFC 3501 5.1).
    a, b = a.strip().strip("/"), b.strip().strip("/")
    return a == b or a.upper() == b.upper() == "INBOX"


class SmtpAccount(_Account):
    # How long to wait for the server's answer once the message data is sent. RFC 5321
    # (4.5.3.2.6) asks clients to wait 10 minutes: servers that filter before queuing take
    # their time, and giving up earlier leaves an outcome we cannot know (a possible resend).
    data_timeout_s: float = Field(default=600.0, gt=0)

    @property
    def worst_case_s(self) -> float:
        """The longest one send can take: each command before the data (connect, EHLO,
        STARTTLS, EHLO, AUTH, MAIL, RCPT, DATA) may use ``timeout_s``, then the data's
        answer ``data_timeout_s``. The outbox must not reconcile a reply before that."""
        return 8 * self.timeout_s + self.data_timeout_s

    @property
    def effective_port(self) -> int:
        return self.port or {"tls": 465, "starttls": 587, "plain": 25}[self.security]


class Mailbox(BaseModel):
    """One support mailbox: where its mail comes from (IMAP), how replies leave (SMTP),
    which of our addresses it answers from, and the team its mail goes to when no routing
    rule chooses one."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")
    address: str  # our address: the From of replies
    aliases: list[str] = []  # more of our addresses (never answered: loop guard)
    display_name: str = ""
    team: str | None = None
    imap: ImapAccount | None = None
    smtp: SmtpAccount | None = None

    @property
    def addresses(self) -> set[str]:
        return {a.strip().lower() for a in (self.address, *self.aliases)}


class EmailConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    mailboxes: list[Mailbox] = []

    @model_validator(mode="after")
    def _unique_names(self) -> EmailConfig:
        names = [m.name for m in self.mailboxes]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"mailbox names must be unique: {', '.join(dupes)}")
        return self

    def mailbox(self, name: str) -> Mailbox | None:
        return next((m for m in self.mailboxes if m.name == name), None)

    def for_address(self, address: str) -> Mailbox | None:
        """The mailbox of one of our addresses; ``support+tag@x`` (a reply token, a
        subaddress) is ``support@x``'s."""
        a = address.strip().lower()
        local, at, domain = a.partition("@")
        base = f"{local.split('+', 1)[0]}{at}{domain}"
        return next((m for m in self.mailboxes if a in m.addresses or base in m.addresses),
                    None)

    @property
    def our_addresses(self) -> set[str]:
        return {a for m in self.mailboxes for a in m.addresses}


class ChannelsConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    email: EmailConfig = EmailConfig()
    sms: SmsConfig | None = None  # Kavenegar (config/sms.py)
    telegram: TelegramConfig = TelegramConfig()  # Telegram and Bale bots (config/telegram.py)
    api: ApiChannels = []  # generic API channels, one per external system (config/api_channel.py)
    webchat: WebchatConfig = WebchatConfig()  # the website chat widget (config/webchat.py)
    meta: MetaConfig | None = None  # Instagram and WhatsApp through Meta (config/meta.py)
    rubika: RubikaConfig = RubikaConfig()  # Rubika bots (config/rubika.py)


def load(path: Path) -> ChannelsConfig:
    return load_toml(path, ChannelsConfig, "channels file")


def channels_of(settings: Settings) -> ChannelsConfig:
    """The channels file that ``settings`` name (none: no channel configured)."""
    path = settings.channels_file
    return load(path) if path is not None else ChannelsConfig()


@lru_cache(maxsize=1)
def get_channels() -> ChannelsConfig:
    """The process's channels, read once (process edges only: the rest take them as an
    argument)."""
    return channels_of(get_settings())
