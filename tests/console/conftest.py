"""Fixtures and helpers of the sign-in and credential tests (test_auth*.py): the real app on
https:// (the session cookie is Secure), people with a known password, a signed-in browser."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from kartabl.models import Role
from kartabl.passwords import hash_password
from tests import factories as f
from tests.console.app_cache import shared_app

PASSWORD = "correct horse battery"


@pytest.fixture
def app_client(db: sessionmaker[Session]) -> Iterator[TestClient]:
    with TestClient(shared_app(), base_url="https://testserver") as c:
        yield c


def add_person(db: sessionmaker[Session], username: str, role: Role = Role.AGENT, *,
            real_cost: bool = False) -> int:
    """A person with PASSWORD; its hash is cheap to verify unless ``real_cost`` (the
    production argon2 parameters, for the tests that measure what a check costs)."""
    with db() as s:
        p = f.person(s, username, role)
        p.password_hash = hash_password(PASSWORD) if real_cost else f.quick_hash(PASSWORD)
        p.locale = "en"
        s.commit()
        return p.id


def sign_in(c: TestClient, username: str, password: str = PASSWORD, **form: str) -> str:
    r = c.post("/login", data={"username": username, "password": password, **form},
               follow_redirects=False)
    assert r.status_code == 303, r.text
    page = c.get("/account")
    match = re.search(r'name="csrf_token" value="([0-9a-f]{64})"', page.text)
    assert match, page.text
    return match.group(1)

