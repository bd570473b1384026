"""The console's queues: membership, filters, paging, counts, and above all scope."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from config.routing import ApprovalPolicy
from console.queues import (
    MAX_LIMIT,
    PREVIEW_CHARS,
    Filters,
    QueueRow,
    decode_cursor,
    encode_cursor,
    list_queue,
    queue_counts,
    queue_names,
    visible_clause,
)
from kartabl import workflow
from kartabl.errors import InputError, NotFound, PermissionDenied
from kartabl.models import (
    Channel,
    Conversation,
    ConversationStatus,
    Person,
    Role,
    Team,
    utcnow,
)
from responders.preview import REPLY_CHECK
from tests.factories import conversation, inbound, person, team

CLOSED = ConversationStatus.CLOSED
REVIEWED = ApprovalPolicy(mode="all")


@dataclass
class Org:
    support: Team
    sales: Team
    maryam: Person  # coordinator
    ali: Person  # support agent
    sara: Person  # support agent
    bob: Person  # sales agent
    ghost: Person  # deactivated support agent
    nobodys: Conversation  # triage: neither team nor assignee
    alis: Conversation  # support, ali
    support_free: Conversation  # support, nobody holds it
    bobs: Conversation  # sales, bob
    sales_free: Conversation  # sales, nobody holds it
    ali_in_sales: Conversation  # sales, but assigned to ali
    alis_closed: Conversation  # support, ali, closed


def aged(conv: Conversation, *, opened_min: float, last_min: float | None = None) -> None:
    now = utcnow()
    conv.opened_at = now - timedelta(minutes=opened_min)
    conv.last_message_at = now - timedelta(minutes=opened_min if last_min is None else last_min)


@pytest.fixture
def org(session: Session) -> Org:
    support, sales = team(session, "support"), team(session, "sales")
    ali = person(session, "ali", teams=[support])
    bob = person(session, "bob", teams=[sales])
    o = Org(
        support=support, sales=sales, maryam=person(session, "maryam", Role.COORDINATOR),
        ali=ali, sara=person(session, "sara", teams=[support]), bob=bob,
        ghost=person(session, "ghost", teams=[support], active=False),
        nobodys=conversation(session, channel=Channel.EMAIL),
        alis=conversation(session, channel=Channel.SMS, team=support, assignee=ali),
        support_free=conversation(session, channel=Channel.TELEGRAM, team=support),
        bobs=conversation(session, channel=Channel.EMAIL, team=sales, assignee=bob),
        sales_free=conversation(session, channel=Channel.BALE, team=sales),
        ali_in_sales=conversation(session, channel=Channel.SMS, team=sales, assignee=ali),
        alis_closed=conversation(session, team=support, assignee=ali, status=CLOSED),
    )
    # Distinct, known ages: opened (and last written) this many minutes ago. All are within
    # the first-response target, so none is overdue unless a test makes it so.
    for minutes, conv in enumerate([o.nobodys, o.alis, o.support_free, o.bobs, o.sales_free,
                                    o.ali_in_sales, o.alis_closed], start=1):
        aged(conv, opened_min=10 * minutes)
    session.commit()
    return o


def every_row(session: Session, actor: Person, name: str, **filters: object) -> list[QueueRow]:
    """The whole queue, page by page (small pages, so paging is exercised everywhere)."""
    rows: list[QueueRow] = []
    cursor = None
    for _ in range(100):
        page = list_queue(session, actor, name, Filters(limit=2, cursor=cursor, **filters))
        rows += page.rows
        if page.next_cursor is None:
            return rows
        cursor = page.next_cursor
    raise AssertionError("paging did not end")


def ids(session: Session, actor: Person, name: str, **filters: object) -> list[int]:
    return [r.conversation_id for r in every_row(session, actor, name, **filters)]


def pending_reply(session: Session, org: Org, conv: Conversation, author: Person) -> int:
    reply = workflow.draft(session, author, conv.id, "سفارش شما فردا می‌رسد", check=REPLY_CHECK)
    workflow.submit(session, author, reply.id, policy=REVIEWED, check=REPLY_CHECK)
    session.commit()
    return reply.id


def scheduled_reply(session: Session, org: Org, conv: Conversation, author: Person,
                    hours: float = 5) -> int:
    """An approved reply that leaves in ``hours`` (the scheduled queue lists it)."""
    from kartabl.models import utcnow
    from kartabl.workflow import schedule

    rid = pending_reply(session, org, conv, author)
    schedule.schedule(session, author, rid, utcnow() + timedelta(hours=hours))
    workflow.approve(session, org.maryam, rid, check=REPLY_CHECK)
    session.commit()
    return rid


# -- membership ------------------------------------------------------------------------------


def test_each_queue_lists_its_own_conversations_newest_first(session: Session, org: Org) -> None:
    rid = pending_reply(session, org, org.alis, org.ali)
    m = org.maryam
    # triage: open and held by nobody, whether a team holds it or not
    assert ids(session, m, "triage") == [org.nobodys.id, org.support_free.id, org.sales_free.id]
    assert ids(session, m, f"team:{org.support.id}") == [org.alis.id, org.support_free.id]
    assert ids(session, m, f"team:{org.sales.id}") == [
        org.bobs.id, org.sales_free.id, org.ali_in_sales.id]
    assert ids(session, m, "open") == [org.nobodys.id, org.alis.id, org.support_free.id,
                                       org.bobs.id, org.sales_free.id, org.ali_in_sales.id]
    assert ids(session, org.ali, "mine") == [org.alis.id, org.ali_in_sales.id]
    assert ids(session, m, "mine") == []
    [row] = every_row(session, m, "approval")
    assert (row.conversation_id, row.pending_reply_id, row.pending_reply.author) == (
        org.alis.id, rid, "ali")
    assert ids(session, m, "overdue") == []


def test_a_team_referral_is_triage_for_that_team_and_an_assignment_takes_it_out(
    session: Session, org: Org
) -> None:
    # Given ali hands his conversation to the support team alone
    workflow.refer(session, org.ali, org.alis.id, team_id=org.support.id, note="برای تیم")
    session.commit()
    # Then nobody holds it: it is in triage (the coordinator's and the team's), and still in
    # the team's queue; no longer ali's
    assert org.alis.id in ids(session, org.maryam, "triage")
    assert org.alis.id in ids(session, org.sara, "triage")
    assert org.alis.id not in ids(session, org.bob, "triage")
    assert org.alis.id in ids(session, org.maryam, f"team:{org.support.id}")
    assert org.alis.id not in ids(session, org.ali, "mine")
    # and assigning conversations to people takes them out of triage
    for conv in (org.nobodys, org.alis, org.support_free, org.sales_free):
        workflow.assign(session, org.maryam, conv.id, person_id=org.sara.id)
    session.commit()
    assert ids(session, org.maryam, "triage") == []


def test_queue_names_for_a_coordinator_and_for_an_agent(session: Session, org: Org) -> None:
    names = [q.name for q in queue_names(session, org.maryam)]
    assert names == ["triage", "approval", "mine", f"team:{org.sales.id}",
                     f"team:{org.support.id}", "open", "overdue", "scheduled", "waiting",
                     "snoozed"]
    agent = queue_names(session, org.ali)
    assert [q.name for q in agent] == ["triage", "approval", "mine", f"team:{org.support.id}",
                                       "open", "overdue", "scheduled", "waiting", "snoozed"]
    assert agent[3].title == "support" and agent[3].team_id == org.support.id


# -- scope -----------------------------------------------------------------------------------


def test_an_agent_sees_only_what_can_access_allows_in_every_queue_and_count(
    session: Session, org: Org
) -> None:
    pending_reply(session, org, org.alis, org.ali)
    pending_reply(session, org, org.bobs, org.bob)
    ali_later = scheduled_reply(session, org, org.alis, org.ali, hours=6)
    ali_sooner = scheduled_reply(session, org, org.alis, org.ali, hours=2)
    scheduled_reply(session, org, org.bobs, org.bob)
    bobs_side = {org.bobs.id, org.sales_free.id, org.nobodys.id}
    convs = session.scalars(select(Conversation)).all()
    for name in ("triage", "approval", "mine", f"team:{org.support.id}", "open", "overdue",
                 "scheduled"):
        for status in (None, CLOSED):
            try:
                listed = ids(session, org.ali, name, status=status)
            except InputError:
                continue  # this queue lists open conversations only
            assert not bobs_side & set(listed), name
            assert all(workflow.can_access(org.ali, c) for c in convs if c.id in listed)
    # The open queue is exactly the open conversations can_access lets ali see
    expected = {c.id for c in convs if c.status == ConversationStatus.OPEN
                and workflow.can_access(org.ali, c)}
    assert set(ids(session, org.ali, "open")) == expected == {
        org.alis.id, org.support_free.id, org.ali_in_sales.id}
    # an agent's triage: their teams' unassigned work only
    assert ids(session, org.ali, "triage") == [org.support_free.id]
    assert [r.conversation_id for r in every_row(session, org.ali, "approval")] == [org.alis.id]
    # scheduled: one row per reply in scope, the soonest first
    assert [r.scheduled_reply_id for r in every_row(session, org.ali, "scheduled")] == [
        ali_sooner, ali_later]
    assert len(every_row(session, org.maryam, "scheduled")) == 3
    counts = queue_counts(session, org.ali)
    assert counts == {"triage": 1, "approval": 1, "mine": 2, f"team:{org.support.id}": 2,
                      "open": 3, "overdue": 0, "scheduled": 2, "waiting": 0, "snoozed": 0}
    # Another team's queue is refused; filtering on it narrows to what ali may see there
    with pytest.raises(PermissionDenied, match="not in that team"):
        list_queue(session, org.ali, f"team:{org.sales.id}")
    assert ids(session, org.ali, "open", team_id=org.sales.id) == [org.ali_in_sales.id]
    assert queue_counts(session, org.ali, Filters(team_id=org.sales.id))["open"] == 1


def test_a_deactivated_agent_sees_no_queue_no_row_and_no_count(session: Session, org: Org) -> None:
    assert queue_names(session, org.ghost) == []
    assert queue_counts(session, org.ghost) == {}
    for name in ("triage", "approval", "mine", f"team:{org.support.id}", "open", "overdue"):
        page = list_queue(session, org.ghost, name)
        assert page.rows == [] and page.next_cursor is None
    # Deactivating a coordinator empties their console too
    org.maryam.active = False
    session.commit()
    assert list_queue(session, org.maryam, "open").rows == []


def test_visible_clause_agrees_with_can_access(session: Session, org: Org) -> None:
    convs = session.scalars(select(Conversation)).all()
    for actor in (org.maryam, org.ali, org.sara, org.bob, org.ghost):
        visible = set(session.scalars(
            select(Conversation.id).where(visible_clause(session, actor))))
        assert visible == {c.id for c in convs if workflow.can_access(actor, c)}, actor.username


# -- filters, targets, rows ------------------------------------------------------------------


def test_filters_by_channel_team_status_and_age(session: Session, org: Org) -> None:
    m = org.maryam
    assert ids(session, m, "open", channel="sms") == [org.alis.id, org.ali_in_sales.id]
    assert ids(session, m, "open", team_id=org.sales.id, channel=Channel.BALE) == [
        org.sales_free.id]
    assert ids(session, org.ali, "mine", status="closed") == [org.alis_closed.id]
    assert ids(session, m, f"team:{org.support.id}", status=CLOSED) == [org.alis_closed.id]
    # Ages are on opened_at: 10, 20, ... minutes ago
    assert ids(session, m, "open", min_age=timedelta(minutes=35)) == [
        org.bobs.id, org.sales_free.id, org.ali_in_sales.id]
    assert ids(session, m, "open", min_age=timedelta(minutes=15),
               max_age=timedelta(minutes=35)) == [org.alis.id, org.support_free.id]
    with pytest.raises(InputError, match="open conversations only"):
        list_queue(session, m, "triage", Filters(status="closed"))


def test_overdue_by_first_response_and_by_resolution_target(session: Session, org: Org) -> None:
    # Targets (the settings' defaults): first response 240 minutes, resolution 72 hours
    aged(org.alis, opened_min=241)  # no reply sent yet: late for the first response
    aged(org.support_free, opened_min=241)
    org.support_free.first_response_at = utcnow()  # answered: on time
    aged(org.bobs, opened_min=72 * 60 + 1, last_min=5)
    org.bobs.first_response_at = utcnow()  # answered, but open for too long
    aged(org.sales_free, opened_min=239)  # not yet late
    aged(org.alis_closed, opened_min=72 * 60 + 1)  # closed: never overdue
    session.commit()
    rows = every_row(session, org.maryam, "overdue")
    assert [r.conversation_id for r in rows] == [org.bobs.id, org.alis.id]
    assert all(r.overdue for r in rows)
    flags = {r.conversation_id: r.overdue for r in every_row(session, org.maryam, "open")}
    assert flags[org.support_free.id] is False and flags[org.sales_free.id] is False
    assert ids(session, org.ali, "overdue") == [org.alis.id]  # scoped like the others
    assert queue_counts(session, org.maryam)["overdue"] == 2


def test_rows_carry_what_a_list_shows(session: Session, org: Org) -> None:
    long_line = "ب" * 300
    inbound(session, org.alis, text=f"\n\n  {long_line}\nخط دوم")
    org.alis.customer.display_name = ""  # an SMS customer without a name
    rid = pending_reply(session, org, org.alis, org.ali)
    [row] = [r for r in every_row(session, org.maryam, "open") if r.conversation_id == org.alis.id]
    assert row.preview == "ب" * (PREVIEW_CHARS - 1) + "…"
    assert row.customer_name.startswith("+98912")  # the identity's address stands in
    assert (row.channel, row.team_name, row.assignee_name, row.status) == (
        Channel.SMS, "support", "ali", ConversationStatus.OPEN)
    assert row.pending_reply_id == rid and row.overdue is False
    [free] = [r for r in every_row(session, org.maryam, "open")
              if r.conversation_id == org.support_free.id]
    assert (free.assignee_name, free.pending_reply_id, free.preview) == (
        None, None, "سلام، سفارشم کجاست؟")


# -- paging and counts -----------------------------------------------------------------------


def test_paging_has_no_duplicates_or_gaps_even_on_equal_times(session: Session, org: Org) -> None:
    same = utcnow() - timedelta(minutes=1)
    extra = [conversation(session, team=org.support) for _ in range(9)]
    for conv in extra[:6]:  # six share one last_message_at: only the id breaks the tie
        conv.last_message_at = same
    session.commit()
    whole = list_queue(session, org.maryam, "open", Filters(limit=MAX_LIMIT))
    assert whole.next_cursor is None and len(whole.rows) == 15
    keys = [(r.last_message_at, r.conversation_id) for r in whole.rows]
    assert keys == sorted(keys, reverse=True)
    for limit in (1, 2, 4, 7):
        paged = [r.conversation_id for r in every_row_with(session, org.maryam, "open", limit)]
        assert paged == [r.conversation_id for r in whole.rows], limit
    # The approval queue pages on the submission time, oldest first
    rids = [pending_reply(session, org, conv, org.ali) for conv in extra[:5]]
    assert [r.pending_reply_id for r in every_row(session, org.maryam, "approval")] == rids


def every_row_with(session: Session, actor: Person, name: str, limit: int) -> list[QueueRow]:
    rows: list[QueueRow] = []
    page = list_queue(session, actor, name, Filters(limit=limit))
    rows += page.rows
    while page.next_cursor is not None:
        assert len(page.rows) == limit
        page = list_queue(session, actor, name, Filters(limit=limit, cursor=page.next_cursor))
        rows += page.rows
    return rows


@pytest.mark.parametrize("filters", [{}, {"channel": "sms"}, {"status": "closed"},
                                     {"min_age": timedelta(minutes=25)},
                                     {"channel": "email", "max_age": timedelta(hours=2)}])
def test_counts_equal_the_listings(session: Session, org: Org, filters: dict) -> None:
    pending_reply(session, org, org.alis, org.ali)
    scheduled_reply(session, org, org.alis, org.ali)
    for actor in (org.maryam, org.ali, org.bob):
        counts = queue_counts(session, actor, Filters(**filters))
        expected = {q.name for q in queue_names(session, actor)}
        if "status" in filters:  # only mine, the team and the scheduled queues list closed
            expected = {n for n in expected
                        if n in ("mine", "scheduled") or n.startswith("team:")}
        assert set(counts) == expected
        for name, count in counts.items():
            assert count == len(every_row(session, actor, name, **filters)), (actor, name)
    assert queue_counts(session, org.maryam)["open"] == 6


# -- input -----------------------------------------------------------------------------------


def test_bad_input_is_refused_with_a_clear_error(session: Session, org: Org) -> None:
    m = org.maryam
    for name in ("inbox", "team:", "team:abc", "team:0", "Triage"):
        with pytest.raises(InputError, match="unknown queue"):
            list_queue(session, m, name)
    with pytest.raises(NotFound, match="team 9999"):
        list_queue(session, m, "team:9999")
    with pytest.raises(NotFound, match="team 9999"):
        queue_counts(session, m, Filters(team_id=9999))
    bad: list[dict] = [{"limit": 0}, {"limit": MAX_LIMIT + 1}, {"limit": "5"},
                       {"cursor": "abc"}, {"cursor": "1.0"}, {"cursor": f"{10**18 - 1}.5"},
                       {"cursor": "1.5\n"},
                       {"channel": "fax"}, {"status": "pending"}, {"team_id": 0},
                       {"min_age": timedelta(minutes=-1)},
                       {"min_age": timedelta(hours=2), "max_age": timedelta(hours=1)}]
    for kwargs in bad:
        with pytest.raises(InputError):
            Filters(**kwargs)


def test_cursors_round_trip_exactly() -> None:
    at = datetime(2025, 3, 1, 12, 30, 15, 123456).astimezone()
    assert decode_cursor(encode_cursor(at, 42)) == (at, 42)

