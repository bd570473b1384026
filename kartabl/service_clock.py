"""The service clock: a conversation's first-response and resolution due times, counted in
its team's business time (:mod:`kartabl.business_hours`), stored on the conversation so the
overdue queue, its count and the breach warnings are plain comparisons on an index.

Targets, most specific first: the team's ``channel_targets`` for the conversation's channel,
the team's ``targets``, then the settings' ``first_response_target_minutes`` /
``resolution_target_hours``. A conversation with no team (triage) uses the settings'
targets on a round-the-clock calendar.

- **First response** is due ``target`` business seconds after ``opened_at``. Pauses do not
  move it: waiting on the customer is about the resolution.
- **Resolution** is due ``target`` business seconds after ``opened_at``, not counting the
  business time inside :class:`~kartabl.models.ConversationPause` rows. While a pause is
  open the due time is NULL (the clock stands still); ending the pause computes it again,
  later by the paused business time.
- ``*_warn_at``: when 80% (:data:`kartabl.notifications.WARN_AT`) of the business time
  has run; the sweep's breach warnings are sent from then until the due time.

:func:`refresh` is the one function that writes them; it is called by every step that can
move them: routing and assignment to a team (router.batch, workflow assign/refer), waiting
on and off and snoozing (:mod:`kartabl.workflow.waiting`), the first response (the outbox),
reopening. The routing file (teams' hours, targets, policies) and the settings' default
targets are handed in once by the process edge (:func:`configure`, next to
``kartabl.db.configure``), as the reply tokens' key is: the core fetches no configuration.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from sqlalchemy import select
from sqlalchemy.orm import Session

from config.routing import RoutingConfig, TeamConfig, team_config
from config.settings import Settings
from kartabl.business_hours import (
    Calendar,
    add_business_seconds,
    business_seconds,
    calendar_for,
)
from kartabl.models import Conversation, ConversationPause, Team

WARN_AT: Final = 0.8  # the share of a target's business time after which it warns


@dataclass(frozen=True, slots=True)
class ClockConfig:
    """What the clock needs of the process's configuration."""

    routing: RoutingConfig
    first_response_minutes: float  # the settings' defaults, for teams without targets
    resolution_hours: float


_config: ClockConfig | None = None


def configure(settings: Settings, routing: RoutingConfig) -> None:
    """The process edge (boot.kinds.start, the CLI, a test's fixture) hands in the routing
    file it read and its settings, once, before anything routes or steps."""
    global _config
    _config = ClockConfig(routing, settings.first_response_target_minutes,
                          settings.resolution_target_hours)


def deconfigure() -> None:
    """Forget the configuration (tests: no test may count on another's)."""
    global _config
    _config = None


def current() -> ClockConfig:
    if _config is None:
        # a process that forgot its edge would count every target wrong: refuse loudly
        raise RuntimeError("the service clock is not configured: the process calls "
                           "kartabl.service_clock.configure(settings, routing) at its start")
    return _config


@dataclass(frozen=True, slots=True)
class Policy:
    calendar: Calendar
    first_response_s: float
    resolution_s: float


def policy_for(team: TeamConfig | None, channel: str) -> Policy:
    """The calendar and targets (seconds) of ``team`` (None: the settings' alone)."""
    cfg = current()
    first_min: float = cfg.first_response_minutes
    resolution_h: float = cfg.resolution_hours
    if team is not None:
        for level in (team.targets, team.channel_targets.get(channel)):  # type: ignore[call-overload]
            if level is None:
                continue
            if level.first_response_minutes is not None:
                first_min = level.first_response_minutes
            if level.resolution_hours is not None:
                resolution_h = level.resolution_hours
    return Policy(calendar_for(team), first_min * 60.0, resolution_h * 3600.0)


def conversation_policy(session: Session, conv: Conversation,
                        names: Mapping[int, str] | None = None) -> Policy:
    """``names``: team id -> name, as far as the caller knows them (saves a query)."""
    name: str | None = None
    if conv.team_id is not None:
        name = (names or {}).get(conv.team_id)
        if name is None:
            team = session.get(Team, conv.team_id)
            name = team.name if team is not None else None
    return policy_for(team_config(current().routing, name), str(conv.channel))


def resolution_due(calendar: Calendar, opened: datetime, target_s: float,
                   pauses: list[tuple[datetime, datetime | None]]) -> datetime | None:
    """When ``target_s`` of business time has run since ``opened``, pauses left out; None
    while a pause that started before that moment is still open."""
    cur, left = opened, target_s
    for start, end in sorted(pauses, key=lambda p: p[0]):
        if end is not None and end <= cur:
            continue
        running = business_seconds(calendar, cur, start) if start > cur else 0.0
        if running >= left:
            break
        left -= running
        if end is None:
            return None
        cur = max(cur, end)
    return add_business_seconds(calendar, cur, left)


def refresh(session: Session, conv: Conversation, now: datetime, *,
            no_pauses: bool = False, names: Mapping[int, str] | None = None) -> None:
    """Recompute ``conv``'s due and warning times from its opening, its team's calendar and
    targets, and its pauses. ``now`` is when the caller's step happened (unused by the
    arithmetic, which depends only on the stored facts: the same call twice gives the same
    times; kept so that callers say when). ``no_pauses``: the caller knows it has none (a
    conversation created in this transaction), which saves the query."""
    del now
    policy = conversation_policy(session, conv, names)
    opened = conv.opened_at
    cal = policy.calendar
    conv.first_response_due_at = add_business_seconds(cal, opened, policy.first_response_s)
    conv.first_response_warn_at = add_business_seconds(
        cal, opened, policy.first_response_s * WARN_AT)
    pauses: list[tuple[datetime, datetime | None]] = []
    if conv.id is not None and not no_pauses:
        pauses = [(a, b) for a, b in session.execute(
            select(ConversationPause.started_at, ConversationPause.ended_at)
            .where(ConversationPause.conversation_id == conv.id))]
        pauses += [(p.started_at, p.ended_at) for p in session.new
                   if isinstance(p, ConversationPause) and p.conversation_id == conv.id]
    conv.resolution_due_at = resolution_due(cal, opened, policy.resolution_s, pauses)
    conv.resolution_warn_at = resolution_due(cal, opened, policy.resolution_s * WARN_AT,
                                             pauses)
