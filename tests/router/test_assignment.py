from datetime import timedelta

import pytest
from sqlalchemy import select

from kartabl.models import Conversation, ConversationStatus, Customer, Event, utcnow
from router.assignment import choose_team
from router.teams import sync_teams


@pytest.mark.parametrize(("channel", "subject", "text", "tags", "want"), [
    # Persian keyword written with Arabic kaf and Persian digits
    ("sms", "", "لطفا فاكتور ۱۲۳ را بفرستید", [], ("billing", "billing words")),
    ("email", "Your INVOICE", "", [], ("billing", "billing words")),
    ("sms", "", "سلام", ["VIP"], ("sales", "vip")),
    # channels AND keywords: a price question on Telegram, but not by SMS
    ("telegram", "", "قیمت چنده؟", [], ("sales", "telegram price")),
    ("sms", "", "قیمت چنده؟", [], (None, None)),
    ("email", "hello", "", [], ("support", "email to support")),
    ("bale", "", "سلام", [], (None, None)),
])
def test_choose_team(routing, channel, subject, text, tags, want):
    assert choose_team(routing, channel, subject, text, tags) == want


def test_first_matching_rule_wins(routing):
    # both "billing words" and "email to support" match: the earlier rule wins
    assert choose_team(routing, "email", "invoice", "", []) == ("billing", "billing words")


@pytest.fixture
def teams(session, routing):
    sync_teams(session, routing)
    session.commit()
    from kartabl.models import Team
    return {t.name: t for t in session.scalars(select(Team))}


def test_sync_teams_creates_missing_once(session, routing, teams):
    assert set(teams) == {"billing", "sales", "support"}
    assert sync_teams(session, routing) == 0


def test_least_loaded_member_under_capacity(session, inbound, route, teams, make_person):
    busy = make_person(teams["support"], capacity=5)
    idle = make_person(teams["support"], capacity=5)
    session.add(Conversation(customer_id=_customer(session), channel="email",
                             team_id=teams["support"].id, assignee_id=busy.id))
    session.commit()
    out = route(inbound(sender="c@example.ir", subject="help"))
    assert out.team_id == teams["support"].id and out.assignee_id == idle.id
    event = session.scalars(select(Event).where(Event.kind == "conversation.assigned")).one()
    assert event.data["rule"] == "email to support"
    assert event.data["reason"] == "least loaded"


def test_tie_breaks_by_lowest_id(session, inbound, route, teams, make_person):
    first = make_person(teams["support"])
    make_person(teams["support"])
    assert route(inbound(sender="c@example.ir")).assignee_id == first.id


def test_unavailable_or_inactive_member_is_skipped(session, inbound, route, teams, make_person):
    make_person(teams["support"], available=False)
    make_person(teams["support"], active=False)
    ok = make_person(teams["support"])
    assert route(inbound(sender="c@example.ir")).assignee_id == ok.id


def test_full_team_goes_to_triage_with_team_set(session, inbound, route, teams, make_person):
    make_person(teams["support"], capacity=0)
    out = route(inbound(sender="c@example.ir"))
    assert out.team_id == teams["support"].id and out.assignee_id is None
    event = session.scalars(select(Event).where(Event.kind == "conversation.triaged")).one()
    assert event.data["reason"] == "team at capacity"


def test_no_rule_goes_to_coordinator_triage(session, inbound, route, teams, make_person):
    make_person(teams["support"])
    out = route(inbound(channel="bale", sender="7", text="سلام"))
    assert out.team_id is None and out.assignee_id is None
    event = session.scalars(select(Event).where(Event.kind == "conversation.triaged")).one()
    assert event.data["reason"] == "no rule matched"


def test_team_without_a_row_behaves_as_triage(session, inbound, route, make_person, caplog):
    # no sync_teams: the rule names a team that does not exist
    out = route(inbound(sender="c@example.ir"))
    assert out.team_id is None and out.assignee_id is None
    assert "has no row" in caplog.text


def test_previous_assignee_is_preferred(session, inbound, route, teams, make_person):
    # Given a customer whose earlier conversation was handled by the busier member
    make_person(teams["support"])
    previous = make_person(teams["support"])
    first = route(inbound(sender="c@example.ir"))
    conv = session.get(Conversation, first.conversation_id)
    conv.assignee_id = previous.id
    conv.status = ConversationStatus.CLOSED
    conv.resolved_at = utcnow() - timedelta(days=30)
    session.add(Conversation(customer_id=_customer(session), channel="email",
                             team_id=teams["support"].id, assignee_id=previous.id))
    session.commit()
    # When the customer writes again after the reopen window
    out = route(inbound(sender="c@example.ir"), reopen_window=timedelta(days=1))
    # Then the previous assignee gets the new, linked conversation
    assert out.how == "new_linked" and out.assignee_id == previous.id
    event = session.scalars(select(Event).where(Event.kind == "conversation.assigned")
                            .order_by(Event.id.desc())).first()
    assert event.data["reason"] == "previous assignee"


def test_previous_assignee_at_capacity_falls_back(session, inbound, route, teams, make_person):
    other = make_person(teams["support"], capacity=5)
    previous = make_person(teams["support"], capacity=1)
    first = route(inbound(sender="c@example.ir"))
    conv = session.get(Conversation, first.conversation_id)
    conv.assignee_id = previous.id
    conv.status = ConversationStatus.CLOSED
    conv.resolved_at = utcnow() - timedelta(days=30)
    session.add(Conversation(customer_id=_customer(session), channel="sms",
                             team_id=teams["support"].id, assignee_id=previous.id))
    session.commit()
    out = route(inbound(sender="c@example.ir"), reopen_window=timedelta(days=1))
    assert out.assignee_id == other.id


def test_available_assignee_keeps_conversation(session, inbound, route, teams, make_person):
    a = make_person(teams["support"])
    first = route(inbound(sender="c@example.ir"))
    assert first.assignee_id == a.id
    make_person(teams["support"])  # a less loaded colleague does not take it over
    assert route(inbound(sender="c@example.ir")).assignee_id == a.id


def test_unavailable_assignee_is_replaced_within_the_team(
    session, inbound, route, teams, make_person
):
    a = make_person(teams["support"])
    # Given a conversation placed in billing, which has no member yet
    first = route(inbound(sender="c@example.ir", subject="invoice"))
    assert first.team_id == teams["billing"].id and first.assignee_id is None
    # When billing gets a member, the next message (no billing words) assigns within billing
    b = make_person(teams["billing"])
    again = route(inbound(sender="c@example.ir", text="hello"))
    assert again.team_id == teams["billing"].id and again.assignee_id == b.id
    # When that member becomes unavailable, a colleague in the same team takes over
    b.available = False
    session.commit()
    make_person(teams["billing"], username="c2")
    third = route(inbound(sender="c@example.ir"))
    assert third.assignee_id not in (a.id, b.id, None)
    assert third.team_id == teams["billing"].id


def _customer(session):
    c = Customer(display_name="other")
    session.add(c)
    session.flush()
    return c.id


def test_inbox_default_team_when_no_rule_matches(session, inbound, route, teams, make_person):
    # Given a Bale message (no rule matches Bale) that came in by an inbox whose team is sales
    seller = make_person(teams["sales"])
    make_person(teams["support"])
    out = route(inbound(channel="bale", sender="7", text="سلام",
                        meta={"default_team": "sales"}))
    # Then the inbox's team takes it, and the event says why
    assert out.team_id == teams["sales"].id and out.assignee_id == seller.id
    event = session.scalars(select(Event).where(Event.kind == "conversation.assigned")).one()
    assert event.data["rule"] == "inbox default"


def test_rules_win_over_the_inbox_default(session, inbound, route, teams, make_person):
    make_person(teams["sales"])
    biller = make_person(teams["billing"])
    out = route(inbound(channel="email", sender="c@example.ir", subject="invoice 12",
                        meta={"default_team": "sales"}))
    assert out.team_id == teams["billing"].id and out.assignee_id == biller.id
