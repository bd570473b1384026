"""The notifications API (console/api/notifications.py): one's own feed, newest first, with
the unread count; mark one and all read; the ``read`` scope (a ``reports`` token gets 403);
another person's notification a 404 (the walk over every route is test_api_access.py)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from kartabl import workflow
from kartabl.models import Notification, Person
from tests.console.api.conftest import World

Db = sessionmaker[Session]


def _refer_to_agent_a(db: Db, world: World, note: str) -> None:
    with db() as s:
        coord = s.get(Person, world.coord)
        workflow.refer(s, coord, world.conv_triage, person_id=world.agent_a,
                       team_id=world.team_a, note=note)
        s.commit()


def test_the_feed_and_marking_read(api, world: World, db: Db) -> None:
    _refer_to_agent_a(db, world, "first")
    with db() as s:
        workflow.assign(s, s.get(Person, world.coord), world.conv_triage,
                        person_id=world.agent_a2)
        workflow.assign(s, s.get(Person, world.coord), world.conv_triage,
                        person_id=world.agent_a)
        s.commit()
    caller = api(world.agent_a, "read")
    body = caller.get("/api/v1/notifications").json()
    assert body["unread"] == 2
    assert [(i["kind"], i["actor"], i["conversation_id"], i["read"]) for i in body["items"]] == [
        ("assigned", "maryam", world.conv_triage, False),
        ("referred", "maryam", world.conv_triage, False)]
    assert body["items"][1]["text"] == "first"
    newest = body["items"][0]["id"]
    r = caller.post(f"/api/v1/notifications/{newest}/read")
    assert r.status_code == 200 and r.json() == {"marked": 1, "unread": 1}
    unread_only = caller.get("/api/v1/notifications?unread=true").json()["items"]
    assert [i["kind"] for i in unread_only] == ["referred"]
    older = caller.get(f"/api/v1/notifications?before={newest}").json()["items"]
    assert [i["kind"] for i in older] == ["referred"]
    assert caller.post("/api/v1/notifications/read-all").json() == {"marked": 1, "unread": 0}


def test_a_token_without_read_gets_403_and_anothers_is_404(api, world: World,
                                                            db: Db) -> None:
    _refer_to_agent_a(db, world, "n")
    with db() as s:
        (mine,) = s.scalars(select(Notification.id)
                            .where(Notification.person_id == world.agent_a))
    narrow = api(world.agent_a, "reports")
    assert narrow.get("/api/v1/notifications").status_code == 403
    assert narrow.post(f"/api/v1/notifications/{mine}/read").status_code == 403
    other = api(world.agent_b, "read")
    assert other.post(f"/api/v1/notifications/{mine}/read").status_code == 404
    assert all(i["id"] != mine for i in other.get("/api/v1/notifications").json()["items"])
    with db() as s:
        assert s.scalar(select(Notification.read_at).where(Notification.id == mine)) is None
