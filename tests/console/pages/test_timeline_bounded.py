"""A 400-message conversation's page reads a window's worth of rows, not the conversation:
every row each statement hands back to Python is counted (SQLAlchemy's do_orm_execute,
all sessions), through the real app. ``?all=1`` reads them all: the count sees it."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event
from sqlalchemy.orm import ORMExecuteState, Session, sessionmaker

from console.timeline_window import TIMELINE_PAGE
from kartabl.models import Conversation, Person
from tests.console.long_timeline import Long, build, expected_keys
from tests.console.pages.conftest import World, sign_in

Db = sessionmaker[Session]
MESSAGES = 400
_ITEM = re.compile(r'<li class="item [^"]*" id="([^"]+)"')


@pytest.fixture
def long(db: Db, world: World) -> Long:
    with db() as s:
        conv, ali, maryam = (s.get(Conversation, world.conv_support), s.get(Person, world.ali),
                             s.get(Person, world.coord))
        assert conv is not None and ali is not None and maryam is not None
        return build(s, conv, ali, maryam, MESSAGES)


class Reads:
    """Statements run and rows returned to Python while active."""

    def __init__(self) -> None:
        self.statements = 0
        self.rows = 0

    def __call__(self, state: ORMExecuteState) -> object:
        result = state.invoke_statement()
        self.statements += 1
        try:
            frozen = result.freeze()
        except NotImplementedError:  # no rows: a write (the page records what was seen)
            return result
        self.rows += len(frozen().all())
        return frozen()


@pytest.fixture
def reads() -> Iterator[Reads]:
    counter = Reads()
    event.listen(Session, "do_orm_execute", counter)
    yield counter
    event.remove(Session, "do_orm_execute", counter)


def test_the_page_reads_a_window_not_the_conversation(client: TestClient, long: Long,
                                                      reads: Reads, db: Db) -> None:
    with db() as s:
        items = len(expected_keys(s, long.cid))
    assert items > 600
    sign_in(client, "maryam")
    reads.rows = reads.statements = 0
    page = client.get(f"/conversations/{long.cid}")
    assert page.status_code == 200
    shown = _ITEM.findall(page.text[page.text.index('id="timeline"'):])
    assert len(shown) == TIMELINE_PAGE
    earlier = items - TIMELINE_PAGE
    assert f"Show {TIMELINE_PAGE} earlier items ({earlier} in all earlier)" in page.text
    # The window's rows from each of the four sources at most, the panels' four replies,
    # the reply events of the window's replies (two each) and a few dozen of everything
    # else (session, person, customer, names...); the conversation holds over 1,200 rows.
    assert long.rows > 1_200
    assert reads.rows <= 4 * TIMELINE_PAGE + 4 + 2 * TIMELINE_PAGE // 2 + 40, reads.rows
    # the pending reply older than every message is in the approval panel all the same
    assert f'id="pending-{long.old_pending}"' in page.text
    assert f'id="reply-{long.old_pending}"' not in page.text

    reads.rows = 0
    fragment = client.get(re.findall(r'hx-get="([^"]+/timeline\?before=[^"]+)"', page.text)[0])
    assert fragment.status_code == 200 and len(_ITEM.findall(fragment.text)) == TIMELINE_PAGE
    assert reads.rows <= 4 * TIMELINE_PAGE + 2 * TIMELINE_PAGE // 2 + 30, reads.rows

    reads.rows = 0  # the whole timeline: the count is a real one
    assert client.get(f"/conversations/{long.cid}?all=1").status_code == 200
    assert reads.rows > items, reads.rows


def test_an_old_reply_sent_since_the_page_is_not_swapped_but_offered_by_reload(
        client: TestClient, long: Long, db: Db) -> None:
    # The page shows the newest window; the pending reply older than every message is not
    # in it. Sent meanwhile, its key (its sent time) moves into the window's range: the
    # status poll must not swap a status block the page does not have (an htmx error), and
    # offers a reload to show it in its place.
    from kartabl.messages import OutboundMessage
    from kartabl.models import Reply, ReplyState
    from kartabl.models.base import utcnow
    from responders.outbound import record_outbound

    sign_in(client, "maryam")
    page = client.get(f"/conversations/{long.cid}").text
    status = re.search(r'id="live-status" hx-get="([^"]+)"', page)
    assert status is not None
    url = status.group(1).replace("&amp;", "&")
    assert "from=" in url and f'id="reply-status-{long.old_pending}"' not in page
    quiet = client.get(url).text
    assert 'id="news"' not in quiet and 'id="reply-status-' in quiet  # the window's own
    with db() as s:
        reply = s.get(Reply, long.old_pending)
        assert reply is not None
        reply.state, reply.sent_at = ReplyState.SENT, utcnow()
        reply.idempotency_key, reply.attempts = f"late-{reply.id}", 1
        s.flush()
        conv = s.get(Conversation, long.cid)
        assert conv is not None
        record_outbound(s, OutboundMessage(
            reply_id=reply.id, conversation_id=long.cid, channel=conv.channel,
            recipient="someone", text=reply.body, idempotency_key=reply.idempotency_key),
            provider_id="late")
        s.commit()
    answer = client.get(url).text
    assert f'id="reply-status-{long.old_pending}"' not in answer
    assert 'id="news"' in answer  # the reload offer
