"""The ``[sms]`` section of the channels file: the Kavenegar account (issue 4).

Skeleton: the SMS channel fills in its fields (API key, base URL, lines, webhook secret,
polling, timeouts, rate)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class SmsConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
