"""Bulk steps (kartabl.workflow.bulk, console.bulk) and the hand-over's team rule."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from console.bulk import BulkAction, run
from kartabl import workflow
from kartabl.errors import InputError, PermissionDenied
from kartabl.models import Conversation, ConversationStatus, Event, Role
from kartabl.workflow.bulk import MAX_ITEMS, NOT_FOUND
from responders.preview import REPLY_CHECK
from tests.factories import conversation, person, team


def _events(session: Session, kind: str) -> list[Event]:
    return list(session.scalars(select(Event).where(Event.kind == kind).order_by(Event.id)))


def test_a_coordinator_assigns_twenty_triage_items_each_audited(session: Session, org) -> None:
    # Given 20 unassigned conversations in triage
    ids = [conversation(session).id for _ in range(20)]
    session.commit()
    # When maryam assigns them all to sara in one request
    result = run(session, org.maryam, BulkAction("assign", person_id=org.sara.id), ids)
    session.commit()
    # Then all 20 are sara's, in her team, each with its own assignment event
    assert result.done == ids and result.refused == []
    convs = session.scalars(select(Conversation).where(Conversation.id.in_(ids))).all()
    assert {(c.assignee_id, c.team_id) for c in convs} == {(org.sara.id, org.support.id)}
    assert sorted(e.conversation_id for e in _events(session, "conversation.assigned")) == ids
    [summary] = _events(session, "bulk.applied")
    assert summary.actor_id == org.maryam.id and summary.id == result.event_id
    assert summary.data == {"action": "assign", "done": ids, "refused": []}


def test_an_agents_bulk_close_refuses_what_is_outside_their_scope(session: Session,
                                                                   org) -> None:
    # Given ali's own conversation, one of his team's, one of sales (not his), one with a
    # reply awaiting approval, and an id that does not exist
    team_conv = conversation(session, team=org.support)
    sales_conv = conversation(session, team=org.sales, assignee=org.bob)
    pending_conv = conversation(session, team=org.support, assignee=org.ali)
    session.commit()
    reply = workflow.draft(session, org.ali, pending_conv.id, "x", check=REPLY_CHECK)
    workflow.submit(session, org.ali, reply.id, check=REPLY_CHECK)
    session.commit()
    ids = [org.conv.id, team_conv.id, sales_conv.id, pending_conv.id, 999_999]
    # When ali closes them all
    result = run(session, org.ali, BulkAction("close"), ids)
    session.commit()
    # Then his and his team's are closed; the rest are refused each with its reason, and
    # the one outside his scope reads exactly like one that does not exist
    assert result.done == [org.conv.id, team_conv.id]
    refused = {r.conversation_id: r for r in result.refused}
    assert refused[sales_conv.id].reason == refused[999_999].reason == NOT_FOUND
    assert refused[pending_conv.id].error == "IllegalTransition"
    assert "awaits approval" in refused[pending_conv.id].reason
    session.expire_all()
    assert session.get(Conversation, sales_conv.id).status == ConversationStatus.OPEN
    assert session.get(Conversation, pending_conv.id).status == ConversationStatus.OPEN
    assert session.get(Conversation, team_conv.id).status == ConversationStatus.CLOSED
    [summary] = _events(session, "bulk.applied")
    assert [r["conversation_id"] for r in summary.data["refused"]] == [
        sales_conv.id, pending_conv.id, 999_999]


def test_a_refused_item_is_rolled_back_alone(session: Session, org) -> None:
    # Given a referral that the workflow refuses for one item half-way (a closed one)
    closed = conversation(session, team=org.support, status=ConversationStatus.CLOSED)
    open_one = conversation(session, team=org.support)
    session.commit()
    result = run(session, org.maryam,
                 BulkAction("refer", team_id=org.sales.id, note="برای فروش"),
                 [closed.id, open_one.id])
    session.commit()
    assert result.done == [open_one.id] and [r.conversation_id for r in result.refused] == [
        closed.id]
    session.expire_all()
    assert session.get(Conversation, closed.id).team_id == org.support.id
    assert session.get(Conversation, open_one.id).team_id == org.sales.id


@pytest.mark.parametrize(("action", "error"), [
    (BulkAction("assign", person_id=1), PermissionDenied),  # an agent may not assign
    (BulkAction("refer", team_id=1, note="  "), InputError),  # a referral needs its note
    (BulkAction("tag", tag=""), InputError),
    (BulkAction("delete"), InputError),
])
def test_a_request_wrong_as_a_whole_changes_nothing(session: Session, org, action,
                                                    error) -> None:
    with pytest.raises(error):
        run(session, org.ali, action, [org.conv.id])
    session.rollback()
    assert _events(session, "bulk.applied") == []


def test_the_size_of_a_request_is_bounded(session: Session, org) -> None:
    with pytest.raises(InputError, match="at least one"):
        run(session, org.maryam, BulkAction("close"), [])
    with pytest.raises(InputError, match=f"at most {MAX_ITEMS}"):
        run(session, org.maryam, BulkAction("close"), list(range(1, MAX_ITEMS + 2)))


def test_tagging_in_bulk_tags_each_customer_once(session: Session, org) -> None:
    other = conversation(session, team=org.support)
    session.commit()
    result = run(session, org.ali, BulkAction("tag", tag="VIP"), [org.conv.id, other.id])
    session.commit()
    assert result.done == [org.conv.id, other.id]
    assert "vip" in [t.lower() for t in org.conv.customer.tags]


# -- the hand-over's team -------------------------------------------------------------------


def test_assigning_a_person_of_another_team_moves_the_conversation_to_it(
        session: Session, org) -> None:
    # Given a support conversation, and bob who is in sales only
    # When it is assigned to bob alone
    workflow.assign(session, org.maryam, org.conv.id, person_id=org.bob.id)
    # Then it moves to sales with him, so his teammates can see it
    assert (org.conv.assignee_id, org.conv.team_id) == (org.bob.id, org.sales.id)


def test_a_person_of_several_other_teams_is_asked_which(session: Session, org) -> None:
    third = team(session, "billing")
    nima = person(session, "nima", teams=[org.sales, third])
    session.commit()
    with pytest.raises(InputError, match="several teams"):
        workflow.refer(session, org.ali, org.conv.id, person_id=nima.id, note="n")
    # and naming the team settles it
    workflow.refer(session, org.ali, org.conv.id, person_id=nima.id, team_id=third.id,
                   note="n")
    assert (org.conv.assignee_id, org.conv.team_id) == (nima.id, third.id)


def test_a_teammate_or_a_coordinator_keeps_the_team(session: Session, org) -> None:
    workflow.assign(session, org.maryam, org.conv.id, person_id=org.sara.id)
    assert org.conv.team_id == org.support.id
    coordinator = person(session, "leila", Role.COORDINATOR)
    workflow.assign(session, org.maryam, org.conv.id, person_id=coordinator.id)
    assert org.conv.team_id == org.support.id
