"""Right-to-left overrides cannot reverse what staff read (issue 12, Low; threats.md: "U+202E
in a display name or subject reverses what staff read").

A customer's strings carry U+202E (right-to-left override) and kin. On the queue, the
conversation and the customer page: no direction control reaches the page, and every time
one of those strings is shown as text, it sits in an element that isolates it (``<bdi>``,
or ``dir``) and holds nothing but it, so it can neither be reordered by nor reorder the text
around it. The HTML is parsed into a tree (the standard library's parser), not searched.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from config.settings import get_settings
from console import auth
from kartabl.models import Channel, Customer, Identity, Message, Role
from tests import factories as f

CONTROLS = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
# field -> what the customer sent; each starts with a marker the page search finds
SENT = {
    "name": "bidi-name \u202egnp.exe",
    "subject": "bidi-subject \u202bsub\u202c \u2067fdp.exe\u2069",
    "text": "bidi-text \u202d text \u202c\u202e\u2066 tail",
    "tag": "bidi-tag\u202e vip",
    "display": "bidi-display \u202e@nimda",
    "sender": "bidi-sender \u202eoof",
    "file": "bidi-file \u202efdp.exe",
}
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source",
        "track", "wbr"}


def shown(field: str) -> str:
    """What a reader should see: the same text without the controls."""
    return "".join(ch for ch in SENT[field] if ch not in CONTROLS)


@dataclass
class Node:
    tag: str
    attrs: dict[str, str | None]
    parent: Node | None = None
    parts: list[Node | str] = field(default_factory=list)

    def text(self) -> str:
        return "".join(p if isinstance(p, str) else p.text() for p in self.parts)

    def ancestors(self) -> Iterator[Node]:
        node: Node | None = self
        while node is not None:
            yield node
            node = node.parent


class Tree(HTMLParser):
    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.root = self.at = Node("#root", {})
        self.texts: list[tuple[str, Node]] = []
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        node = Node(tag, dict(attrs), self.at)
        self.at.parts.append(node)
        if tag not in VOID:
            self.at = node

    def handle_endtag(self, tag: str) -> None:
        for node in self.at.ancestors():
            if node.tag == tag and node.parent is not None:
                self.at = node.parent
                return

    def handle_data(self, data: str) -> None:
        self.at.parts.append(data)
        self.texts.append((data, self.at))


def _isolating(node: Node) -> bool:
    return node.tag == "bdi" or (node.tag != "html" and node.attrs.get("dir") is not None)


def unisolated(html: str, field_name: str) -> tuple[int, list[str]]:
    """(times the field's text is shown, problems): each showing must be in an isolating
    element that holds only (part of) the field's text."""
    marker, want = f"bidi-{field_name}", shown(field_name)
    count, problems = 0, []
    for data, parent in Tree(html).texts:
        if marker not in data:
            continue
        if any(n.tag in ("title", "textarea", "script") for n in parent.ancestors()):
            continue  # text-only contexts: no element can isolate there (controls are gone)
        count += 1
        iso = next((n for n in parent.ancestors() if _isolating(n)), None)
        if iso is None:
            problems.append(f"{field_name}: not isolated in <{parent.tag}>")
            continue
        inside = " ".join(iso.text().split()).removesuffix("…")
        if inside not in " ".join(want.split()):
            problems.append(f"{field_name}: <{iso.tag}> also holds other text: {inside!r}")
    return count, problems


@pytest.fixture
def seeded(db: sessionmaker[Session]) -> dict[str, Any]:
    with db() as s:
        team = f.team(s, "support")
        coord = f.person(s, "maryam", Role.COORDINATOR)
        coord.locale = "en"
        conv = f.conversation(s, channel=Channel.EMAIL, team=team, subject=SENT["subject"],
                              text=SENT["text"])
        customer = s.get(Customer, conv.customer_id)
        assert customer is not None
        customer.display_name, customer.tags = SENT["name"], [SENT["tag"]]
        ident = s.scalars(select(Identity).where(Identity.customer_id == customer.id)).one()
        ident.display = SENT["display"]
        msg = s.scalars(select(Message).where(Message.conversation_id == conv.id)).one()
        msg.sender_name = SENT["sender"]
        msg.attachments = [{"filename": SENT["file"], "content_type": "application/pdf",
                            "size": 10, "storage_key": None}]
        cookie = auth.start_session(s, coord, settings=get_settings())
        s.commit()
        return {"conv": conv.id, "customer": customer.id, "cookie": cookie}


@pytest.fixture
def coordinator(seeded: dict[str, Any]) -> Iterator[TestClient]:
    from console.app import create_app

    with TestClient(create_app(), base_url="https://testserver") as c:
        c.cookies.set(auth.SESSION_COOKIE, seeded["cookie"])
        yield c


PAGES = {
    "queue": ("/queues?queue=open", ("name", "subject", "text")),
    "conversation": ("/conversations/{conv}", tuple(SENT)),
    "customer": ("/customers/{customer}", ("name", "subject", "tag", "display")),
}


@pytest.mark.parametrize("page", list(PAGES))
def test_customer_strings_are_shown_isolated_without_direction_controls(
    coordinator: TestClient, seeded: dict, page: str
) -> None:
    url, fields = PAGES[page]
    r = coordinator.get(url.format(**seeded))
    assert r.status_code == 200, r.text[:300]
    # No direction control reaches the page (text, attributes, the title)
    assert [c for c in CONTROLS if c in r.text] == []
    # And each field the page shows is shown, each time isolated and alone
    problems = []
    for name in fields:
        count, wrong = unisolated(r.text, name)
        assert count >= 1, f"{page} page does not show the {name}"
        problems += wrong
    assert problems == []


def test_the_checker_sees_a_string_that_is_not_isolated() -> None:
    """The check above can fail: plain text in a cell, or a <bdi> shared with other words."""
    name = shown("name")
    assert unisolated(f"<td><a>{name}</a></td>", "name") == (1, ["name: not isolated in <a>"])
    assert unisolated(f"<td dir=auto>Customer: {name}</td>", "name")[1] != []
    assert unisolated(f"<td><a><bdi>{name}</bdi></a></td>", "name") == (1, [])
