"""The console's pages through the real app (TestClient on https://: the session cookie
is Secure), over both databases.

``world`` seeds two teams and four people (a coordinator, an agent of each team, a second
coordinator) with conversations in support, in sales and in triage; ``sign_in`` logs a
person in through ``POST /login`` and returns the CSRF token the pages embed."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from kartabl.models import Channel, Role
from tests import factories as f
from tests.console.app_cache import shared_app
from tests.factories import enqueued  # noqa: F401  (a fixture, used by the flow tests)

PASSWORD = "correct horse battery"
_CSRF = re.compile(r'name="csrf_token" value="([0-9a-f]{64})"')


@pytest.fixture(scope="session")
def password_hash() -> str:
    return f.quick_hash(PASSWORD)  # cheap to verify at each sign-in (tests/factories.py)


@pytest.fixture
def client(db: sessionmaker[Session]) -> Iterator[TestClient]:
    with TestClient(shared_app(), base_url="https://testserver") as c:
        yield c


@pytest.fixture
def other_client(db: sessionmaker[Session]) -> Iterator[TestClient]:
    """A second browser, for a second person at the same time: an app of its own, as its
    lifespan's live hub belongs to its client's event loop."""
    from console.app import create_app

    with TestClient(create_app(), base_url="https://testserver") as c:
        yield c


@dataclass(frozen=True)
class World:
    support: int  # team ids
    sales: int
    coord: int  # person ids: a coordinator (English), an agent of support (Persian) ...
    coord2: int  # a second coordinator (Persian), who approves the first one's replies
    ali: int  # agent, support
    bob: int  # agent, sales
    conv_support: int  # held by support, assigned to ali, over SMS
    conv_sales: int  # held by sales, assigned to bob
    conv_triage: int  # unassigned, no team, over Telegram
    customer_support: int
    customer_sales: int


@pytest.fixture
def world(db: sessionmaker[Session], password_hash: str) -> World:
    with db() as s:
        support, sales = f.team(s, "support"), f.team(s, "sales")
        support.title = "پشتیبانی"
        coord = f.person(s, "maryam", Role.COORDINATOR)
        coord2 = f.person(s, "reza", Role.COORDINATOR)
        ali = f.person(s, "ali", teams=[support])
        bob = f.person(s, "bob", teams=[sales])
        for p, locale in ((coord, "en"), (coord2, "fa"), (ali, "fa"), (bob, "en")):
            p.password_hash = password_hash
            p.locale = locale
        coord.display_name = "Maryam"
        conv_support = f.conversation(s, channel=Channel.SMS, team=support, assignee=ali,
                                      subject="support-subject", text="support-text")
        conv_sales = f.conversation(s, team=sales, assignee=bob, subject="sales-secret-subject",
                                    text="sales-secret-text")
        conv_triage = f.conversation(s, channel=Channel.TELEGRAM, subject="triage-subject",
                                     text="triage-text")
        s.commit()
        return World(support.id, sales.id, coord.id, coord2.id, ali.id, bob.id,
                     conv_support.id, conv_sales.id, conv_triage.id,
                     conv_support.customer_id, conv_sales.customer_id)


def sign_in(client: TestClient, username: str) -> str:
    r = client.post("/login", data={"username": username, "password": PASSWORD},
                    follow_redirects=False)
    assert r.status_code == 303, r.text
    page = client.get("/queues")
    assert page.status_code == 200, page.text
    match = _CSRF.search(page.text)
    assert match, page.text
    return match.group(1)


def post_refused(client: TestClient, url: str, data: dict[str, str], page: str) -> str:
    """POST a form the console refuses: post/redirect/get. The answer is a 303 to ``page``
    with ``?failed=<id>`` (never the error at the form's URL); the GET there shows the
    refusal (``id="action-error"``) and is what a reload repeats. Returns that page's text."""
    r = client.post(url, data=data, follow_redirects=False)
    assert r.status_code == 303, r.text[-1500:]
    location = r.headers["location"]
    assert location.startswith(page + ("&" if "?" in page else "?") + "failed="), location
    shown = client.get(location)
    assert 'id="action-error"' in shown.text, shown.text[-1500:]
    return shown.text
