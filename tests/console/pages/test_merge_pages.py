"""Merging and splitting conversations from the conversation page (console/pages/merge.py):
the panel and its preview, the forms (CSRF, refusals in the reader's language), the undo,
"split from here", and 404 for what is outside the reader's scope. Both databases."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from kartabl import workflow
from kartabl.models import Conversation, ConversationStatus, Message, Person, Team
from responders.preview import REPLY_CHECK
from tests import factories as f
from tests.console.pages.conftest import World, post_refused, sign_in

Db = sessionmaker[Session]


def second_conversation(db: Db, w: World, *, text: str = "درخواست دوم") -> int:
    """Another SMS conversation of the support customer, in support."""
    with db() as s:
        first = s.get(Conversation, w.conv_support)
        assert first is not None
        other = Conversation(customer_id=first.customer_id, channel=first.channel,
                             subject="دومی", team_id=w.support)
        s.add(other)
        s.flush()
        f.inbound(s, other, text=text)
        s.commit()
        return other.id


def test_merge_from_the_panel_then_undo(client: TestClient, db: Db, world: World) -> None:
    b = second_conversation(db, world)
    csrf = sign_in(client, "ali")  # an agent of support: both are in his scope
    page = client.get(f"/conversations/{b}")
    assert 'id="merge-panel"' in page.text and f'id="merge-into-{world.conv_support}"' in page.text
    # the preview, as htmx asks for it
    shown = client.get(f"/conversations/{b}/merge?into={world.conv_support}",
                       headers={"HX-Request": "true"})
    assert shown.status_code == 200 and 'id="merge-confirm-form"' in shown.text
    assert "<html" not in shown.text  # the fragment alone
    # without the CSRF token: refused, nothing moved
    r = client.post(f"/conversations/{b}/merge", data={"into": str(world.conv_support)},
                    follow_redirects=False)
    assert r.status_code == 403
    r = client.post(f"/conversations/{b}/merge",
                    data={"into": str(world.conv_support), "csrf_token": csrf},
                    follow_redirects=False)
    assert r.status_code == 303
    assert r.headers["location"] == f"/conversations/{world.conv_support}?done=conv_merge.merged"
    a_page = client.get(r.headers["location"])
    assert "درخواست دوم" in a_page.text and f'data-origin="{b}"' in a_page.text
    assert 'id="merge-undo-form"' in a_page.text
    b_page = client.get(f"/conversations/{b}")
    assert 'id="merged-banner"' in b_page.text and "split-form" not in b_page.text
    assert 'id="reopen-form"' not in b_page.text and 'id="note-form"' not in b_page.text
    # a step on it anyway (an old form): refused, in the reader's language
    text = post_refused(client, f"/conversations/{b}/reopen", {"csrf_token": csrf},
                        f"/conversations/{b}")
    assert "ادغام شده است" in text
    undo = re.search(r'action="/merges/(\d+)/undo"', a_page.text)
    assert undo
    r = client.post(f"/merges/{undo.group(1)}/undo", data={"csrf_token": csrf},
                    follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].endswith("done=conv_merge.undone")
    with db() as s:
        back = s.get(Conversation, b)
        assert back is not None and back.merged_into_id is None
        assert back.status == ConversationStatus.OPEN


def test_refusals_are_worded_and_other_teams_are_404(client: TestClient, db: Db,
                                                     world: World) -> None:
    b = second_conversation(db, world)
    with db() as s:
        ali = s.get(Person, world.ali)
        reply = workflow.draft(s, ali, b, "پاسخ", check=REPLY_CHECK)
        workflow.submit(s, ali, reply.id, check=REPLY_CHECK)
        support = s.get(Team, world.support)
        stranger = f.conversation(s, team=support).id  # another customer's, in support
        s.commit()
    csrf = sign_in(client, "ali")
    # the preview already says why, in Persian, and offers no confirmation
    shown = client.get(f"/conversations/{b}/merge?into={world.conv_support}")
    assert 'id="merge-refusal"' in shown.text and "منتظر تأیید یا ارسال" in shown.text
    assert 'id="merge-confirm-form"' not in shown.text
    text = post_refused(client, f"/conversations/{b}/merge",
                        {"into": str(world.conv_support), "csrf_token": csrf},
                        f"/conversations/{b}")
    assert "منتظر تأیید یا ارسال" in text
    # another customer's conversation (in scope): refused, never merged
    text = post_refused(client, f"/conversations/{world.conv_support}/merge",
                        {"into": str(stranger), "csrf_token": csrf},
                        f"/conversations/{world.conv_support}")
    assert "مجوز ادغام" in text
    # another team's conversation, on either side: 404
    for url, into in ((f"/conversations/{b}/merge", world.conv_sales),
                      (f"/conversations/{world.conv_sales}/merge", b)):
        r = client.post(url, data={"into": str(into), "csrf_token": csrf},
                        follow_redirects=False)
        assert r.status_code == 404
    assert client.get(f"/conversations/{b}/merge?into={world.conv_sales}").status_code == 404
    assert client.get(f"/conversations/{world.conv_sales}/merge").status_code == 404
    assert client.post("/merges/999999/undo", data={"csrf_token": csrf},
                       follow_redirects=False).status_code == 404


def test_split_from_here(client: TestClient, db: Db, world: World) -> None:
    with db() as s:
        conv = s.get(Conversation, world.conv_support)
        assert conv is not None
        second = f.inbound(s, conv, text="موضوعی دیگر").id
        first = s.scalar(select(Message.id).where(Message.conversation_id == conv.id)
                         .order_by(Message.id).limit(1))
        s.commit()
    csrf = sign_in(client, "ali")
    page = client.get(f"/conversations/{world.conv_support}")
    assert f'id="split-form-{second}"' in page.text and f'id="split-form-{first}"' not in page.text
    text = post_refused(client, f"/conversations/{world.conv_support}/split",
                        {"message_id": str(first), "csrf_token": csrf},
                        f"/conversations/{world.conv_support}")
    assert "نخستین پیام" in text
    r = client.post(f"/conversations/{world.conv_support}/split",
                    data={"message_id": str(second), "following": "1", "csrf_token": csrf,
                          "person_id": str(world.ali)},
                    follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].endswith("done=conv_split.split")
    new_page = client.get(r.headers["location"])
    assert "موضوعی دیگر" in new_page.text and f'data-origin="{world.conv_support}"' in new_page.text
    with db() as s:
        moved = s.get(Message, second)
        assert moved is not None and moved.conversation_id != world.conv_support
        new = s.get(Conversation, moved.conversation_id)
        assert new is not None and (new.team_id, new.assignee_id) == (world.support, world.ali)
    # an agent of another team cannot split it: 404
    other = TestClient(client.app, base_url="https://testserver")
    with other:
        bob_csrf = sign_in(other, "bob")
        r = other.post(f"/conversations/{world.conv_support}/split",
                       data={"message_id": str(second), "csrf_token": bob_csrf},
                       follow_redirects=False)
        assert r.status_code == 404
