"""Waiting, snoozing and resuming through the JSON API and the conversation page's forms:
the state stored, the queues that list them (and the working ones that do not), scope."""

from __future__ import annotations

from datetime import datetime, timedelta

import jdatetime
from sqlalchemy.orm import Session, sessionmaker

from kartabl.models import Conversation, ConversationStatus, utcnow

C = "/api/v1/conversations"
CS = ConversationStatus


def _conv(db: sessionmaker[Session], cid: int) -> Conversation:
    with db() as s:
        conv = s.get(Conversation, cid)
        assert conv is not None
        return conv


def _ids(caller, queue: str) -> list[int]:
    r = caller.get(f"/api/v1/queues/{queue}")
    assert r.status_code == 200, r.text
    return [row["conversation_id"] for row in r.json()["rows"]]


def test_wait_snooze_resume_and_the_queues(api, world, db) -> None:
    agent = api(world.agent_a)
    assert world.conv_a in _ids(agent, "open")
    # waiting: out of the working queues, in the waiting queue and counted there
    r = agent.post(f"{C}/{world.conv_a}/waiting")
    assert r.status_code == 200 and r.json()["status"] == "waiting", r.text
    assert world.conv_a not in _ids(agent, "open") + _ids(agent, "mine")
    assert _ids(agent, "waiting") == [world.conv_a]
    counts = {q["name"]: q["count"] for q in agent.get("/api/v1/queues").json()}
    assert counts["waiting"] == 1 and counts["snoozed"] == 0
    # the mine queue still finds it when asked for that status
    assert world.conv_a in [row["conversation_id"] for row in agent.get(
        "/api/v1/queues/mine", params={"status": "waiting"}).json()["rows"]]
    # snoozed until a time: in the snoozed queue, with its time
    until = (utcnow() + timedelta(days=1)).replace(microsecond=0)
    r = agent.post(f"{C}/{world.conv_a}/snooze", {"until": until.isoformat()})
    assert r.status_code == 200 and r.json()["status"] == "snoozed", r.text
    assert datetime.fromisoformat(r.json()["snoozed_until"]) == until
    assert _ids(agent, "snoozed") == [world.conv_a] and _ids(agent, "waiting") == []
    # a time without its offset, or in the past, is refused; nothing changes
    r = agent.post(f"{C}/{world.conv_a}/snooze", {"until": "2026-12-06T09:00:00"})
    assert r.status_code == 422
    r = agent.post(f"{C}/{world.conv_a}/snooze", {"until": "2020-01-01T09:00:00+03:30"})
    assert r.status_code == 400 and "passed" in r.json()["detail"]
    # resume: open again; resuming an open one is 409
    r = agent.post(f"{C}/{world.conv_a}/resume")
    assert r.status_code == 200 and r.json()["status"] == "open"
    assert agent.post(f"{C}/{world.conv_a}/resume").status_code == 409
    assert _conv(db, world.conv_a).snoozed_until is None


def test_another_teams_conversation_is_not_found(api, world, db) -> None:
    agent = api(world.agent_a)
    for step, body in (("waiting", None), ("resume", None),
                       ("snooze", {"until": "2030-01-01T09:00:00+00:00"})):
        r = agent.post(f"{C}/{world.conv_b}/{step}", body)
        assert r.status_code == 404, (step, r.text)
    assert _conv(db, world.conv_b).status == CS.OPEN
    # and their waiting queue does not list team B's waiting conversation
    assert api(world.coord).post(f"{C}/{world.conv_b}/waiting").status_code == 200
    assert _ids(agent, "waiting") == []
    assert api(world.agent_b).post(f"{C}/{world.conv_b}/waiting").status_code == 409


def test_page_snoozes_until_a_jalali_moment(browser, world, db) -> None:
    # Given ali on the conversation page, typing a Jalali date and time in Persian digits
    ali = browser("ali")
    day = jdatetime.date.fromgregorian(date=(utcnow() + timedelta(days=3)).date())
    typed = f"{day.year}/{day.month:02d}/{day.day:02d} ۱۰:۳۰".translate(
        str.maketrans("0123456789", "۰۱۲۳۴۵۶۷۸۹"))
    r = ali.client.post(f"/conversations/{world.conv_a}/snooze", data={"until": typed},
                        headers=ali.headers, follow_redirects=False)
    assert r.status_code == 303 and "done=snoozed" in r.headers["location"]
    conv = _conv(db, world.conv_a)
    assert conv.status == CS.SNOOZED and conv.snoozed_until is not None
    # 10:30 in Tehran (UTC+03:30) is 07:00 UTC, on that Jalali day
    assert (conv.snoozed_until.hour, conv.snoozed_until.minute) == (7, 0)
    assert conv.snoozed_until.date() == day.togregorian()
    # a bad moment is refused and what was typed is kept on the page
    r = ali.client.post(f"/conversations/{world.conv_a}/snooze", data={"until": "فردا"},
                        headers=ali.headers)
    assert r.status_code == 200 and "فردا" in r.text
    # the page offers resume, and resuming by the form opens it again
    assert 'id="resume-form"' in ali.get(f"/conversations/{world.conv_a}").text
    r = ali.client.post(f"/conversations/{world.conv_a}/resume", headers=ali.headers,
                        follow_redirects=False)
    assert r.status_code == 303 and _conv(db, world.conv_a).status == CS.OPEN
    r = ali.client.post(f"/conversations/{world.conv_a}/waiting", headers=ali.headers,
                        follow_redirects=False)
    assert r.status_code == 303 and _conv(db, world.conv_a).status == CS.WAITING
