"""The report's durations in business time (issue 15): first response and resolution of
each conversation counted on its team's calendar (:mod:`kartabl.business_hours`: working
hours, Iran's official holidays, the team's days off), the resolution less the business
time spent waiting on the customer (:class:`~kartabl.models.ConversationPause`). A
conversation with no team, or a team without ``hours``, counts wall time."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from config.routing import team_config
from kartabl import service_clock
from kartabl.business_hours import Calendar, business_seconds, calendar_for
from kartabl.models import Conversation, ConversationPause, Team

BASIS = "business"  # what the report's times count (the page and the CSV say so)


@dataclass
class Durations:
    first: list[float] = field(default_factory=list)  # minutes
    resolved: list[float] = field(default_factory=list)
    by_team: dict[int | None, tuple[list[float], list[float]]] = field(
        default_factory=lambda: defaultdict(lambda: ([], [])))


def _calendars(session: Session, team_ids: set[int]) -> dict[int | None, Calendar]:
    routing = service_clock.current().routing  # as the clock that set the due times
    out: dict[int | None, Calendar] = {None: calendar_for(None)}
    for tid, name in session.execute(select(Team.id, Team.name).where(Team.id.in_(team_ids))):
        out[tid] = calendar_for(team_config(routing, name))
    return out


def business_durations(session: Session, cohort: tuple[Any, ...]) -> Durations:
    """The first-response and resolution minutes of the conversations of ``cohort`` (WHERE
    clauses on :class:`Conversation`) that have them, in business time, overall and per
    team."""
    rows = session.execute(
        select(Conversation.id, Conversation.team_id, Conversation.opened_at,
               Conversation.first_response_at, Conversation.resolved_at)
        .where(*cohort, or_(Conversation.first_response_at.is_not(None),
                            Conversation.resolved_at.is_not(None)))
    ).all()
    pauses: dict[int, list[tuple[datetime, datetime]]] = defaultdict(list)
    for cid, start, end in session.execute(
        select(ConversationPause.conversation_id, ConversationPause.started_at,
               ConversationPause.ended_at)
        .join(Conversation, Conversation.id == ConversationPause.conversation_id)
        .where(*cohort, Conversation.resolved_at.is_not(None),
               ConversationPause.ended_at.is_not(None))
    ):
        if end is not None:  # the query's condition; for the type checker
            pauses[cid].append((start, end))
    calendars = _calendars(session, {r.team_id for r in rows if r.team_id is not None})
    out = Durations()
    for cid, team_id, opened, responded, closed in rows:
        cal = calendars.get(team_id, calendars[None])
        team = out.by_team[team_id]
        if responded is not None:
            minutes = max(0.0, business_seconds(cal, opened, responded) / 60)
            out.first.append(minutes)
            team[0].append(minutes)
        if closed is not None:
            paused = sum(business_seconds(cal, max(a, opened), min(b, closed))
                         for a, b in pauses.get(cid, ()))
            minutes = max(0.0, (business_seconds(cal, opened, closed) - paused) / 60)
            out.resolved.append(minutes)
            team[1].append(minutes)
    return out
