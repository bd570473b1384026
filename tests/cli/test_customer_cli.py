"""A Telegram customer who shares their phone number is joined to their SMS identity only by
an explicit, audited action (`kartabl customer link|merge`), never silently."""

from __future__ import annotations

import pytest
from pydantic import SecretStr
from sqlalchemy import select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from boot.cli import app
from channels.sms.inbound import to_message as sms_message
from channels.telegram.standin_wire import text_update
from channels.telegram.updates import to_message
from config.sms import SmsConfig
from config.telegram import BotConfig
from kartabl import ingest
from kartabl.messages import InboundMessage
from kartabl.models import Customer, Event, Identity, Message, Person, Role
from router.route import route_message
from tests.factories import routing_args

runner = CliRunner()
BOT = BotConfig(name="shop", token="1:x", mode="polling")
SMS = SmsConfig(api_key=SecretStr("k" * 20), line="10004346")
PHONE = "+989121234567"


@pytest.fixture
def cli(session: Session):
    def invoke(*args: str):
        session.commit()  # end the test's read transaction: SQLite allows one writer
        return runner.invoke(app, list(args))
    return invoke


def deliver(session: Session, msg: InboundMessage | None) -> Message:
    assert msg is not None
    stored = ingest.store(session, msg)
    route_message(session, stored.message_id, **routing_args())
    routed = session.get(Message, stored.message_id)
    assert routed is not None and routed.customer_id is not None
    return routed


def shares_contact(session: Session, update_id: int, phone: str, *, own: bool = True) -> Message:
    contact = {"phone_number": phone, "first_name": "Sara", "user_id": 4242 if own else 99}
    return deliver(session, to_message(
        {"update_id": update_id, **text_update(4242, "", contact=contact)}, BOT))


def texts(session: Session, messageid: str, sender: str) -> Message:
    return deliver(session, sms_message(
        {"messageid": messageid, "from": sender, "to": "10004346", "message": "سلام"}, SMS))


@pytest.fixture
def people(db, session: Session) -> dict[str, Person]:
    people = {
        "agent": Person(username="ali", role=Role.AGENT),
        "coordinator": Person(username="maryam", role=Role.COORDINATOR),
        "admin": Person(username="root", role=Role.ADMIN),
    }
    session.add_all(people.values())
    session.commit()
    return people


def identities(session: Session, customer_id: int) -> set[tuple[str, str]]:
    session.expire_all()
    return set(session.execute(select(Identity.kind, Identity.address)
                               .where(Identity.customer_id == customer_id)).all())


def test_a_shared_contact_is_a_hint_and_the_link_is_explicit(session, people, cli) -> None:
    # Given a Telegram customer who shares their own phone number (in Persian digits)
    msg = shares_contact(session, 1, "+۹۸ ۹۱۲ ۱۲۳ ۴۵۶۷")
    assert msg.meta["contact"] == {"phone": PHONE, "own": True}
    assert msg.text == f"[contact: {PHONE}]"
    tg = msg.customer_id
    assert identities(session, tg) == {("telegram", "4242")}  # not linked silently
    shown = cli("customer", "show", str(tg))
    assert shown.exit_code == 0, shown.output
    assert f"{PHONE}, their own number" in shown.output

    # An agent may not link it; the customer is unchanged and nothing is audited
    refused = cli("customer", "link", str(tg), "--phone", PHONE, "--by", "ali")
    assert refused.exit_code == 1 and "coordinator or admin" in refused.output
    assert identities(session, tg) == {("telegram", "4242")}
    linked = select(Event).where(Event.kind == "customer.identity_linked")
    assert session.scalars(linked).all() == []

    # When the coordinator links it
    done = cli("customer", "link", str(tg), "--phone", "0912 123 4567", "--by", "maryam")
    assert done.exit_code == 0, done.output

    # Then the link is audited with its actor, and the next SMS lands on the same customer
    event = session.scalars(linked).one()
    assert event.actor_id == people["coordinator"].id and event.customer_id == tg
    assert event.data["address"] == PHONE
    assert texts(session, "1001", "09121234567").customer_id == tg


def test_an_sms_customer_is_joined_only_by_a_merge(session, people, cli) -> None:
    # Given a customer who texted first, and later shares the same number on Telegram
    sms = texts(session, "2001", "09121234567").customer_id
    tg = shares_contact(session, 2, PHONE).customer_id
    assert sms != tg  # two customers until a person joins them
    shown = cli("customer", "show", str(tg))
    assert f"customer {sms} has it: merge to join" in shown.output

    # Linking the number is refused: it would move another customer's history
    refused = cli("customer", "link", str(tg), "--phone", PHONE, "--by", "maryam")
    assert refused.exit_code == 1 and "merge the two customers" in refused.output
    # A coordinator without the merge permission may not merge
    refused = cli("customer", "merge", str(sms), str(tg), "--by", "maryam")
    assert refused.exit_code == 1 and "merge permission" in refused.output
    assert identities(session, sms) == {("phone", PHONE)}

    # When an admin merges them
    done = cli("customer", "merge", str(sms), str(tg), "--by", "root")
    assert done.exit_code == 0, done.output

    # Then one customer has both identities, audited, and new SMS land there
    assert identities(session, tg) == {("telegram", "4242"), ("phone", PHONE)}
    merged = session.get(Customer, sms)
    assert merged is not None and merged.merged_into_id == tg
    event = session.scalars(select(Event).where(Event.kind == "customer.merged")).one()
    assert event.actor_id == people["admin"].id
    assert texts(session, "2002", "+98 912 123 4567").customer_id == tg


def test_someone_elses_number_is_marked_so(session, people, cli) -> None:
    msg = shares_contact(session, 3, "09351112233", own=False)
    assert msg.meta["contact"] == {"phone": "+989351112233", "own": False}
    shown = cli("customer", "show", str(msg.customer_id))
    assert "+989351112233, someone's number, not theirs" in shown.output


@pytest.mark.parametrize(("args", "expect", "code"), [
    (("--phone", "12"), "not a phone number", 2),
    (("--phone", PHONE, "--email", "a@example.ir"), "exactly one of", 2),
    (("--phone", PHONE, "--by", "nobody"), "no person named", 2),
])
def test_bad_link_input_is_refused_and_stores_nothing(
        session, people, cli, args, expect, code) -> None:
    tg = shares_contact(session, 4, PHONE).customer_id
    by = () if "--by" in args else ("--by", "maryam")
    r = cli("customer", "link", str(tg), *args, *by)
    assert r.exit_code == code and expect in r.output, r.output
    assert identities(session, tg) == {("telegram", "4242")}


def test_unknown_customer(session, people, cli) -> None:
    r = cli("customer", "link", "999999", "--phone", PHONE, "--by", "maryam")
    assert r.exit_code == 1 and "customer 999999 does not exist" in r.output
