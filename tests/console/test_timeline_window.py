"""The timeline's windows (console.timeline_window): the key sorts as the timeline does,
windows walk back through every item once, and cursors round-trip or are refused."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from console import timeline_window as tw
from console.timeline_items import ActivityItem, MessageItem, ReplyItem, TimelineItem
from kartabl.errors import InputError
from kartabl.models import Channel, Direction, MessageKind, ReplyState

T0 = datetime(2026, 3, 1, 9, 30, 15, 123456, tzinfo=UTC)


def message(at: datetime, mid: int) -> MessageItem:
    return MessageItem(kind="message", at=at, actor="c", message_id=mid, direction=Direction.IN,
                       message_kind=MessageKind.MESSAGE, channel=Channel.SMS, sender="s",
                       sender_name="", recipient="r", subject="", text="t", html=None,
                       attachments=[])


def reply(at: datetime, rid: int) -> ReplyItem:
    return ReplyItem(kind="reply", at=at, actor="a", reply_id=rid, state=ReplyState.DRAFT,
                     channel=Channel.SMS, body="b", original_body=None, template=None,
                     author_id=1, approver_id=None, approver=None, review_comment=None,
                     error=None, attempts=0, created_at=at, approved_at=None, sent_at=None,
                     delivered_at=None, message_id=None)


def activity(at: datetime, eid: int) -> ActivityItem:
    return ActivityItem(kind="note", at=at, actor=None, event_id=eid)


def timeline(n: int) -> list[TimelineItem]:
    """``n`` items, some sharing a moment (ordered by source, then id), sorted as
    the timeline sorts them (console.timeline_rows)."""
    items: list[TimelineItem] = []
    for i in range(n):
        at = T0 + timedelta(seconds=i // 3)  # three items a second
        make = (message, reply, activity)[i % 3]
        items.append(make(at, 1000 - i))  # ids against the order: the source decides
    return items


def test_the_key_orders_as_the_timeline_is_sorted() -> None:
    items = timeline(30)
    assert sorted(items, key=tw.item_key) == items
    assert tw.item_key(items[0]) == (
        (T0 - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1), 0, 1000)
    assert [tw.item_key(i)[1] for i in items[:3]] == [0, 1, 2]
    # the same moment written in another time zone is the same key
    tehran = T0.astimezone(ZoneInfo("Asia/Tehran"))
    assert tw.item_key(message(tehran, 5)) == tw.item_key(message(T0, 5))


def test_the_newest_window_and_then_each_earlier_one_once() -> None:
    items = timeline(23)
    win = tw.timeline_window(items, size=5)
    assert win.items == items[-5:] and (win.earlier, win.next) == (18, 5)
    assert win.first == tw.encode_cursor(tw.item_key(items[-5]))
    seen = list(win.items)
    while win.earlier:
        assert win.first is not None
        win = tw.timeline_window(items, win.first, size=5)
        seen[:0] = win.items
    assert seen == items and win.items == items[:3] and win.next == 0


def test_the_page_size_is_read_when_called(monkeypatch: pytest.MonkeyPatch) -> None:
    items = timeline(150)
    assert len(tw.timeline_window(items).items) == tw.TIMELINE_PAGE == 100
    monkeypatch.setattr(tw, "TIMELINE_PAGE", 7)
    win = tw.timeline_window(items)
    assert len(win.items) == 7 and win.earlier == 143 and win.next == 7


def test_small_empty_and_unlimited_windows() -> None:
    items = timeline(4)
    assert tw.timeline_window(items, size=10) == tw.TimelineWindow(
        items, 0, 0, tw.encode_cursor(tw.item_key(items[0])))
    assert tw.timeline_window([], size=10) == tw.TimelineWindow([], 0, 0, None)
    everything = tw.timeline_window(timeline(250), size=0)
    assert len(everything.items) == 250 and everything.earlier == 0
    # before the first item: nothing; after the last: the newest
    first = tw.encode_cursor(tw.item_key(items[0]))
    assert tw.timeline_window(items, first, size=10).items == []
    assert tw.timeline_window(items, "9999999999999999.2.1", size=2).items == items[-2:]


def test_a_cursor_between_items_still_ends_the_window_there() -> None:
    # an item moved on (a reply is sent) or gone: the cursor is a position, not a row
    items = timeline(9)
    micros, _, _ = tw.item_key(items[4])
    win = tw.timeline_window(items, f"{micros}.0.1", size=10)  # before anything at that second
    assert win.items == items[:3]


@pytest.mark.parametrize("key", [(0, 0, 1), (1_772_357_415_123_456, 1, 42),
                                 (253_402_300_799_999_999, 2, 2**63 - 1)])
def test_a_cursor_round_trips(key: tuple[int, int, int]) -> None:
    assert tw.decode_cursor(tw.encode_cursor(key)) == key


@pytest.mark.parametrize("bad", [
    "", "1.2", "1.0.0", "1.3.5", "-1.0.5", "1.0.05", " 1.0.5", "1.0.5\n", "1.0.5.", "a.b.c",
    "1,0,5", "١.٠.٥", "1e3.0.5", "1234567890123456789.0.5", "1.0.12345678901234567890",
    "<script>alert(1)</script>",
])
def test_a_bad_cursor_is_refused(bad: str) -> None:
    with pytest.raises(InputError, match="not one this server gave out"):
        tw.decode_cursor(bad)


@pytest.mark.parametrize("far", ["999999999999999999.0.5", "1.0.9999999999999999999"])
def test_an_out_of_range_cursor_is_refused(far: str) -> None:
    with pytest.raises(InputError, match="out of range"):
        tw.decode_cursor(far)
