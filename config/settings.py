"""Every setting Kartabl reads, in one place, read once.

Settings come from environment variables prefixed ``KARTABL_`` (or a ``.env`` file).
The routing file (teams, rules, approval policy) is TOML and is loaded by
:mod:`config.routing`. Nothing else in the code base reads the environment.
"""

from __future__ import annotations

from datetime import timedelta
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_ROUTING_FILE = Path(__file__).resolve().parent / "example.toml"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="KARTABL_", env_file=".env", extra="ignore")

    # -- storage ---------------------------------------------------------------
    database_url: str = Field(
        default=f"sqlite:///{ROOT / 'var' / 'kartabl.db'}",
        description="SQLAlchemy URL. sqlite:///path for the embedded mode, "
        "postgresql://user@host/db (psycopg 3) for the fleet.",
    )
    db_pool_size: int = Field(default=10, ge=1, description="PostgreSQL pool size per process.")

    # -- queue -----------------------------------------------------------------
    broker: Literal["stub", "redis"] = Field(
        default="stub",
        description="'stub' runs dramatiq's in-process StubBroker with a worker in the same "
        "process (embedded mode); 'redis' uses redis_url (fleet).",
    )
    redis_url: str = Field(default="redis://127.0.0.1:6379/0")
    redis_namespace: str = Field(default="kartabl", description="Prefix of dramatiq's Redis keys.")
    # dramatiq's default maintenance_chance is 1000 per million commands: on an idle queue a
    # killed worker's messages wait ~17 minutes to be requeued. 20000 (2 %) makes that about
    # a minute at a negligible cost (maintenance is one Lua script). The sweep remains the
    # real guarantee; this only shortens the wait.
    redis_maintenance_chance: int = Field(default=20_000, ge=0, le=1_000_000)
    # A worker whose heartbeat is older than this is presumed dead. 30 s: long enough that a
    # GIL-heavy task does not lose it (dramatiq #692), short enough to requeue promptly.
    redis_heartbeat_timeout_ms: int = Field(default=30_000, ge=5_000)
    route_coalesce_ms: float = Field(
        default=50.0, ge=0, le=1_000,
        description="With the redis broker, the routing of messages committed within this "
        "window is enqueued as one task (workers/coalesce.py): one routing transaction for "
        "many webhook messages. 0 sends one task per commit.",
    )
    worker_processes: int = Field(default=2, ge=1)
    worker_threads: int = Field(default=8, ge=1)

    # -- workflow --------------------------------------------------------------
    routing_file: Path = Field(
        default=DEFAULT_ROUTING_FILE, description="TOML file with teams, rules and approval policy."
    )
    reopen_window_hours: float = Field(
        default=168.0,
        ge=0,
        description="A customer's reply to a conversation closed less than this long ago "
        "reopens it; later replies open a new conversation linked to the old one.",
    )

    # -- channels --------------------------------------------------------------
    channels_file: Path | None = Field(
        default=None,
        description="TOML file with the channels' connections and credentials (mailboxes; "
        "see config/channels.example.toml). Unset: no real channel, the sandbox stands in.",
    )
    attachments_dir: Path = Field(
        default=ROOT / "var" / "attachments",
        description="Where inbound attachments are stored, under generated names.",
    )
    mail_max_bytes: int = Field(
        default=25 * 1024 * 1024, ge=1024,
        description="A mail larger than this is not parsed: it is kept aside (quarantined).",
    )
    attachment_max_bytes: int = Field(
        default=10 * 1024 * 1024, ge=0,
        description="An attachment larger than this is listed with its metadata but its "
        "bytes are not stored.",
    )

    # Files an agent attaches to a reply (console composer). Telegram's Bot API takes
    # documents up to 50 MB and photos up to 10 MB by multipart upload; base64 makes a mail
    # about 4/3 of its attachments, and many mail servers refuse mail over 25 MB.
    reply_file_max_bytes: int = Field(
        default=10 * 1024 * 1024, ge=1, le=50 * 1024 * 1024,
        description="One file attached to a reply may be at most this large (at most "
        "50 MB, Telegram's limit for a bot's document).",
    )
    reply_files_max_bytes: int = Field(
        default=20 * 1024 * 1024, ge=1, le=200 * 1024 * 1024,
        description="All the files of one reply together may be at most this large.",
    )

    # -- sweeps ----------------------------------------------------------------
    sweep_interval_s: float = Field(default=15.0, gt=0, description="Scheduler tick.")
    sweep_grace_s: float = Field(
        default=30.0,
        ge=0,
        description="A message unrouted (or a reply approved but unsent) for longer than "
        "this is re-enqueued by the sweep.",
    )
    sending_stale_s: float = Field(
        default=900.0,
        gt=0,
        description="A reply left in 'sending' this long is reconciled with its provider. It "
        "must exceed the longest a send may take (SMTP: 8 x timeout_s + data_timeout_s, "
        "checked at start-up), or a reply still waiting for its answer would be resent.",
    )

    # -- web -------------------------------------------------------------------
    web_host: str = "127.0.0.1"
    web_port: int = 8000
    secret_key: SecretStr = Field(
        default=SecretStr("dev-only-change-me"),
        description="Signs sessions and reply tokens. Must be set in the fleet.",
    )
    base_url: str = Field(
        default="", pattern=r"^(https?://[^/?#\s]+(/[^?#\s]*)?)?$",
        description="The console's public address, for links we send (password reset "
        "links). Unset: http://WEB_HOST:WEB_PORT; never the request's Host header.",
    )
    forwarded_allow_ips: str = Field(
        default="", description="Comma-separated addresses (or networks) of the reverse "
        "proxies whose X-Forwarded-For/-Proto `kartabl web` trusts; '*' any. Unset: none.",
    )
    metrics_token: SecretStr | None = Field(
        default=None, description="When set, /metrics answers only 'Authorization: Bearer "
        "<this>' (Prometheus: authorization.credentials). Unset: /metrics is open.",
    )
    metrics_address: str = Field(
        default="", pattern=r"^([A-Za-z0-9.\-]+|\[[0-9A-Fa-f:]+\]):[0-9]{1,5}$|^$",
        description="host:port (e.g. 127.0.0.1:9464) where `kartabl web` serves /metrics on "
        "a listener of its own, for a private interface; the console's /metrics then answers "
        "404. Unset: /metrics is on the console's port.",
    )

    live_poll_s: float = Field(
        default=5.0, gt=0, le=3600,
        description="Each web process reads new events this often even when no commit woke "
        "it (a wake is lost when Redis is briefly away); wakes push them at once.",
    )
    presence_heartbeat_s: float = Field(
        default=15.0, gt=0, le=300,
        description="An open conversation page tells who is on it (viewing or drafting) this "
        "often while it is visible (collision notices).",
    )
    presence_expiry_s: float = Field(
        default=45.0, gt=0, le=3600,
        description="Someone whose page has not beaten for this long is no longer shown on "
        "a conversation (a closed laptop); keep it above the heartbeat.",
    )

    # -- console sign-in --------------------------------------------------------
    session_hours: float = Field(
        default=12.0, gt=0, description="A console session ends this long after sign-in."
    )
    session_idle_minutes: float = Field(
        default=120.0, gt=0, description="A session unused this long ends."
    )
    cookie_secure: bool = Field(
        default=True,
        description="Send the session cookie only over HTTPS. Browsers treat http://localhost "
        "and 127.0.0.1 as secure, so the embedded mode works with the default.",
    )
    login_max_failures: int = Field(
        default=5, ge=1, description="Failed sign-ins for a username from one client address "
        "per window before that address is refused for it; from all addresses together, "
        "before every sign-in for that username is slowed down (never refused).",
    )
    login_max_failures_per_ip: int = Field(
        default=30, ge=1, description="Failed sign-ins per client address per window."
    )
    login_window_minutes: float = Field(default=15.0, gt=0)
    login_slow_down_s: float = Field(
        default=1.0, ge=0, description="The wait of a sign-in for a username past "
        "login_max_failures failures from all addresses; doubled per further failure, at "
        "most 4 times this.",
    )
    password_reset_hours: float = Field(
        default=24.0, gt=0, description="How long a password reset link stays valid."
    )

    # -- service targets (the overdue queue and the reports) -------------------
    first_response_target_minutes: float = Field(
        default=240.0, gt=0,
        description="An open conversation with no reply sent this long after it opened is overdue.",
    )
    resolution_target_hours: float = Field(
        default=72.0, gt=0,
        description="An open conversation still open this long after it opened is overdue.",
    )

    # -- demo (embedded `kartabl run` only) -------------------------------------
    demo_interval_s: float = Field(
        default=3.0, gt=0, description="How often the demo driver plays one round of "
        "customers, agents and the coordinator.",
    )

    # -- logs ------------------------------------------------------------------
    log_level: str = "INFO"
    log_format: Literal["console", "json"] = "console"

    @field_validator("database_url")
    @classmethod
    def _psycopg3(cls, v: str) -> str:
        # SQLAlchemy's bare postgresql:// means psycopg2; we ship psycopg 3.
        if v.startswith("postgresql://") or v.startswith("postgres://"):
            v = "postgresql+psycopg://" + v.split("://", 1)[1]
        return v

    @property
    def reopen_window(self) -> timedelta:
        """``reopen_window_hours`` as the router takes it."""
        return timedelta(hours=self.reopen_window_hours)

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    def check_fleet(self) -> None:
        """Fail fast when a fleet process, or one talking to real channels, starts with the
        development secret: it signs sessions and the reply tokens in outgoing Message-IDs,
        and anyone can read the default in the source."""
        if self.secret_key.get_secret_value() != "dev-only-change-me":
            return
        if self.broker == "redis":
            raise SystemExit("KARTABL_SECRET_KEY must be set when running the fleet (broker=redis)")
        if self.channels_file is not None:
            raise SystemExit("KARTABL_SECRET_KEY must be set when real channels are configured "
                             "(KARTABL_CHANNELS_FILE): it signs the reply tokens")


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
