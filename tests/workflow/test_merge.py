"""Merging conversations of one customer, undoing a merge, and splitting a message out
(kartabl.workflow.merge, kartabl.workflow.split), on both databases."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from kartabl import workflow
from kartabl.errors import IllegalTransition, NotFound, PermissionDenied
from kartabl.models import (
    Channel,
    Conversation,
    ConversationMerge,
    ConversationStatus,
    Event,
    Message,
    Reply,
    ReplyState,
    Role,
    utcnow,
)
from kartabl.workflow import merge as wm
from kartabl.workflow.split import split
from responders.outbound import build_message
from responders.preview import REPLY_CHECK
from tests.factories import conversation, events, inbound, person


def sibling(session: Session, conv: Conversation, *, channel: Channel | None = None,
            team_id: int | None = None, text: str = "درخواست دوم") -> Conversation:
    """Another conversation of ``conv``'s customer, with one message of theirs."""
    other = Conversation(customer_id=conv.customer_id, channel=channel or conv.channel,
                         subject="دوم", team_id=team_id if team_id is not None else conv.team_id,
                         status=ConversationStatus.OPEN)
    session.add(other)
    session.flush()
    inbound(session, other, text=text)
    return other


def at(session: Session, msg: Message, minutes: int) -> Message:
    msg.received_at = utcnow() - timedelta(hours=2) + timedelta(minutes=minutes)
    session.flush()
    return msg


def test_merge_moves_every_row_with_its_origin_and_audits_both(session: Session, org) -> None:
    # Given A (org.conv) and B of the same customer, B with a draft and a note
    a = org.conv
    b = sibling(session, a)
    workflow.draft(session, org.ali, b.id, "پاسخ پیش‌نویس", check=REPLY_CHECK)
    workflow.note(session, org.ali, b.id, "یادداشت روی ب")
    session.commit()
    b_rows = {name: {i for i, _ in found} for name, found in wm.rows_of(session, b.id).items()}
    # When ali merges B into A
    record = wm.merge(session, org.ali, b.id, a.id)
    session.commit()
    # Then every row of B is in A, pointing to B; B is a closed pointer to A
    for name, model in wm.TABLES.items():
        moved = session.execute(select(model.conversation_id, model.origin_conversation_id)
                                .where(model.id.in_(b_rows[name]))).all()
        assert moved and all(row == (a.id, b.id) for row in moved), name
    session.refresh(b)
    assert (b.status, b.merged_into_id) == (ConversationStatus.CLOSED, a.id)
    [on_a] = events(session, "conversation.merged")
    [on_b] = events(session, "conversation.merged_into")
    assert (on_a.conversation_id, on_a.data["other_id"], on_a.data["merge_id"]) == (
        a.id, b.id, record.id)
    assert (on_b.conversation_id, on_b.data["other_id"]) == (b.id, a.id)
    assert on_a.actor_id == org.ali.id and on_a.data["messages"] == 1
    assert sorted(i for i, _ in record.moved["events"]) == sorted(b_rows["events"])
    # and B takes no step any more
    with pytest.raises(IllegalTransition) as err:
        workflow.reopen(session, org.ali, b.id)
    assert err.value.code == "conv_merge.merged"


def test_the_merged_timeline_is_one_ordered_by_time(session: Session, org) -> None:
    from console.timeline import conversation_view

    a = org.conv
    first_a = session.scalars(select(Message).where(Message.conversation_id == a.id)).one()
    b = sibling(session, a)
    first_b = session.scalars(select(Message).where(Message.conversation_id == b.id)).one()
    later_a = inbound(session, a, text="سوم")
    at(session, first_a, 0)
    at(session, first_b, 10)
    at(session, later_a, 20)
    session.commit()
    wm.merge(session, org.maryam, b.id, a.id)
    session.commit()
    view = conversation_view(session, org.maryam, a.id)
    shown = [(i.message_id, i.origin) for i in view.timeline if i.kind == "message"]
    assert shown == [(first_a.id, None), (first_b.id, b.id), (later_a.id, None)]
    assert [i.kind for i in view.timeline if i.kind != "message"] == ["merged"]
    assert conversation_view(session, org.maryam, b.id).conversation.merged_into_id == a.id


def test_undo_moves_exactly_those_rows_back_and_reopens_b(session: Session, org) -> None:
    a = org.conv
    b = sibling(session, a)
    workflow.note(session, org.ali, b.id, "یادداشت")
    session.commit()
    before = wm.rows_of(session, b.id)
    a_before = wm.rows_of(session, a.id)
    record = wm.merge(session, org.ali, b.id, a.id)
    session.commit()
    wm.undo(session, org.sara, record.id)
    session.commit()
    after = wm.rows_of(session, b.id)
    # B's rows are back with their origin as it was; only the undo's own event is new on B
    assert after["messages"] == before["messages"] and after["replies"] == before["replies"]
    assert set(before["events"]) < set(after["events"])
    assert {name: set(found) for name, found in wm.rows_of(session, a.id).items()} \
        == {name: set(found) | ({(ev.id, None) for ev in events(session, "conversation.merged")
                                 + events(session, "conversation.merge_undone")
                                 if ev.conversation_id == a.id} if name == "events" else set())
            for name, found in a_before.items()}
    session.refresh(b)
    assert (b.status, b.merged_into_id, b.resolved_at) == (ConversationStatus.OPEN, None, None)
    assert len(events(session, "conversation.merge_undone")) == 2
    session.refresh(record)
    assert record.undone_by_id == org.sara.id
    with pytest.raises(IllegalTransition) as err:
        wm.undo(session, org.sara, record.id)
    assert err.value.code == "conv_merge.undone"


@pytest.mark.parametrize("news", ["note", "message", "close"])
def test_undo_is_refused_after_anything_new_on_a(session: Session, org, news: str) -> None:
    a = org.conv
    b = sibling(session, a)
    session.commit()
    record = wm.merge(session, org.ali, b.id, a.id)
    session.commit()
    assert wm.undo_refusal(session, record, b, a) is None
    if news == "note":
        workflow.note(session, org.ali, a.id, "تازه")
    elif news == "message":
        inbound(session, a, text="پیام تازه")
    else:
        workflow.close(session, org.ali, a.id)
    session.commit()
    with pytest.raises(IllegalTransition) as err:
        wm.undo(session, org.ali, record.id)
    assert err.value.code == "conv_merge.news"
    assert session.get(Conversation, b.id).merged_into_id == a.id  # nothing moved


def test_merge_refused_while_b_has_a_reply_under_review(session: Session, org) -> None:
    a = org.conv
    b = sibling(session, a)
    reply = workflow.draft(session, org.ali, b.id, "پاسخ", check=REPLY_CHECK)
    workflow.submit(session, org.ali, reply.id, check=REPLY_CHECK)
    session.commit()
    with pytest.raises(IllegalTransition) as err:
        wm.merge(session, org.ali, b.id, a.id)
    assert (err.value.code, err.value.params["reply"]) == ("conv_merge.pending", reply.id)
    reply.state = ReplyState.APPROVED
    session.commit()
    with pytest.raises(IllegalTransition):
        wm.merge(session, org.ali, b.id, a.id)


def test_scope_and_customers(session: Session, org) -> None:
    a = org.conv
    b = sibling(session, a, team_id=org.sales.id)
    stranger = conversation(session, team=org.support)
    session.commit()
    # an agent: both must be in scope, out-of-scope ids are NotFound either way round
    for src, dst in ((b.id, a.id), (a.id, b.id)):
        with pytest.raises(NotFound):
            wm.merge(session, org.ali, src, dst)
    # another customer's conversation: refused, with or without the merge permission
    with pytest.raises(PermissionDenied) as denied:
        wm.merge(session, org.ali, stranger.id, a.id)
    assert denied.value.code == "conv_merge.other_customer_denied"
    merger = person(session, "merger", Role.COORDINATOR)
    merger.can_merge = True
    with pytest.raises(IllegalTransition) as illegal:
        wm.merge(session, merger, stranger.id, a.id)
    assert illegal.value.code == "conv_merge.other_customer"
    with pytest.raises(IllegalTransition):
        wm.merge(session, org.maryam, a.id, a.id)
    assert session.scalar(select(ConversationMerge.id)) is None
    # a coordinator may merge across teams of one customer
    wm.merge(session, org.maryam, b.id, a.id)
    session.commit()


def test_split_one_message_keeps_the_rest_in_place(session: Session, org) -> None:
    a = org.conv
    at(session, session.scalars(select(Message).where(Message.conversation_id == a.id)).one(), 0)
    second = at(session, inbound(session, a, text="موضوع دیگر"), 30)
    third = at(session, inbound(session, a, text="و بعد"), 40)
    session.commit()
    new = split(session, org.ali, a.id, second.id, following=False)
    session.commit()
    moved = session.scalars(select(Message).where(Message.conversation_id == new.id)).all()
    assert [(m.id, m.origin_conversation_id) for m in moved] == [(second.id, a.id)]
    assert session.get(Message, third.id).conversation_id == a.id
    assert (new.customer_id, new.channel, new.team_id, new.assignee_id, new.status) == (
        a.customer_id, a.channel, org.support.id, None, ConversationStatus.OPEN)
    [on_a] = events(session, "conversation.split")
    [on_new] = events(session, "conversation.split_from")
    assert (on_a.conversation_id, on_a.data["other_id"]) == (a.id, new.id)
    assert (on_new.conversation_id, on_new.data["other_id"]) == (new.id, a.id)
    # its service clock runs from its own opening (kartabl.service_clock), as a routed one's
    assert new.first_response_due_at is not None and new.first_response_due_at > new.opened_at
    assert new.resolution_due_at is not None


def test_split_with_what_follows_takes_later_replies_and_notes(session: Session, org) -> None:
    a = org.conv
    first = session.scalars(select(Message).where(Message.conversation_id == a.id)).one()
    at(session, first, 0)
    early = workflow.note(session, org.ali, a.id, "یادداشت قبلی")
    early.at = utcnow() - timedelta(hours=2) + timedelta(minutes=5)
    second = at(session, inbound(session, a, text="موضوع دیگر"), 30)
    later_note = workflow.note(session, org.ali, a.id, "یادداشت بعدی")
    reply = workflow.draft(session, org.ali, a.id, "پاسخ", check=REPLY_CHECK)
    session.commit()
    new = split(session, org.maryam, a.id, second.id, following=True, person_id=org.sara.id)
    session.commit()
    assert session.get(Reply, reply.id).conversation_id == new.id
    assert session.get(Event, later_note.id).conversation_id == new.id
    assert session.get(Event, early.id).conversation_id == a.id
    assert session.get(Message, first.id).conversation_id == a.id
    drafted = session.scalars(select(Event).where(Event.reply_id == reply.id)).all()
    assert {(e.conversation_id, e.origin_conversation_id) for e in drafted} == {(new.id, a.id)}
    assert new.assignee_id == org.sara.id


def test_split_refusals(session: Session, org) -> None:
    a = org.conv
    first = session.scalars(select(Message).where(Message.conversation_id == a.id)).one()
    second = inbound(session, a, text="دومی")
    reply = workflow.draft(session, org.ali, a.id, "پاسخ", check=REPLY_CHECK)
    workflow.submit(session, org.ali, reply.id, check=REPLY_CHECK)
    session.commit()
    with pytest.raises(IllegalTransition) as err:
        split(session, org.ali, a.id, first.id)
    assert err.value.code == "conv_split.first"
    with pytest.raises(IllegalTransition) as err:
        split(session, org.ali, a.id, second.id, following=True)
    assert err.value.code == "conv_split.pending"
    with pytest.raises(NotFound):
        split(session, org.bob, a.id, second.id)  # another team's
    other = conversation(session, team=org.support)
    with pytest.raises(NotFound) as missing:
        split(session, org.ali, a.id, session.scalars(
            select(Message.id).where(Message.conversation_id == other.id)).one())
    assert missing.value.code == "conv_split.missing"
    with pytest.raises(PermissionDenied) as placed:
        split(session, org.ali, a.id, second.id, person_id=org.sara.id)
    assert placed.value.code == "conv_split.placement"


def test_search_hits_follow_merge_undo_and_split(session: Session, org) -> None:
    """The search index moves with the rows (kartabl.workflow.merge.move_rows): a hit never
    points to the conversation a message or note was moved out of."""
    from kartabl import search as index
    from tests.search.conftest import found

    a = org.conv
    b = sibling(session, a, text="واژه‌ی‌یکتا-الف")
    workflow.note(session, org.ali, b.id, "یادداشت واژه‌ی‌یکتا-ب")
    index.reindex(session)
    session.commit()
    assert found(session, org.sara, "واژه‌ی‌یکتا-الف") == {b.id}
    record = wm.merge(session, org.ali, b.id, a.id)
    session.commit()
    assert found(session, org.sara, "واژه‌ی‌یکتا-الف") == {a.id}
    assert found(session, org.sara, "واژه‌ی‌یکتا-ب") == {a.id}
    wm.undo(session, org.sara, record.id)
    session.commit()
    assert found(session, org.sara, "واژه‌ی‌یکتا-الف") == {b.id}
    assert found(session, org.sara, "واژه‌ی‌یکتا-ب") == {b.id}
    # split B's later message out: its hit goes with it
    first = session.scalars(select(Message).where(Message.conversation_id == b.id)).one()
    at(session, first, 0)
    later = at(session, inbound(session, b, text="سطر-جدا-شده"), 30)
    index.index_messages(session, [later])
    session.commit()
    new = split(session, org.ali, b.id, later.id)
    session.commit()
    assert found(session, org.sara, "سطر-جدا-شده") == {new.id} != {b.id}


def test_a_waiting_conversation_merged_and_unmerged_keeps_its_clock_paused(
        session: Session, org) -> None:
    """Merging ends B's pause as a close would; the undo makes it wait again with a pause
    of its own, so its resolution clock does not run while it says "waiting"."""
    from kartabl.models import ConversationPause
    from kartabl.workflow import waiting

    a = org.conv
    b = sibling(session, a)
    waiting.wait(session, org.ali, b.id)
    session.commit()

    def open_pauses() -> int:
        return len(session.scalars(select(ConversationPause).where(
            ConversationPause.conversation_id == b.id,
            ConversationPause.ended_at.is_(None))).all())

    assert open_pauses() == 1
    record = wm.merge(session, org.ali, b.id, a.id)
    session.commit()
    assert open_pauses() == 0
    wm.undo(session, org.sara, record.id)
    session.commit()
    session.refresh(b)
    assert b.status is ConversationStatus.WAITING and open_pauses() == 1
    assert b.resolution_due_at is None  # paused: no due time while it waits
def test_a_draft_moved_by_a_merge_keeps_its_channel_and_answers_there(
        session: Session, org) -> None:
    # Given A on SMS and B (email, the customer's mail) of one customer, with ali's draft in B
    b = org.conv
    [mail] = session.scalars(select(Message).where(Message.conversation_id == b.id)).all()
    a = sibling(session, b, channel=Channel.SMS)
    session.scalars(select(Message).where(Message.conversation_id == a.id)).one().sender = \
        "+989121110000"
    reply = workflow.draft(session, org.ali, b.id, "پاسخ ایمیلی", check=REPLY_CHECK)
    session.commit()
    # When B is merged into A and the draft is submitted and approved there
    wm.merge(session, org.maryam, b.id, a.id)
    workflow.submit(session, org.ali, reply.id, check=REPLY_CHECK)
    workflow.approve(session, org.maryam, reply.id, check=REPLY_CHECK)
    session.flush()
    # Then it goes out as written: by email, to the customer's mail (now in A)
    out = build_message(session, reply)
    assert (out.conversation_id, out.channel, out.recipient) == (a.id, Channel.EMAIL,
                                                                 mail.sender)
