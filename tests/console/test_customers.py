"""The console's customer services (console/customers.py): search in every form a person
types, scope (an agent of team A never finds, sees, merges, links or tags team B's
customer), merge preview against what the merge moves, tags. Both databases."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from console import customers as cc
from kartabl.errors import IllegalTransition, InputError, NotFound, PermissionDenied
from kartabl.models import (
    Channel,
    Conversation,
    ConversationStatus,
    Customer,
    Identity,
    Message,
    Person,
    Role,
    Team,
)
from router.identity import IdentityTaken
from tests import factories as f


@dataclass
class World:
    team_a: Team
    team_b: Team
    agent_a: Person  # team A
    agent_b: Person  # team B
    merger_a: Person  # team A, with the merge permission
    coordinator: Person
    admin: Person


@pytest.fixture
def w(session: Session) -> World:
    a, b = f.team(session, "sales"), f.team(session, "billing")
    merger = f.person(session, "merger", teams=[a])
    merger.can_merge = True
    session.flush()
    return World(a, b, f.person(session, "ali", teams=[a]), f.person(session, "bahar", teams=[b]),
                 merger, f.person(session, "coord", Role.COORDINATOR),
                 f.person(session, "root", Role.ADMIN))


def customer(
    s: Session, name: str, identities: Sequence[tuple[str, str]] = (),
    teams: Sequence[Team | None] = (),
    *, assignee: Person | None = None, display: str = "",
) -> Customer:
    """A customer with identities and one conversation (and one message) per team given."""
    c = Customer(display_name=name, tags=[])
    s.add(c)
    s.flush()
    for kind, address in identities:
        s.add(Identity(customer_id=c.id, kind=kind, address=address, display=display))
    for t in teams:
        conv = Conversation(customer_id=c.id, channel=Channel.SMS, team_id=t.id if t else None,
                            assignee_id=assignee.id if assignee else None)
        s.add(conv)
        s.flush()
        f.inbound(s, conv, sender="+989120000000")
    s.flush()
    return c


def ids(hits: list[cc.CustomerHit]) -> list[int]:
    return [h.id for h in hits]


# -- search --------------------------------------------------------------------------------


@pytest.mark.parametrize("typed", [
    "۰۹۱۲۱۲۳۴۵۶۷", "٠٩١٢١٢٣٤٥٦٧", "+98 912 123 4567", "09121234567", "912-123-4567",
    "00989121234567", "۰۹۱۲ ۱۲۳ ۴۵", "1234567",  # the last two: part of the number
])
def test_search_finds_a_phone_typed_in_any_form(session, w, typed) -> None:
    sara = customer(session, "سارا", [("phone", "+989121234567")], [w.team_a])
    customer(session, "نگار", [("phone", "+989351111111")], [w.team_a])
    assert ids(cc.search_customers(session, w.coordinator, typed)) == [sara.id]


def test_search_ranks_an_exact_identity_before_newer_partial_matches(session, w) -> None:
    exact = customer(session, "x", [("phone", "+989121234567")], [w.team_a])
    named = customer(session, "فروشگاه 09121234567", [], [w.team_a])  # newer: listed first else
    prefix = customer(session, "z", [("phone", "+989121234568")], [w.team_a])
    hits = cc.search_customers(session, w.coordinator, "۰۹۱۲۱۲۳۴۵۶۷")
    assert ids(hits) == [exact.id, named.id]
    assert [(i.kind, i.address) for i in hits[0].identities] == [("phone", "+989121234567")]
    # part of a number (no exact match): both numbers and the name hold it; newest first
    assert ids(cc.search_customers(session, w.coordinator, "912123456")) == [
        prefix.id, named.id, exact.id]


@pytest.mark.parametrize(("stored", "typed"), [
    ("علی", "علي"),                 # Arabic yeh typed, Persian stored
    ("كتابفروشی نور", "کتاب"),       # Arabic kaf stored, Persian typed
    ("عَلی محمدی", "محمدی علی"),     # harakat stored; words in another order
    ("علی‌رضا", "علی رضا"),          # ZWNJ stored, a space typed
    ("علیرضا", "علی‌رضا"),           # nothing stored, a ZWNJ typed
    ("Sara Karimi", "KARIMI"),
    ("فروشگاه ۲۴", "فروشگاه 24"),     # Persian digits stored
    ("ﻋﻠﻲ", "علی"),                  # Arabic presentation forms stored (old systems)
])
def test_search_matches_names_after_normalisation(session, w, stored, typed) -> None:
    hit = customer(session, stored, [], [w.team_a])
    customer(session, "مریم", [], [w.team_a])
    assert ids(cc.search_customers(session, w.coordinator, typed)) == [hit.id]


def test_search_email_case_insensitive_and_partial(session, w) -> None:
    c = customer(session, "", [("email", "sara.k@example.ir")], [w.team_a])
    customer(session, "", [("email", "other@example.ir")], [w.team_a])
    assert ids(cc.search_customers(session, w.coordinator, "Sara.K@Example.IR")) == [c.id]
    assert ids(cc.search_customers(session, w.coordinator, "SARA.K")) == [c.id]


def test_search_messenger_id_and_username(session, w) -> None:
    tg = customer(session, "", [("telegram", "424242")], [w.team_a], display="@sara_k")
    customer(session, "", [("telegram", "4242")], [w.team_a], display="@nima")
    assert ids(cc.search_customers(session, w.coordinator, "۴۲۴۲۴۲")) == [tg.id]
    assert ids(cc.search_customers(session, w.coordinator, "@Sara_K")) == [tg.id]


def test_like_wildcards_in_input_are_literal(session, w) -> None:
    pct = customer(session, "50% off", [], [w.team_a])
    customer(session, "500 off", [], [w.team_a])
    under = customer(session, "a_b", [], [w.team_a])
    customer(session, "axb", [], [w.team_a])
    assert ids(cc.search_customers(session, w.coordinator, "0%")) == [pct.id]
    assert ids(cc.search_customers(session, w.coordinator, "a_b")) == [under.id]
    assert ids(cc.search_customers(session, w.coordinator, "%")) == [pct.id]  # not "all"
    assert ids(cc.search_customers(session, w.coordinator, "_")) == [under.id]
    assert cc.search_customers(session, w.coordinator, "\\") == []


def test_search_by_tag(session, w) -> None:
    vip = customer(session, "سارا", [], [w.team_a])
    plain = customer(session, "سارا", [], [w.team_a])
    cc.add_tag(session, w.coordinator, vip.id, "VIP")
    cc.add_tag(session, w.coordinator, plain.id, "vipish")
    cc.add_tag(session, w.coordinator, vip.id, "مشتری ویژه")
    assert ids(cc.search_customers(session, w.coordinator, "tag:vip")) == [vip.id]
    assert ids(cc.search_customers(session, w.coordinator, "سارا tag:Vip")) == [vip.id]
    assert ids(cc.search_customers(session, w.coordinator, 'tag:"مشتري ويژه"')) == [vip.id]
    assert cc.search_customers(session, w.coordinator, "tag:=bad") == []


def test_merged_customers_are_not_found_their_survivor_is(session, w) -> None:
    src = customer(session, "نام قدیمی", [("phone", "+989121234567")], [w.team_a])
    dst = customer(session, "نام جدید", [("email", "n@example.ir")], [w.team_a])
    cc.merge(session, w.admin, src.id, dst.id)
    assert cc.search_customers(session, w.coordinator, "نام قدیمی") == []
    assert ids(cc.search_customers(session, w.coordinator, "09121234567")) == [dst.id]
    assert cc.customer_detail(session, w.coordinator, src.id).id == dst.id


def test_agent_finds_only_customers_of_their_conversations(session, w) -> None:
    mine = customer(session, "سارا", [("phone", "+989121234567")], [w.team_a])
    theirs = customer(session, "سارا", [("phone", "+989121234568")], [w.team_b])
    direct = customer(session, "سارا", [], [None], assignee=w.agent_b)
    assert ids(cc.search_customers(session, w.agent_a, "سارا")) == [mine.id]
    assert cc.search_customers(session, w.agent_a, "09121234568") == []
    assert ids(cc.search_customers(session, w.agent_b, "سارا")) == [direct.id, theirs.id]
    assert len(cc.search_customers(session, w.coordinator, "سارا")) == 3
    w.coordinator.active = False
    assert cc.search_customers(session, w.coordinator, "سارا") == []


# -- detail --------------------------------------------------------------------------------


def test_detail_hides_other_teams_conversations_and_unseen_customers(session, w) -> None:
    shared = customer(session, "سارا", [("phone", "+989121234567"), ("telegram", "42")],
                      [w.team_a, w.team_b])
    only_b = customer(session, "نگار", [], [w.team_b])
    d = cc.customer_detail(session, w.agent_a, shared.id)
    assert {(i.kind, i.address) for i in d.identities} == {("phone", "+989121234567"),
                                                            ("telegram", "42")}
    assert [c.team_id for c in d.conversations] == [w.team_a.id]
    assert d.hidden_conversations == 1
    assert len(cc.customer_detail(session, w.coordinator, shared.id).conversations) == 2
    with pytest.raises(NotFound) as unseen:
        cc.customer_detail(session, w.agent_a, only_b.id)
    with pytest.raises(NotFound) as missing:
        cc.customer_detail(session, w.agent_a, 10_000)
    # the same answer as for a customer that does not exist: existence is not revealed
    assert str(unseen.value) == f"customer {only_b.id} does not exist"
    assert str(missing.value) == "customer 10000 does not exist"


# -- merge ---------------------------------------------------------------------------------


def test_merge_preview_counts_equal_what_the_merge_moves(session, w) -> None:
    src = customer(session, "", [("phone", "+989121234567"), ("telegram", "42")],
                   [w.team_a, w.team_b])
    closed = session.scalars(select(Conversation).where(Conversation.customer_id == src.id)).first()
    closed.status, closed.channel = ConversationStatus.CLOSED, Channel.TELEGRAM
    src.display_name, src.tags = "سارا", ["vip", "shared"]
    dst = customer(session, "", [("email", "s@example.ir")], [w.team_a])
    dst.tags = ["shared"]
    session.flush()

    p = cc.merge_preview(session, w.admin, src.id, dst.id)
    assert p.conversations == {"telegram": {"closed": 1}, "sms": {"open": 1}}
    assert (p.conversation_count, p.messages, p.tags, p.display_name) == (2, 2, ("vip",), "سارا")
    assert p.may_merge and p.reason == ""

    cc.merge(session, w.admin, src.id, dst.id)
    (event,) = f.events(session, "customer.merged")
    assert event.actor_id == w.admin.id and event.data["source_id"] == src.id
    assert sorted(i["id"] for i in event.data["identities"]) == sorted(i.id for i in p.identities)
    assert len(event.data["conversations"]) == p.conversation_count
    assert event.data["messages"] == p.messages and event.data["tags"] == list(p.tags)
    session.expire_all()
    assert session.scalar(select(Message.customer_id).where(Message.customer_id == src.id)) is None
    assert session.get(Customer, src.id).merged_into_id == dst.id


def test_merge_without_the_permission_is_refused(session, w) -> None:
    src = customer(session, "a", [("phone", "+989121234567")], [w.team_a])
    dst = customer(session, "b", [], [w.team_a])
    # a coordinator may link but not merge (router.identity.merge_customers' rule)
    p = cc.merge_preview(session, w.coordinator, src.id, dst.id)
    assert not p.may_merge and "merge permission" in p.reason
    with pytest.raises(PermissionDenied):
        cc.merge(session, w.coordinator, src.id, dst.id)
    with pytest.raises(PermissionDenied):
        cc.merge(session, w.agent_a, src.id, dst.id)
    assert f.events(session, "customer.merged") == []
    assert session.get(Customer, src.id).merged_into_id is None


def test_agent_merges_only_within_their_scope(session, w) -> None:
    a1 = customer(session, "a1", [("phone", "+989121234567")], [w.team_a])
    a2 = customer(session, "a2", [], [w.team_a])
    shared = customer(session, "ab", [], [w.team_a, w.team_b])
    only_b = customer(session, "b", [], [w.team_b])
    with pytest.raises(PermissionDenied, match="outside their teams"):
        cc.merge_preview(session, w.merger_a, shared.id, a1.id)
    with pytest.raises(PermissionDenied, match="outside their teams"):
        cc.merge(session, w.merger_a, a1.id, shared.id)  # no preview: the same check
    with pytest.raises(NotFound):
        cc.merge_preview(session, w.merger_a, a1.id, only_b.id)
    with pytest.raises(NotFound):
        cc.merge(session, w.merger_a, only_b.id, a1.id)
    assert f.events(session, "customer.merged") == []
    with pytest.raises(IllegalTransition):
        cc.merge_preview(session, w.merger_a, a1.id, a1.id)
    assert cc.merge(session, w.merger_a, a1.id, a2.id).id == a2.id
    assert [e.actor_id for e in f.events(session, "customer.merged")] == [w.merger_a.id]


# -- link ----------------------------------------------------------------------------------


def test_link_is_scoped_and_audited(session, w) -> None:
    a = customer(session, "a", [], [w.team_a])
    shared = customer(session, "ab", [], [w.team_a, w.team_b])
    only_b = customer(session, "b", [("email", "b@example.ir")], [w.team_b])
    linked = cc.link(session, w.merger_a, a.id, "phone", "۰۹۱۲ ۱۲۳ ۴۵۶۷")
    assert (linked.customer_id, linked.address) == (a.id, "+989121234567")
    (event,) = f.events(session, "customer.identity_linked")
    assert (event.actor_id, event.customer_id) == (w.merger_a.id, a.id)
    with pytest.raises(NotFound):
        cc.link(session, w.merger_a, only_b.id, "phone", "09121234568")
    with pytest.raises(PermissionDenied, match="outside their teams"):
        cc.link(session, w.merger_a, shared.id, "phone", "09121234568")
    with pytest.raises(PermissionDenied):
        cc.link(session, w.agent_a, a.id, "phone", "09121234568")  # no merge permission
    with pytest.raises(InputError, match="not a phone number"):
        cc.link(session, w.merger_a, a.id, "phone", "not-a-number")
    with pytest.raises(IdentityTaken) as taken:
        cc.link(session, w.merger_a, a.id, "email", "B@example.ir")
    assert str(only_b.id) not in str(taken.value)  # the owner is outside the agent's scope
    assert len(f.events(session, "customer.identity_linked")) == 1


# -- tags ----------------------------------------------------------------------------------


def test_tags_are_normalised_deduplicated_and_audited(session, w) -> None:
    c = customer(session, "a", [], [w.team_a])
    assert cc.add_tag(session, w.agent_a, c.id, "  #VIP ") == ["vip"]
    assert cc.add_tag(session, w.agent_a, c.id, "vip") == ["vip"]
    assert cc.add_tag(session, w.agent_a, c.id, "مشتري  ويژه") == ["vip", "مشتری ویژه"]
    assert cc.add_tag(session, w.agent_a, c.id, "مشتری ویژه") == ["vip", "مشتری ویژه"]
    assert cc.remove_tag(session, w.agent_a, c.id, "VIP") == ["مشتری ویژه"]
    assert cc.remove_tag(session, w.agent_a, c.id, "absent") == ["مشتری ویژه"]
    session.expire_all()
    assert session.get(Customer, c.id).tags == ["مشتری ویژه"]
    added = f.events(session, "customer.tag_added")
    assert [e.data["tag"] for e in added] == ["vip", "مشتری ویژه"]
    assert [e.data["tag"] for e in f.events(session, "customer.tag_removed")] == ["vip"]
    for bad in ("", "  #  ", "x" * (cc.TAG_MAX_LENGTH + 1), "=cmd()", 'a"b'):
        with pytest.raises(InputError):
            cc.add_tag(session, w.agent_a, c.id, bad)


def test_agent_cannot_tag_another_teams_customer(session, w) -> None:
    only_b = customer(session, "b", [], [w.team_b])
    with pytest.raises(NotFound):
        cc.add_tag(session, w.agent_a, only_b.id, "vip")
    with pytest.raises(NotFound):
        cc.remove_tag(session, w.agent_a, only_b.id, "vip")
    assert cc.add_tag(session, w.agent_b, only_b.id, "vip") == ["vip"]
    assert len(f.events(session, "customer.tag_added")) == 1
