"""What a conversation page has not shown yet: the timeline items that landed after the
page (or its last update) was rendered, to append in place (issue 14: a new customer message
appears in the open conversation without a reload, and what the reader is typing stays).

The page knows its *version* (:func:`console.pages.conversation_view.page_version`:
``<last message>.<last non-reply event>.<last reply>``); an item is new when its row id is
above the page's for its kind. Ids are handed out in insert order, and the item's place in
the timeline comes after what the page has (a message, an activity and a reply are newer
than the rows before them), so the new ones are appended, oldest first. Pure: no queries.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Final

from console.timeline_items import ActivityItem, MessageItem, ReplyItem, TimelineItem
from console.timeline_window import TIMELINE_PAGE, TimelineWindow, encode_cursor, item_key

_VERSION: Final = re.compile(r"([0-9]{1,18})\.([0-9]{1,18})\.([0-9]{1,18})")


def parse_version(version: str) -> tuple[int, int, int] | None:
    """(message, event, reply) ids of a version this server gave out, else None."""
    found = _VERSION.fullmatch(version)
    return (int(found[1]), int(found[2]), int(found[3])) if found else None


def new_items(timeline: Sequence[TimelineItem], version: str) -> TimelineWindow | None:
    """The items newer than ``version``, as a window with nothing earlier (the page has
    it), or None when the page should rather reload: a version not ours, or more new items
    than one window (:data:`~console.timeline_window.TIMELINE_PAGE`)."""
    known = parse_version(version)
    if known is None:
        return None
    msg, event, reply = known
    items = [i for i in timeline
             if (isinstance(i, MessageItem) and i.message_id > msg)
             or (isinstance(i, ReplyItem) and i.reply_id > reply)
             or (isinstance(i, ActivityItem) and i.event_id > event)]
    if len(items) > TIMELINE_PAGE:
        return None
    return TimelineWindow(items, earlier=0, next=0,
                          first=encode_cursor(item_key(items[0])) if items else None)
