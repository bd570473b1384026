"""Customers through the JSON API: search, detail, tags, link, merge preview and merge, each
with its stored effect, its permission refusals and its bad input (nothing stored). Team A
against team B for every route is test_api_access.py's table."""

from __future__ import annotations

from sqlalchemy import select

from kartabl.models import Conversation, Customer, Identity
from tests import factories as f
from tests.console.api.conftest import snapshot

CU = "/api/v1/customers"


def _customer(db, cid: int) -> Customer:
    with db() as s:
        c = s.get(Customer, cid)
        assert c is not None
        return c


def test_search_by_name_phone_email_and_tag(api, world, db) -> None:
    with db() as s:
        phone = s.scalar(select(Identity.address).join(Conversation, Conversation.customer_id
                                                       == Identity.customer_id)
                         .where(Conversation.id == world.conv_a))
    coord = api(world.coord, "read")
    assert phone is not None and phone.startswith("+98912")
    local = "0" + phone.removeprefix("+98")
    persian = local.translate(str.maketrans("0123456789", "۰۱۲۳۴۵۶۷۸۹"))
    r = coord.get(CU, params={"q": persian})
    assert r.status_code == 200, r.text
    assert [h["id"] for h in r.json()] == [world.customer_a]
    assert r.json()[0]["identities"][0] | {"id": 0} == {
        "id": 0, "kind": "phone", "address": phone, "display": ""}
    assert [h["id"] for h in coord.get(CU, params={"q": "SECRET.B@example.ir"}).json()] == [
        world.customer_b]
    assert [h["id"] for h in coord.get(CU, params={"q": "tag:VIP"}).json()] == [world.customer_b]
    assert coord.get(CU, params={"q": "  "}).json() == []
    # the agent of team A finds their own customer, not team B's
    agent = api(world.agent_a, "read")
    assert [h["id"] for h in agent.get(CU, params={"q": persian}).json()] == [world.customer_a]
    assert agent.get(CU, params={"q": "tag:vip"}).json() == []


def test_search_bad_input_is_422(api, world) -> None:
    coord = api(world.coord, "read")
    assert coord.get(CU).status_code == 422  # q is required
    assert coord.get(CU, params={"q": "x" * 201}).status_code == 422
    assert coord.get(CU, params={"q": "a\x00b"}).status_code == 422
    assert coord.get(CU, params={"q": "a", "limit": 0}).status_code == 422


def test_detail_lists_identities_conversations_and_hidden_ones(api, world, db) -> None:
    with db() as s:  # customer_b also writes to team A
        customer = s.get(Customer, world.customer_b)
        conv = Conversation(customer_id=customer.id, channel="email", team_id=world.team_a,
                            subject="to support")
        s.add(conv)
        s.commit()
        conv_id = conv.id
    coord = api(world.coord)
    r = coord.get(f"{CU}/{world.customer_b}")
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["id"], body["requested_id"], body["display_name"], body["tags"]) == (
        world.customer_b, world.customer_b, "Secret Customer B", ["vip"])
    assert {c["id"] for c in body["conversations"]} == {world.conv_b, conv_id}
    assert body["hidden_conversations"] == 0
    # the agent of team A sees it through their team's conversation only
    seen = api(world.agent_a).get(f"{CU}/{world.customer_b}").json()
    assert [c["id"] for c in seen["conversations"]] == [conv_id]
    assert seen["hidden_conversations"] == 1
    assert "sales-secret-subject" not in str(seen)
    assert coord.get(f"{CU}/999").status_code == 404


def test_tags_are_added_normalised_idempotently_and_removed(api, world, db) -> None:
    agent = api(world.agent_a, "customers")
    path = f"{CU}/{world.customer_a}/tags"
    r = agent.post(path, {"tag": "#Gold"})
    assert r.status_code == 200, r.text
    assert r.json() == {"customer_id": world.customer_a, "tags": ["gold"]}
    assert agent.post(path, {"tag": "GOLD"}).json()["tags"] == ["gold"]
    assert _customer(db, world.customer_a).tags == ["gold"]
    with db() as s:
        assert len(f.events(s, "customer.tag_added")) == 1  # the repeat changed nothing
    r = agent.delete(path, params={"tag": "Gold"})
    assert r.status_code == 200 and r.json()["tags"] == []
    assert _customer(db, world.customer_a).tags == []


def test_bad_tags_are_refused_and_nothing_is_stored(api, world, db) -> None:
    agent = api(world.agent_a)
    before = snapshot(db)
    path = f"{CU}/{world.customer_a}/tags"
    r = agent.post(path, {"tag": "=HYPERLINK()"})
    assert r.status_code == 400 and "not a tag" in r.json()["detail"]
    assert agent.post(path, {"tag": ""}).status_code == 422
    assert agent.post(path, {}).status_code == 422
    assert agent.delete(path).status_code == 422  # which tag?
    assert agent.post(f"{CU}/999/tags", {"tag": "x"}).status_code == 404
    assert snapshot(db) == before


def test_link_an_identity_and_its_refusals(api, world, db) -> None:
    coord, agent2 = api(world.coord), api(world.agent_a2)  # agent2: no merge permission
    path = f"{CU}/{world.customer_a}/identities"
    before = snapshot(db)
    r = agent2.post(path, {"kind": "email", "address": "a@example.ir"})
    assert r.status_code == 403 and "merge permission" in r.json()["detail"]
    r = coord.post(path, {"kind": "phone", "address": "not a phone"})
    assert r.status_code == 400
    assert coord.post(path, {"kind": "fax", "address": "1"}).status_code == 422
    r = coord.post(path, {"kind": "email", "address": "secret.b@example.ir"})
    assert r.status_code == 409 and "belongs to customer" in r.json()["detail"]
    assert snapshot(db) == before
    r = coord.post(path, {"kind": "phone", "address": "۰۹۳۵ ۱۱۱ ۲۲۳۳"})
    assert r.status_code == 201, r.text
    assert r.json() | {"id": 0} == {"id": 0, "kind": "phone", "address": "+989351112233",
                                    "display": "+989351112233"}
    with db() as s:
        stored = s.get(Identity, r.json()["id"])
        assert (stored.customer_id, stored.address) == (world.customer_a, "+989351112233")
        assert len(f.events(s, "customer.identity_linked")) == 1


def test_an_agent_linking_a_taken_address_is_not_told_whose_it_is(api, world, db) -> None:
    r = api(world.agent_a).post(f"{CU}/{world.customer_a}/identities",
                                {"kind": "email", "address": "secret.b@example.ir"})
    assert r.status_code == 409 and f"customer {world.customer_b}" not in r.json()["detail"]


def test_merge_preview_then_merge(api, world, db) -> None:
    coord = api(world.coord)
    r = coord.get(f"{CU}/{world.customer_b}/merge-preview", params={"into": world.customer_b2})
    assert r.status_code == 200, r.text
    pv = r.json()
    assert (pv["source_id"], pv["target_id"], pv["conversation_count"], pv["messages"]) == (
        world.customer_b, world.customer_b2, 1, 1)
    assert pv["conversations"] == {"email": {"open": 1}}
    assert (pv["tags"], pv["may_merge"]) == (["vip"], True)
    assert [i["address"] for i in pv["identities"]] == ["secret.b@example.ir"]
    assert _customer(db, world.customer_b).merged_into_id is None  # a preview moves nothing
    r = coord.post(f"{CU}/{world.customer_b}/merge", {"into": world.customer_b2})
    assert r.status_code == 200, r.text
    assert r.json()["id"] == world.customer_b2 and "vip" in r.json()["tags"]
    assert world.conv_b in {c["id"] for c in r.json()["conversations"]}
    assert _customer(db, world.customer_b).merged_into_id == world.customer_b2
    with db() as s:
        assert s.get(Conversation, world.conv_b).customer_id == world.customer_b2
        assert len(f.events(s, "customer.merged")) == 1
    # the merged customer now answers with its survivor
    moved = coord.get(f"{CU}/{world.customer_b}").json()
    assert (moved["id"], moved["requested_id"]) == (world.customer_b2, world.customer_b)


def test_merge_refusals_store_nothing(api, browser, world, db) -> None:
    coord2 = browser("reza")  # a coordinator without the merge permission
    coord, agent_a = api(world.coord), api(world.agent_a)
    with db() as s:  # customer_a also writes to team B: agent_a may not move that
        s.add(Conversation(customer_id=world.customer_a, channel="sms", team_id=world.team_b))
        mine = f.conversation(s, team=s.get(Conversation, world.conv_a).team)
        s.commit()
        other_a = mine.customer_id
    before = snapshot(db)
    r = coord2.post(f"{CU}/{world.customer_b}/merge", {"into": world.customer_b2})
    assert r.status_code == 403 and "'merge'" in r.json()["detail"]  # not in their session
    r = agent_a.post(f"{CU}/{world.customer_a}/merge", {"into": other_a})
    assert r.status_code == 403 and "outside their teams" in r.json()["detail"]
    r = agent_a.get(f"{CU}/{world.customer_a}/merge-preview", params={"into": other_a})
    assert r.status_code == 403
    r = coord.post(f"{CU}/{world.customer_b}/merge", {"into": world.customer_b})
    assert r.status_code == 409
    assert coord.post(f"{CU}/{world.customer_b}/merge", {"into": 999}).status_code == 404
    assert coord.post(f"{CU}/{world.customer_b}/merge", {}).status_code == 422
    r = coord.get(f"{CU}/{world.customer_b}/merge-preview")
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["query", "into"]
    assert snapshot(db) == before
    # the preview tells a coordinator without the permission that they may not
    pv = coord2.get(f"{CU}/{world.customer_b}/merge-preview", params={"into": world.customer_b2})
    assert pv.status_code == 200 and pv.json()["may_merge"] is False
