"""Search through the app, page and API, on both databases: scope (an agent never sees
another team's hit, nor a hint of it), filters, paging, the marked snippet, bad input."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta

from sqlalchemy.orm import Session, sessionmaker

from console.dates import format_date, local_date
from kartabl import search as index
from kartabl import workflow
from kartabl.models import Channel, Person, SearchDoc, utcnow
from tests import factories as f
from tests.console.api.conftest import SECRETS, Api, World


def _index(db: sessionmaker[Session], world: World) -> None:
    with db() as s:
        # a note in each team's conversation, and team A's words in team B's conversation
        coord = s.get(Person, world.coord)
        workflow.note(s, coord, world.conv_a, "shared-word in support's note")
        workflow.note(s, coord, world.conv_b, "shared-word <b>in</b> sales-secret-note")
        s.commit()
        index.reindex(s)


def _ids(body: dict) -> set[int]:  # type: ignore[type-arg]
    return {h["conversation_id"] for h in body["hits"]}


def test_an_agent_finds_only_their_teams_hits(
        db: sessionmaker[Session], world: World, api: Callable[..., Api],
        browser: Callable[..., Api]) -> None:
    _index(db, world)
    # the coordinator finds both teams' notes
    coord = api(world.coord, "read").get("/api/v1/search?q=shared-word")
    assert coord.status_code == 200, coord.text
    assert _ids(coord.json()) == {world.conv_a, world.conv_b}
    # the agent of team A: only team A's, by the API and by the page
    agent = api(world.agent_a, "read")
    # (a query is echoed: never a whole secret in it)
    for q in ("shared-word", "sales secret", "secret text", "Secret Customer"):
        r = agent.get(f"/api/v1/search?q={q}")
        assert r.status_code == 200
        assert world.conv_b not in _ids(r.json())
        assert not any(secret in r.text for secret in SECRETS)
        # even when asking for team B by filter: nothing, not a refusal that tells
        r = agent.get(f"/api/v1/search?q={q}&team_id={world.team_b}")
        assert r.status_code == 200 and r.json()["hits"] == []
    page = browser("ali").get("/search?q=shared-word")
    assert page.status_code == 200
    ids = set(map(int, re.findall(r'data-conversation-id="(\d+)"', page.text)))
    assert ids == {world.conv_a}
    assert "sales-secret" not in page.text
    # the agent of team B sees their own
    assert _ids(api(world.agent_b, "read").get("/api/v1/search?q=shared-word").json()) == {
        world.conv_b}


def test_the_snippet_is_escaped_and_the_match_marked(
        db: sessionmaker[Session], world: World, api: Callable[..., Api],
        browser: Callable[..., Api]) -> None:
    _index(db, world)
    r = api(world.coord, "read").get("/api/v1/search?q=sales-secret-note")
    (hit,) = r.json()["hits"]
    assert hit["source"] == "note" and hit["conversation_id"] == world.conv_b
    assert hit["snippet_html"] == ("shared-word &lt;b&gt;in&lt;/b&gt; "
                                   "<mark>sales-secret-note</mark>")
    page = browser("maryam").get("/search?q=sales-secret-note")
    assert "<mark>sales-secret-note</mark>" in page.text
    assert "<b>in</b>" not in page.text


def test_filters_and_paging(db: sessionmaker[Session], world: World,
                            api: Callable[..., Api], browser: Callable[..., Api]) -> None:
    with db() as s:
        convs = [f.conversation(s, channel=Channel.EMAIL if i % 2 else Channel.SMS,
                                text=f"paging-word number {i}") for i in range(5)]
        s.commit()
        index.reindex(s)
        # spread the texts over days: the newest first
        for i, c in enumerate(convs):
            s.query(SearchDoc).filter(SearchDoc.conversation_id == c.id).update(
                {"at": utcnow() - timedelta(days=2 * (5 - i))})
        s.commit()
        ids = [c.id for c in convs]
        sms = {c.id for c in convs if c.channel == Channel.SMS}
    coord = api(world.coord, "read")
    seen: list[int] = []
    cursor = ""
    for _ in range(5):
        r = coord.get(f"/api/v1/search?q=paging-word&limit=2{cursor}")
        body = r.json()
        seen += [h["conversation_id"] for h in body["hits"]]
        if not body["next_cursor"]:
            break
        cursor = f"&cursor={body['next_cursor']}"
    assert seen == ids[::-1]
    assert _ids(coord.get("/api/v1/search?q=paging-word&channel=sms").json()) == sms
    # closed and open, assignee
    assert coord.get("/api/v1/search?q=paging-word&status=closed").json()["hits"] == []
    assert coord.get(f"/api/v1/search?q=support-text&assignee_id={world.agent_a}"
                     ).json()["hits"][0]["conversation_id"] == world.conv_a
    # dates, Gregorian or Jalali, inclusive days
    since = local_date(utcnow() - timedelta(days=3))
    r = coord.get(f"/api/v1/search?q=paging-word&from={since.isoformat()}")
    assert [h["conversation_id"] for h in r.json()["hits"]] == [ids[4]]
    until = format_date(utcnow() - timedelta(days=9), "fa")  # Jalali, Persian digits
    page = browser("maryam").get(f"/search?q=paging-word&to={until}")
    assert re.findall(r'data-conversation-id="(\d+)"', page.text) == [str(ids[0])]
    # htmx asks for the next page: the rows alone
    first = browser("maryam").get("/search?q=paging-word")
    assert first.text.count('class="search-hit"') == 5 and "search-more" not in first.text


def test_bad_input_is_said_and_kept(world: World, api: Callable[..., Api],
                                    browser: Callable[..., Api]) -> None:
    r = api(world.coord, "read").get("/api/v1/search?q=x&from=1405/13/40")
    assert r.status_code == 400
    r = api(world.coord, "read").get("/api/v1/search?q=x&cursor=nope")
    assert r.status_code == 400
    assert api(world.coord, "read").get("/api/v1/search").status_code == 422
    page = browser("maryam").get("/search?q=keep-me&from=1405/13/40")
    assert page.status_code == 200
    assert 'id="search-error"' in page.text and 'value="keep-me"' in page.text
    assert 'value="1405/13/40"' in page.text
