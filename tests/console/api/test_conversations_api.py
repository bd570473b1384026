"""The cartable through the JSON API: queues, the conversation view, every conversation and
reply step with its stored effect, its role refusals and its bad input (nothing stored).
Who may call at all (401, token scopes, CSRF, team A against team B) is
test_api_access.py's table; here are the cases inside one's own scope."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import select

from console import auth
from kartabl.models import (
    Channel,
    Conversation,
    ConversationStatus,
    Event,
    Person,
    Reply,
    ReplyState,
)
from tests import factories as f
from tests.console.api.conftest import Api, snapshot

C = "/api/v1/conversations"


def _conv(db, cid: int) -> Conversation:
    with db() as s:
        conv = s.get(Conversation, cid)
        assert conv is not None
        return conv


def _reply(db, rid: int) -> Reply:
    with db() as s:
        reply = s.get(Reply, rid)
        assert reply is not None
        return reply


def _events(db, kind: str) -> list[Event]:
    with db() as s:
        return f.events(s, kind)


# -- queues ----------------------------------------------------------------------------------


def test_queues_count_and_list_for_a_coordinator(api, world) -> None:
    coord = api(world.coord)
    queues = {q["name"]: q for q in coord.get("/api/v1/queues").json()}
    assert list(queues) == ["triage", "approval", "mine", f"team:{world.team_b}",
                            f"team:{world.team_a}", "open", "overdue", "scheduled",
                            "waiting", "snoozed"]
    assert queues["triage"]["count"] == 2  # conv_b2 (team B, nobody) and conv_triage
    assert queues["approval"]["count"] == 1 and queues["open"]["count"] == 4
    assert queues[f"team:{world.team_b}"] | {"count": None} == {
        "name": f"team:{world.team_b}", "kind": "team", "team_id": world.team_b,
        "title": "sales", "count": None}
    page = coord.get("/api/v1/queues/approval").json()
    assert [(r["conversation_id"], r["pending_reply_id"]) for r in page["rows"]] == [
        (world.conv_b, world.pending_b)]
    assert page["rows"][0]["pending_reply"]["author"] == "bahar"
    assert page["rows"][0]["customer_name"] == "Secret Customer B"


def test_queue_filters_and_paging(api, world) -> None:
    coord = api(world.coord)
    sms = coord.get("/api/v1/queues/open", params={"channel": "sms"}).json()["rows"]
    assert [r["conversation_id"] for r in sms] == [world.conv_a]
    old = coord.get("/api/v1/queues/open", params={"min_age_hours": 24}).json()["rows"]
    assert {r["conversation_id"] for r in old} == {world.conv_a, world.conv_b}
    counts = {q["name"]: q["count"] for q in coord.get(
        "/api/v1/queues", params={"team_id": world.team_a}).json()}
    assert counts["open"] == 1 and counts[f"team:{world.team_b}"] == 0
    seen, cursor = [], None
    while True:
        page = coord.get("/api/v1/queues/open",
                         params={"limit": 1, **({"cursor": cursor} if cursor else {})}).json()
        seen += [r["conversation_id"] for r in page["rows"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert sorted(seen) == sorted([world.conv_a, world.conv_b, world.conv_b2, world.conv_triage])
    closed = coord.get("/api/v1/queues", params={"status": "closed"}).json()
    assert {q["name"]: q["count"] for q in closed}["triage"] is None  # lists open only


def test_queue_bad_input_is_a_clear_4xx(api, world) -> None:
    coord = api(world.coord)
    cases = [
        ("/api/v1/queues/nowhere", {}, 400, "unknown queue"),
        ("/api/v1/queues/open", {"status": "closed"}, 400, "lists open conversations only"),
        ("/api/v1/queues/open", {"min_age_hours": 5, "max_age_hours": 1}, 400, "min_age"),
        ("/api/v1/queues/open", {"cursor": "garbage"}, 400, "cursor"),
        ("/api/v1/queues/team:999", {}, 404, "team 999 does not exist"),
        ("/api/v1/queues/open", {"limit": 0}, 422, "limit"),
        ("/api/v1/queues/open", {"channel": "fax"}, 422, "channel"),
        ("/api/v1/queues/open", {"min_age_hours": "nan"}, 422, "min_age_hours"),
        ("/api/v1/queues/open", {"team_id": 2**40}, 422, "team_id"),
    ]
    for path, params, status, said in cases:
        r = coord.get(path, params=params)
        assert r.status_code == status, (path, params, r.text)
        assert said in r.text, (path, params, r.text)


# -- the conversation view -------------------------------------------------------------------


def test_conversation_view_has_timeline_customer_and_safe_html(api, world, db) -> None:
    with db() as s:
        conv = s.get(Conversation, world.conv_b)
        msg = f.inbound(s, conv, text="plain")
        f.mail_html(msg, '<p onclick="x()">hi<script>alert(1)</script>'
                         '<img src="https://t.example/p"></p>')
        msg.attachments = [{"filename": "a.pdf", "content_type": "application/pdf",
                            "size": 3, "storage_key": "ab" * 32},
                           {"filename": "big.iso", "content_type": "x", "size": 9}]
        s.commit()
        msg_id = msg.id
    r = api(world.coord).get(f"{C}/{world.conv_b}")
    assert r.status_code == 200, r.text
    view = r.json()
    assert view["conversation"] | {"opened_at": None, "last_message_at": None} == {
        "id": world.conv_b, "customer_id": world.customer_b, "channel": "email",
        "status": "open", "subject": "sales-secret-subject", "team_id": world.team_b,
        "team_name": "sales", "assignee_id": world.agent_b, "assignee_name": "bahar",
        "opened_at": None, "first_response_at": None, "resolved_at": None,
        "last_message_at": None, "previous_id": None, "merged_into_id": None}
    assert view["customer"]["tags"] == ["vip"]
    assert view["customer"]["identities"] == [
        {"kind": "email", "address": "secret.b@example.ir", "display": ""}]
    kinds = [(i["kind"], i.get("reply_id") or i.get("message_id")) for i in view["timeline"]]
    assert ("reply", world.pending_b) in kinds and ("reply", world.draft_b) in kinds
    shown = next(i for i in view["timeline"] if i.get("message_id") == msg_id)
    assert shown["html"] == "<p>hi<img></p>"  # no script, no handler, no remote image
    assert shown["attachments"] == [
        {"filename": "a.pdf", "content_type": "application/pdf", "size": 3,
         "url": f"/messages/{msg_id}/attachments/{'ab' * 32}"},
        {"filename": "big.iso", "content_type": "x", "size": 9, "url": None}]


def test_a_missing_conversation_is_404_and_a_bad_id_422(api, world) -> None:
    coord = api(world.coord)
    assert coord.get(f"{C}/999").status_code == 404
    assert coord.get(f"{C}/999").json() == {"detail": "conversation 999 does not exist"}
    assert coord.get(f"{C}/0").status_code == 422
    assert coord.get(f"{C}/{2**63}").status_code == 422
    assert coord.get(f"{C}/abc").status_code == 422


# -- conversation steps ----------------------------------------------------------------------


def test_assign_stores_the_person_and_team(api, world, db) -> None:
    r = api(world.coord).post(f"{C}/{world.conv_triage}/assign",
                              {"person_id": world.agent_a, "team_id": world.team_a})
    assert r.status_code == 200, r.text
    assert r.json() == {"id": world.conv_triage, "status": "open", "team_id": world.team_a,
                        "assignee_id": world.agent_a, "resolved_at": None}
    conv = _conv(db, world.conv_triage)
    assert (conv.assignee_id, conv.team_id) == (world.agent_a, world.team_a)
    assert [e.data["to_person"] for e in _events(db, "conversation.assigned")] == [world.agent_a]


def test_assign_refusals_store_nothing(api, browser, world, db) -> None:
    coord, agent = api(world.coord), api(world.agent_a)
    before = snapshot(db)
    path = f"{C}/{world.conv_a}/assign"
    r = agent.post(path, {"person_id": world.agent_a2})  # in scope, but an agent's role
    assert r.status_code == 403 and "only a coordinator or an admin" in r.json()["detail"]
    r = coord.post(path, {})
    assert r.status_code == 400 and r.json()["detail"] == "assign needs a person or a team"
    r = coord.post(path, {"person_id": 999})
    assert r.status_code == 404 and "person 999" in r.json()["detail"]
    assert coord.post(path, {"person_id": "x"}).status_code == 422
    assert coord.post(path, {"person_id": 2**40}).status_code == 422
    assert coord.post(path, content=b"{not json", headers={
        "Content-Type": "application/json"}).status_code == 422
    assert snapshot(db) == before


def test_refer_with_a_note_and_the_agent_loses_sight_of_it(api, world, db) -> None:
    agent = api(world.agent_a)
    r = agent.post(f"{C}/{world.conv_a}/refer", {"team_id": world.team_b, "note": "for sales"})
    assert r.status_code == 200, r.text
    assert r.json()["team_id"] == world.team_b and r.json()["assignee_id"] is None
    assert [e.data["note"] for e in _events(db, "conversation.referred")] == ["for sales"]
    assert agent.get(f"{C}/{world.conv_a}").status_code == 404  # team B's now


def test_refer_refusals_store_nothing(api, world, db) -> None:
    agent, agent2 = api(world.agent_a), api(world.agent_a2)  # both team A; conv_a is ali's
    before = snapshot(db)
    r = agent2.post(f"{C}/{world.conv_a}/refer", {"team_id": world.team_b, "note": "x"})
    assert r.status_code == 403 and "only the assignee" in r.json()["detail"]
    r = agent.post(f"{C}/{world.conv_a}/refer", {"team_id": world.team_b, "note": "  "})
    assert r.status_code == 400 and "note must not be empty" in r.json()["detail"]
    r = agent.post(f"{C}/{world.conv_a}/refer", {"team_id": world.team_b})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "note"]
    r = agent.post(f"{C}/{world.conv_a}/refer", {"team_id": world.team_b, "note": "a\x00b"})
    assert r.status_code == 422 and "NUL" in r.text
    r = agent.post(f"{C}/{world.conv_a}/refer", {"team_id": 1, "note": "x" * 20_001})
    assert r.status_code == 422
    assert snapshot(db) == before


def test_close_then_reopen(api, world, db) -> None:
    agent = api(world.agent_a)
    r = agent.post(f"{C}/{world.conv_a}/close")
    assert r.status_code == 200 and r.json()["status"] == "closed"
    assert r.json()["resolved_at"] is not None
    assert _conv(db, world.conv_a).status == ConversationStatus.CLOSED
    r = agent.post(f"{C}/{world.conv_a}/close")
    assert r.status_code == 409 and "state 'closed'" in r.json()["detail"]
    r = agent.post(f"{C}/{world.conv_a}/reopen")
    assert r.status_code == 200 and r.json() | {"resolved_at": 0} == {
        "id": world.conv_a, "status": "open", "team_id": world.team_a,
        "assignee_id": world.agent_a, "resolved_at": 0}
    conv = _conv(db, world.conv_a)
    assert (conv.status, conv.resolved_at) == (ConversationStatus.OPEN, None)
    r = agent.post(f"{C}/{world.conv_a}/reopen")
    assert r.status_code == 409


def test_close_is_refused_while_a_reply_awaits_approval(api, world, db) -> None:
    r = api(world.coord).post(f"{C}/{world.conv_b}/close")
    assert r.status_code == 409 and f"reply {world.pending_b} awaits approval" in r.text
    assert _conv(db, world.conv_b).status == ConversationStatus.OPEN


def test_notes_are_stored_private_and_refused_empty(api, world, db) -> None:
    agent = api(world.agent_a)
    r = agent.post(f"{C}/{world.conv_a}/notes", {"text": "called them"})
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["text"] == "called them" and body["conversation_id"] == world.conv_a
    [event] = _events(db, "conversation.note")
    assert (event.id, event.data["text"]) == (body["event_id"], "called them")
    r = agent.post(f"{C}/{world.conv_a}/notes", {"text": " \n "})
    assert r.status_code == 400 and r.json() == {"detail": "a note must not be empty"}
    assert len(_events(db, "conversation.note")) == 1


# -- replies ---------------------------------------------------------------------------------


def test_the_apps_approval_policy_is_the_routing_files(world, db, routing_file) -> None:
    # Given a routing file that trusts ali, read by the app when it is made (the web
    # process's edge hands the policy to every submit)
    from console.app import create_app

    text = routing_file.read_text(encoding="utf-8")
    routing_file.write_text(text.replace("trusted_agents = []", 'trusted_agents = ["ali"]'),
                            encoding="utf-8")
    with db() as s:
        ali = s.get(Person, world.agent_a)
        assert ali is not None and ali.username == "ali"
        token = auth.create_api_token(s, ali, name="t", scopes=["read", "act"]).token
        s.commit()
    with TestClient(create_app(), base_url="https://testserver") as c:
        agent = Api(c, {"Authorization": f"Bearer {token}"})
        rid = agent.post(f"{C}/{world.conv_a}/replies", {"body": "سلام"}).json()["id"]
        # When ali submits, Then review is skipped, as the routing file says
        r = agent.post(f"/api/v1/replies/{rid}/submit")
    assert r.status_code == 200 and r.json()["state"] == "approved", r.text


def test_draft_edit_submit_approve_with_an_edit(api, world, db, enqueued) -> None:
    agent, coord = api(world.agent_a), api(world.coord)
    r = agent.post(f"{C}/{world.conv_a}/replies", {"body": "سلام"})
    assert r.status_code == 201, r.text
    rid = r.json()["id"]
    assert r.json()["state"] == "draft" and r.json()["author_id"] == world.agent_a
    r = agent.patch(f"/api/v1/replies/{rid}", {"body": "سلام، ارسال شد"})
    assert r.status_code == 200 and r.json()["body"] == "سلام، ارسال شد"
    r = agent.post(f"/api/v1/replies/{rid}/submit")
    assert r.status_code == 200 and r.json()["state"] == "pending_approval"
    assert enqueued == []
    r = coord.post(f"/api/v1/replies/{rid}/approve", {"body": "سلام، امروز ارسال شد"})
    assert r.status_code == 200, r.text
    out = r.json()
    assert (out["state"], out["body"], out["original_body"], out["approved_by_id"]) == (
        "approved", "سلام، امروز ارسال شد", "سلام، ارسال شد", world.coord)
    stored = _reply(db, rid)
    assert (stored.state, stored.original_body) == (ReplyState.APPROVED, "سلام، ارسال شد")
    assert stored.idempotency_key == str(rid)
    assert enqueued == [("dispatch_reply", rid)]  # after the commit
    assert agent.get(f"/api/v1/replies/{rid}").json()["state"] == "approved"


def test_approve_without_a_body_keeps_the_text(api, world, db) -> None:
    r = api(world.coord).post(f"/api/v1/replies/{world.pending_b}/approve")
    assert r.status_code == 200, r.text
    assert (r.json()["body"], r.json()["original_body"]) == ("sales-secret-pending", None)


def test_reject_with_a_comment_then_the_author_edits_it_back_to_a_draft(api, world, db) -> None:
    coord, author = api(world.coord), api(world.agent_b)
    r = coord.post(f"/api/v1/replies/{world.pending_b}/reject", {"comment": "too short"})
    assert r.status_code == 200 and r.json()["review_comment"] == "too short"
    assert _reply(db, world.pending_b).state == ReplyState.REJECTED
    r = author.patch(f"/api/v1/replies/{world.pending_b}", {"body": "longer"})
    assert r.status_code == 200 and r.json()["state"] == "draft"


def test_reply_refusals_by_role_state_and_input_store_nothing(api, browser, world, db) -> None:
    coord, coord2, agent_b = api(world.coord), api(world.coord2), api(world.agent_b)
    agent_b_session = browser("bahar")
    before = snapshot(db)
    rp = f"/api/v1/replies/{world.pending_b}"
    # an agent approving (their session carries every scope their role has: not review)
    r = agent_b_session.post(rp + "/approve")
    assert r.status_code == 403 and "'review'" in r.json()["detail"]
    # someone else's draft: only its author edits or submits it
    r = coord.patch(f"/api/v1/replies/{world.draft_b}", {"body": "mine"})
    assert r.status_code == 403 and "only the author" in r.json()["detail"]
    assert coord.post(f"/api/v1/replies/{world.draft_b}/submit").status_code == 403
    # states: a draft cannot be approved; a pending reply cannot be edited or resubmitted
    r = coord.post(f"/api/v1/replies/{world.draft_b}/approve")
    assert r.status_code == 409 and "state 'draft'" in r.json()["detail"]
    assert agent_b.patch(rp, {"body": "x"}).status_code == 409
    assert agent_b.post(rp + "/submit").status_code == 409
    # input
    r = coord.post(rp + "/reject", {"comment": ""})
    assert r.status_code == 400 and "comment must not be empty" in r.json()["detail"]
    assert coord.post(rp + "/reject", {}).status_code == 422
    r = coord2.post(rp + "/approve", {"body": "  "})
    assert r.status_code == 400 and "edited body must not be empty" in r.json()["detail"]
    assert coord.post(rp + "/approve", {"body": 5}).status_code == 422
    assert agent_b.patch(f"/api/v1/replies/{world.draft_b}", {"body": ""}).status_code == 400
    assert coord.get("/api/v1/replies/999").status_code == 404
    assert snapshot(db) == before


def test_nobody_approves_their_own_reply(api, world, db) -> None:
    coord = api(world.coord)
    rid = coord.post(f"{C}/{world.conv_triage}/replies", {"body": "hello"}).json()["id"]
    assert coord.post(f"/api/v1/replies/{rid}/submit").status_code == 200
    r = coord.post(f"/api/v1/replies/{rid}/approve")
    assert r.status_code == 403 and "nobody approves their own reply" in r.json()["detail"]
    assert _reply(db, rid).state == ReplyState.PENDING_APPROVAL
    assert api(world.coord2).post(f"/api/v1/replies/{rid}/approve").status_code == 200


def test_draft_refusals_store_nothing(api, world, db) -> None:
    agent = api(world.agent_a)
    before = snapshot(db)
    r = agent.post(f"{C}/{world.conv_a}/replies", {"body": "x", "template": "nope"})
    assert r.status_code == 400 and r.json()["detail"] == "no reply template 'nope' for sms"
    r = agent.post(f"{C}/{world.conv_a}/replies", {"body": "   "})
    assert r.status_code == 400 and "body must not be empty" in r.json()["detail"]
    assert agent.post(f"{C}/{world.conv_a}/replies", {"text": "x"}).status_code == 422
    r = agent.post(f"{C}/{world.conv_a}/replies", content=b'{"body": "a\\ud800"}',
                   headers={"Content-Type": "application/json"})  # JSON allows it; UTF-8 not
    assert r.status_code == 422 and "unicode" in r.text
    assert snapshot(db) == before
    with db() as s:
        s.get(Conversation, world.conv_a).status = ConversationStatus.CLOSED
        s.commit()
    r = agent.post(f"{C}/{world.conv_a}/replies", {"body": "late"})
    assert r.status_code == 409 and "state 'closed'" in r.json()["detail"]
    with db() as s:
        assert s.scalars(select(Reply).where(Reply.conversation_id == world.conv_a)).all() == []


def test_a_too_long_sms_is_refused_at_submit_with_its_count(api, world, db) -> None:
    agent = api(world.agent_a)
    rid = agent.post(f"{C}/{world.conv_a}/replies", {"body": "س" * 600}).json()["id"]
    r = agent.post(f"/api/v1/replies/{rid}/submit")
    assert r.status_code == 400 and "shorten it" in r.json()["detail"]
    assert "9 SMS (UCS2" in r.json()["detail"]
    assert _reply(db, rid).state == ReplyState.DRAFT


# -- previews --------------------------------------------------------------------------------


def test_preview_counts_sms_parts_and_chat_messages(api, world) -> None:
    reader = api(world.agent_a, "read")
    r = reader.post("/api/v1/preview", {"channel": "sms", "body": "س" * 100})
    assert r.status_code == 200, r.text
    sms = r.json()
    assert (sms["parts"], sms["limit"], sms["encoding"], sms["fits"]) == (2, 8, "ucs2", True)
    assert sms["units"] == len(sms["text"]) and "س" * 100 in sms["text"]
    r = reader.post("/api/v1/preview", {"channel": "telegram", "body": "a" * 5000})
    assert (r.json()["parts"], r.json()["encoding"]) == (2, None)
    r = reader.post("/api/v1/preview", {"channel": "sms", "body": "a" * 2000})
    assert r.json()["fits"] is False and r.json()["parts"] > 8
    r = reader.post("/api/v1/preview", {"channel": "sms", "body": "x", "template": "nope"})
    assert r.status_code == 400 and "no reply template" in r.json()["detail"]
    assert reader.post("/api/v1/preview", {"channel": "fax", "body": "x"}).status_code == 422


def test_conversation_preview_uses_its_channel(api, world, db) -> None:
    agent = api(world.agent_a)
    before = snapshot(db)
    r = agent.post(f"{C}/{world.conv_a}/preview", {"body": "Hello"})
    assert r.status_code == 200, r.text
    assert (r.json()["channel"], r.json()["encoding"], r.json()["parts"]) == ("sms", "gsm7", 1)
    assert snapshot(db) == before  # a POST for the body's size; it stores nothing
    assert Channel(r.json()["channel"]) is Channel.SMS


def test_a_canned_template_fills_the_customer_s_name_in_preview_and_draft(api, world, db) -> None:
    with db() as s:
        conv = s.get(Conversation, world.conv_a)
        f.inbound(s, conv, text="hello").sender_name = "Sara"
        s.commit()
    agent = api(world.agent_a)
    body = {"body": "Your order has shipped", "template": "greeting"}
    pv = agent.post(f"{C}/{world.conv_a}/preview", body).json()
    # the customer's latest words are English: the English greeting (issue 14)
    assert pv["text"].startswith("Dear Sara,") and "Your order has shipped" in pv["text"]
    assert pv["encoding"] == "gsm7"  # no Persian letter in it
    plain = agent.post("/api/v1/preview", {"channel": "sms", **body}).json()
    assert "Sara" not in plain["text"]  # no conversation, no name
    assert plain["text"].startswith("سلام.")  # no conversation: Persian, unless asked
    english = agent.post("/api/v1/preview", {"channel": "sms", "language": "en", **body})
    assert english.json()["text"].startswith("Hello,")
    r = agent.post(f"{C}/{world.conv_a}/replies", body)
    assert r.status_code == 201 and r.json()["template"] == "greeting"
    assert _reply(db, r.json()["id"]).template == "greeting"
