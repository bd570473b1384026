"""The ``[meta]`` section of the channels file: Instagram Direct and WhatsApp through Meta's
official APIs (issue 16), one Meta app for both.

- ``app_secret`` signs every webhook POST (``X-Hub-Signature-256``: HMAC-SHA256 of the raw
  body); ``verify_token`` answers the webhook verification GET (``hub.verify_token``).
- ``[[meta.instagram]]``: one professional account each (its Instagram id, the token its
  Send API calls carry); ``human_agent = true`` once the app has Meta's Human Agent
  feature: replies then carry the ``HUMAN_AGENT`` tag and may leave up to 7 days after the
  customer's last message instead of 24 h.
- ``[[meta.whatsapp]]``: one business phone number each (its ``phone_number_id``, a token
  of a system user allowed to send from it), and optionally ``reengagement_template``: an
  approved template with one body parameter, in which a reply approved after the 24 h
  window is sent.

Secrets are given inline (local tests) or, better, as the names of environment variables
read when the file is loaded (``*_env``); all are :class:`~pydantic.SecretStr`: never in
reprs, logs or errors. ``graph_url`` is configurable so the tests and the demo reach the
stand-in (:mod:`channels.meta.standin`); a real app keeps the default.
"""

from __future__ import annotations

import os

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator


def _secret(value: SecretStr, env: str, what: str) -> SecretStr:
    if not env:
        return value
    found = os.environ.get(env)
    if found is None:
        raise ValueError(f"environment variable {env} ({what}) is not set")
    return SecretStr(found)


class InstagramAccount(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str = Field(pattern=r"^[0-9]{1,30}$")  # the professional account's Instagram id
    name: str = Field(default="", max_length=64)  # for people: logs, the console
    access_token: SecretStr = SecretStr("")
    access_token_env: str = ""
    team: str | None = None  # the default team of its messages when no rule chooses one
    human_agent: bool = False  # the app has the Human Agent feature: 7-day window, tagged

    @model_validator(mode="after")
    def _resolve(self) -> InstagramAccount:
        self.access_token = _secret(self.access_token, self.access_token_env,
                                    f"token of Instagram account {self.id}")
        if not self.access_token.get_secret_value():
            raise ValueError(f"instagram account {self.id}: access_token(_env) is required")
        return self


class WhatsAppNumber(BaseModel):
    model_config = ConfigDict(extra="forbid")
    phone_number_id: str = Field(pattern=r"^[0-9]{1,30}$")  # Meta's id of the number
    name: str = Field(default="", max_length=64)
    access_token: SecretStr = SecretStr("")
    access_token_env: str = ""
    team: str | None = None
    # An approved message template with one body parameter ({{1}}): a reply approved after
    # the 24 h window goes as this template, the reply's text as its parameter. Empty:
    # such a reply is refused at approval (WhatsApp takes nothing else outside the window).
    reengagement_template: str = Field(default="", pattern=r"^[a-z0-9_]{0,512}$")
    template_language: str = Field(default="fa", pattern=r"^[a-z]{2,3}(_[A-Z]{2})?$")

    @model_validator(mode="after")
    def _resolve(self) -> WhatsAppNumber:
        self.access_token = _secret(self.access_token, self.access_token_env,
                                    f"token of WhatsApp number {self.phone_number_id}")
        if not self.access_token.get_secret_value():
            raise ValueError(f"whatsapp number {self.phone_number_id}: access_token(_env) "
                             "is required")
        return self


class MetaConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    app_secret: SecretStr = SecretStr("")
    app_secret_env: str = ""
    verify_token: SecretStr = SecretStr("")
    verify_token_env: str = ""
    graph_url: str = Field(default="https://graph.facebook.com/v21.0",
                           pattern=r"^https?://[^/]+(/.*)?$")
    instagram: list[InstagramAccount] = []
    whatsapp: list[WhatsAppNumber] = []
    connect_timeout_s: float = Field(default=5.0, gt=0)
    timeout_s: float = Field(default=20.0, gt=0)  # reading an answer, once the request left

    @model_validator(mode="after")
    def _resolve(self) -> MetaConfig:
        self.app_secret = _secret(self.app_secret, self.app_secret_env, "Meta app secret")
        self.verify_token = _secret(self.verify_token, self.verify_token_env,
                                    "Meta webhook verify token")
        if not self.app_secret.get_secret_value():
            # Without it no webhook could be told from a forgery: nothing would be stored.
            raise ValueError("meta: app_secret or app_secret_env is required")
        if len(self.verify_token.get_secret_value()) < 16:
            raise ValueError("meta: verify_token(_env) of at least 16 characters is required")
        self.graph_url = self.graph_url.rstrip("/")
        for what, ids in (("instagram account ids", [a.id for a in self.instagram]),
                          ("whatsapp phone_number_ids",
                           [n.phone_number_id for n in self.whatsapp])):
            dupes = sorted({i for i in ids if ids.count(i) > 1})
            if dupes:
                raise ValueError(f"meta: {what} must be unique: {', '.join(dupes)}")
        return self

    def instagram_account(self, account_id: str) -> InstagramAccount | None:
        return next((a for a in self.instagram if a.id == account_id), None)

    def whatsapp_number(self, phone_number_id: str) -> WhatsAppNumber | None:
        return next((n for n in self.whatsapp if n.phone_number_id == phone_number_id), None)

    @property
    def worst_case_s(self) -> float:
        """The longest one send can take (one request: connect, then the answer)."""
        return self.connect_timeout_s + self.timeout_s
