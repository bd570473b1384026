"""Reply transitions: draft, edit, submit (and the approval policy), approve, reject."""

from __future__ import annotations

import re

import pytest
from sqlalchemy.orm import Session

from config.routing import ApprovalPolicy
from kartabl import reply_tokens, workflow
from kartabl.errors import IllegalTransition, InputError, PermissionDenied
from kartabl.models import Channel, ConversationStatus, Reply, ReplyState
from responders.preview import REPLY_CHECK
from tests.factories import conversation, events

RS = ReplyState


def pending(session: Session, org, body: str = "سفارش شما ارسال شد") -> Reply:
    reply = workflow.draft(session, org.ali, org.conv.id, body, check=REPLY_CHECK)
    workflow.submit(session, org.ali, reply.id, check=REPLY_CHECK)
    session.commit()
    return reply


# -- the table -------------------------------------------------------------------------------


@pytest.mark.parametrize("step", sorted(workflow.REPLY_TRANSITIONS))
def test_every_illegal_reply_step_names_the_step_and_the_state(step: str) -> None:
    sources, targets = workflow.REPLY_TRANSITIONS[step]
    for state in RS:
        reply = Reply(id=7, state=state)
        if state in sources:
            workflow.move_reply(reply, step, next(iter(targets)))
            assert reply.state in targets
            continue
        with pytest.raises(IllegalTransition) as err:
            workflow.move_reply(reply, step, next(iter(targets)))
        assert (err.value.step, err.value.state) == (step, state.value)
        assert f"cannot {step}" in str(err.value) and repr(state.value) in str(err.value)


# -- draft and edit --------------------------------------------------------------------------


def test_assignee_drafts_on_the_conversations_channel(session: Session, org) -> None:
    sms = conversation(session, channel=Channel.SMS, team=org.support, assignee=org.ali)
    reply = workflow.draft(session, org.ali, sms.id, "  سلام  ", template="default",
                           check=REPLY_CHECK)
    session.commit()
    assert (reply.state, reply.channel, reply.body, reply.author_id) == (
        RS.DRAFT, Channel.SMS, "سلام", org.ali.id)
    [ev] = events(session, "reply.drafted")
    assert (ev.reply_id, ev.conversation_id, ev.data["template"]) == (reply.id, sms.id, "default")


def test_who_may_draft(session: Session, org) -> None:
    workflow.draft(session, org.sara, org.conv.id, "teammate", check=REPLY_CHECK)  # same team
    workflow.draft(session, org.maryam, org.conv.id, "coordinator", check=REPLY_CHECK)
    with pytest.raises(PermissionDenied, match="outside their teams"):
        workflow.draft(session, org.bob, org.conv.id, "other team", check=REPLY_CHECK)
    with pytest.raises(PermissionDenied):
        workflow.draft(session, None, org.conv.id, "the system does not write replies",
                       check=REPLY_CHECK)


def test_draft_needs_an_open_conversation_a_body_and_a_real_template(
    session: Session, org
) -> None:
    with pytest.raises(InputError, match="body"):
        workflow.draft(session, org.ali, org.conv.id, " \n ", check=REPLY_CHECK)
    for bad in ("nope", "../default", "Default"):
        with pytest.raises(InputError, match="template"):
            workflow.draft(session, org.ali, org.conv.id, "x", template=bad, check=REPLY_CHECK)
    closed = conversation(
        session, team=org.support, assignee=org.ali, status=ConversationStatus.CLOSED
    )
    with pytest.raises(IllegalTransition) as err:
        workflow.draft(session, org.ali, closed.id, "x", check=REPLY_CHECK)
    assert (err.value.step, err.value.state) == ("draft", "closed")


def test_only_the_author_edits_and_a_rejected_reply_becomes_a_draft(
    session: Session, org
) -> None:
    reply = pending(session, org)
    with pytest.raises(IllegalTransition) as err:
        workflow.update_draft(session, org.ali, reply.id, "too late")
    assert (err.value.step, err.value.state) == ("edit", "pending_approval")
    workflow.reject(session, org.maryam, reply.id, "add the tracking number")
    with pytest.raises(PermissionDenied, match="only the author"):
        workflow.update_draft(session, org.sara, reply.id, "not mine")
    workflow.update_draft(session, org.ali, reply.id, "tracking: 4421")
    session.commit()
    assert (reply.state, reply.body) == (RS.DRAFT, "tracking: 4421")
    [ev] = events(session, "reply.edited")
    assert ev.data == {"previous_state": "rejected", "body": "tracking: 4421"}


# -- submit and the approval policy ----------------------------------------------------------


def test_by_default_every_reply_is_reviewed(session: Session, org, enqueued) -> None:
    reply = workflow.draft(session, org.ali, org.conv.id, "x", check=REPLY_CHECK)
    # no policy handed over: the strict default (the console hands over the routing file's)
    workflow.submit(session, org.ali, reply.id, check=REPLY_CHECK)
    session.commit()
    assert reply.state == RS.PENDING_APPROVAL and reply.idempotency_key is None
    [ev] = events(session, "reply.submitted")
    assert ev.data == {"policy": "reviewed"}
    assert enqueued == []


def test_only_the_author_submits_a_draft_once(session: Session, org) -> None:
    reply = workflow.draft(session, org.ali, org.conv.id, "x", check=REPLY_CHECK)
    with pytest.raises(PermissionDenied, match="only the author"):
        workflow.submit(session, org.maryam, reply.id, check=REPLY_CHECK)
    workflow.submit(session, org.ali, reply.id, check=REPLY_CHECK)
    with pytest.raises(IllegalTransition) as err:
        workflow.submit(session, org.ali, reply.id, check=REPLY_CHECK)
    assert (err.value.step, err.value.state) == ("submit", "pending_approval")


@pytest.mark.parametrize(
    ("policy", "reason"),
    [
        (ApprovalPolicy(trusted_agents=["ali"]), "trusted agent ali"),
        (ApprovalPolicy(trusted_teams=["support"]), "trusted team support"),
        (ApprovalPolicy(mode="none"), "mode=none"),
    ],
)
def test_trusted_agents_and_teams_skip_review(
    session: Session, org, enqueued, policy: ApprovalPolicy, reason: str
) -> None:
    reply = workflow.draft(session, org.ali, org.conv.id, "x", check=REPLY_CHECK)
    workflow.submit(session, org.ali, reply.id, policy=policy, check=REPLY_CHECK)
    assert enqueued == []
    session.commit()
    assert reply.state == RS.APPROVED and reply.approved_at and reply.idempotency_key
    assert reply.approved_by_id is None  # the policy, not a person
    assert events(session, "reply.submitted")[0].data == {"policy": f"skipped review: {reason}"}
    assert events(session, "reply.approved")[0].data["by_policy"] == reason
    assert enqueued == [("dispatch_reply", reply.id)]


def test_a_trusted_list_does_not_cover_others(session: Session, org) -> None:
    reply = workflow.draft(session, org.sara, org.conv.id, "x", check=REPLY_CHECK)
    workflow.submit(session, org.sara, reply.id, check=REPLY_CHECK,
                    policy=ApprovalPolicy(trusted_agents=["ali"], trusted_teams=["sales"]))
    assert reply.state == RS.PENDING_APPROVAL


def test_submit_needs_an_open_conversation(session: Session, org) -> None:
    reply = workflow.draft(session, org.ali, org.conv.id, "x", check=REPLY_CHECK)
    workflow.close(session, org.ali, org.conv.id)
    with pytest.raises(IllegalTransition) as err:
        workflow.submit(session, org.ali, reply.id, check=REPLY_CHECK)
    assert (err.value.step, err.value.state) == ("submit", "closed")


# -- approve and reject ----------------------------------------------------------------------


def test_approve_fixes_the_key_and_enqueues_dispatch_only_after_commit(
    session: Session, org, enqueued
) -> None:
    reply = pending(session, org)
    # When a coordinator approves
    workflow.approve(session, org.maryam, reply.id, check=REPLY_CHECK)
    # Then nothing is enqueued while the transaction is open
    assert enqueued == []
    session.commit()
    # and exactly one dispatch after the commit
    assert enqueued == [("dispatch_reply", reply.id)]
    assert (reply.state, reply.approved_by_id) == (RS.APPROVED, org.maryam.id)
    assert reply.approved_at is not None and reply.original_body is None
    # The email key is a signed Message-ID on the domain the customer wrote to
    assert re.fullmatch(
        rf"<kartabl\.{reply.id}\.[0-9a-f]{{16}}\.[0-9a-f]{{20}}@kartabl\.example>",
        reply.idempotency_key or "")
    assert reply_tokens.verify(reply.idempotency_key or "") == reply.id
    [ev] = events(session, "reply.approved")
    assert (ev.actor_id, ev.data) == (org.maryam.id, {"edited": False})


def test_an_approval_rolled_back_enqueues_nothing(session: Session, org, enqueued) -> None:
    reply = pending(session, org)
    workflow.approve(session, org.maryam, reply.id, check=REPLY_CHECK)
    session.rollback()
    assert enqueued == []
    session.refresh(reply)
    assert reply.state == RS.PENDING_APPROVAL


def test_non_email_keys_are_the_reply_id(session: Session, org) -> None:
    sms = conversation(session, channel=Channel.SMS, team=org.support, assignee=org.ali)
    reply = workflow.draft(session, org.ali, sms.id, "x", check=REPLY_CHECK)
    workflow.submit(session, org.ali, reply.id, check=REPLY_CHECK)
    workflow.approve(session, org.maryam, reply.id, check=REPLY_CHECK)
    assert reply.idempotency_key == str(reply.id)  # usable as Kavenegar's numeric localid


def test_approval_with_an_edit_keeps_both_texts(session: Session, org) -> None:
    reply = pending(session, org, body="original text")
    workflow.approve(session, org.reza, reply.id, edited_body="  edited text ", check=REPLY_CHECK)
    session.commit()
    assert (reply.original_body, reply.body) == ("original text", "edited text")
    [ev] = events(session, "reply.approved")
    assert ev.data == {"edited": True, "original_body": "original text",
                       "edited_body": "edited text"}


def test_an_unchanged_edit_is_no_edit(session: Session, org) -> None:
    reply = pending(session, org, body="same")
    workflow.approve(session, org.reza, reply.id, edited_body="same", check=REPLY_CHECK)
    assert reply.original_body is None
    with pytest.raises(InputError):
        workflow.approve(session, org.reza, pending(session, org).id, edited_body="  ",
                         check=REPLY_CHECK)


def test_who_may_approve(session: Session, org) -> None:
    reply = pending(session, org)
    with pytest.raises(PermissionDenied, match="only a coordinator or an admin"):
        workflow.approve(session, org.sara, reply.id, check=REPLY_CHECK)
    with pytest.raises(PermissionDenied):
        workflow.approve(session, None, reply.id, check=REPLY_CHECK)
    # Four eyes: not even an admin approves their own reply
    own = workflow.draft(session, org.admin, org.conv.id, "admin's own", check=REPLY_CHECK)
    workflow.submit(session, org.admin, own.id, check=REPLY_CHECK)
    with pytest.raises(PermissionDenied, match="nobody approves their own reply"):
        workflow.approve(session, org.admin, own.id, check=REPLY_CHECK)
    workflow.approve(session, org.maryam, own.id, check=REPLY_CHECK)
    assert own.state == RS.APPROVED


def test_approve_is_illegal_outside_pending_approval(session: Session, org) -> None:
    reply = workflow.draft(session, org.ali, org.conv.id, "x", check=REPLY_CHECK)
    with pytest.raises(IllegalTransition) as err:
        workflow.approve(session, org.maryam, reply.id, check=REPLY_CHECK)
    assert (err.value.step, err.value.state) == ("approve", "draft")
    workflow.submit(session, org.ali, reply.id, check=REPLY_CHECK)
    workflow.approve(session, org.maryam, reply.id, check=REPLY_CHECK)
    with pytest.raises(IllegalTransition) as err:
        workflow.approve(session, org.reza, reply.id, check=REPLY_CHECK)
    assert (err.value.step, err.value.state) == ("approve", "approved")


def test_reject_needs_a_comment(session: Session, org) -> None:
    reply = pending(session, org)
    for blank in ("", "  "):
        with pytest.raises(InputError, match="comment"):
            workflow.reject(session, org.maryam, reply.id, blank)
    assert reply.state == RS.PENDING_APPROVAL
    workflow.reject(session, org.maryam, reply.id, "لحن مؤدبانه‌تر")
    session.commit()
    assert (reply.state, reply.review_comment) == (RS.REJECTED, "لحن مؤدبانه‌تر")
    [ev] = events(session, "reply.rejected")
    assert (ev.actor_id, ev.data) == (org.maryam.id, {"comment": "لحن مؤدبانه‌تر"})


def test_who_may_reject_and_when(session: Session, org) -> None:
    reply = workflow.draft(session, org.ali, org.conv.id, "x", check=REPLY_CHECK)
    with pytest.raises(IllegalTransition) as err:
        workflow.reject(session, org.maryam, reply.id, "why")
    assert (err.value.step, err.value.state) == ("reject", "draft")
    workflow.submit(session, org.ali, reply.id, check=REPLY_CHECK)
    with pytest.raises(PermissionDenied):
        workflow.reject(session, org.ali, reply.id, "self review")
