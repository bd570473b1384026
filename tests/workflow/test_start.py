"""Starting a conversation (kartabl.workflow.start): who may, to whom, in which team, and
the approval rule of every reply."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from config.routing import ApprovalPolicy
from kartabl import workflow
from kartabl.errors import IllegalTransition, InputError, NotFound, PermissionDenied
from kartabl.models import (
    Channel,
    Conversation,
    Customer,
    Identity,
    Message,
    Person,
    ReplyState,
    Role,
)
from kartabl.workflow.start import start
from responders.preview import REPLY_CHECK, ReplyTooLong
from tests.factories import conversation, events, person, team
from tests.workflow.conftest import Org

NEW_PHONE = "+989121112233"


def begin(s: Session, actor: Person, **kw: object) -> object:
    kw.setdefault("body", "سلام، سفارش شما آماده است.")
    return start(s, actor, check=REPLY_CHECK, **kw)  # type: ignore[arg-type]


def count(s: Session, model: type) -> int:
    return int(s.scalar(select(func.count()).select_from(model)) or 0)


def test_an_agent_writes_by_sms_to_a_new_number_which_creates_the_customer(
        session: Session, org: Org, enqueued) -> None:
    # Given a phone number nobody has written from
    customers = count(session, Customer)
    # When agent ali starts a conversation to it (typed in Persian digits, normalised by the
    # caller as router.identity does)
    started = start(session, org.ali, new_address=("phone", NEW_PHONE), name="مشتری تازه",
                    body="سلام، سفارش شما آماده است.", check=REPLY_CHECK)
    session.commit()
    # Then a customer with that phone exists, audited as created by ali
    assert count(session, Customer) == customers + 1 and started.customer_created
    conv = started.conversation
    ident = session.get(Identity, conv.to_identity_id)
    assert ident is not None and (ident.kind, ident.address) == ("phone", NEW_PHONE)
    [created] = events(session, "customer.created")
    assert (created.actor_id, created.customer_id) == (org.ali.id, conv.customer_id)
    # and an SMS conversation assigned to ali in his team, started by him, audited
    assert (conv.channel, conv.assignee_id, conv.team_id, conv.started_by_id) == (
        Channel.SMS, org.ali.id, org.support.id, org.ali.id)
    [ev] = events(session, "conversation.started")
    assert (ev.actor_id, ev.conversation_id, ev.data["to"]) == (org.ali.id, conv.id, NEW_PHONE)
    # whose reply awaits approval: nothing is dispatched yet
    assert started.reply.state == ReplyState.PENDING_APPROVAL
    assert enqueued == []
    # and its subject, for the queues, is the start of the text
    assert conv.subject.startswith("سلام")


def test_an_existing_phone_lands_on_its_customer(session: Session, org: Org) -> None:
    # Given a customer who wrote by SMS to ali's team
    old = conversation(session, channel=Channel.SMS, team=org.support, sender=NEW_PHONE)
    session.commit()
    customers = count(session, Customer)
    # When sara types the same number
    started = start(session, org.sara, new_address=("phone", NEW_PHONE), name="ignored",
                    body="سلام دوباره", check=REPLY_CHECK)
    # Then no customer is created: it is that customer's conversation
    assert count(session, Customer) == customers and not started.customer_created
    assert started.conversation.customer_id == old.customer_id
    assert events(session, "customer.created") == []
    # and it was written from the line the customer wrote to
    assert started.conversation.from_address == "+9810004000"


def test_an_sms_is_written_from_the_customers_line_even_with_mailboxes_configured(
        session: Session, org: Org) -> None:
    # Given a customer who wrote by SMS to our line, and mailboxes configured for email (the
    # console always passes the team -> mailbox mapping, console.starting.mailboxes)
    old = conversation(session, channel=Channel.SMS, team=org.support, sender=NEW_PHONE)
    session.commit()
    # When ali starts an SMS conversation to that number
    started = start(session, org.ali, new_address=("phone", NEW_PHONE), body="سلام دوباره",
                    our_address={None: "support@kartabl.example",
                                 org.support.id: "team@kartabl.example"},
                    check=REPLY_CHECK)
    # Then it is written from the line the customer wrote to, never from a mailbox address
    assert started.conversation.customer_id == old.customer_id
    assert started.conversation.from_address == "+9810004000"


def test_a_chosen_identity_and_the_default_team(session: Session, org: Org) -> None:
    ident = session.scalar(select(Identity).where(Identity.customer_id == org.conv.customer_id))
    assert ident is not None
    started = begin(session, org.ali, identity_id=ident.id, subject="پیگیری سفارش")
    conv = started.conversation  # type: ignore[attr-defined]
    assert (conv.channel, conv.team_id, conv.subject) == (Channel.EMAIL, org.support.id,
                                                           "پیگیری سفارش")
    # Email without a subject is refused
    with pytest.raises(InputError) as raised:
        begin(session, org.ali, identity_id=ident.id, subject="  ")
    assert raised.value.code == "start.subject_required"


def test_an_agent_cannot_start_one_in_another_team(session: Session, org: Org) -> None:
    with pytest.raises(PermissionDenied) as raised:
        begin(session, org.ali, new_address=("phone", NEW_PHONE), team_id=org.sales.id)
    assert raised.value.code == "start.other_team"
    session.rollback()
    assert count(session, Conversation) == 1 and events(session, "customer.created") == []
    # A coordinator may start one in any team
    started = begin(session, org.maryam, new_address=("phone", NEW_PHONE), team_id=org.sales.id)
    assert started.conversation.team_id == org.sales.id  # type: ignore[attr-defined]


def test_an_agent_never_reaches_a_customer_outside_their_scope(
        session: Session, org: Org) -> None:
    # Given a customer known only to the sales team
    theirs = conversation(session, channel=Channel.SMS, team=org.sales, sender=NEW_PHONE)
    session.commit()
    ident = session.scalar(select(Identity).where(Identity.customer_id == theirs.customer_id))
    assert ident is not None
    # Their identity id is a 404 to a support agent, as a missing one is
    with pytest.raises(NotFound):
        begin(session, org.ali, identity_id=ident.id)
    with pytest.raises(NotFound):
        begin(session, org.ali, identity_id=999_999)
    # Their number typed is refused (the conversation would show their customer)
    with pytest.raises(PermissionDenied) as raised:
        begin(session, org.ali, new_address=("phone", NEW_PHONE))
    assert raised.value.code == "start.outside_scope"
    session.rollback()
    assert count(session, Conversation) == 2
    # The sales agent may
    assert begin(session, org.bob, identity_id=ident.id).conversation.customer_id == (  # type: ignore[attr-defined]
        theirs.customer_id)


def test_the_approval_rule_is_not_skippable(session: Session, org: Org, enqueued) -> None:
    started = begin(session, org.ali, new_address=("phone", NEW_PHONE))
    reply = started.reply  # type: ignore[attr-defined]
    session.commit()
    # The author cannot approve it, nor can a coordinator approve their own
    with pytest.raises(PermissionDenied):
        workflow.approve(session, org.ali, reply.id, check=REPLY_CHECK)
    session.rollback()
    mine = begin(session, org.maryam, new_address=("email", "new@example.ir"),
                 subject="سلام").reply  # type: ignore[attr-defined]
    assert mine.state == ReplyState.PENDING_APPROVAL
    with pytest.raises(PermissionDenied) as raised:
        workflow.approve(session, org.maryam, mine.id, check=REPLY_CHECK)
    assert raised.value.code == "own_reply"
    session.rollback()
    # Another coordinator approves: then it is dispatched
    workflow.approve(session, org.reza, reply.id, check=REPLY_CHECK)
    session.commit()
    assert enqueued == [("dispatch_reply", reply.id)]
    # Only the approval policy skips review, audited as such
    trusted = ApprovalPolicy(trusted_agents=["sara"])
    skipped = start(session, org.sara, new_address=("phone", "+989121112244"), body="سلام",
                    policy=trusted, check=REPLY_CHECK).reply
    assert skipped.state == ReplyState.APPROVED
    [sub] = [e for e in events(session, "reply.submitted") if e.reply_id == skipped.id]
    assert sub.data["policy"] == "skipped review: trusted agent sara"


def test_a_draft_only_and_a_too_long_sms(session: Session, org: Org) -> None:
    drafted = begin(session, org.ali, new_address=("phone", NEW_PHONE), then_submit=False)
    assert drafted.reply.state == ReplyState.DRAFT  # type: ignore[attr-defined]
    session.rollback()
    with pytest.raises(ReplyTooLong):
        begin(session, org.ali, new_address=("phone", NEW_PHONE), body="سلام " * 200)
    session.rollback()
    assert count(session, Customer) == 1  # the org's one customer: nothing was kept


def test_telegram_only_to_users_who_wrote_to_the_bot(session: Session, org: Org) -> None:
    # A typed Telegram id is refused: a bot cannot write first
    with pytest.raises(InputError) as raised:
        begin(session, org.maryam, new_address=("telegram", "4242"))
    assert raised.value.code == "start.never_wrote"
    # A Telegram identity linked by hand, that never wrote, is refused too
    cust = Customer(display_name="x", tags=[])
    session.add(cust)
    session.flush()
    linked = Identity(customer_id=cust.id, kind="telegram", address="4242")
    session.add(linked)
    session.flush()
    with pytest.raises(IllegalTransition) as refused:
        begin(session, org.maryam, identity_id=linked.id)
    assert refused.value.code == "start.never_wrote"
    session.rollback()
    # One who wrote to a bot is answered by that bot
    wrote = conversation(session, channel=Channel.TELEGRAM, team=org.support)
    ident = session.scalar(select(Identity).where(Identity.customer_id == wrote.customer_id))
    assert ident is not None
    session.execute(Message.__table__.update().where(Message.conversation_id == wrote.id)
                    .values(recipient="shop_bot"))
    started = begin(session, org.ali, identity_id=ident.id)
    assert started.conversation.from_address == "shop_bot"  # type: ignore[attr-defined]


def test_rubika_only_to_users_who_wrote_to_the_bot_and_from_that_bot(session: Session,
                                                                   org: Org) -> None:
    cust = Customer(display_name="سارا", tags=[])
    session.add(cust)
    session.flush()
    linked = Identity(customer_id=cust.id, kind="rubika", address="u0sara")
    session.add(linked)
    session.flush()
    # Never wrote to our bot: a Rubika bot cannot open the chat
    with pytest.raises(IllegalTransition) as refused:
        begin(session, org.maryam, identity_id=linked.id)
    assert refused.value.code == "start.never_wrote"
    with pytest.raises(InputError):
        begin(session, org.maryam, new_address=("rubika", "u0other"))
    session.rollback()
    # Wrote to bot "shop": the conversation is started from that bot
    wrote = conversation(session, channel=Channel.RUBIKA, team=org.support, sender="u0sara")
    ident = session.scalar(select(Identity).where(Identity.customer_id == wrote.customer_id))
    assert ident is not None
    session.execute(Message.__table__.update().where(Message.conversation_id == wrote.id)
                    .values(recipient="shop"))
    started = begin(session, org.ali, identity_id=ident.id)
    assert started.conversation.from_address == "shop"  # type: ignore[attr-defined]


def test_the_author_must_be_an_active_person(session: Session, org: Org) -> None:
    gone = person(session, "gone", Role.AGENT, teams=[team(session)], active=False)
    with pytest.raises(PermissionDenied):
        begin(session, gone, new_address=("phone", NEW_PHONE))
    with pytest.raises(PermissionDenied):
        begin(session, None, new_address=("phone", NEW_PHONE))  # type: ignore[arg-type]
    # An agent in two teams chooses one
    two = person(session, "two", teams=[org.support, org.sales])
    with pytest.raises(InputError) as raised:
        begin(session, two, new_address=("phone", NEW_PHONE))
    assert raised.value.code == "start.choose_team"


def test_every_identity_kind_has_a_channel_and_chats_need_a_message_first(
        session: Session, org: Org) -> None:
    from kartabl.workflow.start import BOT_CHATS, CHANNEL_OF
    from router.identity import KINDS

    assert set(CHANNEL_OF) == set(KINDS)  # a kind without a channel crashed the console
    for kind in ("instagram", "webchat", "api"):
        assert CHANNEL_OF[kind] in BOT_CHATS
        cust = Customer(display_name=kind, tags=[])
        session.add(cust)
        session.flush()
        linked = Identity(customer_id=cust.id, kind=kind, address=f"{kind}:u-1")
        session.add(linked)
        session.flush()
        with pytest.raises(IllegalTransition) as refused:
            begin(session, org.maryam, identity_id=linked.id)
        assert refused.value.code == "start.never_wrote", kind
        session.rollback()
