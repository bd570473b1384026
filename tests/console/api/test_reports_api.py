"""The report through the JSON API and its CSV export: figures in the caller's scope, the
download's headers, and clear 4xx on a bad range."""

from __future__ import annotations

import csv
import io
import re
from datetime import date, timedelta

from console.dates import local_date
from console.reports import jalali_ascii
from kartabl.models import Channel, Conversation, utcnow


def week() -> dict[str, str]:
    """The last seven Tehran days, computed when the test runs, not when the module was
    collected: a run that crosses Tehran's midnight (20:30 UTC) would otherwise ask for a
    week that ends before the conversations its fixtures just opened."""
    today = local_date(utcnow())  # a report's days are Tehran days
    return {"start": (today - timedelta(days=6)).isoformat(), "end": today.isoformat()}


def test_the_report_counts_every_conversation_for_a_coordinator(api, world, db) -> None:
    period = week()
    with db() as s:  # an answered one, for the response-time figures
        conv = s.get(Conversation, world.conv_triage)
        conv.first_response_at = conv.opened_at + timedelta(minutes=30)
        s.commit()
    r = api(world.coord, "reports").get("/api/v1/reports", params=period)
    assert r.status_code == 200, r.text
    rep = r.json()
    assert (rep["scope"], rep["opened"], rep["backlog"], rep["tz"]) == (
        "all", 4, 4, "Asia/Tehran")
    assert {v["key"]: v["count"] for v in rep["by_channel"] if v["count"]} == {
        "email": 2, "sms": 1, "telegram": 1}
    assert {v["key"] for v in rep["by_channel"]} == {ch.value for ch in Channel}
    assert {v["label"]: v["count"] for v in rep["by_team"]} == {
        "sales": 2, "support": 1, "no team": 1}
    assert rep["first_response"] == {"count": 1, "median_minutes": 30.0, "p90_minutes": 30.0}
    assert rep["overdue"] == 2  # conv_a and conv_b, opened two days ago


def test_an_agent_s_report_covers_their_scope_only(api, world) -> None:
    period = week()
    rep = api(world.agent_a, "reports").get("/api/v1/reports", params=period).json()
    assert (rep["scope"], rep["opened"], rep["backlog"]) == ("own", 1, 1)
    assert [v["label"] for v in rep["by_team"]] == ["support"]
    assert [(v["key"], v["count"]) for v in rep["by_person"]] == [(str(world.agent_a), 1)]


def test_the_csv_is_a_download_with_the_same_figures(api, world) -> None:
    period = week()
    r = api(world.coord, "reports").get("/api/v1/reports.csv", params=period)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "text/csv; charset=utf-8"
    assert r.headers["content-disposition"] == (
        f'attachment; filename="kartabl-report-{period["start"]}-{period["end"]}.csv"')
    assert r.text.startswith("\ufeffsection,key,label,value,jalali\r\n")
    rows = list(csv.reader(io.StringIO(r.text.removeprefix("\ufeff"))))
    assert ["totals", "opened", "", "4", ""] in rows
    start = [row for row in rows if row[:2] == ["period", "start"]]
    assert start == [["period", "start", "", period["start"], jalali_ascii(
        date.fromisoformat(period["start"]))]]
    # The same file for a Persian reader: ISO dates, ASCII digits (spreadsheets read them)
    fa = api(world.coord, "reports").get("/api/v1/reports.csv", params={**period, "locale": "fa"})
    assert fa.text == r.text and re.search("[۰-۹]", fa.text) is None


def test_bad_ranges_are_a_clear_4xx(api, world) -> None:
    period = week()
    reader = api(world.coord, "reports")
    cases = [
        ({"start": "2026-02-01", "end": "2026-01-01"}, 400, "before it starts"),
        ({"start": "2024-01-01", "end": "2026-01-01"}, 400, "at most 366 days"),
        ({**period, "tz": "Mars/Olympus"}, 400, "unknown time zone"),
        ({**period, "tz": "../../etc/passwd"}, 400, "unknown time zone"),
        ({"start": "1405/09/10", "end": period["end"]}, 422, "date"),
        ({"start": "0001-01-01", "end": "0001-01-02"}, 422, "between"),
        ({"start": "9999-12-30", "end": "9999-12-31"}, 422, "between"),
        ({"end": period["end"]}, 422, "start"),
    ]
    for path in ("/api/v1/reports", "/api/v1/reports.csv"):
        for params, status, said in cases:
            r = reader.get(path, params=params)
            assert r.status_code == status, (path, params, r.text)
            assert said in r.text, (path, params, r.text)
    assert reader.get("/api/v1/reports.csv", params={**period, "locale": "de"}).status_code == 422
