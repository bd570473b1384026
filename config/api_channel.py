"""The ``[[api]]`` entries of the channels file: generic API channels (issue 16, part 2).

One entry per external system Kartabl does not speak natively (a shop's backend, a relay
for a messenger): its ``name`` (in the webhook's URL, in external ids and in the customers'
addresses, ``<name>:<their user id>``), the ``secret`` both sides sign with (HMAC-SHA256,
:mod:`channels.api.signing`), the ``callback_url`` replies are POSTed to, the timeouts of
that POST, the default ``team`` of its messages, and the largest body it may send us.

The secret is given inline (``secret``, for local tests) or, better, as the name of an
environment variable (``secret_env``) read when the file is loaded. It is a
:class:`~pydantic.SecretStr`: never in reprs, logs or errors.
"""

from __future__ import annotations

import os
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, SecretStr, model_validator

MIN_SECRET = 32  # characters: the only thing between the internet and the inbox


class ApiChannelConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    # in URLs (/webhooks/api/<name>), external ids and addresses ("<name>:<user id>")
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,31}$")
    secret: SecretStr = SecretStr("")
    secret_env: str = ""
    # where replies are POSTed; empty: inbound only (a reply on this channel fails at once)
    callback_url: str = Field(default="", pattern=r"^(https?://[^/\s]+\S*)?$")
    team: str | None = None  # the default team of its messages when no rule chooses one
    max_body_bytes: int = Field(default=15_000_000, ge=1_000, le=100_000_000)
    connect_timeout_s: float = Field(default=5.0, gt=0)
    timeout_s: float = Field(default=20.0, gt=0)  # reading the callback's answer

    @model_validator(mode="after")
    def _resolve(self) -> ApiChannelConfig:
        if self.secret_env:
            value = os.environ.get(self.secret_env)
            if value is None:
                raise ValueError(f"environment variable {self.secret_env} (secret of API "
                                 f"channel {self.name}) is not set")
            self.secret = SecretStr(value)
        if len(self.secret.get_secret_value()) < MIN_SECRET:
            raise ValueError(f"api channel {self.name}: secret (or secret_env) of at least "
                             f"{MIN_SECRET} characters is required")
        return self

    @property
    def worst_case_s(self) -> float:
        """The longest one callback can take (connect, write, read, each bounded). The
        outbox must not reconcile a reply before that."""
        return 2 * self.connect_timeout_s + 2 * self.timeout_s


def unique_names(channels: list[ApiChannelConfig]) -> list[ApiChannelConfig]:
    names = [c.name for c in channels]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ValueError(f"api channel names must be unique: {', '.join(dupes)}")
    return channels


# The channels file's ``api`` field: a list of entries with unique names.
ApiChannels = Annotated[list[ApiChannelConfig], AfterValidator(unique_names)]
