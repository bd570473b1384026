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


class TeamConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")
    title: str = ""


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


def load(path: Path) -> RoutingConfig:
    return load_toml(path, RoutingConfig, "routing file")


@lru_cache(maxsize=1)
def get_routing() -> RoutingConfig:
    return load(get_settings().routing_file)
