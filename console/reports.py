"""The coordinator's report: volume, first-response and resolution times, backlog, overdue.

Decisions:
- Days are days in the display time zone (Asia/Tehran by default), inclusive at both ends:
  a conversation opened at 23:00 UTC counts on the next Tehran day.
- The cohort is the conversations *opened* in the range; their first-response time is
  opened_at → first_response_at (those answered so far) and their resolution time
  opened_at → resolved_at (those closed now; a reopen clears resolved_at), both in
  **business time** on the conversation's team calendar, the resolution less the time spent
  waiting on the customer (:mod:`console.report_clock`), overall and per team.
- Median and 90th percentile are computed in Python over the fetched durations with
  linear interpolation between closest ranks, which is exactly PostgreSQL's
  ``percentile_cont`` (and NumPy's default), so both databases give the same figures. The
  range is capped at :data:`MAX_DAYS` to keep that fetch bounded; volumes are GROUP BY.
- Backlog and overdue are "now", not the range: the open conversations in scope, overdue
  when unanswered past ``first_response_target_minutes`` or open past
  ``resolution_target_hours``.
- Scope: admins and coordinators get everything. Agents get a report over the
  conversations they can open anyway (theirs and their teams'), so the figures reveal no
  conversation they could not see; but the per-person breakdown shows only their own row,
  the rest of their teams' work folded into "others": ranking colleagues is for the
  coordinator, not for peers.
"""

from __future__ import annotations

import csv
import io
import math
import unicodedata
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, tzinfo
from typing import Any, Final

import jdatetime
from sqlalchemy import ColumnElement, case, func, or_, select
from sqlalchemy.orm import Session

from console.customers import conversation_scope
from console.dates import DEFAULT_TZ, day_bounds, display_tz
from console.queue_types import DEFAULT_TARGETS, Targets, _Cutoffs
from console.report_clock import BASIS, business_durations
from kartabl.errors import InputError
from kartabl.models import Channel, Conversation, ConversationStatus, Person, Team, utcnow
from kartabl.workflow.access import REVIEWERS, require_actor

MAX_DAYS: Final = 366


@dataclass(frozen=True)
class VolumeRow:
    key: str  # channel name; team or person id; "none" (no team), "unassigned", "others"
    label: str
    count: int


@dataclass(frozen=True)
class DurationStats:
    count: int  # conversations with a duration (answered, resp. resolved)
    median_minutes: float | None
    p90_minutes: float | None


@dataclass(frozen=True)
class Report:
    start: date
    end: date
    tz: str
    generated_at: datetime
    scope: str  # "all" (admins, coordinators) or "own" (an agent's conversations and teams)
    opened: int
    by_channel: tuple[VolumeRow, ...]  # every channel, zero included
    by_team: tuple[VolumeRow, ...]
    by_person: tuple[VolumeRow, ...]
    first_response: DurationStats
    resolution: DurationStats
    backlog: int  # open now
    overdue_first_response: int
    overdue_resolution: int
    overdue: int  # either target missed (a conversation counted once)
    first_response_target_minutes: float
    resolution_target_hours: float
    # -- business time (issue 15) --
    by_team_times: tuple[TeamTimes, ...] = ()
    time_basis: str = BASIS  # the durations count business time (console.report_clock)
    # -- satisfaction --
    # ratings at close of the conversations opened in the range (the website widget)
    rated: int = 0
    satisfaction_avg: float | None = None


@dataclass(frozen=True)
class TeamTimes:
    key: str  # team id, or "none"
    label: str
    first_response: DurationStats
    resolution: DurationStats


def percentile(sorted_values: Sequence[float], q: float) -> float | None:
    """``percentile_cont(q)``: linear interpolation between the closest ranks of the sorted
    values (rank q·(n-1), 0-based). None for no values."""
    if not sorted_values:
        return None
    if not 0 <= q <= 1:
        raise ValueError(f"percentile {q} outside [0, 1]")
    rank = q * (len(sorted_values) - 1)
    lo, hi = math.floor(rank), math.ceil(rank)
    low, high = sorted_values[lo], sorted_values[hi]
    return low + (high - low) * (rank - lo)


def _stats(minutes: list[float]) -> DurationStats:
    minutes.sort()
    return DurationStats(len(minutes), percentile(minutes, 0.5), percentile(minutes, 0.9))


def _count_if(cond: ColumnElement[bool]) -> Any:
    return func.coalesce(func.sum(case((cond, 1), else_=0)), 0)


def report(
    session: Session, actor: Person, start: date, end: date, tz: str | tzinfo = DEFAULT_TZ,
    *, now: datetime | None = None, targets: Targets = DEFAULT_TARGETS,
) -> Report:
    """The report for the days ``start``..``end`` (inclusive) in ``tz``, over the actor's
    scope. InputError for an empty or too long range or an unknown time zone. ``targets``:
    the app's (``Targets.from_settings``)."""
    require_actor("see reports", actor)
    if end < start:
        raise InputError(f"the range ends ({end}) before it starts ({start})",
                         code="range_backwards")
    if (end - start).days + 1 > MAX_DAYS:
        raise InputError(f"a report covers at most {MAX_DAYS} days", code="range_too_long",
                         params={"days": MAX_DAYS})
    zone = display_tz(tz)
    lo, hi = day_bounds(start, end, zone)
    now = now or utcnow()
    scope = conversation_scope(actor)
    cohort = (Conversation.opened_at >= lo, Conversation.opened_at < hi, scope)

    volumes = session.execute(
        select(Conversation.channel, Conversation.team_id, Conversation.assignee_id, func.count(),
               # the satisfaction ratings ride along: no query of their own
               func.count(Conversation.satisfaction_score),
               func.coalesce(func.sum(Conversation.satisfaction_score), 0))
        .where(*cohort)
        .group_by(Conversation.channel, Conversation.team_id, Conversation.assignee_id)
    ).all()
    channels: Counter[str] = Counter()
    teams: Counter[int | None] = Counter()
    people: Counter[int | None] = Counter()
    rated = score_sum = 0
    for channel, team_id, assignee_id, n, n_rated, scores in volumes:
        channels[str(channel)] += n
        teams[team_id] += n
        people[assignee_id] += n
        rated, score_sum = rated + int(n_rated), score_sum + int(scores or 0)

    # in business time, per team (console.report_clock)
    times = business_durations(session, cohort)

    # overdue by the service clock's due times (a row older than the clock: wall time)
    c, cut = Conversation, _Cutoffs.at(now, targets)
    frt_late = c.first_response_at.is_(None) & or_(
        c.first_response_due_at <= now,
        c.first_response_due_at.is_(None) & (c.opened_at < cut.first_response))
    res_late = or_(c.resolution_due_at <= now,
                   c.resolution_due_at.is_(None) & c.first_response_due_at.is_(None)
                   & (c.opened_at < cut.resolution))
    backlog, late_first, late_res, late = session.execute(
        select(func.count(), _count_if(frt_late), _count_if(res_late),
               _count_if(or_(frt_late, res_late)))
        .where(Conversation.status == ConversationStatus.OPEN, scope)
    ).one()

    sees_all = actor.role in REVIEWERS
    team_rows = _team_rows(session, teams)
    return Report(
        start=start, end=end, tz=str(getattr(zone, "key", zone)), generated_at=now,
        scope="all" if sees_all else "own", opened=sum(channels.values()),
        by_channel=tuple(VolumeRow(ch.value, ch.value, channels[ch.value]) for ch in Channel),
        by_team=team_rows,
        by_person=_person_rows(session, people, None if sees_all else actor),
        first_response=_stats(times.first), resolution=_stats(times.resolved),
        backlog=int(backlog), overdue_first_response=int(late_first),
        overdue_resolution=int(late_res), overdue=int(late),
        first_response_target_minutes=targets.first_response_minutes,
        resolution_target_hours=targets.resolution_hours,
        by_team_times=tuple(
            TeamTimes(row.key, row.label, _stats(list(times.by_team[_team_key(row.key)][0])),
                      _stats(list(times.by_team[_team_key(row.key)][1])))
            for row in team_rows if _team_key(row.key) in times.by_team),
        rated=rated, satisfaction_avg=score_sum / rated if rated else None,
    )


def _team_key(key: str) -> int | None:
    return None if key == "none" else int(key)


def _team_rows(session: Session, counts: Counter[int | None]) -> tuple[VolumeRow, ...]:
    ids = [i for i in counts if i is not None]
    names = {t.id: t.title or t.name
             for t in session.scalars(select(Team).where(Team.id.in_(ids)))}
    rows = [VolumeRow(str(i), names.get(i, f"team {i}"), n)
            for i, n in counts.items() if i is not None]
    if counts[None]:
        rows.append(VolumeRow("none", "no team", counts[None]))
    return tuple(sorted(rows, key=lambda r: (-r.count, r.label)))


def _person_rows(
    session: Session, counts: Counter[int | None], only: Person | None
) -> tuple[VolumeRow, ...]:
    if only is not None:  # an agent: their own row; colleagues folded into one
        others = sum(n for i, n in counts.items() if i not in (None, only.id))
        folded: Counter[int | None] = Counter({only.id: counts[only.id], None: counts[None]})
        rows = list(_person_rows(session, folded, None))
        return tuple(rows + ([VolumeRow("others", "others", others)] if others else []))
    ids = [i for i in counts if i is not None]
    names = {p.id: p.display_name or p.username
             for p in session.scalars(select(Person).where(Person.id.in_(ids)))}
    rows = [VolumeRow(str(i), names.get(i, f"person {i}"), n)
            for i, n in counts.items() if i is not None and n]
    if counts[None]:
        rows.append(VolumeRow("unassigned", "unassigned", counts[None]))
    return tuple(sorted(rows, key=lambda r: (-r.count, r.label)))


# -- CSV -------------------------------------------------------------------------------------

# A spreadsheet runs a cell that starts with one of these as a formula (CSV injection);
# team and person names are typed by people, so every cell is checked. Spreadsheets also
# skip leading blanks and read the full-width and small forms of the signs (a Persian or
# CJK keyboard types them) as the signs themselves.
_FORMULA_START: Final = ("=", "+", "-", "@", "\uff1d", "\uff0b", "\uff0d", "\uff20",
                         "\ufe66", "\ufe62", "\ufe63")


def _blank(ch: str) -> bool:
    # whitespace (tab, CR, LF, no-break and ideographic spaces) and invisible format
    # characters (LRM, RLM, zero-width space, BOM), which a reader does not see either
    return ch.isspace() or unicodedata.category(ch) == "Cf"


def csv_cell(value: object) -> str:
    text = "" if value is None else str(value)
    start = next((i for i, ch in enumerate(text) if not _blank(ch)), len(text))
    risky = text.startswith(("\t", "\r")) or text[start:].startswith(_FORMULA_START)
    return "'" + text if risky else text


def _num(value: float | None) -> str:
    return "" if value is None else f"{value:.1f}"


def jalali_ascii(day: date) -> str:
    """``day`` as a Jalali date with ASCII digits ("1405/09/10"): what a spreadsheet reads."""
    j = jdatetime.date.fromgregorian(date=day)
    return f"{j.year:04d}/{j.month:02d}/{j.day:02d}"


def report_rows(rep: Report) -> list[list[str]]:
    """The report as (section, key, label, value, jalali) rows, header first, cells
    CSV-safe. The same file whatever the reader's language: ISO dates and ASCII digits,
    which every spreadsheet reads (a Persian reader's Jalali dates in Persian digits were
    text to them), and the Jalali date (ASCII digits) of each date row in the extra
    ``jalali`` column."""
    rows: list[list[Any]] = [
        ["section", "key", "label", "value", "jalali"],
        ["period", "start", "", rep.start.isoformat(), jalali_ascii(rep.start)],
        ["period", "end", "", rep.end.isoformat(), jalali_ascii(rep.end)],
        ["period", "timezone", "", rep.tz],
        ["period", "scope", "", rep.scope],
        ["period", "time_basis", "business time: team hours, less holidays, days off and "
         "waiting on the customer", rep.time_basis],
        ["totals", "opened", "", rep.opened],
        ["totals", "backlog", "", rep.backlog],
        ["totals", "overdue", "", rep.overdue],
        ["totals", "overdue_first_response", "", rep.overdue_first_response],
        ["totals", "overdue_resolution", "", rep.overdue_resolution],
    ]
    rows += [["satisfaction", "rated", "", rep.rated],
             ["satisfaction", "average", "", _num(rep.satisfaction_avg)]]
    for name, stats in (("first_response", rep.first_response), ("resolution", rep.resolution)):
        rows += [[name, "count", "", stats.count],
                 [name, "median_minutes", "", _num(stats.median_minutes)],
                 [name, "p90_minutes", "", _num(stats.p90_minutes)]]
    for t in rep.by_team_times:
        for name, stats in (("first_response", t.first_response), ("resolution", t.resolution)):
            rows += [[f"team_{name}", f"{t.key}:count", t.label, stats.count],
                     [f"team_{name}", f"{t.key}:median_minutes", t.label,
                      _num(stats.median_minutes)],
                     [f"team_{name}", f"{t.key}:p90_minutes", t.label,
                      _num(stats.p90_minutes)]]
    for section, volume in (("channel", rep.by_channel), ("team", rep.by_team),
                            ("person", rep.by_person)):
        rows += [[section, r.key, r.label, r.count] for r in volume]
    width = len(rows[0])  # every row as wide as the header: the jalali cell empty
    return [[csv_cell(c) for c in row + [""] * (width - len(row))] for row in rows]


def report_csv(rep: Report) -> str:
    """:func:`report_rows` as CSV text (RFC 4180, CRLF line ends)."""
    out = io.StringIO()
    csv.writer(out).writerows(report_rows(rep))
    return out.getvalue()
