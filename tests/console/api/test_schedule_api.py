"""Scheduled send in the JSON API: PUT/DELETE /api/v1/replies/{id}/schedule, send-now and
back-to-draft, with the pages' checks (scope 404, role 403, state 409, input 400), the
scheduled queue scoped like every listing, and the OpenAPI description."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy.orm import Session, sessionmaker

from kartabl import workflow
from kartabl.models import Person, Reply, ReplyState, utcnow
from responders.preview import REPLY_CHECK
from tests.console.api.conftest import Api, World

Db = sessionmaker[Session]
RS = ReplyState


def _approved_on_a(db: Db, world: World) -> int:
    with db() as s:
        agent, coord = s.get(Person, world.agent_a), s.get(Person, world.coord)
        reply = workflow.draft(s, agent, world.conv_a, "پاسخ", check=REPLY_CHECK)
        workflow.submit(s, agent, reply.id, check=REPLY_CHECK)
        workflow.approve(s, coord, reply.id, check=REPLY_CHECK)
        s.commit()
        return reply.id


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z")


def test_schedule_reschedule_and_cancel(api: Callable[..., Api], world: World, db: Db,
                                        enqueued: list[tuple[str, int]]) -> None:
    rid = _approved_on_a(db, world)
    author = api(world.agent_a)
    at = (utcnow() + timedelta(hours=3)).replace(microsecond=0)
    r = author.request("PUT", f"/api/v1/replies/{rid}/schedule", {"send_at": _iso(at)})
    assert r.status_code == 200, r.text
    assert datetime.fromisoformat(r.json()["send_at"]) == at
    # a wall-clock time in the team's zone (Tehran), Jalali with Persian digits
    r = author.request("PUT", f"/api/v1/replies/{rid}/schedule",
                       {"send_at": "۱۴۳۰/۰۱/۰۱ ۰۹:۰۰"})
    assert r.status_code == 400 and "year" in r.text  # 2051: more than a year ahead
    later = (utcnow() + timedelta(days=3)).replace(second=0, microsecond=0)
    from zoneinfo import ZoneInfo

    from console.schedule_time import jalali_example

    typed = jalali_example(later, ZoneInfo("Asia/Tehran"))
    r = author.request("PUT", f"/api/v1/replies/{rid}/schedule", {"send_at": typed})
    assert r.status_code == 200, r.text
    assert datetime.fromisoformat(r.json()["send_at"]) == later
    # the queue lists it, with its time
    rows = author.get("/api/v1/queues/scheduled").json()["rows"]
    assert [(x["scheduled_reply_id"], x["schedule_held"]) for x in rows] == [(rid, False)]
    counts = {q["name"]: q["count"] for q in author.get("/api/v1/queues").json()}
    assert counts["scheduled"] == 1
    # cancelling an approved reply's schedule takes it back to draft: nothing leaves
    enqueued.clear()
    r = author.delete(f"/api/v1/replies/{rid}/schedule")
    assert r.status_code == 200 and r.json()["state"] == "draft" and r.json()["send_at"] is None
    assert enqueued == []
    assert author.get("/api/v1/queues/scheduled").json()["rows"] == []


def test_send_now_and_back_to_draft(api: Callable[..., Api], world: World, db: Db,
                                    enqueued: list[tuple[str, int]]) -> None:
    rid = _approved_on_a(db, world)
    coord = api(world.coord2)
    at = utcnow() + timedelta(hours=1)
    assert coord.request("PUT", f"/api/v1/replies/{rid}/schedule",
                         {"send_at": _iso(at)}).status_code == 200
    enqueued.clear()
    r = coord.post(f"/api/v1/replies/{rid}/send-now")
    assert r.status_code == 200 and r.json()["send_at"] is None
    assert ("dispatch_reply", rid) in enqueued
    # not scheduled any more: back-to-draft and send-now are refused with 409
    assert coord.post(f"/api/v1/replies/{rid}/back-to-draft").status_code == 409
    assert coord.post(f"/api/v1/replies/{rid}/send-now").status_code == 409


def test_who_may(api: Callable[..., Api], world: World, db: Db) -> None:
    rid = _approved_on_a(db, world)
    at = _iso(utcnow() + timedelta(hours=2))
    # another team's agent: 404, as for a missing reply
    outsider = api(world.agent_b)
    assert outsider.request("PUT", f"/api/v1/replies/{rid}/schedule",
                            {"send_at": at}).status_code == 404
    assert outsider.delete(f"/api/v1/replies/{rid}/schedule").status_code == 404
    assert outsider.get("/api/v1/queues/scheduled").json()["rows"] == []
    # an agent of the team, not the author: 403
    teammate = api(world.agent_a2)
    assert teammate.request("PUT", f"/api/v1/replies/{rid}/schedule",
                            {"send_at": at}).status_code == 403
    # a read-only token: 403
    reader = api(world.agent_a, "read")
    assert reader.request("PUT", f"/api/v1/replies/{rid}/schedule",
                          {"send_at": at}).status_code == 403
    # bad input: 400 (past, unreadable); malformed: 422
    author = api(world.agent_a)
    past = _iso(utcnow() - timedelta(minutes=5))
    assert author.request("PUT", f"/api/v1/replies/{rid}/schedule",
                          {"send_at": past}).status_code == 400
    assert author.request("PUT", f"/api/v1/replies/{rid}/schedule",
                          {"send_at": "tomorrow"}).status_code == 400
    assert author.request("PUT", f"/api/v1/replies/{rid}/schedule", {}).status_code == 422
    with db() as s:
        reply = s.get(Reply, rid)
        assert reply is not None and reply.send_at is None and reply.state == RS.APPROVED


def test_openapi_describes_the_schedule_routes(api: Callable[..., Api], world: World) -> None:
    doc = api(world.agent_a).client.get("/openapi.json").json()  # no token: not /api/v1
    route = doc["paths"]["/api/v1/replies/{rid}/schedule"]
    assert set(route) >= {"put", "delete"}
    for op in route.values():
        assert op["summary"] and op["description"]
        assert {"401", "403", "404", "409"} <= set(op["responses"])
    assert "send_at" in doc["components"]["schemas"]["ReplyOut"]["properties"]
    assert "/api/v1/replies/{rid}/send-now" in doc["paths"]
