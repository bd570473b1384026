"""The API channel's sender against the external system's stand-in, over real HTTP: the
callback's shape and signature, and each answer's class (retry, refused) as the outbox sees
it, with the resend after an unknown outcome received once (the Idempotency-Key)."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker

from channels.api import signing
from channels.api.standin import ApiSystemStandin
from config.api_channel import ApiChannelConfig
from kartabl import outbound
from kartabl.errors import PermanentDeliveryError, RetryableDeliveryError
from kartabl.messages import OutboundMessage
from kartabl.models import Channel, Reply, ReplyState
from responders.api_channel import ApiChannelSender
from responders.dispatch import dispatch_reply
from tests.channels.api.conftest import SECRET
from tests.channels.api.flow import approved_reply

RS = ReplyState


@pytest.fixture(scope="module")
def system_server() -> Iterator[ApiSystemStandin]:
    server = ApiSystemStandin(SECRET).start()
    yield server
    server.stop()


@pytest.fixture
def system(system_server: ApiSystemStandin) -> ApiSystemStandin:
    system_server.reset()
    return system_server


def config(url: str, **kw: Any) -> ApiChannelConfig:
    return ApiChannelConfig(**{"name": "shop", "secret": SECRET, "callback_url": url,
                               "connect_timeout_s": 1.0, "timeout_s": 0.3, **kw})


@pytest.fixture
def sender(system: ApiSystemStandin) -> Iterator[ApiChannelSender]:
    with ApiChannelSender([config(system.callback_url)]) as s:
        yield s


def msg(key: str = "17", recipient: str = "shop:u-1042", text: str = "پاسخ شما") -> OutboundMessage:
    return OutboundMessage(reply_id=int(key) if key.isdigit() else 1, conversation_id=5,
                           channel=Channel.API, recipient=recipient, text=text,
                           idempotency_key=key, in_reply_to="shop:order-77-msg-3")


def test_the_callback_is_signed_and_carries_the_contracts_body(
        sender: ApiChannelSender, system: ApiSystemStandin) -> None:
    provider_id = sender.send(msg("17"))
    [got] = system.received
    assert provider_id == "shop:17:ext-1" and system.refused == []
    assert got.idempotency_key == "17"
    assert got.body == {"reply_id": 17, "conversation_id": 5, "channel": "shop",
                        "user": {"id": "u-1042"}, "text": "پاسخ شما",
                        "in_reply_to": "order-77-msg-3", "attachments": []}
    assert got.headers["content-type"] == "application/json"
    assert got.headers[signing.SIGNATURE_HEADER.lower()].startswith("sha256=")


def test_a_resend_with_the_same_key_is_received_once(sender: ApiChannelSender,
                                                     system: ApiSystemStandin) -> None:
    assert sender.send(msg("18")) == sender.send(msg("18"))
    assert len(system.of_key("18")) == 1 and system.requests == 2


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


RETRIED: dict[str, tuple[dict[str, Any], float | None]] = {
    "500": ({"kind": "http", "value": 500}, None),
    "502": ({"kind": "http", "value": 502}, None),
    "503 with Retry-After": ({"kind": "http", "value": 503, "retry_after": "7"}, 7.0),
    "429 with Retry-After": ({"kind": "http", "value": 429, "retry_after": "2"}, 2.0),
    "429 with a date": ({"kind": "http", "value": 429,
                         "retry_after": "Wed, 21 Oct 2026 07:28:00 GMT"}, None),
    "408": ({"kind": "http", "value": 408}, None),
    "dropped": ({"kind": "drop"}, None),
}


def test_5xx_429_408_and_a_dropped_connection_are_retried(
        sender: ApiChannelSender, system: ApiSystemStandin) -> None:
    for n, (case, (fault, after)) in enumerate(RETRIED.items(), 100):
        system.fail_next(**fault)
        with pytest.raises(RetryableDeliveryError) as caught:
            sender.send(msg(str(n)))
        assert caught.value.retry_after_s == after, case
        assert "Idempotency-Key" in str(caught.value), case
        assert system.of_key(str(n)) == [], case  # nothing recorded by the faulty answer
        # and the retry goes through, once
        assert sender.send(msg(str(n))).startswith(f"shop:{n}:"), case
        assert len(system.of_key(str(n))) == 1, case


def test_a_timeout_after_the_system_took_it_is_retried_and_received_once(
        sender: ApiChannelSender, system: ApiSystemStandin) -> None:
    # Given the system records the callback but answers after our read timeout
    system.fail_next("slow", 0.6)
    with pytest.raises(RetryableDeliveryError, match="no answer"):
        sender.send(msg("19"))
    assert len(system.of_key("19")) == 1
    # When the outbox sends it again, with the same key
    again = sender.send(msg("19"))
    # Then the system answers as before, and still holds it once
    [got] = system.of_key("19")
    assert again == f"shop:19:{got.id}"


def test_an_unreachable_system_is_retried_as_not_sent() -> None:
    with ApiChannelSender([config(f"http://127.0.0.1:{closed_port()}/callback")]) as sender, \
            pytest.raises(RetryableDeliveryError, match=r"not sent .*ConnectError"):
        sender.send(msg("20"))


REFUSED = {"400": 400, "404": 404, "409": 409, "422": 422, "301": 301}


def test_other_4xx_and_redirects_are_refused_with_the_systems_words(
        sender: ApiChannelSender, system: ApiSystemStandin) -> None:
    for case, status in REFUSED.items():
        system.fail_next("http", status)
        with pytest.raises(PermanentDeliveryError) as caught:
            sender.send(msg("21"))
        assert f"API channel shop: HTTP {status}" in str(caught.value), case
        assert "injected" in str(caught.value), case  # the system's "error", for the person
    assert system.received == []


def test_a_wrong_secret_is_refused_by_the_system_and_permanent(
        system: ApiSystemStandin) -> None:
    other = "another-secret-0123456789abcdef-01234567"
    with ApiChannelSender([config(system.callback_url, secret=other)]) as sender, \
            pytest.raises(PermanentDeliveryError, match=r"HTTP 401.*wrong signature"):
        sender.send(msg("22"))
    assert system.refused == ["wrong signature"] and system.received == []


def test_what_cannot_go_out_is_refused_before_any_request(
        system: ApiSystemStandin) -> None:
    with ApiChannelSender([config(system.callback_url), config("", name="crm")]) as sender:
        for bad, reason in ((msg(recipient="crm:u-1"), "has no callback_url"),
                            (msg(recipient="other:u-1"), "not a user of a configured"),
                            (msg(recipient="u-1"), "not a user of a configured"),
                            (msg(text="  "), "the reply is empty")):
            with pytest.raises(PermanentDeliveryError, match=reason):
                sender.send(bad)
    assert system.requests == 0


def test_a_send_that_could_outlive_the_reconcile_sweep_is_refused_at_start() -> None:
    with pytest.raises(ValueError, match="KARTABL_SENDING_STALE_S"):
        ApiChannelSender([config("http://x/cb", timeout_s=300)], sending_stale_s=600)


def test_the_secret_is_in_no_repr_and_no_reason(system: ApiSystemStandin) -> None:
    with ApiChannelSender([config(system.callback_url)]) as sender:
        system.fail_next("http", 400)
        with pytest.raises(PermanentDeliveryError) as caught:
            sender.send(msg("23"))
        assert SECRET not in repr(sender) + str(caught.value) + repr(config("http://x/cb"))


# -- through the outbox ---------------------------------------------------------------------


@pytest.fixture
def registered(sender: ApiChannelSender) -> Iterator[ApiChannelSender]:
    before = outbound.registered()
    outbound.register(sender)
    yield sender
    outbound.unregister(Channel.API)
    for s in before.values():
        outbound.register(s)


def state(db: sessionmaker[Session], reply_id: int) -> tuple[RS, str | None, str | None]:
    with db() as s:
        r = s.get(Reply, reply_id)
        assert r is not None
        return RS(r.state), r.error, r.provider_id


def test_the_outbox_retries_a_503_and_the_system_gets_the_reply_once(
        registered: ApiChannelSender, system: ApiSystemStandin, db) -> None:
    rid = approved_reply(db)
    system.fail_next("http", 503, retry_after="3")
    with pytest.raises(RetryableDeliveryError) as caught:
        dispatch_reply(db, rid)
    assert caught.value.retry_after_s == 3.0
    assert state(db, rid)[0] == RS.APPROVED  # back for the worker's retry
    system.fail_next("slow", 0.6)  # then taken, but the answer comes too late
    with pytest.raises(RetryableDeliveryError):
        dispatch_reply(db, rid)
    assert dispatch_reply(db, rid) == "sent"
    [got] = system.of_key(str(rid))
    assert got.body["reply_id"] == rid and got.body["user"] == {"id": "u-1042"}
    assert state(db, rid) == (RS.SENT, None, f"shop:{rid}:{got.id}")


def test_the_outbox_fails_a_refused_reply_with_the_reason(
        registered: ApiChannelSender, system: ApiSystemStandin, db) -> None:
    rid = approved_reply(db)
    system.fail_next("http", 422)
    assert dispatch_reply(db, rid) == "failed"
    got_state, error, _ = state(db, rid)
    assert got_state == RS.FAILED and error is not None and "HTTP 422" in error
    assert system.received == []


def test_the_body_is_json_the_system_can_read(sender: ApiChannelSender) -> None:
    _, body = sender.body(msg("24", text="متن با \u200c نیم‌فاصله"))
    assert json.loads(body)["text"] == "متن با \u200c نیم‌فاصله"


class CrashAfterSend(ApiChannelSender):
    """The process dies right after the receiver took the callback: the outbox never hears."""

    def send(self, msg: OutboundMessage) -> str:
        super().send(msg)
        from responders.sandbox import SimulatedCrash

        raise SimulatedCrash("killed after the callback")


def test_a_reply_a_crash_left_sending_is_sent_again_and_received_once(
        system: ApiSystemStandin, db) -> None:
    from datetime import timedelta

    from responders.dispatch import reconcile_stale_sending
    from responders.sandbox import SimulatedCrash

    before = outbound.registered()
    try:
        outbound.register(CrashAfterSend([config(system.callback_url)]))
        rid = approved_reply(db)
        with pytest.raises(SimulatedCrash):
            dispatch_reply(db, rid)
        assert state(db, rid)[0] == RS.SENDING and len(system.of_key(str(rid))) == 1
        # When the sweep finds it (at_least_once: the receiver cannot be asked)
        outbound.register(ApiChannelSender([config(system.callback_url)]))
        assert reconcile_stale_sending(db, older_than=timedelta(0)) == 1
        assert state(db, rid)[0] == RS.APPROVED
        assert dispatch_reply(db, rid) == "sent"
        # Then the receiver was asked twice, with one key, and holds the reply once
        assert system.requests == 2 and len(system.of_key(str(rid))) == 1
    finally:
        outbound.unregister(Channel.API)
        for s in before.values():
            outbound.register(s)


def test_the_replys_files_travel_in_the_callback(system: ApiSystemStandin,
                                                 tmp_path) -> None:
    import base64
    import hashlib

    from channels.email.attachments import store_payloads
    from kartabl.messages import OutboundAttachment

    data = b"%PDF-1.4 receipt"
    key = hashlib.sha256(data).hexdigest()
    store_payloads({key: data}, tmp_path)
    file = OutboundAttachment("رسید.pdf", "application/pdf", len(data), key)
    with ApiChannelSender([config(system.callback_url)], attachments_dir=tmp_path) as sender:
        m = msg("25")
        sender.send(OutboundMessage(**{**{f: getattr(m, f) for f in m.__dataclass_fields__},
                                       "attachments": (file,)}))
    [got] = system.received
    assert got.body["attachments"] == [{"filename": "رسید.pdf", "content_type": "application/pdf",
                                        "size": len(data),
                                        "data": base64.b64encode(data).decode()}]
