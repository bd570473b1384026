"""The `kartabl` command: admin, inject and status, with their bad-input answers."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from boot.cli import app
from kartabl.models import Message, Person, Team, TeamMember
from kartabl.passwords import verify_password

runner = CliRunner()


@pytest.fixture
def cli(db):
    def invoke(*args: str):
        return runner.invoke(app, list(args))

    return invoke


def test_team_and_person_add(cli, session):
    assert cli("team", "add", "support", "--title", "پشتیبانی").exit_code == 0
    r = cli("person", "add", "ali", "--role", "agent", "--team", "support",
            "--password", "a-long-password")
    assert r.exit_code == 0, r.output
    ali = session.scalar(select(Person).where(Person.username == "ali"))
    assert ali is not None and verify_password(ali.password_hash, "a-long-password")
    assert "a-long-password" not in (ali.password_hash or "")
    team = session.scalar(select(Team).where(Team.name == "support"))
    assert session.get(TeamMember, (team.id, ali.id)) is not None


def test_person_add_generates_and_prints_a_password(cli, session):
    r = cli("person", "add", "maryam", "--role", "coordinator")
    assert r.exit_code == 0, r.output
    printed = r.output.split("password:")[1].split()[0]
    person = session.scalar(select(Person).where(Person.username == "maryam"))
    assert verify_password(person.password_hash, printed)


@pytest.mark.parametrize(
    ("args", "expect"),
    [
        (("person", "add", "x", "--team", "nope", "--password", "long-enough-1"), "no team named"),
        (("person", "add", "x", "--password", "short"), "at least 8"),
        (("person", "add", "x", "--role", "boss", "--password", "long-enough-1"), "boss"),
    ],
)
def test_person_add_refuses_bad_input_and_stores_nothing(cli, session, args, expect):
    r = cli(*args)
    assert r.exit_code != 0
    assert expect in r.output
    assert session.scalar(select(func.count()).select_from(Person)) == 0


def test_duplicate_team_is_refused(cli):
    assert cli("team", "add", "sales").exit_code == 0
    r = cli("team", "add", "sales")
    assert r.exit_code != 0 and "already exists" in r.output


def test_inject_normalises_sender_and_is_idempotent(cli, session):
    args = ("inject", "--channel", "sms", "--from", "۰۹۱۲ ۱۲۳ ۴۵۶۷", "--text", "سلام", "--id", "m1")
    r1, r2 = cli(*args), cli(*args)
    assert r1.exit_code == 0 and "stored 1 new" in r1.output
    assert r2.exit_code == 0 and "1 already known" in r2.output
    msg = session.scalar(select(Message))
    assert msg.sender == "+989121234567"


def test_inject_refuses_a_bad_phone_number_and_stores_nothing(cli, session):
    r = cli("inject", "--channel", "sms", "--from", "not a number", "--text", "x")
    assert r.exit_code != 0 and "phone" in r.output.lower()
    assert session.scalar(select(func.count()).select_from(Message)) == 0


def test_inject_count_stores_distinct_messages(cli, session):
    r = cli("inject", "--channel", "telegram", "--from", "42", "--text", "hi", "--count", "25")
    assert r.exit_code == 0, r.output
    assert session.scalar(select(func.count()).select_from(Message)) == 25


def test_status_json_counts_unrouted(cli):
    cli("inject", "--channel", "email", "--from", "A@Example.IR", "--text", "x")
    r = cli("status", "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["unrouted"] == 1


def test_worker_refuses_the_embedded_broker(cli):
    # The fleet's worker needs Redis; on the stub broker it says what to run instead.
    r = cli("worker")
    assert r.exit_code != 0 and "kartabl run" in r.output


def test_dramatiq_argv_puts_queues_last():
    from workers.command import dramatiq_argv

    argv = dramatiq_argv(2, 8, ["inbound", "outbound"])
    assert argv[-3:] == ["-Q", "inbound", "outbound"]
    assert argv[argv.index("-p") + 1] == "2" and argv[argv.index("-t") + 1] == "8"
