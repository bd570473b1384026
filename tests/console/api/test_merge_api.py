"""The merge and split API (console/api/merge.py): the pages' checks, scope ``act``, 404
outside the caller's scope, 409 by state; and what it answers. Both databases."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from kartabl.models import Conversation, ConversationStatus, Message
from tests import factories as f
from tests.console.api.conftest import SECRETS, World

Db = sessionmaker[Session]


def sibling(db: Db, cid: int, text: str = "second-request") -> tuple[int, int]:
    """Another conversation of ``cid``'s customer, in the same team: (its id, its message)."""
    with db() as s:
        first = s.get(Conversation, cid)
        assert first is not None
        other = Conversation(customer_id=first.customer_id, channel=first.channel,
                             subject="another", team_id=first.team_id)
        s.add(other)
        s.flush()
        msg = f.inbound(s, other, text=text)
        s.commit()
        return other.id, msg.id


def test_merge_then_undo(api: Any, db: Db, world: World) -> None:
    b, msg = sibling(db, world.conv_a)
    agent = api(world.agent_a)
    r = agent.post(f"/api/v1/conversations/{b}/merge", {"into": world.conv_a})
    assert r.status_code == 200, r.text
    out = r.json()
    assert (out["source_id"], out["target_id"], out["undoable"]) == (b, world.conv_a, True)
    assert out["moved"]["messages"] == 1
    view = agent.get(f"/api/v1/conversations/{world.conv_a}").json()
    moved = [i for i in view["timeline"] if i["kind"] == "message" and i["message_id"] == msg]
    assert moved and moved[0]["origin"] == b
    assert [i["other_id"] for i in view["timeline"] if i["kind"] == "merged"] == [b]
    assert agent.get(f"/api/v1/conversations/{b}").json()["conversation"][
        "merged_into_id"] == world.conv_a
    # a read token may look, not act
    reader = api(world.agent_a, "read")
    assert reader.post(f"/api/v1/merges/{out['id']}/undo").status_code == 403
    r = agent.post(f"/api/v1/merges/{out['id']}/undo")
    assert r.status_code == 200 and r.json()["undone_at"] is not None
    assert agent.post(f"/api/v1/merges/{out['id']}/undo").status_code == 409
    with db() as s:
        back = s.get(Conversation, b)
        assert back is not None and (back.status, back.merged_into_id) == (
            ConversationStatus.OPEN, None)


def test_undo_refused_after_a_note(api: Any, db: Db, world: World) -> None:
    b, _ = sibling(db, world.conv_a)
    agent = api(world.agent_a)
    merged = agent.post(f"/api/v1/conversations/{b}/merge", {"into": world.conv_a}).json()
    assert agent.post(f"/api/v1/conversations/{world.conv_a}/notes",
                      {"text": "new since"}).status_code == 201
    r = agent.post(f"/api/v1/merges/{merged['id']}/undo")
    assert r.status_code == 409 and "conv_merge.news" in r.text


def test_scope_customers_and_pending(api: Any, db: Db, world: World) -> None:
    agent_a = api(world.agent_a)
    # another team's conversation, either side: 404, and nothing of it said
    for path, into in ((world.conv_a, world.conv_b), (world.conv_b, world.conv_a)):
        r = agent_a.post(f"/api/v1/conversations/{path}/merge", {"into": into})
        assert r.status_code == 404 and not any(x in r.text for x in SECRETS)
    # two customers: 403 without the merge permission, 409 (merge the customers) with it
    r = api(world.coord2).post(f"/api/v1/conversations/{world.conv_b2}/merge",
                               {"into": world.conv_b})
    assert r.status_code == 403
    r = api(world.coord).post(f"/api/v1/conversations/{world.conv_b2}/merge",
                              {"into": world.conv_b})
    assert r.status_code == 409
    # conv_b has a reply awaiting approval: it is not merged anywhere
    b2, _ = sibling(db, world.conv_b)
    r = api(world.coord).post(f"/api/v1/conversations/{world.conv_b}/merge", {"into": b2})
    assert r.status_code == 409 and "pending" in r.text
    assert api(world.coord).post("/api/v1/merges/999999/undo").status_code == 404
    assert agent_a.post(f"/api/v1/conversations/{world.conv_a}/merge",
                        {"into": 0}).status_code == 422


def test_split(api: Any, db: Db, world: World) -> None:
    with db() as s:
        conv = s.get(Conversation, world.conv_a)
        assert conv is not None
        second = f.inbound(s, conv, text="other-topic").id
        first = s.scalar(select(Message.id).where(Message.conversation_id == conv.id)
                         .order_by(Message.id).limit(1))
        s.commit()
    agent = api(world.agent_a)
    r = agent.post(f"/api/v1/conversations/{world.conv_a}/split", {"message_id": first})
    assert r.status_code == 409
    r = agent.post(f"/api/v1/conversations/{world.conv_a}/split",
                   {"message_id": second, "following": True})
    assert r.status_code == 201, r.text
    out = r.json()
    assert out["source_id"] == world.conv_a and out["moved"]["messages"] == 1
    assert out["conversation"]["team_id"] == world.team_a
    new = agent.get(f"/api/v1/conversations/{out['conversation']['id']}").json()
    assert [i["origin"] for i in new["timeline"] if i["kind"] == "message"] == [world.conv_a]
    r = api(world.agent_b).post(f"/api/v1/conversations/{world.conv_a}/split",
                                {"message_id": second})
    assert r.status_code == 404
