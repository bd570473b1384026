"""Conversation transitions: assign, refer, close, reopen, note, and who may see what."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session

from kartabl import workflow
from kartabl.errors import IllegalTransition, InputError, NotFound, PermissionDenied
from kartabl.models import ConversationStatus, ReplyState
from responders.preview import REPLY_CHECK
from tests.factories import conversation, events, person


def test_can_access_is_scoped_by_role_assignment_and_team(session: Session, org) -> None:
    other = conversation(session, team=org.sales)
    unrouted = conversation(session)
    assert workflow.can_access(org.maryam, unrouted) and workflow.can_access(org.admin, other)
    assert workflow.can_access(org.ali, org.conv)  # assignee
    assert workflow.can_access(org.sara, org.conv)  # same team
    assert not workflow.can_access(org.bob, org.conv)  # other team
    assert not workflow.can_access(org.ali, other) and not workflow.can_access(org.ali, unrouted)
    org.sara.active = False
    assert not workflow.can_access(org.sara, org.conv)


def test_coordinator_assigns_and_the_event_says_from_whom_to_whom(session: Session, org) -> None:
    workflow.assign(session, org.maryam, org.conv.id, person_id=org.bob.id, team_id=org.sales.id)
    session.commit()
    assert (org.conv.assignee_id, org.conv.team_id) == (org.bob.id, org.sales.id)
    [ev] = events(session, "conversation.assigned")
    assert ev.actor_id == org.maryam.id
    assert ev.data == {"from_person": org.ali.id, "from_team": org.support.id,
                       "to_person": org.bob.id, "to_team": org.sales.id}


def test_the_system_may_assign_but_an_agent_may_not(session: Session, org) -> None:
    workflow.assign(session, None, org.conv.id, person_id=org.sara.id)
    assert org.conv.assignee_id == org.sara.id
    with pytest.raises(PermissionDenied, match="agent 'sara' may not assign"):
        workflow.assign(session, org.sara, org.conv.id, person_id=org.sara.id)


def test_assign_rejects_bad_targets_and_closed_conversations(session: Session, org) -> None:
    gone = person(session, "gone", active=False)
    with pytest.raises(InputError, match="not active"):
        workflow.assign(session, org.maryam, org.conv.id, person_id=gone.id)
    with pytest.raises(InputError, match="needs a person or a team"):
        workflow.assign(session, org.maryam, org.conv.id)
    with pytest.raises(NotFound):
        workflow.assign(session, org.maryam, 999_999, person_id=org.ali.id)
    closed = conversation(session, status=ConversationStatus.CLOSED)
    with pytest.raises(IllegalTransition) as err:
        workflow.assign(session, org.maryam, closed.id, person_id=org.ali.id)
    assert (err.value.step, err.value.state) == ("assign", "closed")


def test_assignee_refers_to_a_colleague_with_a_note(session: Session, org) -> None:
    # Given ali holds the conversation
    # When he refers it to sara with a note
    workflow.refer(session, org.ali, org.conv.id, person_id=org.sara.id, note="  مشتری قدیمی  ")
    session.commit()
    # Then sara holds it, in the same team, and the note is in the audit trail
    assert (org.conv.assignee_id, org.conv.team_id) == (org.sara.id, org.support.id)
    [ev] = events(session, "conversation.referred")
    assert ev.actor_id == org.ali.id and ev.data["note"] == "مشتری قدیمی"
    assert ev.data["from_person"] == org.ali.id and ev.data["to_person"] == org.sara.id


def test_referring_to_a_team_leaves_it_in_that_teams_queue(session: Session, org) -> None:
    workflow.refer(session, org.ali, org.conv.id, team_id=org.sales.id, note="billing matter")
    assert (org.conv.assignee_id, org.conv.team_id) == (None, org.sales.id)
    # ali no longer sees it; bob (sales) does
    assert not workflow.can_access(org.ali, org.conv) and workflow.can_access(org.bob, org.conv)


def test_refer_needs_a_note_and_an_active_target(session: Session, org) -> None:
    gone = person(session, "gone", active=False, teams=[org.support])
    for blank in ("", "   "):
        with pytest.raises(InputError, match="note"):
            workflow.refer(session, org.ali, org.conv.id, person_id=org.sara.id, note=blank)
    with pytest.raises(InputError, match="'gone' is not active"):
        workflow.refer(session, org.ali, org.conv.id, person_id=gone.id, note="over to you")
    assert org.conv.assignee_id == org.ali.id


def test_only_the_assignee_or_a_coordinator_refers(session: Session, org) -> None:
    with pytest.raises(PermissionDenied, match="only the assignee"):  # a teammate
        workflow.refer(session, org.sara, org.conv.id, person_id=org.sara.id, note="mine now")
    with pytest.raises(PermissionDenied, match="outside their teams"):  # another team
        workflow.refer(session, org.bob, org.conv.id, person_id=org.bob.id, note="mine now")
    with pytest.raises(PermissionDenied, match="a person must take this step"):
        workflow.refer(session, None, org.conv.id, person_id=org.sara.id, note="x")
    workflow.refer(session, org.maryam, org.conv.id, person_id=org.sara.id, note="rebalancing")
    assert org.conv.assignee_id == org.sara.id


def test_close_then_reopen(session: Session, org) -> None:
    # A teammate may close it
    workflow.close(session, org.sara, org.conv.id)
    session.commit()
    assert org.conv.status == ConversationStatus.CLOSED and org.conv.resolved_at is not None
    with pytest.raises(IllegalTransition) as err:
        workflow.close(session, org.ali, org.conv.id)
    assert (err.value.step, err.value.state) == ("close", "closed")
    assert "cannot close" in str(err.value) and "'closed'" in str(err.value)
    # The system (the router, on a customer's reply) may reopen it
    workflow.reopen(session, None, org.conv.id)
    session.commit()
    assert org.conv.status == ConversationStatus.OPEN and org.conv.resolved_at is None
    with pytest.raises(IllegalTransition) as err:
        workflow.reopen(session, org.ali, org.conv.id)
    assert (err.value.step, err.value.state) == ("reopen", "open")
    assert [e.kind for e in events(session, "conversation.closed")] == ["conversation.closed"]
    assert len(events(session, "conversation.reopened")) == 1


def test_close_and_reopen_are_scoped(session: Session, org) -> None:
    with pytest.raises(PermissionDenied):
        workflow.close(session, org.bob, org.conv.id)
    workflow.close(session, org.ali, org.conv.id)
    with pytest.raises(PermissionDenied):
        workflow.reopen(session, org.bob, org.conv.id)


def test_close_refuses_while_a_reply_awaits_approval(session: Session, org) -> None:
    # Given a reply pending approval
    reply = workflow.draft(session, org.ali, org.conv.id, "پاسخ", check=REPLY_CHECK)
    workflow.submit(session, org.ali, reply.id, check=REPLY_CHECK)
    # When the agent tries to close, Then the error names the step and the blocking state
    with pytest.raises(IllegalTransition) as err:
        workflow.close(session, org.ali, org.conv.id)
    assert (err.value.step, err.value.state) == ("close", ReplyState.PENDING_APPROVAL.value)
    assert f"reply {reply.id} awaits approval" in str(err.value)
    # Once it is rejected, closing works (the rejected reply stays for the record)
    workflow.reject(session, org.maryam, reply.id, "not needed")
    workflow.close(session, org.ali, org.conv.id)
    assert org.conv.status == ConversationStatus.CLOSED


def test_private_note_is_an_audit_event_for_staff_with_access(session: Session, org) -> None:
    ev = workflow.note(session, org.sara, org.conv.id, "called the customer")
    session.commit()
    assert (ev.kind, ev.actor_id, ev.data["text"]) == (
        "conversation.note", org.sara.id, "called the customer")
    with pytest.raises(PermissionDenied):
        workflow.note(session, org.bob, org.conv.id, "peeking")
    with pytest.raises(PermissionDenied):
        workflow.note(session, None, org.conv.id, "system notes are not notes")
    with pytest.raises(InputError):
        workflow.note(session, org.ali, org.conv.id, " ")
    workflow.close(session, org.ali, org.conv.id)
    workflow.note(session, org.maryam, org.conv.id, "notes work on closed ones too")
    assert len(events(session, "conversation.note")) == 2


def test_a_deactivated_person_can_take_no_step(session: Session, org) -> None:
    org.maryam.active = False
    with pytest.raises(PermissionDenied, match="deactivated"):
        workflow.assign(session, org.maryam, org.conv.id, person_id=org.sara.id)


def test_transitions_leave_the_commit_to_the_caller(session: Session, org) -> None:
    # When a transition runs and the caller rolls back
    workflow.close(session, org.ali, org.conv.id)
    session.rollback()
    # Then neither the change nor its audit event exists
    session.refresh(org.conv)
    assert org.conv.status == ConversationStatus.OPEN
    assert events(session, "conversation.closed") == []
