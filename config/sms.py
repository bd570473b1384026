"""The ``[sms]`` section of the channels file: the Kavenegar account (issue 4).

The API key is given inline (``api_key``, for local tests) or, better, as the name of an
environment variable (``api_key_env``) read when the file is loaded; so is the webhook
secret. Both are :class:`~pydantic.SecretStr`: never in reprs, logs or errors. (The
Kavenegar API puts the key in every request *path*: :mod:`channels.sms.kavenegar` masks it.)

``base_url`` is configurable so the tests and the demo reach the stand-in
(:mod:`channels.sms.standin`) over plain HTTP; a real account keeps the default.
"""

from __future__ import annotations

import os

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator


def _from_env(name: str, what: str) -> SecretStr:
    value = os.environ.get(name)
    if value is None:
        raise ValueError(f"environment variable {name} ({what}) is not set")
    return SecretStr(value)


class SmsConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    api_key: SecretStr = SecretStr("")
    api_key_env: str = ""
    base_url: str = Field(default="https://api.kavenegar.com", pattern=r"^https?://[^/]+")
    line: str = Field(pattern=r"^\+?[0-9]{3,20}$")  # our sender number: replies leave from it
    more_lines: list[str] = []  # more of our numbers: polled, and answered from when used
    team: str | None = None  # the default team of inbound SMS when no rule chooses one
    # The secret path segment of the receive callback (/webhooks/sms/receive/<secret>).
    # Kavenegar does not sign the callback: without a secret the webhook answers 404.
    webhook_secret: SecretStr = SecretStr("")
    webhook_secret_env: str = ""
    poll: bool = False  # poll sms/receive (a fallback beside the callback, and backfill)
    poll_interval_s: float = Field(default=30.0, gt=0)
    connect_timeout_s: float = Field(default=5.0, gt=0)
    timeout_s: float = Field(default=20.0, gt=0)  # reading the answer, once the request left
    rate_per_s: int = Field(default=5, ge=1)  # outbound sends per second, all processes

    @model_validator(mode="after")
    def _resolve(self) -> SmsConfig:
        if self.api_key_env:
            self.api_key = _from_env(self.api_key_env, "Kavenegar API key")
        if not self.api_key.get_secret_value():
            raise ValueError("sms: api_key or api_key_env is required")
        if self.webhook_secret_env:
            self.webhook_secret = _from_env(self.webhook_secret_env, "SMS webhook secret")
        secret = self.webhook_secret.get_secret_value()
        if secret and (len(secret) < 16 or "/" in secret):
            # It is the only thing between the internet and the inbox: make it unguessable.
            raise ValueError("sms: webhook_secret must be at least 16 characters, without '/'")
        self.base_url = self.base_url.rstrip("/")
        return self

    @property
    def lines(self) -> list[str]:
        return [self.line, *(n for n in self.more_lines if n != self.line)]

    @property
    def worst_case_s(self) -> float:
        """The longest one send can take: a send, then (after a 5xx) a lookup, each may
        connect and then wait for the answer. The outbox must not reconcile before that."""
        return 2 * (self.connect_timeout_s + self.timeout_s)
