"""The routing file: teams, routing rules and the approval policy (TOML).

Loaded once per process and validated up front, so a typo in a rule fails at start-up with
the rule's name rather than silently routing everything to triage.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from config.settings import get_settings
from config.toml import load_toml

ChannelName = Literal["email", "sms", "telegram", "bale"]


Weekday = Literal["sat", "sun", "mon", "tue", "wed", "thu", "fri"]
# "08:00-12:30"; "24:00" ends a span at midnight
_SPAN = r"^([01][0-9]|2[0-3]):[0-5][0-9]-(([01][0-9]|2[0-3]):[0-5][0-9]|24:00)$"
# a Jalali (1200-1699) or Gregorian date, YYYY-MM-DD or YYYY/MM/DD
_DAY = r"^[0-9]{4}[-/][0-9]{1,2}[-/][0-9]{1,2}$"


class Targets(BaseModel):
    """Service targets counted in business time; unset: the next level's (the team's, then
    the settings' ``first_response_target_minutes`` / ``resolution_target_hours``)."""

    model_config = ConfigDict(extra="forbid")
    first_response_minutes: float | None = Field(default=None, gt=0, le=525_600)
    resolution_hours: float | None = Field(default=None, gt=0, le=8_760)


def _real_day(text: str) -> bool:
    """A day that exists (Jalali when its year is 1200-1699, as kartabl.business_hours reads it)."""
    from datetime import date

    import jdatetime

    y, m, d = (int(p) for p in text.replace("/", "-").split("-"))
    try:
        jdatetime.date(y, m, d) if 1200 <= y < 1700 else date(y, m, d)
    except ValueError:
        return False
    return True


class TeamConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")
    title: str = ""
    # After a reply to the customer is sent, the conversation waits on the customer
    # (kartabl.workflow.waiting): its resolution clock pauses until they write.
    wait_after_reply: bool = False
    # Business hours (kartabl.business_hours). No ``hours``: round the clock, every day,
    # no holidays (the targets then count wall-clock time, as before).
    timezone: str = "Asia/Tehran"
    hours: dict[Weekday, list[str]] | None = None
    iran_holidays: bool = True  # Iran's official holidays off (with ``hours`` only)
    days_off: list[str] = []  # the team's own: "1405-02-10" (Jalali) or "2026-05-01"
    targets: Targets = Targets()
    channel_targets: dict[ChannelName, Targets] = {}

    @model_validator(mode="after")
    def _valid_calendar(self) -> TeamConfig:
        import re
        from zoneinfo import ZoneInfo

        try:
            ZoneInfo(self.timezone)
        except (KeyError, ValueError) as exc:  # ZoneInfoNotFoundError is a KeyError
            raise ValueError(f"team {self.name!r}: unknown time zone {self.timezone!r}") from exc
        for day, spans in (self.hours or {}).items():
            for span in spans:
                if not re.match(_SPAN, span) or span[:5] >= span[6:]:
                    raise ValueError(f"team {self.name!r}: {day} span {span!r} is not "
                                     "HH:MM-HH:MM with the start before the end")
        if self.hours is not None and not any(self.hours.values()):
            # no working time at all: every due time would be unreachable
            raise ValueError(f"team {self.name!r}: hours given but no working span in them "
                             "(leave hours out for round the clock)")
        for off in self.days_off:
            if not re.match(_DAY, off) or not _real_day(off):
                raise ValueError(f"team {self.name!r}: day off {off!r} is not YYYY-MM-DD")
        return self


class Rule(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    team: str
    channels: list[ChannelName] = []
    keywords: list[str] = []
    tags: list[str] = []

    @model_validator(mode="after")
    def _has_condition(self) -> Rule:
        if not (self.channels or self.keywords or self.tags):
            raise ValueError(f"rule {self.name!r} has no condition (channels, keywords or tags)")
        return self


class ApprovalPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid")
    # "all": every reply is reviewed. Names in the trusted lists skip review even then;
    # the lists are empty by default, so the default is to review everything.
    mode: Literal["all", "none"] = "all"
    trusted_agents: list[str] = []
    trusted_teams: list[str] = []


class RoutingConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    teams: list[TeamConfig] = []
    rules: list[Rule] = []
    approval: ApprovalPolicy = ApprovalPolicy()

    @model_validator(mode="after")
    def _rules_name_teams(self) -> RoutingConfig:
        names = {t.name for t in self.teams}
        for rule in self.rules:
            if rule.team not in names:
                raise ValueError(f"rule {rule.name!r} names unknown team {rule.team!r}")
        return self


def team_config(routing: RoutingConfig, name: str | None) -> TeamConfig | None:
    return next((t for t in routing.teams if t.name == name), None)


def load(path: Path) -> RoutingConfig:
    return load_toml(path, RoutingConfig, "routing file")


@lru_cache(maxsize=1)
def get_routing() -> RoutingConfig:
    return load(get_settings().routing_file)
