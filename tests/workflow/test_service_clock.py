"""The service clock (kartabl.service_clock): due times in the team's business time, moved by
the pauses of waiting on the customer, per channel targets, and the overdue queue and the
breach warnings reading them."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy.orm import Session

import config.routing
import config.settings
from console.queues import list_queue, queue_counts
from kartabl import notifications, service_clock, workflow
from kartabl.models import Channel, Role
from kartabl.workflow import waiting
from tests.factories import conversation, person, team

TEHRAN = ZoneInfo("Asia/Tehran")
ROUTING = """
[[teams]]
name = "support"
targets = { first_response_minutes = 60, resolution_hours = 8 }
channel_targets = { sms = { first_response_minutes = 30 } }
[teams.hours]
sat = ["08:00-12:00", "13:00-17:00"]
sun = ["08:00-12:00", "13:00-17:00"]
mon = ["08:00-12:00", "13:00-17:00"]
tue = ["08:00-12:00", "13:00-17:00"]
wed = ["08:00-12:00", "13:00-17:00"]
thu = ["08:00-13:00"]
"""


def at(y: int, m: int, d: int, hh: int = 0, mm: int = 0) -> datetime:
    return datetime(y, m, d, hh, mm, tzinfo=TEHRAN).astimezone(UTC)


@pytest.fixture
def support(session: Session, routing_file: Path):
    routing_file.write_text(ROUTING, encoding="utf-8")
    config.routing.get_routing.cache_clear()
    service_clock.configure(config.settings.get_settings(), config.routing.get_routing())
    t = team(session, "support")
    session.commit()
    return t


def test_due_times_in_business_time_and_moved_by_a_pause(session: Session, support) -> None:
    ali = person(session, "ali", teams=[support])
    # Given an email opened on Wednesday 2026-12-02 at 16:00 in Tehran
    conv = conversation(session, team=support, assignee=ali)
    conv.opened_at = at(2026, 12, 2, 16)
    service_clock.refresh(session, conv, conv.opened_at)
    # Then the first response is due in one business hour (Wednesday 17:00), the resolution
    # after 8: 1h Wed + 5h Thu, Friday off, 2h Saturday -> Saturday 10:00
    assert conv.first_response_due_at == at(2026, 12, 2, 17)
    assert conv.resolution_due_at == at(2026, 12, 5, 10)
    # warnings at 80%: 48 minutes; 6.4 business hours (1h Wed, 5h Thu, Saturday 08:24)
    assert conv.first_response_warn_at == at(2026, 12, 2, 16, 48)
    assert conv.resolution_warn_at == at(2026, 12, 5, 8, 24)
    session.commit()
    # When it waits on the customer from Thursday 09:00 to Saturday 09:00 (5 business hours:
    # Thursday 09-13 and Saturday 08-09)
    waiting.wait(session, ali, conv.id, now=at(2026, 12, 3, 9))
    assert conv.resolution_due_at is None  # the clock stands still
    assert conv.first_response_due_at == at(2026, 12, 2, 17)  # not paused
    waiting.resume(session, ali, conv.id, now=at(2026, 12, 5, 9))
    # Then resolution is due 5 business hours later: Saturday 10:00 -> 16:00 (lunch 12-13)
    assert conv.resolution_due_at == at(2026, 12, 5, 16)
    session.commit()


def test_channel_targets_and_a_team_handover(session: Session, support) -> None:
    coordinator = person(session, "maryam", Role.COORDINATOR)
    conv = conversation(session, channel=Channel.SMS)
    conv.opened_at = at(2026, 12, 5, 9)  # Saturday 09:00
    service_clock.refresh(session, conv, conv.opened_at)
    # no team: the settings' targets round the clock
    assert conv.first_response_due_at is not None
    # When a coordinator assigns it to support, whose SMS target is 30 business minutes
    workflow.assign(session, coordinator, conv.id, team_id=support.id)
    assert conv.first_response_due_at == at(2026, 12, 5, 9, 30)
    assert conv.resolution_due_at == at(2026, 12, 6, 9)  # 8h: Sat 09-17 is 7h, Sun +1h


def test_overdue_queue_and_warnings_use_the_due_times(session: Session, support) -> None:
    maryam = person(session, "maryam", Role.COORDINATOR)
    ali = person(session, "ali", teams=[support])
    now = datetime(2026, 12, 4, 9, 0, tzinfo=UTC)  # Friday 12:30 in Tehran: a day off
    # opened Thursday 12:30: by wall time 20.5 hours old (past the settings' targets), in
    # business time half an hour: neither overdue nor near
    fresh = conversation(session, team=support, assignee=ali)
    fresh.opened_at = at(2026, 12, 3, 12, 30)
    # opened Wednesday 09:00: 8 business hours ran out Thursday 11:00
    late = conversation(session, team=support, assignee=ali)
    late.opened_at = at(2026, 12, 2, 9)
    for conv in (fresh, late):
        service_clock.refresh(session, conv, now)
    session.commit()
    page = list_queue(session, maryam, "overdue", now=now)
    assert [r.conversation_id for r in page.rows] == [late.id] and page.rows[0].overdue
    assert queue_counts(session, maryam, now=now)["overdue"] == 1
    # Saturday 08:10: fresh has run 40 of its 60 first-response minutes (past 80%? no: 48)
    assert notifications.warn_breaches(session, first_response_minutes=60,
                                       resolution_hours=8, now=at(2026, 12, 5, 8, 10)) == 0
    # Saturday 08:20: 50 minutes, past the warning and before the due time
    assert notifications.warn_breaches(session, first_response_minutes=60,
                                       resolution_hours=8, now=at(2026, 12, 5, 8, 20)) == 1


def test_reports_count_business_time_per_team(session: Session, support) -> None:
    from datetime import date

    from console.reports import report, report_csv

    maryam = person(session, "maryam", Role.COORDINATOR)
    ali = person(session, "ali", teams=[support])
    # Given a conversation opened Wednesday 16:00, answered Saturday 09:00 (wall: 2 days 17
    # hours; business: 1h Wed + 5h Thu + 1h Sat = 7 h), closed Saturday 12:00 after it
    # waited on the customer Thursday 09:00 - Saturday 08:30 (4.5 business hours paused)
    conv = conversation(session, team=support, assignee=ali)
    conv.opened_at = at(2026, 12, 2, 16)
    session.flush()
    waiting.wait(session, ali, conv.id, now=at(2026, 12, 3, 9))
    waiting.resume(session, ali, conv.id, now=at(2026, 12, 5, 8, 30))
    conv.first_response_at = at(2026, 12, 5, 9)
    workflow.close(session, ali, conv.id)
    conv.resolved_at = at(2026, 12, 5, 12)
    session.commit()
    rep = report(session, maryam, date(2026, 12, 2), date(2026, 12, 2),
                 now=at(2026, 12, 6, 9))
    assert rep.time_basis == "business"
    assert rep.first_response.median_minutes == 7 * 60
    # resolution: 1 + 5 + 4 business hours = 10 h, less the 4.5 h waited
    assert rep.resolution.median_minutes == 5.5 * 60
    [team_times] = rep.by_team_times
    assert team_times.key == str(support.id) and team_times.first_response.count == 1
    assert "period,time_basis," in report_csv(rep)
    assert f"team_first_response,{support.id}:median_minutes" in report_csv(rep)
