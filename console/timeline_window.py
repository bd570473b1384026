"""The part of a conversation's timeline a page renders: the newest :data:`TIMELINE_PAGE`
items, and earlier ones a window at a time ("show earlier", as Chatwoot and Zendesk do).

The database reads only the window (:mod:`console.timeline_rows`, keyset on the item key
below); :func:`timeline_window` slices a timeline already in memory the same way (the
whole-timeline view, tests). Pure: no queries.

A window is addressed by a cursor, the key of the item it ends before:
``<microseconds since 1970>.<source>.<id>``, source 0 a message, 1 a reply, 2 an activity
(the order the timeline is sorted by, then the row's id). The format is that of
:func:`console.queue_types.encode_cursor` with the source added.
"""
from __future__ import annotations

import re
from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

from console.timeline_items import ActivityItem, MessageItem, ReplyItem, TimelineItem
from kartabl.errors import InputError

TIMELINE_PAGE: Final = 100  # items per window; tests monkeypatch it smaller
_CURSOR = re.compile(r"([0-9]{1,18})\.([0-2])\.([1-9][0-9]{0,18})")  # fullmatch: no "\n"
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_MICRO: Final = timedelta(microseconds=1)
MAX_ROW_ID: Final = 2**63 - 1  # the largest id either database holds (SQLite: 64 bits)

# (microseconds since 1970, source, id): ordered as the timeline is sorted, exactly
# (timestamps are stored to the microsecond on both databases).
ItemKey = tuple[int, int, int]


def row_key(at: datetime, source: int, row_id: int) -> ItemKey:
    """The key of the item a row of ``source`` (0 message, 1 reply, 2 activity) makes."""
    return (at.astimezone(UTC) - _EPOCH) // _MICRO, source, row_id


def item_key(item: TimelineItem) -> ItemKey:
    """The item's place in the timeline, as it is sorted by ``(at, source, id)``."""
    if isinstance(item, MessageItem):
        return row_key(item.at, 0, item.message_id)
    if isinstance(item, ReplyItem):
        return row_key(item.at, 1, item.reply_id)
    assert isinstance(item, ActivityItem)
    return row_key(item.at, 2, item.event_id)


def encode_cursor(key: ItemKey) -> str:
    return "{}.{}.{}".format(*key)


def decode_cursor(cursor: str) -> ItemKey:
    """The key a cursor names; :class:`InputError` (a 400) for anything this server would
    not have given out."""
    match = _CURSOR.fullmatch(cursor)
    if match is None:
        raise InputError(f"timeline cursor {cursor[:60]!r} is not one this server gave out")
    micros, source, row_id = int(match[1]), int(match[2]), int(match[3])
    try:
        _EPOCH + micros * _MICRO  # a moment Python can hold, as the rows' are
    except OverflowError:
        raise InputError(f"timeline cursor {cursor!r} is out of range") from None
    if row_id > MAX_ROW_ID:
        raise InputError(f"timeline cursor {cursor!r} is out of range")
    return micros, source, row_id


@dataclass(frozen=True, slots=True)
class TimelineWindow:
    """``items`` oldest first; ``earlier`` items come before them, of which ``next`` are the
    following window; ``first`` is the cursor of ``items[0]`` (the next window ends before
    it), None when the window is empty."""

    items: list[TimelineItem]
    earlier: int
    next: int
    first: str | None


def timeline_window(timeline: Sequence[TimelineItem], before: str | None = None, *,
                    size: int | None = None) -> TimelineWindow:
    """The newest ``size`` (:data:`TIMELINE_PAGE`) items of the sorted ``timeline`` that
    come strictly before the cursor ``before`` (None: the newest overall; ``size`` 0: no
    limit, the whole timeline before it)."""
    limit = TIMELINE_PAGE if size is None else size  # read at call time: monkeypatchable
    end = len(timeline) if before is None else bisect_left(
        timeline, decode_cursor(before), key=item_key)
    start = max(0, end - limit) if limit > 0 else 0
    items = list(timeline[start:end])
    return TimelineWindow(items, earlier=start, next=min(start, limit),
                          first=encode_cursor(item_key(items[0])) if items else None)
