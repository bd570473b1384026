"""The canned responses API (console/api/canned.py) over both databases: scopes, the
library's scope per team, management by coordinators only, and the expansion of a response
into a conversation in the customer's language, with hostile names as plain text."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from kartabl.models import CannedResponse, Conversation, Customer
from tests import factories as f
from tests.console.api.conftest import World

Db = sessionmaker[Session]
C = "/api/v1/conversations"


def library(db: Db) -> list[tuple[object, ...]]:
    with db() as s:
        return [tuple(r) for r in s.execute(select(
            CannedResponse.id, CannedResponse.shortcut, CannedResponse.name,
            CannedResponse.team_id, CannedResponse.body_fa, CannedResponse.body_en,
            CannedResponse.use_count).order_by(CannedResponse.id))]


@pytest.fixture
def made(api, world: World) -> dict[str, int]:
    """Through the API, as the coordinator: a global response and one per team."""
    coord = api(world.coord, "review", "read")
    ids = {}
    for body in (
        {"name": "Hello", "shortcut": "hello",
         "body_fa": "سلام {{ customer_name }}، {{ agent_name }} هستم "
                    "(گفتگوی {{ conversation_number }}).",
         "body_en": "Hello {{ customer_name }}, {{ agent_name }} here "
                    "(#{{ conversation_number }})."},
        {"name": "Support", "shortcut": "support-only", "team_id": world.team_a,
         "body_fa": "پشتیبانی", "body_en": "Support"},
        {"name": "sales-secret-subject", "shortcut": "sales-only", "team_id": world.team_b,
         "body_fa": "فروش", "body_en": "sales-secret-text"},
    ):
        r = coord.post("/api/v1/canned", body)
        assert r.status_code == 201, r.text
        ids[body["shortcut"]] = r.json()["id"]
    return ids


def test_a_coordinator_manages_the_library(api, world: World, db: Db, made) -> None:
    coord = api(world.coord, "review", "read")
    listed = coord.get("/api/v1/canned").json()
    assert [r["shortcut"] for r in listed] == [
        "hello", "sales-canned", "sales-only", "support-only"]  # the world has sales-canned
    r = coord.patch(f"/api/v1/canned/{made['support-only']}", {"body_en": "Support team"})
    assert r.status_code == 200 and r.json()["body_en"] == "Support team"
    assert r.json()["team_id"] == world.team_a  # left out: kept
    r = coord.patch(f"/api/v1/canned/{made['support-only']}", {"global": True})
    assert r.json()["team_id"] is None
    assert coord.delete(f"/api/v1/canned/{made['sales-only']}").status_code == 204
    assert coord.get(f"/api/v1/canned/{made['sales-only']}").status_code == 404
    bad = coord.post("/api/v1/canned", {"name": "x", "shortcut": "hello", "body_en": "x"})
    assert bad.status_code == 400 and "taken" in bad.json()["detail"]
    bad = coord.post("/api/v1/canned", {"name": "x", "shortcut": "x", "body_en": "{{ x }}"})
    assert bad.status_code == 400 and "unknown variables" in bad.json()["detail"]


def test_scopes_are_required(api, world: World, db: Db, made) -> None:
    before = library(db)
    reader = api(world.coord, "read")  # a coordinator's token without "review"
    assert reader.get("/api/v1/canned").status_code == 200
    assert reader.post("/api/v1/canned", {"name": "n", "shortcut": "n",
                                          "body_en": "x"}).status_code == 403
    assert reader.delete(f"/api/v1/canned/{made['hello']}").status_code == 403
    no_act = api(world.agent_a, "read")
    r = no_act.post(f"{C}/{world.conv_a}/canned/expand", {"shortcut": "hello"})
    assert r.status_code == 403
    no_read = api(world.agent_a, "act")
    assert no_read.get("/api/v1/canned").status_code == 403
    assert library(db) == before


def test_an_agent_sees_global_and_team_responses_and_manages_none(
    api, browser, world: World, db: Db, made,
) -> None:
    before = library(db)
    for agent in (api(world.agent_a), browser("ali")):  # token, and the session
        listed = agent.get("/api/v1/canned")
        assert [r["shortcut"] for r in listed.json()] == ["hello", "support-only"]
        assert "sales-secret" not in listed.text
        assert agent.get(f"/api/v1/canned/{made['sales-only']}").status_code == 404
        assert agent.get("/api/v1/canned?q=sales").json() == []
        assert agent.post("/api/v1/canned", {"name": "n", "shortcut": "n",
                                             "body_en": "x"}).status_code == 403
        assert agent.patch(f"/api/v1/canned/{made['support-only']}",
                           {"name": "mine"}).status_code == 403
        assert agent.delete(f"/api/v1/canned/{made['support-only']}").status_code == 403
    assert library(db) == before


def test_expansion_in_the_customer_s_language(api, world: World, db: Db, made) -> None:
    with db() as s:
        conv = s.get(Conversation, world.conv_a)
        assert conv is not None
        conv.customer.display_name = "Sophie Martin"
        f.inbound(s, conv, text="Hello, where is my order?")
        s.commit()
    agent = api(world.agent_a)
    r = agent.post(f"{C}/{world.conv_a}/canned/expand", {"shortcut": "/hello"})
    assert r.status_code == 200, r.text
    assert r.json() == {"canned_id": made["hello"], "shortcut": "hello",
                        "text": f"Hello Sophie Martin, ali here (#{world.conv_a}).",
                        "language": "en", "customer_language": "en"}
    with db() as s:
        f.inbound(s, s.get(Conversation, world.conv_a), text="ببخشید، فارسی بنویسم")
        s.commit()
    r = agent.post(f"{C}/{world.conv_a}/canned/expand", {"canned_id": made["hello"]})
    assert r.json()["text"] == f"سلام Sophie Martin، ali هستم (گفتگوی {world.conv_a})."
    assert r.json()["language"] == "fa"
    # the use count: one per expansion
    assert agent.get(f"/api/v1/canned/{made['hello']}").json()["use_count"] == 2


def test_expansion_refuses_other_teams(api, world: World, db: Db, made) -> None:
    before = library(db)
    agent = api(world.agent_a)
    tries = [
        (world.conv_a, {"shortcut": "sales-only"}),  # team B's response, own conversation
        (world.conv_a, {"canned_id": made["sales-only"]}),
        (world.conv_b, {"shortcut": "hello"}),  # a global response, team B's conversation
        (world.conv_b, {"canned_id": made["support-only"]}),
    ]
    for cid, body in tries:
        r = agent.post(f"{C}/{cid}/canned/expand", body)
        assert r.status_code == 404, (cid, body, r.text)
        assert "sales-secret" not in r.text
    both = agent.post(f"{C}/{world.conv_a}/canned/expand",
                      {"shortcut": "hello", "canned_id": made["hello"]})
    assert both.status_code == 400
    assert library(db) == before  # nothing counted


@pytest.mark.parametrize("name", [
    "{{ agent_name }}", "{{ 7*7 }}", "{{ ''.__class__.__mro__ }}", "{% raw %}x",
    "<script>alert(1)</script>", "Eve\r\nBcc: x@example.com",
])
def test_a_hostile_customer_name_is_inserted_as_text(api, world: World, db: Db, made,
                                                      name: str) -> None:
    with db() as s:
        customer = s.get(Customer, world.customer_a)
        assert customer is not None
        customer.display_name = name
        s.commit()
    r = api(world.agent_a).post(f"{C}/{world.conv_a}/canned/expand",
                                {"shortcut": "hello", "language": "en"})
    assert r.json()["text"] == (f"Hello {' '.join(name.split())}, ali here "
                                f"(#{world.conv_a}).")
