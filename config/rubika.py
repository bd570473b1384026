"""The ``[[rubika.bots]]`` section of the channels file: Rubika bots on Rubika's official
Bot API (``https://botapi.rubika.ir/v3/<token>/<method>``, POST with a JSON body).

A bot is read by polling (``getUpdates``, ``kartabl poll rubika``) or receives its updates
by webhook (the endpoint registered with ``updateBotEndpoints``, ``kartabl rubika
set-webhook``). Rubika does not sign the requests it sends to an endpoint, so a webhook bot's
URL carries a secret path segment of at least 16 characters, as the Kavenegar callback does.

The token is given inline (``token``, for local tests) or, better, as the name of an
environment variable (``token_env``); so is the webhook secret. Both are
:class:`~pydantic.SecretStr`. The token is part of every request URL:
:mod:`channels.rubika.api` keeps it out of logs and error texts.
"""

from __future__ import annotations

import os
import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

DEFAULT_BASE_URL = "https://botapi.rubika.ir/v3"
_SECRET = re.compile(r"[A-Za-z0-9_-]{16,256}")


def _from_env(name: str, what: str) -> SecretStr:
    value = os.environ.get(name)
    if value is None:
        raise ValueError(f"environment variable {name} ({what}) is not set")
    return SecretStr(value)


class RubikaBot(BaseModel):
    # hide_input_in_errors: a validation error would otherwise print the raw input, the
    # token and the webhook secret in it (pydantic masks SecretStr values only once parsed)
    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")  # in URLs and external ids
    token: SecretStr = SecretStr("")
    token_env: str = ""
    base_url: str = DEFAULT_BASE_URL  # "<base_url>/<token>/<method>"; a stand-in's in tests
    mode: Literal["polling", "webhook"] = "polling"
    webhook_secret: SecretStr = SecretStr("")
    webhook_secret_env: str = ""
    team: str | None = None  # the default team of its messages when no rule chooses one
    timeout_s: float = Field(default=6.0, gt=0)  # connect, read, write, pool: each
    poll_interval_s: float = Field(default=5.0, gt=0)  # getUpdates answers at once: no wait
    limit: int = Field(default=100, ge=1, le=100)  # updates per getUpdates

    @model_validator(mode="after")
    def _resolve(self) -> RubikaBot:
        if self.token_env:
            self.token = _from_env(self.token_env, f"token of Rubika bot {self.name}")
        if not self.token.get_secret_value():
            raise ValueError(f"Rubika bot {self.name}: token or token_env is required")
        if "/" in self.token.get_secret_value():
            raise ValueError(f"Rubika bot {self.name}: a token has no '/'")
        if self.webhook_secret_env:
            self.webhook_secret = _from_env(self.webhook_secret_env,
                                            f"webhook secret of Rubika bot {self.name}")
        if self.mode == "webhook" and not _SECRET.fullmatch(
                self.webhook_secret.get_secret_value()):
            # Rubika signs nothing: the secret path is all that keeps strangers out.
            raise ValueError(f"Rubika bot {self.name}: a webhook bot needs a webhook "
                             "secret (webhook_secret_env) of at least 16 characters, "
                             "A-Z a-z 0-9 _ - only (it is a segment of the URL)")
        if not self.base_url.startswith(("https://", "http://")):
            raise ValueError(f"Rubika bot {self.name}: base_url must be an http(s) URL")
        self.base_url = self.base_url.rstrip("/")
        return self

    @property
    def cursor_name(self) -> str:
        """Its poller's name: the lock, the status row and the stored offset."""
        return f"rubika:{self.name}"


class RubikaConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    bots: list[RubikaBot] = []

    @model_validator(mode="after")
    def _unique_names(self) -> RubikaConfig:
        names = [b.name for b in self.bots]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"Rubika bot names must be unique: {', '.join(dupes)}")
        return self

    def bot(self, name: str) -> RubikaBot | None:
        return next((b for b in self.bots if b.name == name), None)
