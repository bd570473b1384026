import pytest
from sqlalchemy import func, select

from console.customers import customer_detail
from kartabl.errors import IllegalTransition, PermissionDenied
from kartabl.models import (
    Channel,
    Conversation,
    Customer,
    Event,
    Identity,
    Message,
    Role,
)
from router.identity import IdentityTaken, link_identity, merge_customers
from router.identity_many import match_or_create_many


def match_or_create(session, kind, address, display_name=""):
    """One pair through the router's match-or-create (the path routing and the demo use)."""
    [(customer, created)] = match_or_create_many(session, {(kind, address): display_name}).values()
    return customer, created


def test_match_or_create_creates_once_then_matches(session):
    a, created_a = match_or_create(session, "email", "ali@example.ir", "Ali")
    b, created_b = match_or_create(session, "email", "ali@example.ir", "Someone else")
    session.commit()
    assert created_a and not created_b
    assert a.id == b.id and b.display_name == "Ali"
    assert session.scalar(select(func.count()).select_from(Identity)) == 1


def test_same_display_name_new_address_is_a_new_customer(session, inbound, route):
    # Given a customer "Ali Rezaei" known by one address
    first = route(inbound(sender="ali@example.ir", sender_name="Ali Rezaei"))
    # When a message with the same display name comes from a new address
    second = route(inbound(sender="ali.r@other.ir", sender_name="Ali Rezaei"))
    # Then nothing is merged silently: it is a second customer
    assert second.customer_created and second.customer_id != first.customer_id
    assert session.scalar(select(func.count()).select_from(Customer)) == 2


def test_cross_channel_after_explicit_link(session, inbound, route, make_person):
    admin = make_person(role=Role.ADMIN)
    # Given a customer who wrote by SMS, and a coordinator linking their email
    sms = route(inbound(channel="sms", sender="+989121234567", text="سلام"))
    link_identity(session, admin, sms.customer_id, "email", "Mina@Example.IR")
    session.commit()
    # When the same person writes by email
    mail = route(inbound(sender="mina@example.ir", subject="order"))
    # Then it lands on the same customer, whose history spans both channels
    assert mail.customer_id == sms.customer_id and not mail.customer_created
    history = customer_detail(session, admin, sms.customer_id).conversations
    assert {c.channel for c in history} == {Channel.SMS, Channel.EMAIL}
    assert history[0].id == mail.conversation_id  # newest first
    linked = session.scalars(select(Event).where(Event.kind == "customer.identity_linked")).one()
    assert linked.actor_id == admin.id and linked.data["address"] == "mina@example.ir"


def test_link_refuses_an_identity_of_another_customer(session, make_person):
    coordinator = make_person(role=Role.COORDINATOR)
    victim, _ = match_or_create(session, "email", "victim@example.ir")
    attacker, _ = match_or_create(session, "phone", "+989121111111")
    session.commit()
    # Adding the victim's address to another customer would move their mail: refused
    with pytest.raises(IdentityTaken, match="merge"):
        link_identity(session, coordinator, attacker.id, "email", "VICTIM@example.ir")
    # Linking what the customer already has is a harmless no-op
    link_identity(session, coordinator, victim.id, "email", "victim@example.ir")
    assert session.scalar(select(func.count()).select_from(Identity)) == 2


def test_link_needs_a_role_or_permission(session, make_person):
    agent = make_person(role=Role.AGENT)
    customer, _ = match_or_create(session, "email", "c@example.ir")
    with pytest.raises(PermissionDenied):
        link_identity(session, agent, customer.id, "phone", "09121234567")


def test_merge_needs_permission(session, make_person):
    agent = make_person(role=Role.AGENT)
    coordinator = make_person(role=Role.COORDINATOR)
    a, _ = match_or_create(session, "email", "a@example.ir")
    b, _ = match_or_create(session, "email", "b@example.ir")
    session.commit()
    for actor in (agent, coordinator):
        with pytest.raises(PermissionDenied, match="merge"):
            merge_customers(session, actor, a.id, b.id)
    assert session.get(Customer, a.id).merged_into_id is None


def test_merge_moves_everything_and_is_audited(session, inbound, route, make_person):
    merger = make_person(role=Role.AGENT, can_merge=True)
    # Given two customers that are really one person, each with a conversation
    by_sms = route(inbound(channel="sms", sender="09121234567"))
    by_mail = route(inbound(sender="x@example.ir"))
    session.get(Customer, by_sms.customer_id).tags = ["vip"]
    session.commit()
    # When a person with the merge permission merges the SMS customer into the email one
    merge_customers(session, merger, by_sms.customer_id, by_mail.customer_id)
    session.commit()
    # Then identities, conversations and messages moved, and the source points to the target
    source = session.get(Customer, by_sms.customer_id)
    target = session.get(Customer, by_mail.customer_id)
    assert source.merged_into_id == target.id and target.tags == ["vip"]
    assert set(session.scalars(select(Identity.customer_id))) == {target.id}
    assert set(session.scalars(select(Conversation.customer_id))) == {target.id}
    assert set(session.scalars(select(Message.customer_id))) == {target.id}
    event = session.scalars(select(Event).where(Event.kind == "customer.merged")).one()
    assert event.actor_id == merger.id
    assert event.data["conversations"] == [by_sms.conversation_id]
    assert event.data["identities"][0]["address"] == "+989121234567"
    assert event.data["messages"] == 1
    # And the history of either id is the merged history
    viewer = make_person(role=Role.ADMIN)  # sees every conversation
    assert {c.id for c in customer_detail(session, viewer, source.id).conversations} == {
        by_sms.conversation_id, by_mail.conversation_id}
    # And the next SMS lands on the surviving customer
    again = route(inbound(channel="sms", sender="+989121234567"))
    assert again.customer_id == target.id and again.conversation_id == by_sms.conversation_id
    # And merging again, or into itself, is refused
    with pytest.raises(IllegalTransition):
        merge_customers(session, merger, source.id, target.id)
    with pytest.raises(IllegalTransition):
        merge_customers(session, merger, target.id, target.id)


def test_match_follows_merged_into(session, make_person):
    admin = make_person(role=Role.ADMIN)
    a, _ = match_or_create(session, "email", "a@example.ir")
    b, _ = match_or_create(session, "email", "b@example.ir")
    session.commit()
    merge_customers(session, admin, a.id, b.id)
    # An identity left pointing at the merged-away customer (e.g. restored from a backup)
    session.add(Identity(customer_id=a.id, kind="telegram", address="42"))
    session.commit()
    found, created = match_or_create(session, "telegram", "42")
    assert found.id == b.id and not created
