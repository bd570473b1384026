"""Scheduled send in the console: a Jalali or Gregorian send time on the compose, submit and
approve forms (read in the team's time zone), the conversation's scheduled panel with held
replies and their actions, the "scheduled" queue (scoped like every listing), refusals."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from console.dates import persian_digits
from console.schedule_time import jalali_example, parse_send_at
from kartabl import workflow
from kartabl.errors import InputError
from kartabl.models import Conversation, Person, Reply, ReplyState, utcnow
from kartabl.workflow import schedule
from responders.preview import REPLY_CHECK
from tests import factories as f
from tests.console.pages.conftest import World, post_refused, sign_in

Db = sessionmaker[Session]
TEHRAN = ZoneInfo("Asia/Tehran")
RS = ReplyState


# -- reading a send time ------------------------------------------------------------------


@pytest.mark.parametrize(("text", "expected"), [
    ("1405/09/14 10:30", datetime(2026, 12, 5, 7, 0, tzinfo=UTC)),
    ("۱۴۰۵/۰۹/۱۴ ۱۰:۳۰", datetime(2026, 12, 5, 7, 0, tzinfo=UTC)),
    ("١٤٠٥-٩-١٤ ١٠:٣٠", datetime(2026, 12, 5, 7, 0, tzinfo=UTC)),
    ("\u200f1405/09/14\u200f 10:30", datetime(2026, 12, 5, 7, 0, tzinfo=UTC)),
    ("2026-12-05 10:30", datetime(2026, 12, 5, 7, 0, tzinfo=UTC)),
    ("2026-12-05T10:30", datetime(2026, 12, 5, 7, 0, tzinfo=UTC)),
    ("1405/01/01 00:00:30", datetime(2026, 3, 20, 20, 30, 30, tzinfo=UTC)),  # Nowruz
])
def test_send_times_jalali_or_gregorian_in_the_team_zone(text: str, expected: datetime) -> None:
    assert parse_send_at(text, TEHRAN) == expected
    # the same wall time in another zone is another instant
    assert parse_send_at(text, ZoneInfo("Europe/Berlin")) != expected


@pytest.mark.parametrize(("text", "code"), [
    ("فردا", "schedule.bad_time"), ("1405/09/14", "schedule.bad_time"), ("", "schedule.bad_time"),
    ("1405/13/01 10:00", "no_such_date"), ("1404/12/30 10:00", "no_such_date"),
    ("2026-12-05 25:00", "no_such_date"), ("0900/01/01 10:00", "no_such_date"),
])
def test_bad_send_times_say_what_was_expected(text: str, code: str) -> None:
    with pytest.raises(InputError) as bad:
        parse_send_at(text, TEHRAN)
    assert bad.value.code == code


# -- the pages ------------------------------------------------------------------------------


def _in_two_days() -> tuple[datetime, str]:
    """A send time two days ahead (whole minutes), and how a Persian reader types it."""
    at = (utcnow() + timedelta(days=2)).replace(second=0, microsecond=0)
    return at, persian_digits(jalali_example(at, TEHRAN))


def _reply(db: Db, rid: int) -> Reply:
    with db() as s:
        found = s.get(Reply, rid)
        assert found is not None
        s.expunge(found)
        return found


def _newest_reply(db: Db, cid: int) -> int:
    with db() as s:
        rid = s.scalar(select(Reply.id).where(Reply.conversation_id == cid)
                       .order_by(Reply.id.desc()).limit(1))
        assert rid is not None
        return rid


def test_schedule_in_jalali_approve_and_see_it_in_the_queue(
    client: TestClient, other_client: TestClient, world: World, db: Db,
) -> None:
    at, typed = _in_two_days()
    cid = world.conv_support
    # the agent (Persian) writes, schedules in Jalali with Persian digits, and submits
    csrf = sign_in(client, "ali")
    r = client.post(f"/conversations/{cid}/replies", data={
        "csrf_token": csrf, "body": "فردا تماس می‌گیریم", "then": "submit", "send_at": typed},
        follow_redirects=False)
    assert r.headers["location"] == f"/conversations/{cid}?done=submitted", r.text[-800:]
    rid = _newest_reply(db, cid)
    reply = _reply(db, rid)
    assert (reply.state, reply.send_at) == (RS.PENDING_APPROVAL, at)
    page = client.get(f"/conversations/{cid}").text
    assert f'id="send-at-{rid}"' in page and "ارسال در" in page
    # a coordinator approves it: it does not leave now, it waits in the scheduled queue
    csrf2 = sign_in(other_client, "reza")
    r = other_client.post(f"/replies/{rid}/approve", data={"csrf_token": csrf2},
                          follow_redirects=False)
    assert r.status_code == 303 and "done=approved" in r.headers["location"]
    assert _reply(db, rid).state == RS.APPROVED
    queue = other_client.get("/queues?queue=scheduled").text
    assert f'id="row-{cid}-{rid}"' in queue and f'data-send-at="{at.isoformat()}"' in queue
    assert 'id="tab-scheduled"' in queue
    page = other_client.get(f"/conversations/{cid}").text
    assert f'id="scheduled-{rid}"' in page and f'id="send-now-{rid}"' in page
    # the sales agent sees neither the row nor the reply
    csrf3 = sign_in(client, "bob")
    assert f'id="row-{cid}-{rid}"' not in client.get("/queues?queue=scheduled").text
    r = client.post(f"/replies/{rid}/send-now", data={"csrf_token": csrf3},
                    follow_redirects=False)
    assert r.status_code == 404
    assert _reply(db, rid).send_at == at


def test_held_reply_shows_its_actions_and_sends_now(
    client: TestClient, world: World, db: Db, enqueued: list[tuple[str, int]],
) -> None:
    cid = world.conv_support
    with db() as s:
        ali, coord = s.get(Person, world.ali), s.get(Person, world.coord)
        reply = workflow.draft(s, ali, cid, "پاسخ زمان‌بندی‌شده", check=REPLY_CHECK)
        schedule.schedule(s, ali, reply.id, utcnow() + timedelta(hours=5))
        workflow.submit(s, ali, reply.id, check=REPLY_CHECK)
        workflow.approve(s, coord, reply.id, check=REPLY_CHECK)
        s.commit()
        rid = reply.id
    with db() as s:  # the customer writes; the router holds the reply
        conv = s.get(Conversation, cid)
        assert conv is not None
        msg = f.inbound(s, conv, text="صبر کنید، سوال دیگری دارم")
        schedule.hold_on_inbound(s, [(conv, msg)])
        s.commit()
    csrf = sign_in(client, "ali")
    page = client.get(f"/conversations/{cid}").text
    assert f'id="held-{rid}"' in page and 'data-held="1"' in page
    for action in ("send-now", "reschedule", "withdraw"):
        assert f'id="{action}-{rid}"' in page
    # the author was told, in Persian
    assert "ارسال یک پاسخ زمان‌بندی‌شده نگه داشته شد" in client.get("/notifications").text
    enqueued.clear()
    r = client.post(f"/replies/{rid}/send-now", data={"csrf_token": csrf}, follow_redirects=False)
    assert r.headers["location"] == f"/conversations/{cid}?done=sent_now"
    reply = _reply(db, rid)
    assert (reply.state, reply.send_at, reply.schedule_held_at) == (RS.APPROVED, None, None)
    assert ("dispatch_reply", rid) in enqueued


def test_reschedule_refused_keeps_the_text_then_back_to_draft(
    client: TestClient, world: World, db: Db,
) -> None:
    cid = world.conv_support
    with db() as s:
        ali, coord = s.get(Person, world.ali), s.get(Person, world.coord)
        reply = workflow.draft(s, ali, cid, "پاسخ", check=REPLY_CHECK)
        schedule.schedule(s, ali, reply.id, utcnow() + timedelta(hours=5))
        workflow.submit(s, ali, reply.id, check=REPLY_CHECK)
        workflow.approve(s, coord, reply.id, check=REPLY_CHECK)
        s.commit()
        rid = reply.id
    csrf = sign_in(client, "ali")
    shown = post_refused(client, f"/replies/{rid}/schedule",
                         {"csrf_token": csrf, "send_at": "پس‌فردا"}, f"/conversations/{cid}")
    assert "پس‌فردا" in shown and "۱۴۰۵/۰۹/۱۴ ۱۰:۳۰" in shown  # kept, and the expected form
    shown = post_refused(client, f"/replies/{rid}/schedule",
                         {"csrf_token": csrf, "send_at": "1400/01/01 10:00"},
                         f"/conversations/{cid}")
    assert "گذشته" in shown
    at, typed = _in_two_days()
    r = client.post(f"/replies/{rid}/schedule", data={"csrf_token": csrf, "send_at": typed},
                    follow_redirects=False)
    assert r.headers["location"] == f"/conversations/{cid}?done=scheduled"
    assert _reply(db, rid).send_at == at
    r = client.post(f"/replies/{rid}/back-to-draft", data={"csrf_token": csrf},
                    follow_redirects=False)
    assert r.headers["location"] == f"/conversations/{cid}?done=withdrawn"
    assert (_reply(db, rid).state, _reply(db, rid).send_at) == (RS.DRAFT, None)
    # a draft's time can be taken off too; without one, cancelling is refused
    post_refused(client, f"/replies/{rid}/schedule/cancel", {"csrf_token": csrf},
                 f"/conversations/{cid}")


def test_an_agent_of_the_team_who_is_not_the_author_may_not_act(
    client: TestClient, world: World, db: Db,
) -> None:
    cid = world.conv_support
    with db() as s:
        ali, coord = s.get(Person, world.ali), s.get(Person, world.coord)
        support = s.get(f.Team, world.support)
        sara = f.person(s, "sara", teams=[support])
        sara.password_hash = ali.password_hash
        reply = workflow.draft(s, ali, cid, "پاسخ", check=REPLY_CHECK)
        schedule.schedule(s, ali, reply.id, utcnow() + timedelta(hours=5))
        workflow.submit(s, ali, reply.id, check=REPLY_CHECK)
        workflow.approve(s, coord, reply.id, check=REPLY_CHECK)
        s.commit()
        rid = reply.id
    csrf = sign_in(client, "sara")
    page = client.get(f"/conversations/{cid}").text
    assert f'id="scheduled-{rid}"' in page and f'id="send-now-{rid}"' not in page
    post_refused(client, f"/replies/{rid}/send-now", {"csrf_token": csrf},
                 f"/conversations/{cid}")
    assert _reply(db, rid).send_at is not None
