"""The ``[webchat]`` section of the channels file: the website chat widget's limits (issue 16).

The widgets themselves (origins, team, colours, texts, the HMAC secret) are rows an admin
edits in the console (``/widgets``), not settings: a business adds a site without a restart.
What is here bounds what any visitor may cost: the message size, the rates, how long a
stream lives. Every field has a default, so a channels file without the section serves
widgets with them.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class WebchatConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    max_chars: int = Field(default=4000, ge=1, le=100_000)  # one visitor message
    # Messages per minute (sliding 60 s window, every web process): per client address, and
    # per visitor (a visitor behind a shared address is still limited on their own).
    per_ip_per_min: int = Field(default=60, ge=1)
    per_visitor_per_min: int = Field(default=20, ge=1)
    # New visitors per minute per client address: a script minting visitors is one address.
    visitors_per_ip_per_min: int = Field(default=30, ge=1)
    stream_s: float = Field(default=300.0, gt=0)  # a stream's life; the browser reconnects
    heartbeat_s: float = Field(default=15.0, gt=0)  # a comment line, for proxies' timeouts
    poll_s: float = Field(default=2.0, gt=0)  # a stream looks on its own (a lost wake)
    # Only when a proxy in front is trusted: then its X-Forwarded-For's last hop is the
    # client's address for the per-address limit (threats.md: never trusted by default).
    trust_forwarded_for: bool = False
    # The offline continuation: a visitor with no event stream open for this long is gone,
    # and an approved reply also goes by SMS (or email) to the contact they gave.
    away_s: float = Field(default=60.0, gt=0)
