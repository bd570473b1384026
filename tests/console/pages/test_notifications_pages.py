"""Notifications in the console (console/pages/notifications.py): the header's count and the
title's, the feed with its links and the reviewer's comment, mark read (one, all) by
post/redirect/get, another person's notification a 404; and the queues' "new" marker, gone
once the conversation is opened and back when the customer writes again."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from kartabl import notifications, workflow
from kartabl.models import (
    Channel,
    Conversation,
    ConversationSeen,
    Notification,
    Person,
    Reply,
    ReplyState,
    utcnow,
)
from tests import factories as f
from tests.console.pages.conftest import World, sign_in

Db = sessionmaker[Session]
TITLE = re.compile(r"<title>(.*?)</title>", re.S)


def person(s: Session, pid: int) -> Person:
    p = s.get(Person, pid)
    assert p is not None
    return p


def refer_to_ali(db: Db, world: World, note: str = "please look") -> None:
    with db() as s:
        workflow.refer(s, person(s, world.coord), world.conv_triage, person_id=world.ali,
                       team_id=world.support, note=note)
        s.commit()


def reject_alis_reply(db: Db, world: World, comment: str) -> int:
    with db() as s:
        reply = Reply(conversation_id=world.conv_support, author_id=world.ali,
                      state=ReplyState.PENDING_APPROVAL, channel=Channel.SMS, body="سلام")
        s.add(reply)
        s.flush()
        workflow.reject(s, person(s, world.coord), reply.id, comment)
        s.commit()
        return reply.id


def unread(db: Db, pid: int) -> int:
    with db() as s:
        return len(s.scalars(select(Notification.id).where(
            Notification.person_id == pid, Notification.read_at.is_(None))).all())


def test_the_count_shows_in_the_header_and_the_title(client: TestClient, world: World,
                                                     db: Db) -> None:
    sign_in(client, "ali")  # Persian
    page = client.get("/queues").text
    assert 'id="notify-count"' in page and " hidden>" in page.split('id="notify-count"')[1][:200]
    assert not TITLE.search(page).group(1).startswith("(")
    refer_to_ali(db, world)
    reject_alis_reply(db, world, "لحن را عوض کن")
    page = client.get("/queues").text
    assert TITLE.search(page).group(1).startswith("(۲) ")  # Persian digits
    assert 'data-count="2"' in page
    assert client.get("/notifications/unread").json()["count"] == 2


def test_the_feed_links_to_the_conversation_with_the_comment(client: TestClient,
                                                             world: World, db: Db) -> None:
    sign_in(client, "ali")
    refer_to_ali(db, world, "اول این را ببین")
    reject_alis_reply(db, world, "لحن را مؤدبانه‌تر کن")
    page = client.get("/notifications").text
    feed = page.split('id="notify-feed"')[1]
    # newest first: the rejection, then the referral, each linking to its conversation
    assert feed.index('data-kind="rejected"') < feed.index('data-kind="referred"')
    assert f'href="/conversations/{world.conv_support}"' in feed
    assert f'href="/conversations/{world.conv_triage}"' in feed
    assert "لحن را مؤدبانه‌تر کن" in feed and "اول این را ببین" in feed
    assert "پاسخ شما را برگرداند" in feed  # the sentence in Persian, Maryam isolated
    assert "<bdi>Maryam</bdi>" in feed
    # the JSON the page's script reads: the sentence in plain text, the name isolated
    items = client.get("/notifications/unread").json()["items"]
    assert items[0]["kind"] == "rejected" and "\u2068Maryam\u2069" in items[0]["text"]
    assert items[0]["comment"] == "لحن را مؤدبانه‌تر کن"


def test_mark_one_and_mark_all_read_post_redirect_get(client: TestClient, world: World,
                                                      db: Db) -> None:
    csrf = sign_in(client, "ali")
    refer_to_ali(db, world)
    reject_alis_reply(db, world, "no")
    with db() as s:
        first = s.scalars(select(Notification.id).where(Notification.person_id == world.ali)
                          .order_by(Notification.id)).first()
    r = client.post(f"/notifications/{first}/read", data={"csrf_token": csrf},
                    follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/notifications?done=notify_read"
    assert unread(db, world.ali) == 1
    assert 'id="flash"' in client.get(r.headers["location"]).text
    r = client.post("/notifications/read-all", data={"csrf_token": csrf},
                    follow_redirects=False)
    assert r.status_code == 303 and unread(db, world.ali) == 0
    assert not TITLE.search(client.get("/queues").text).group(1).startswith("(")
    # without the CSRF token: refused, nothing changed
    refer_to_ali(db, world)
    assert client.post("/notifications/read-all", follow_redirects=False).status_code == 403
    assert unread(db, world.ali) == 1


def test_another_persons_notification_is_a_404(client: TestClient, world: World,
                                               db: Db) -> None:
    refer_to_ali(db, world, "for ali only")
    with db() as s:
        (alis,) = s.scalars(select(Notification.id).where(Notification.person_id == world.ali))
    csrf = sign_in(client, "bob")
    r = client.post(f"/notifications/{alis}/read", data={"csrf_token": csrf},
                    follow_redirects=False)
    assert r.status_code == 404
    assert unread(db, world.ali) == 1
    assert "for ali only" not in client.get("/notifications").text
    assert client.get("/notifications/unread").json() == {"count": 0, "digits": "0",
                                                         "items": []}


def test_a_notification_about_a_conversation_now_out_of_scope_hides_it(
        client: TestClient, world: World, db: Db) -> None:
    refer_to_ali(db, world, "the secret note")
    with db() as s:  # and a breach warning about it
        conv = s.get(Conversation, world.conv_triage)
        assert conv is not None
        notifications.notify(s, "breach", [world.ali], actor=None, conversation=conv,
                             text="first_response")
        s.commit()
    with db() as s:  # the conversation goes to sales, and away from ali
        workflow.assign(s, person(s, world.coord), world.conv_triage, person_id=world.bob,
                        team_id=world.sales)
        s.commit()
    sign_in(client, "ali")
    page = client.get("/notifications").text
    assert f"/conversations/{world.conv_triage}" not in page
    assert "the secret note" not in page and "triage-subject" not in page
    assert "دیگر نمی‌توانید باز کنید" in page
    assert "notify.target_" not in page and "پاسخ‌گویی" in page  # worded, not a raw key


def test_the_queues_mark_new_customer_messages_until_opened(client: TestClient,
                                                            world: World, db: Db) -> None:
    sign_in(client, "ali")
    row = f'id="row-{world.conv_support}"'

    def marked() -> bool:
        page = client.get("/queues/live?queue=mine").text
        tr = page[page.index(row) - 200: page.index(row) + 900]
        return " unread" in tr.split("<tr", 1)[1].split(">", 1)[0] and "new-mark" in tr

    assert marked()
    assert client.get(f"/conversations/{world.conv_support}").status_code == 200
    assert not marked()
    with db() as s:  # the customer writes again
        conv = s.get(Conversation, world.conv_support)
        assert conv is not None
        f.inbound(s, conv)
        conv.last_message_at = utcnow()  # as the router moves it
        s.commit()
    assert marked()
    page = client.get("/queues?queue=mine").text
    assert "تازه" in page  # the badge, in Persian
    # Opened in the inbox's pane by its own link (a reload, a shared link): seen as well
    page = client.get(f"/queues?queue=mine&open={world.conv_support}").text
    assert 'id="inbox-pane"' in page and f'data-conversation-id="{world.conv_support}"' in page
    assert not marked()


def test_a_conversation_out_of_scope_is_not_marked_seen(client: TestClient, world: World,
                                                        db: Db) -> None:
    sign_in(client, "ali")
    assert client.get(f"/conversations/{world.conv_sales}").status_code == 404
    with db() as s:
        assert s.scalars(select(ConversationSeen.person_id)).all() == []
