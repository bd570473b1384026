"""A long conversation's page shows the newest window of its timeline; "earlier" fetches the
windows before it, each item once; ``?all=1`` shows everything; the approval panel and the
status poll still work around the window. (TIMELINE_PAGE is 5 here: a few rows suffice.)"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from markupsafe import escape
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from console import timeline_window
from console.pages import timeline as timeline_page
from kartabl import workflow
from kartabl.models import Conversation, Event, Person, ReplyState, utcnow
from responders.preview import REPLY_CHECK
from tests import factories as f
from tests.console.pages.conftest import World, sign_in

Db = sessionmaker[Session]
PAGE = 5
SCRIPT = "<script>alert('old')</script>"
_ITEM = re.compile(r'<li class="(?:item [^"]*|earlier)" id="([^"]+)"')
_EARLIER = re.compile(r'<li class="earlier" id="timeline-earlier"><a href="([^"]+)" '
                      r'hx-get="([^"]+)" hx-target="closest li" hx-swap="outerHTML">([^<]*)</a>')


@pytest.fixture(autouse=True)
def small_page(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(timeline_window, "TIMELINE_PAGE", PAGE)


@dataclass(frozen=True)
class Long:
    cid: int
    old_pending: int  # a reply awaiting approval, older than every message
    new_draft: int  # ali's draft, the newest item


@pytest.fixture
def long(db: Db, world: World) -> Long:
    """world.conv_support with 20 more items: a pending reply from the start, messages (the
    oldest with a script and mail HTML) and notes a minute apart, and a fresh draft."""
    start = utcnow() - timedelta(days=1)
    with db() as s:
        ali = s.get(Person, world.ali)
        conv = s.get(Conversation, world.conv_support)
        assert ali is not None and conv is not None
        pending = workflow.draft(s, ali, conv.id, "old pending reply", check=REPLY_CHECK)
        workflow.submit(s, ali, pending.id, check=REPLY_CHECK)
        pending.created_at = start - timedelta(hours=1)
        for i in range(12):
            msg = f.inbound(s, conv, text=SCRIPT if i == 0 else f"msg-{i:02d}")
            msg.received_at = start + timedelta(minutes=2 * i)
            f.mail_html(msg, "<p>mail-0</p><script>alert(1)</script>" if i == 0
                        else f"<p>m{i}</p>")
        for i in range(7):
            workflow.note(s, ali, conv.id, f"note-{i}").at = start + timedelta(minutes=2 * i + 1)
        s.flush()
        assert pending.state == ReplyState.PENDING_APPROVAL
        new = workflow.draft(s, ali, conv.id, "fresh draft", check=REPLY_CHECK)
        s.commit()
        return Long(conv.id, pending.id, new.id)


def items(html: str) -> list[str]:
    """The ids of the timeline's <li> entries, in order ("timeline-earlier" included)."""
    return _ITEM.findall(html)


def timeline_of(page: str) -> str:
    start = page.index('<ol class="timeline" id="timeline" data-live-keep>')
    return page[start:page.index('id="live-status"')]


def test_the_page_shows_the_newest_window_then_earlier_ones_once_each(
    client: TestClient, long: Long, db: Db
) -> None:
    sign_in(client, "maryam")
    everything = items(timeline_of(client.get(f"/conversations/{long.cid}?all=1").text))
    # the world's message, a pending reply, 12 messages, 7 notes, a draft: all, in order
    assert len(everything) == 22 and "timeline-earlier" not in everything
    assert everything[0] == f"reply-{long.old_pending}"
    assert everything[-1] == f"reply-{long.new_draft}"
    with db() as s:
        notes = s.scalars(select(Event.id).where(Event.kind == "conversation.note")
                          .order_by(Event.at)).all()
    assert [i for i in everything if i.startswith("event-")] == [f"event-{n}" for n in notes]

    page = client.get(f"/conversations/{long.cid}").text
    shown = items(timeline_of(page))
    assert shown == ["timeline-earlier", *everything[-PAGE:]]
    link = _EARLIER.search(page)
    assert link is not None
    assert link[1] == f"/conversations/{long.cid}?all=1"  # without JavaScript
    assert link[3] == "Show 5 earlier items (17 in all earlier)"

    seen = shown[1:]
    fragments = 0
    texts = [link[3]]
    url = link[2]
    while url:
        r = client.get(url)
        assert r.status_code == 200 and r.headers["cache-control"] == "no-store"
        assert "<html" not in r.text and 'id="timeline"' not in r.text  # <li>s only
        got = items(r.text)
        fragments += 1
        more = _EARLIER.search(r.text)
        if more:
            assert got[0] == "timeline-earlier" and "timeline-earlier" not in got[1:]
            got, url = got[1:], more[2]
            texts.append(more[3])
        else:
            url = ""
        assert 0 < len(got) <= PAGE
        seen[:0] = got
    assert seen == everything  # each item once, in order
    assert fragments == 4  # 17 earlier: 5 + 5 + 5 + 2
    assert texts == ["Show 5 earlier items (17 in all earlier)",
                     "Show 5 earlier items (12 in all earlier)",
                     "Show 5 earlier items (7 in all earlier)",
                     "Show 2 earlier items (2 in all earlier)"]


def test_the_earlier_entry_counts_in_persian_digits(client: TestClient, long: Long) -> None:
    sign_in(client, "ali")
    page = client.get(f"/conversations/{long.cid}").text
    link = _EARLIER.search(page)
    assert link is not None and link[3] == "نمایش ۵ موردِ پیش‌تر (از ۱۷ موردِ پیش‌تر)"
    last = client.get(link[2]).text
    second = _EARLIER.search(last)
    assert second is not None and "۱۲" in second[3]


def test_a_pending_reply_older_than_the_window_is_still_in_the_approval_panel(
    client: TestClient, long: Long
) -> None:
    sign_in(client, "maryam")
    page = client.get(f"/conversations/{long.cid}").text
    assert f'id="reply-{long.old_pending}"' not in timeline_of(page)
    assert f'id="pending-{long.old_pending}"' in page and "old pending reply" in page
    assert f'id="approve-form-{long.old_pending}"' in page


def test_only_the_shown_mails_are_sanitised(client: TestClient, long: Long,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    sanitised: list[int] = []
    real = timeline_page.inline_image_urls

    def spy(html: str, message_id: int) -> str:
        sanitised.append(message_id)
        return real(html, message_id)

    monkeypatch.setattr(timeline_page, "inline_image_urls", spy)
    sign_in(client, "maryam")
    shown = items(timeline_of(client.get(f"/conversations/{long.cid}").text))
    assert sanitised and {f"message-{m}" for m in sanitised} <= set(shown)
    sanitised.clear()
    client.get(f"/conversations/{long.cid}?all=1")
    assert len(sanitised) == 12


def test_the_status_poll_swaps_only_the_windows_replies(client: TestClient, long: Long) -> None:
    sign_in(client, "maryam")
    page = client.get(f"/conversations/{long.cid}").text
    poll = re.search(r'hx-get="(/conversations/\d+/status\?v=[0-9.]+&amp;from=[0-9.]+)"', page)
    assert poll
    url = poll[1].replace("&amp;", "&")
    status = client.get(url).text
    assert f'id="reply-status-{long.new_draft}"' in status
    assert f'id="reply-status-{long.old_pending}"' not in status
    # no ``from`` (a page rendered before windows): every reply, as before
    everything = client.get(url.split("&")[0]).text
    assert f'id="reply-status-{long.old_pending}"' in everything
    # ?all=1 starts at the first item: every reply is on the page
    whole = client.get(f"/conversations/{long.cid}?all=1").text
    poll = re.search(r'hx-get="(/conversations/\d+/status\?v=[0-9.]+&amp;from=[0-9.]+)"', whole)
    assert poll and f'id="reply-status-{long.old_pending}"' in client.get(
        poll[1].replace("&amp;", "&")).text
    assert client.get(url.split("&")[0] + "&from=x").status_code == 400


def test_earlier_items_escape_customer_text_and_sanitise_mail(client: TestClient,
                                                               long: Long) -> None:
    sign_in(client, "maryam")
    url = f"/conversations/{long.cid}/timeline?before=9999999999999999.0.1"
    while url:
        r = client.get(url)
        assert r.status_code == 200
        more = _EARLIER.search(r.text)
        url = more[2] if more else ""
    oldest = r.text
    assert str(escape(SCRIPT)) in oldest and "<script>" not in oldest
    assert "<p>mail-0</p>" in oldest and "alert(1)" not in oldest


def test_the_fragment_keeps_the_pages_scope(client: TestClient, world: World,
                                            long: Long) -> None:
    sign_in(client, "ali")
    for cid in (world.conv_sales, world.conv_triage, 999999):
        r = client.get(f"/conversations/{cid}/timeline?before=9999999999999999.0.1")
        assert r.status_code == 404 and "sales-secret" not in r.text
    own = client.get(f"/conversations/{long.cid}/timeline")  # no cursor: the newest
    assert own.status_code == 200 and items(own.text)[-1] == f"reply-{long.new_draft}"
    for bad in ("x", "1.0", "1.3.1", "1.0.0", "9999999999999999999.0.1", "1.0.1%0A",
                "%3Cscript%3E"):
        r = client.get(f"/conversations/{long.cid}/timeline?before={bad}")
        assert r.status_code == 400, bad
        assert "<script>" not in r.text


def test_a_short_conversation_has_no_earlier_entry(client: TestClient, world: World) -> None:
    sign_in(client, "maryam")
    page = client.get(f"/conversations/{world.conv_support}").text
    assert 'id="timeline-earlier"' not in page and "support-text" in page
    assert 'hx-get="/conversations/' in page and "/timeline?" not in page
