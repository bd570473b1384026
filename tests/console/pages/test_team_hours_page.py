"""``/teams/hours``: the teams' hours and the Jalali year's holidays, for coordinators in
Persian and English; an agent sees their own teams'."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

import config.routing
import config.settings
from kartabl import service_clock
from kartabl.models import Person, Role, Team, TeamMember
from tests import factories as f
from tests.console.conftest import add_person, sign_in

ROUTING = """
[[teams]]
name = "support"
title = "پشتیبانی"
days_off = ["1405-02-10"]
[teams.hours]
sat = ["08:00-12:00", "13:00-17:00"]
thu = ["08:00-13:00"]

[[teams]]
name = "sales"
"""


@pytest.fixture
def teams(app_client: TestClient, db: sessionmaker[Session], routing_file: Path) -> TestClient:
    routing_file.write_text(ROUTING, encoding="utf-8")
    config.routing.get_routing.cache_clear()
    service_clock.configure(config.settings.get_settings(), config.routing.get_routing())
    app_client.app.state.routing = config.routing.get_routing()  # type: ignore[attr-defined]
    with db() as s:
        f.team(s, "support"), f.team(s, "sales")
        s.commit()
    return app_client


def _locale(db: sessionmaker[Session], pid: int, locale: str) -> None:
    with db() as s:
        person = s.get(Person, pid)
        assert person is not None
        person.locale = locale
        s.commit()


def test_coordinator_sees_hours_and_the_jalali_years_holidays(teams, db) -> None:
    maryam = add_person(db, "maryam", Role.COORDINATOR)
    _locale(db, maryam, "fa")
    sign_in(teams, "maryam")
    r = teams.get("/teams/hours?year=1405")
    assert r.status_code == 200
    page = r.text
    assert "۱۴۰۵" in page and 'data-year="1405"' in page
    # Nowruz (1 Farvardin 1405 = 2026-03-21) and Ashura (2026-06-25), with Jalali dates
    assert 'data-day="2026-03-21"' in page and "۱۴۰۵/۰۱/۰۱" in page
    assert 'data-day="2026-06-25"' in page and "Ashura" in page
    # support's spans and its own day off in Jalali; sales works round the clock
    assert "۰۸:۰۰-۱۲:۰۰" in page and "۱۴۰۵/۰۲/۱۰" in page
    assert 'id="hours-sales"' in page
    _locale(db, maryam, "en")
    r = teams.get("/teams/hours?year=1405")
    assert r.status_code == 200 and "1405/01/01" not in r.text and "2026-03-21" in r.text
    assert "Business hours and holidays" in r.text


def test_an_agent_sees_only_their_teams(teams, db) -> None:
    ali = add_person(db, "ali", Role.AGENT)
    with db() as s:
        support = s.scalar(select(Team).where(Team.name == "support"))
        s.add(TeamMember(team_id=support.id, person_id=ali))
        s.commit()
    sign_in(teams, "ali")
    r = teams.get("/teams/hours")
    assert r.status_code == 200
    assert 'id="hours-support"' in r.text and 'id="hours-sales"' not in r.text
