"""The ``[[telegram.bots]]`` section of the channels file: Telegram and Bale bots (issue 4).

Skeleton: the messenger channel fills in its fields (token, base URL, kind, mode, webhook
secret, team)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class TelegramConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
