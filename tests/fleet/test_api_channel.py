"""The generic API channel as deployed: the external system's stand-in POSTs a signed message
to the `web` process, the `worker` routes it, this process approves a reply, the `worker`
sends the callback (after a 503, again) and the system gets it once, then reports it
delivered to the `web` process. Every Procfile line its own OS process (conftest)."""

from __future__ import annotations

import uuid

import pytest

from kartabl.models import ReplyState
from tests.fleet.conftest import Deployed
from tests.fleet.helpers import approved_reply, reply_in, routed_conversation, wait_for

pytestmark = [pytest.mark.fleet, pytest.mark.xdist_group("fleet")]

RS = ReplyState


def test_an_api_message_is_answered_once_and_reported_delivered(deployed: Deployed) -> None:
    system = deployed.api_system
    assert system is not None
    user = f"u-{uuid.uuid4().hex[:8]}"
    message = {"idempotency_key": f"msg-{user}", "user": {"id": user, "name": "سارا"},
               "text": "سلام، سفارش ۷۷ کجاست؟"}
    # Given the system sends a message, and resends it
    answers = [system.send(deployed.web_url, "fleet-api", message) for _ in range(2)]
    assert [a.status_code for a in answers] == [200, 200], [a.text for a in answers]
    assert [a.json()["created"] for a in answers] == [True, False]
    conv = wait_for(lambda: routed_conversation(deployed.db, "api", f"fleet-api:{user}"), 30,
                    f"the API message of {user} routed by the worker", deployed.logs)
    # When a reply is approved, and the system's first answer is a 503
    system.fail_next("http", 503, retry_after="1")
    rid = approved_reply(deployed.db, conv, "فردا می‌رسد")
    # Then the worker sends it again, the system holds it once and reports it delivered
    reply = wait_for(lambda: reply_in(deployed.db, rid, RS.DELIVERED, RS.FAILED), 40,
                     f"reply {rid} delivered", deployed.logs)
    assert reply.state == RS.DELIVERED, reply.error
    [got] = system.of_key(str(rid))
    assert got.body["user"] == {"id": user} and got.body["in_reply_to"] == f"msg-{user}"
    assert reply.provider_id == f"fleet-api:{rid}:{got.id}"
