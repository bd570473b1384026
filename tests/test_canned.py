"""Canned responses (kartabl.canned) on both databases: scope, management by coordinators,
expansion in the customer's language, variables filled safely, the use count."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from kartabl import canned
from kartabl.canned import CannedInput
from kartabl.errors import InputError, NotFound, PermissionDenied
from kartabl.models import CannedResponse, Customer, Person, Role
from tests import factories as f


@dataclass
class Lib:
    coord: object
    agent_a: object
    agent_b: object
    conv_a: int  # team A, Persian customer
    conv_b: int  # team B
    glob: int  # /hello, global
    team_a: int  # /refund, team A's
    team_b: int  # /secret, team B's


@pytest.fixture
def lib(session: Session) -> Lib:
    a, b = f.team(session, "support"), f.team(session, "sales")
    coord = f.person(session, "maryam", Role.COORDINATOR)
    agent_a = f.person(session, "ali", teams=[a])
    agent_b = f.person(session, "bahar", teams=[b])
    conv_a = f.conversation(session, team=a, assignee=agent_a, text="سلام، بسته‌ام نرسید")
    conv_b = f.conversation(session, team=b, assignee=agent_b, text="Hello")
    glob = canned.create(session, coord, CannedInput(
        "Hello", "hello", "سلام {{ customer_name }}، من {{ agent_name }} هستم.",
        "Hello {{customer_name}}, this is {{ agent_name }}."))
    refund = canned.create(session, coord, CannedInput(
        "Refund", "/Refund", "بازپرداخت گفتگوی {{ conversation_number }}",
        "Refund for conversation {{ conversation_number }}", a.id))
    secret = canned.create(session, coord, CannedInput("Secret", "secret", "راز", "secret", b.id))
    session.commit()
    return Lib(coord, agent_a, agent_b, conv_a.id, conv_b.id, glob.id, refund.id, secret.id)


def test_an_agent_sees_the_global_ones_and_their_teams(session: Session, lib: Lib) -> None:
    seen = [r.shortcut for r in canned.list_visible(session, lib.agent_a)]
    assert seen == ["hello", "refund"]  # the shortcut was stored without "/" and lower-case
    assert [r.shortcut for r in canned.list_visible(session, lib.coord)] == [
        "hello", "refund", "secret"]
    assert [r.shortcut for r in canned.list_visible(session, lib.agent_a, prefix="re")] == [
        "refund"]
    assert canned.list_visible(session, lib.agent_a, prefix="%") == []  # no LIKE wildcards
    with pytest.raises(NotFound):
        canned.get_visible(session, lib.agent_a, lib.team_b)


def test_only_coordinators_manage(session: Session, lib: Lib) -> None:
    with pytest.raises(PermissionDenied):
        canned.create(session, lib.agent_a, CannedInput("x", "x", "x", "x"))
    with pytest.raises(PermissionDenied):
        canned.edit(session, lib.agent_a, lib.team_a, CannedInput("x", "x", "x", "x"))
    with pytest.raises(PermissionDenied):
        canned.delete(session, lib.agent_a, lib.team_a)
    row = canned.edit(session, lib.coord, lib.team_a,
                      CannedInput("Refund!", "refund2", "ب", "b", None))
    assert (row.name, row.shortcut, row.team_id) == ("Refund!", "refund2", None)
    canned.delete(session, lib.coord, lib.glob)
    session.commit()
    assert session.get(CannedResponse, lib.glob) is None
    kinds = [e.kind for e in f.events(session, "canned.created")]
    assert kinds == ["canned.created"] * 3
    assert len(f.events(session, "canned.edited")) == len(f.events(session, "canned.deleted")) == 1


@pytest.mark.parametrize(("data", "error"), [
    (CannedInput("", "x", "x", ""), "name"),
    (CannedInput("n", "has space", "x", ""), "shortcut"),
    (CannedInput("n", "سلام", "x", ""), "shortcut"),
    (CannedInput("n", "hello", "x", ""), "taken"),
    (CannedInput("n", "new", "", "  "), "Persian or an English"),
    (CannedInput("n", "new", "{{ config }}", ""), "unknown variables"),
    (CannedInput("n", "new", "", "{{ customer_name.__class__ }}"), "unknown variables"),
    (CannedInput("n", "new", "x" * 5001, ""), "longer"),
])
def test_bad_input_is_refused(session: Session, lib: Lib, data: CannedInput,
                              error: str) -> None:
    with pytest.raises(InputError, match=error):
        canned.create(session, lib.coord, data)


def test_an_unknown_team_is_not_found(session: Session, lib: Lib) -> None:
    with pytest.raises(NotFound):
        canned.create(session, lib.coord, CannedInput("n", "new", "x", "", 999_999))


def test_expansion_follows_the_customer_s_language(session: Session, lib: Lib) -> None:
    fa = canned.expand(session, lib.agent_a, lib.conv_a, shortcut="/hello")
    assert (fa.language, fa.customer_language) == ("fa", "fa")
    name = session.get(Customer, f.conversation_customer(session, lib.conv_a))
    assert fa.text == f"سلام {name.display_name}، من ali هستم."  # type: ignore[union-attr]
    en = canned.expand(session, lib.agent_b, lib.conv_b, shortcut="hello")
    assert en.language == "en" and en.text.startswith("Hello ") and "this is bahar." in en.text
    forced = canned.expand(session, lib.agent_b, lib.conv_b, shortcut="hello", language="fa")
    assert forced.language == "fa"
    number = canned.expand(session, lib.agent_a, lib.conv_a, canned_id=lib.team_a)
    assert number.text == f"بازپرداخت گفتگوی {lib.conv_a}"


def test_an_empty_variant_falls_back_and_says_so(session: Session, lib: Lib) -> None:
    only_fa = canned.create(session, lib.coord, CannedInput("fa only", "faonly", "فقط", ""))
    out = canned.expand(session, lib.agent_b, lib.conv_b, canned_id=only_fa.id)
    assert (out.text, out.language, out.customer_language) == ("فقط", "fa", "en")


def test_expansion_is_scoped_twice(session: Session, lib: Lib) -> None:
    # another team's response, into one's own conversation: as if it did not exist
    with pytest.raises(NotFound):
        canned.expand(session, lib.agent_a, lib.conv_a, shortcut="secret")
    with pytest.raises(NotFound):
        canned.expand(session, lib.agent_a, lib.conv_a, canned_id=lib.team_b)
    # a global response, into another team's conversation: not found either
    with pytest.raises(NotFound):
        canned.expand(session, lib.agent_a, lib.conv_b, shortcut="hello")
    session.commit()
    uses = session.scalars(select(CannedResponse.use_count).order_by(CannedResponse.id)).all()
    assert uses == [0, 0, 0]  # a refused expansion counts nothing


def test_each_expansion_counts_one_use(session: Session, lib: Lib) -> None:
    for _ in range(3):
        canned.expand(session, lib.agent_a, lib.conv_a, shortcut="hello")
    canned.expand(session, lib.coord, lib.conv_b, shortcut="secret")
    session.commit()
    uses = dict(session.execute(select(CannedResponse.shortcut, CannedResponse.use_count)).all())
    assert uses == {"hello": 3, "refund": 0, "secret": 1}


HOSTILE = [
    "{{ agent_name }}",  # a value that looks like a variable stays as it is
    "{{ 7*7 }}{% for x in range(9) %}x{% endfor %}",
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "<script>alert(1)</script>",
    "Sophie\r\nBcc: victim@example.com\n\n\nline",
]


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_names_are_inserted_as_text(session: Session, lib: Lib, name: str) -> None:
    customer = session.get(Customer, f.conversation_customer(session, lib.conv_a))
    assert customer is not None
    customer.display_name = name
    session.flush()
    out = canned.expand(session, lib.agent_a, lib.conv_a, shortcut="hello")
    one_line = " ".join(name.split())
    assert out.text == f"سلام {one_line}، من ali هستم."
    assert "\n" not in out.text and "49" not in out.text


def test_render_fills_known_variables_once() -> None:
    values = {"customer_name": "{{ agent_name }}", "agent_name": "Ali",
              "conversation_number": "7"}
    text = "{{customer_name}} / {{ agent_name }} / {{ conversation_number }} / {{ other }}"
    assert canned.render(text, values) == "{{ agent_name }} / Ali / 7 / {{ other }}"


def test_an_underscore_in_a_prefix_is_no_wildcard(session: Session, lib: Lib) -> None:
    canned.create(session, lib.coord, CannedInput("a", "re_x", "x", ""))
    assert [r.shortcut for r in canned.list_visible(session, lib.coord, prefix="re_")] == [
        "re_x"]  # not "refund": "_" matched any one character before


def test_simultaneous_expansions_all_count(db: sessionmaker[Session], lib: Lib) -> None:
    """One UPDATE per use, not read-add-write: eight agents expanding at once count 8."""
    import threading

    with db() as probe:
        if probe.get_bind().dialect.name == "sqlite":
            # every SQLite transaction is BEGIN IMMEDIATE (kartabl.db): they run one after
            # another, and the barrier below would wait for a lock held by a waiting thread
            pytest.skip("SQLite serialises writers; the race exists on PostgreSQL")

    barrier = threading.Barrier(8)
    errors: list[BaseException] = []

    def use() -> None:
        try:
            with db() as s:
                agent = s.get(Person, lib.agent_a.id)  # type: ignore[attr-defined]
                assert agent is not None
                s.get(CannedResponse, lib.glob)  # each read the count before anyone wrote
                barrier.wait(timeout=10)
                canned.expand(s, agent, lib.conv_a, canned_id=lib.glob)
                s.commit()
        except BaseException as exc:  # reported below, not lost in the thread
            errors.append(exc)

    threads = [threading.Thread(target=use) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == []
    with db() as s:
        assert s.scalar(select(CannedResponse.use_count).where(
            CannedResponse.id == lib.glob)) == 8
