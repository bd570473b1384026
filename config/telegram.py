"""The ``[[telegram.bots]]`` section of the channels file: Telegram and Bale bots (issue 4).

Bale serves a Telegram-shaped Bot API, so a Bale bot is the same adapter with another base
URL and another identity namespace (the ``bale`` channel): everything that differs between
the two lives in :data:`KINDS`, and nowhere else. A bot's kind is the name of its channel
(a value of :class:`kartabl.models.Channel`; ``config`` is below the core, so it speaks the
name, and the layers above turn it into the enum where they need one).

The token is given inline (``token``, for local tests) or, better, as the name of an
environment variable (``token_env``) read when the file is loaded; so is the webhook secret.
Both are :class:`~pydantic.SecretStr`: never in reprs, logs or errors. (python-telegram-bot
puts the token in every request URL: :mod:`channels.telegram.bot` keeps httpx's request
logs quiet for that reason.)
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

BotKind = Literal["telegram", "bale"]  # each is also the name of the bot's channel


@dataclass(frozen=True, slots=True)
class KindDefaults:
    provider: str  # the service's name, in the reasons and messages people read
    base_url: str  # python-telegram-bot appends the token: it ends with "/bot"
    base_file_url: str


# The one place where Bale differs from Telegram.
KINDS: dict[str, KindDefaults] = {
    "telegram": KindDefaults("Telegram", "https://api.telegram.org/bot",
                             "https://api.telegram.org/file/bot"),
    "bale": KindDefaults("Bale", "https://tapi.bale.ai/bot", "https://tapi.bale.ai/file/bot"),
}


def _from_env(name: str, what: str) -> SecretStr:
    value = os.environ.get(name)
    if value is None:
        raise ValueError(f"environment variable {name} ({what}) is not set")
    return SecretStr(value)


class BotConfig(BaseModel):
    # hide_input_in_errors: a validation error would otherwise print the raw input (its
    # repr keeps a token's first and last characters), before SecretStr masks anything
    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")  # in URLs and external ids
    kind: BotKind = "telegram"
    token: SecretStr = SecretStr("")
    token_env: str = ""
    base_url: str = ""  # empty: the kind's; must end with "/bot" (the token follows)
    mode: Literal["webhook", "polling"] = "webhook"
    webhook_secret: SecretStr = SecretStr("")
    webhook_secret_env: str = ""
    team: str | None = None  # the default team of its messages when no rule chooses one
    timeout_s: float = Field(default=10.0, gt=0)
    poll_timeout_s: int = Field(default=25, ge=0, le=50)  # getUpdates long-poll wait

    @model_validator(mode="after")
    def _resolve(self) -> BotConfig:
        if self.token_env:
            self.token = _from_env(self.token_env, f"token of bot {self.name}")
        if not self.token.get_secret_value():
            raise ValueError(f"bot {self.name}: token or token_env is required")
        if self.webhook_secret_env:
            self.webhook_secret = _from_env(self.webhook_secret_env,
                                            f"webhook secret of bot {self.name}")
        if self.mode == "webhook" and not self.webhook_secret.get_secret_value():
            # An unsigned webhook lets anyone who guesses the URL write into the inbox.
            raise ValueError(f"bot {self.name}: a webhook bot needs webhook_secret(_env)")
        if self.base_url and not self.base_url.endswith("/bot"):
            raise ValueError(f"bot {self.name}: base_url must end with '/bot'")
        return self

    @property
    def channel(self) -> BotKind:
        """The name of the bot's channel: its kind."""
        return self.kind

    @property
    def provider(self) -> str:
        """The service's name (Telegram, Bale), for the reasons people read."""
        return KINDS[self.kind].provider

    @property
    def effective_base_url(self) -> str:
        return self.base_url or KINDS[self.kind].base_url

    @property
    def effective_base_file_url(self) -> str:
        if self.base_url:  # a stand-in or a local Bot API server: files beside it
            return self.base_url.removesuffix("/bot") + "/file/bot"
        return KINDS[self.kind].base_file_url

    @property
    def cursor_name(self) -> str:
        return f"telegram:{self.name}"


class TelegramConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    bots: list[BotConfig] = []

    @model_validator(mode="after")
    def _unique_names(self) -> TelegramConfig:
        names = [b.name for b in self.bots]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"bot names must be unique: {', '.join(dupes)}")
        return self

    def bot(self, name: str) -> BotConfig | None:
        return next((b for b in self.bots if b.name == name), None)

    def of_channel(self, channel: str) -> list[BotConfig]:
        """The bots of ``channel`` (a channel name, or the enum, which is a ``str``)."""
        return [b for b in self.bots if b.channel == channel]
