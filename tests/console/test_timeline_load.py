"""Windows read from the database show what the whole timeline shows: the same items, in
the same order, with the same counts, for a long conversation and a short one; the
panels' replies come whatever the window. (console.timeline_page, console.timeline_rows)"""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from console import timeline_window as tw
from console.timeline import MessageItem, ReplyItem, conversation_view
from console.timeline_page import conversation_page, earlier_window, poll_replies
from kartabl.errors import InputError
from kartabl.models import Channel, Direction, Message, Person, ReplyState, Role
from tests.console.long_timeline import Long, build, expected_keys
from tests.factories import conversation, inbound, person, team

SIZE = 17  # a window; 121 items make 7 full ones and a partial one


@pytest.fixture
def long(session: Session) -> tuple[Long, Person, Person]:
    support = team(session, "support")
    maryam = person(session, "maryam", Role.COORDINATOR)
    ali = person(session, "ali", teams=[support])
    conv = conversation(session, channel=Channel.SMS, team=support, assignee=ali)
    return build(session, conv, ali, maryam, 80), ali, maryam


def test_the_whole_timeline_is_the_one_from_before_windows(
        session: Session, long: tuple[Long, Person, Person]) -> None:
    data, ali, _ = long
    whole = conversation_view(session, ali, data.cid).timeline
    assert [tw.item_key(i) for i in whole] == expected_keys(session, data.cid)
    assert len(whole) == 1 + 80 + 40 + 4 + 1 + 1 + 3  # in, replies, notes, by hand, panels
    sent = [i for i in whole if isinstance(i, ReplyItem) and i.state == ReplyState.SENT]
    outbound = {(m.meta or {}).get("reply_id"): m.id for m in session.scalars(
        select(Message).where(Message.conversation_id == data.cid,
                              Message.direction == Direction.OUT))}
    assert len(sent) == 40 and all(r.message_id == outbound[r.reply_id] for r in sent)
    assert all([s.step for s in r.history] == ["approved", "sent"] for r in sent)
    assert all(r.sent == [r.body] for r in sent)  # what the customer got, from its row
    [by_hand] = [i for i in whole if isinstance(i, MessageItem) and i.direction == Direction.OUT]
    assert by_hand.text == "sent by hand"


def test_windows_walk_back_through_the_same_items(
        session: Session, long: tuple[Long, Person, Person],
        monkeypatch: pytest.MonkeyPatch) -> None:
    data, ali, maryam = long
    monkeypatch.setattr(tw, "TIMELINE_PAGE", SIZE)
    for reader in (ali, maryam):
        whole = conversation_view(session, reader, data.cid).timeline
        page = conversation_page(session, reader, data.cid)
        win = page.window
        assert win.items == whole[-SIZE:]  # equal items: every field, history included
        assert (win.earlier, win.next) == (len(whole) - SIZE, SIZE)
        end = len(whole) - SIZE
        while win.earlier:
            assert win.first is not None
            _, win = earlier_window(session, reader, data.cid, win.first)
            start = max(0, end - SIZE)
            assert win.items == whole[start:end]
            assert (win.earlier, win.next) == (start, min(start, SIZE))
            end = start
        assert end == 0
        everything = conversation_page(session, reader, data.cid, everything=True).window
        assert everything.items == whole and everything.earlier == 0


def test_the_panels_take_their_replies_wherever_they_are(
        session: Session, long: tuple[Long, Person, Person],
        monkeypatch: pytest.MonkeyPatch) -> None:
    data, ali, maryam = long
    monkeypatch.setattr(tw, "TIMELINE_PAGE", SIZE)
    whole = {i.reply_id: i for i in conversation_view(session, ali, data.cid).timeline
             if isinstance(i, ReplyItem)}
    mine = conversation_page(session, ali, data.cid)
    shown = {i.reply_id for i in mine.window.items if isinstance(i, ReplyItem)}
    assert data.old_pending not in shown and data.draft not in shown  # older than the window
    assert mine.pending == [whole[data.old_pending]]
    assert mine.drafts == [whole[data.rejected], whole[data.draft]]
    theirs = conversation_page(session, maryam, data.cid)
    assert theirs.pending == [whole[data.old_pending]]
    assert theirs.drafts == [whole[data.others_draft]]


def test_a_short_conversation_is_one_window(session: Session) -> None:
    support = team(session, "support")
    ali = person(session, "ali", teams=[support])
    conv = conversation(session, team=support, assignee=ali)
    session.commit()
    whole = conversation_view(session, ali, conv.id).timeline
    page = conversation_page(session, ali, conv.id)
    assert len(whole) == 1 and page.window.items == whole
    assert (page.window.earlier, page.window.next) == (0, 0)
    assert page.window.first == tw.encode_cursor(tw.item_key(whole[0]))
    assert earlier_window(session, ali, conv.id, page.window.first)[1].items == []


def test_a_window_of_one_source_still_counts_what_comes_before(
        session: Session, monkeypatch: pytest.MonkeyPatch) -> None:
    # messages only: the newest window is all messages, and the ones before it are too
    support = team(session, "support")
    ali = person(session, "ali", teams=[support])
    conv = conversation(session, team=support, assignee=ali)
    for i in range(SIZE + 2):
        inbound(session, conv, text=f"m{i}")
    session.commit()
    monkeypatch.setattr(tw, "TIMELINE_PAGE", SIZE)
    whole = conversation_view(session, ali, conv.id).timeline
    win = conversation_page(session, ali, conv.id).window
    assert win.items == whole[-SIZE:] and (win.earlier, win.next) == (3, 3)
    monkeypatch.setattr(tw, "TIMELINE_PAGE", SIZE + 3)  # exactly full: none before
    win = conversation_page(session, ali, conv.id).window
    assert win.items == whole and (win.earlier, win.next) == (0, 0)


def test_the_status_poll_reads_the_windows_replies_and_newer(
        session: Session, long: tuple[Long, Person, Person],
        monkeypatch: pytest.MonkeyPatch) -> None:
    data, ali, _ = long
    monkeypatch.setattr(tw, "TIMELINE_PAGE", SIZE)
    page = conversation_page(session, ali, data.cid)
    newest = max(i.reply_id for i in page.window.items if isinstance(i, ReplyItem))
    _, replies = poll_replies(session, ali, data.cid, page.window.first, newest)
    assert replies == [i for i in page.window.items if isinstance(i, ReplyItem)]
    _, every = poll_replies(session, ali, data.cid, None, 2**62)  # no window; a huge id
    assert [r.reply_id for r in every] == [
        i.reply_id for i in conversation_view(session, ali, data.cid).timeline
        if isinstance(i, ReplyItem)]
    # a cursor at a moment between items, or naming an id beyond any column
    far = page.window.first
    assert far is not None
    micros = int(far.split(".")[0])
    assert earlier_window(session, ali, data.cid, f"{micros}.0.{2**40}")[1].items == \
        earlier_window(session, ali, data.cid, f"{micros}.1.1")[1].items
    later = micros + (timedelta(days=400) // timedelta(microseconds=1))
    assert earlier_window(session, ali, data.cid, f"{later}.2.{2**62}")[1] == page.window
    with pytest.raises(InputError):
        earlier_window(session, ali, data.cid, "1.0.0")
