"""Collision notices across a fleet: two real ``kartabl web`` processes on PostgreSQL and
Redis. A beat through one process shows on the other (the entries live in Redis), and is
pushed to the streams the other holds for that conversation's page (``event: presence``,
by Redis pub/sub); never to a stream whose reader may not see the conversation, nor to the
one who beat; a leave is pushed too.
"""

from __future__ import annotations

import time

import httpx
import pytest

from config.settings import Settings
from console import auth
from tests.live.helpers import SECRET, Web, sse
from tests.live.test_live_fleet import fleet, web_pair  # noqa: F401  (fixtures)

pytestmark = [pytest.mark.fleet, pytest.mark.timeout(120)]


def beat_via(web: Web, cookie: str, conv: int, state: str) -> httpx.Response:
    csrf = auth.csrf_token(cookie, settings=Settings(secret_key=SECRET))
    return httpx.post(f"{web.url}/conversations/{conv}/presence",
                      cookies={"kartabl_session": cookie},
                      data={"state": state, "csrf_token": csrf}, timeout=10)


def test_a_beat_on_one_process_is_pushed_and_shown_on_the_other(fleet):  # noqa: F811
    one, two, world = fleet
    page = f"conversation={world.conv_a}"
    with sse(two.url, world.coordinator, query=page) as coord, \
            sse(two.url, world.agent_a, query=f"conversation={world.conv_b}") as outsider, \
            sse(one.url, world.agent_a, query=page) as own:
        assert coord.status == outsider.status == own.status == 200
        time.sleep(1.0)  # the processes' subscriptions to Redis are up
        started = time.monotonic()
        r = beat_via(one, world.agent_a, world.conv_a, "drafting")
        assert r.status_code == 200, r.text
        pushed = coord.next(timeout=5)
        took = time.monotonic() - started
        assert pushed.data == {"conversation": world.conv_a}  # the id only
        assert took < 3, f"{took:.2f} s\n{two.logs()}"
        # The other process shows who is there: the entry is in Redis, not in process one.
        shown = httpx.get(f"{two.url}/conversations/{world.conv_a}/presence",
                          cookies={"kartabl_session": world.coordinator}, timeout=10)
        assert 'data-state="drafting"' in shown.text and "agent-a-" in shown.text
        # The same state again changes nothing for the others: nothing pushed.
        assert beat_via(one, world.agent_a, world.conv_a, "drafting").status_code == 200
        assert coord.quiet(1.0) == []
        # Leaving is pushed at once.
        assert beat_via(two, world.agent_a, world.conv_a, "left").status_code == 204
        assert coord.next(timeout=5).data == {"conversation": world.conv_a}
        # Nothing reached the agent's own stream, nor the stream of a page they may not see
        # (team B's conversation: its stream carries no presence at all).
        assert own.quiet(0.5) == [] and outsider.quiet(0.5) == []
    assert "agent-a-" not in httpx.get(
        f"{one.url}/conversations/{world.conv_a}/presence",
        cookies={"kartabl_session": world.coordinator}, timeout=10).text


def test_a_beat_on_a_conversation_out_of_scope_is_refused_and_pushed_nowhere(fleet):  # noqa: F811
    one, two, world = fleet
    with sse(two.url, world.coordinator, query=f"conversation={world.conv_b}") as coord:
        time.sleep(1.0)
        assert beat_via(one, world.agent_a, world.conv_b, "viewing").status_code == 404
        assert coord.quiet(1.5) == []
