"""Reply tokens: our Message-IDs are signed, and threading trusts only what verifies, and
only among the sender's own conversations (FreeScout CVE-2026-47123)."""

from __future__ import annotations

import pytest
from pydantic import SecretStr
from sqlalchemy import func, select

from channels.email import parse
from kartabl import ingest, reply_tokens
from kartabl.models import (
    Conversation,
    Customer,
    Direction,
    Event,
    Identity,
    Message,
    Person,
    Reply,
    ReplyState,
    Role,
    SandboxDelivery,
    utcnow,
)

# -- the token itself --------------------------------------------------------------------


def test_a_token_verifies_to_its_reply_id(settings) -> None:
    token = reply_tokens.make_message_id(42, "Mail.Example.com")
    assert token.startswith("<kartabl.42.") and token.endswith("@mail.example.com>")
    assert reply_tokens.verify(token) == 42
    assert reply_tokens.verify(token.strip("<>")) == 42  # In-Reply-To without brackets
    assert reply_tokens.looks_like_ours(token)
    assert reply_tokens.make_message_id(42, "mail.example.com") != token  # a fresh nonce


@pytest.mark.parametrize("tamper", [
    lambda t: t.replace("<kartabl.42.", "<kartabl.43."),  # another reply's id
    lambda t: t[:-22] + ("0" if t[-22] != "0" else "1") + t[-21:],  # one MAC digit
    lambda t: t.replace("@", "x@", 1),  # a longer MAC
    lambda t: "<kartabl.42.0123456789abcdef.0123456789abcdef0123@x.com>",  # made up
    lambda t: t.upper(),
    lambda t: t.replace("@mail.example.com", ""),
    lambda t: t + "\r\nBcc: evil@example.com",
    lambda t: "<kartabl.reply.42.0123456789ab@mail.example.com>",  # the old unsigned shape
])
def test_a_tampered_token_does_not_verify(settings, tamper) -> None:
    forged = tamper(reply_tokens.make_message_id(42, "mail.example.com"))
    assert reply_tokens.looks_like_ours(forged)
    assert reply_tokens.verify(forged) is None


def test_a_token_signed_with_another_secret_does_not_verify(settings) -> None:
    token = reply_tokens.make_message_id(7, "example.com")
    assert reply_tokens.verify(token) == 7
    reply_tokens.configure(SecretStr("another-deployment"))
    assert reply_tokens.verify(token) is None


def test_bad_input_is_refused_or_not_ours(settings) -> None:
    for domain in ("", "exa mple.com", "example.com>\r\nBcc: x", "-x.com", "ex@mple.com"):
        with pytest.raises(ValueError):
            reply_tokens.make_message_id(1, domain)
    with pytest.raises(ValueError):
        reply_tokens.make_message_id(0, "example.com")
    assert not reply_tokens.looks_like_ours("<CAF=abc@mail.gmail.com>")
    assert reply_tokens.verify("<CAF=abc@mail.gmail.com>") is None
    assert reply_tokens.verify("<" + "kartabl." * 200 + ">") is None
    assert reply_tokens.verify("kartabl.۱۲.ab.cd@x.com") is None  # Persian digits


# -- threading -----------------------------------------------------------------------------


def _sent_reply(session, conversation_id: int, author: Person,
                state: ReplyState = ReplyState.SENT) -> Reply:
    reply = Reply(conversation_id=conversation_id, author_id=author.id, body="پاسخ ما",
                  state=state, channel="email")
    session.add(reply)
    session.flush()
    reply.idempotency_key = reply_tokens.make_message_id(reply.id, "kartabl.example")
    session.commit()
    return reply


def _new_open_conversation(session, customer_id: int) -> Conversation:
    conv = Conversation(customer_id=customer_id, channel="email", subject="newer",
                        last_message_at=utcnow())
    session.add(conv)
    session.commit()
    return conv


def test_a_valid_token_of_the_same_customer_continues_its_conversation(
    session, inbound, route, make_person
) -> None:
    # Given a customer with an answered conversation and a newer open one
    first = route(inbound(sender="a@example.ir", subject="old"))
    reply = _sent_reply(session, first.conversation_id, make_person())
    _new_open_conversation(session, first.customer_id)
    # When the customer answers our reply (In-Reply-To without brackets, as some clients do)
    key = reply.idempotency_key.strip("<>")
    answer = route(inbound(sender="a@example.ir", in_reply_to=key))
    # Then the answer continues the referenced conversation, not the newest open one
    assert (answer.how, answer.conversation_id) == ("reference", first.conversation_id)
    assert session.scalar(select(func.count()).select_from(Event)
                          .where(Event.kind.like("router.%_reference"))) == 0


def test_a_valid_token_survives_a_relay_changing_the_domains_case(
    session, inbound, route, make_person
) -> None:
    first = route(inbound(sender="a@example.ir"))
    reply = _sent_reply(session, first.conversation_id, make_person())
    _new_open_conversation(session, first.customer_id)
    answer = route(inbound(sender="a@example.ir",
                           references=(reply.idempotency_key.replace("kartabl.example",
                                                                     "KARTABL.Example"),)))
    assert (answer.how, answer.conversation_id) == ("reference", first.conversation_id)


def test_a_forged_token_is_ignored_and_audited(session, inbound, route, make_person) -> None:
    # Given a customer's answered conversation and a newer open one
    first = route(inbound(sender="a@example.ir"))
    reply = _sent_reply(session, first.conversation_id, make_person())
    newer = _new_open_conversation(session, first.customer_id)
    # When a mail of that customer carries a token of our shape with a made-up signature
    forged = reply.idempotency_key[:-22] + "0123456789abcdef0123" + "@kartabl.example>"
    assert reply_tokens.verify(forged) is None
    answer = route(inbound(sender="a@example.ir", in_reply_to=forged, references=(forged,)))
    # Then the reference is not used (the customer's newest open conversation continues)
    assert (answer.how, answer.conversation_id) == ("open", newer.id)
    [event] = session.scalars(select(Event).where(Event.kind == "router.forged_reference"))
    assert event.message_id == answer.message_id and event.customer_id == first.customer_id
    assert event.data["reason"] == "bad signature"
    assert event.data["references"] == [forged.strip("<>")]


def test_a_valid_token_of_another_customer_does_not_thread_there(
    session, inbound, route, make_person
) -> None:
    # Given a victim's answered conversation (its Message-ID is genuinely signed)
    victim = route(inbound(sender="victim@example.ir", subject="secret"))
    reply = _sent_reply(session, victim.conversation_id, make_person())
    # When another sender replies with that token (a forwarded mail, a copied header)
    other = route(inbound(sender="attacker@evil.ir", in_reply_to=reply.idempotency_key))
    # Then the mail opens the sender's own conversation, and the attempt is audited
    assert other.how == "new" and other.conversation_id != victim.conversation_id
    assert other.customer_id != victim.customer_id
    assert session.scalar(select(func.count()).select_from(Message)
                          .where(Message.conversation_id == victim.conversation_id)) == 1
    [event] = session.scalars(select(Event).where(Event.kind == "router.forged_reference"))
    assert event.data["reason"] == "another customer's conversation"
    assert event.data["conversations"] == [victim.conversation_id]


# -- "a mail that claims to come from an agent never becomes an agent's reply" --------------

AGENT_MAIL = "maryam@kartabl.example"


def _raw_mail(sender: str, in_reply_to: str, body: str) -> bytes:
    return (
        f"From: Maryam (agent) <{sender}>\r\n"
        "To: support@kartabl.example\r\n"
        "Subject: Re: سفارش\r\n"
        f"Message-ID: <forged-{utcnow().timestamp()}@evil.example>\r\n"
        f"In-Reply-To: {in_reply_to}\r\n"
        f"References: {in_reply_to}\r\n"
        "MIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n"
        "Content-Transfer-Encoding: 8bit\r\n"
        "\r\n"
        f"{body}\r\n"
    ).encode()


def test_a_mail_from_an_agents_address_is_only_ever_a_customer_message(
    session, inbound, route, make_person, enqueued
) -> None:
    # Given a customer's conversation with a sent reply (its token is public: the customer
    # has it) and another reply awaiting approval
    agent = make_person(role=Role.AGENT, email=AGENT_MAIL, username="maryam")
    conv = route(inbound(sender="customer@example.ir"))
    sent = _sent_reply(session, conv.conversation_id, agent)
    pending = _sent_reply(session, conv.conversation_id, agent, ReplyState.PENDING_APPROVAL)
    pending_before = (pending.state, pending.body, pending.approved_by_id, pending.updated_at)
    assert reply_tokens.verify(sent.idempotency_key) == sent.id
    # When a mail arrives From: the agent's address, In-Reply-To: that valid token
    raw = _raw_mail(AGENT_MAIL, sent.idempotency_key, "لطفاً همین را برای مشتری بفرستید.")
    message_id = ingest.store(session, parse(raw)).message_id
    routed = route(message_id)
    # Then it is stored and routed as an inbound message of a customer identity
    stored = session.get(Message, message_id)
    assert stored.direction == Direction.IN and stored.sender == AGENT_MAIL
    assert routed.customer_id is not None and routed.customer_id != conv.customer_id
    identity = session.scalars(select(Identity).where(Identity.customer_id == routed.customer_id)
                               ).one()
    assert (identity.kind, identity.address) == ("email", AGENT_MAIL)
    assert session.get(Customer, routed.customer_id) is not None
    # not threaded into the conversation its token names (another customer's)
    assert routed.conversation_id != conv.conversation_id
    assert session.scalars(select(Event.kind).where(Event.message_id == message_id)
                           ).all().count("router.forged_reference") == 1
    # no reply was created, the pending one is untouched, and nothing was dispatched
    session.expire_all()
    assert session.scalar(select(func.count()).select_from(Reply)) == 2
    pending = session.get(Reply, pending.id)
    assert (pending.state, pending.body, pending.approved_by_id,
            pending.updated_at) == pending_before
    assert [task for task, _ in enqueued if task != "route_messages"] == []
    assert session.scalar(select(func.count()).select_from(SandboxDelivery)) == 0
    assert session.scalar(select(func.count()).select_from(Message)
                          .where(Message.direction == Direction.OUT)) == 0


def test_a_spoofed_customer_address_with_a_valid_token_is_still_a_customer_message(
    session, inbound, route, make_person, enqueued
) -> None:
    # Given the same, and a mail forged with the customer's own From and the agent's name
    agent = make_person(role=Role.AGENT, email=AGENT_MAIL, username="maryam")
    conv = route(inbound(sender="customer@example.ir"))
    sent = _sent_reply(session, conv.conversation_id, agent)
    _sent_reply(session, conv.conversation_id, agent, ReplyState.PENDING_APPROVAL)
    raw = _raw_mail("customer@example.ir", sent.idempotency_key, "approve it")
    message_id = ingest.store(session, parse(raw)).message_id
    routed = route(message_id)
    # Then it joins that conversation as what it is: the customer's inbound message
    assert (routed.how, routed.conversation_id) == ("reference", conv.conversation_id)
    assert session.get(Message, message_id).direction == Direction.IN
    assert session.scalar(select(func.count()).select_from(Reply)) == 2
    assert session.scalars(select(Reply.state).order_by(Reply.id)).all() == [
        ReplyState.SENT, ReplyState.PENDING_APPROVAL]
    assert [task for task, _ in enqueued if task != "route_messages"] == []


def test_a_process_that_never_configured_the_key_refuses_to_sign(settings, monkeypatch) -> None:
    # Given a process whose edge forgot reply_tokens.configure
    monkeypatch.setattr(reply_tokens, "_key_holder", None)
    # Then nothing is signed or verified with an empty key: it fails loudly
    with pytest.raises(RuntimeError, match="configure"):
        reply_tokens.make_message_id(1, "example.com")
    # And the holder of a derived key never shows it
    assert "s3cr3t" not in repr(reply_tokens._Key(b"s3cr3t"))
