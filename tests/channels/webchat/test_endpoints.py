"""The widget's endpoints on both databases: a retried POST is one message, a reconnect
gets exactly what it missed, forged identities and foreign origins are refused, and the
abuse limits hold."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from channels.webchat.identity import identity_mac
from kartabl.messages import OutboundMessage
from kartabl.models import Channel, Message, WebchatEvent, WebchatVisitor
from responders.webchat import WebchatSender
from tests.channels.webchat.conftest import ORIGIN, SECRET, Chat


def count(db: sessionmaker[Session], model: type = Message) -> int:
    with db() as s:
        return int(s.scalar(select(func.count()).select_from(model)) or 0)


def reply(db: sessionmaker[Session], token: str, text: str, n: int) -> str:
    """An approved reply, as the outbox hands it to the widget's sender."""
    key = token.rpartition(".")[0]
    msg = OutboundMessage(reply_id=n, conversation_id=1, channel=Channel.WEBCHAT,
                          recipient=key, text=text, idempotency_key=f"reply-{n}")
    return WebchatSender(db).send(msg)


def test_a_retried_post_is_stored_once(chat: Chat, db) -> None:
    token = chat.visitor()
    # Given the widget sends one message three times (its answer lost twice)
    answers = [chat.post(token, "سلام، سفارشم کجاست؟", client_id="c-0001-abcd") for _ in range(3)]
    # Then each answer names the same sequence number, and there is one message and event
    assert [a.status_code for a in answers] == [200, 200, 200]
    assert {a.json()["seq"] for a in answers} == {1}
    assert (count(db), count(db, WebchatEvent)) == (1, 1)
    with db() as s:
        m = s.scalars(select(Message)).one()
        assert m.channel == Channel.WEBCHAT and m.sender == token.rpartition(".")[0]
        assert m.external_id.endswith(":c-0001-abcd") and m.text == "سلام، سفارشم کجاست؟"
    # and another visitor's same client id is another message
    assert chat.post(chat.visitor(), "hi", client_id="c-0001-abcd").status_code == 200
    assert count(db) == 2


def test_a_reconnect_gets_exactly_the_missing_events(chat: Chat, db) -> None:
    token = chat.visitor()
    for i in range(3):
        assert chat.post(token, f"m{i}").status_code == 200
        reply(db, token, f"r{i}", i + 1)
    first = chat.events(token)
    assert [e["seq"] for e in first] == [1, 2, 3, 4, 5, 6]
    assert [(e["kind"], e["text"]) for e in first[:2]] == [("message", "m0"), ("reply", "r0")]
    # When the stream dropped after event 2 and comes back with Last-Event-ID: 2
    assert [e["seq"] for e in chat.events(token, 2)] == [3, 4, 5, 6]
    # (EventSource's first connect cannot set the header: the query parameter does)
    assert [e["seq"] for e in chat.events(token, 5, header=False)] == [6]
    assert chat.events(token, 6) == []
    # The same reply sent again (the outbox after an unknown outcome) is not a new event
    assert reply(db, token, "r0", 1) == f"webchat:{token.rpartition('.')[0]}:2"
    assert count(db, WebchatEvent) == 6


def test_another_visitors_token_or_a_forged_one_reads_nothing(chat: Chat, db) -> None:
    a, b = chat.visitor(), chat.visitor()
    chat.post(a, "a's secret")
    assert chat.events(b) == []
    forged = a.rpartition(".")[0] + "." + "0" * 32
    chat.client.cookies.clear()  # b's browser's cookie would name b
    r = chat.client.get(chat.url("events"), params={"visitor": forged},
                        headers={"Origin": ORIGIN})
    assert r.status_code == 401
    assert chat.post(forged, "x").status_code == 401


def test_a_foreign_origin_is_refused_and_nothing_stored(chat: Chat, db) -> None:
    token = chat.visitor()
    for origin in ("https://evil.example", "https://shop.example.evil.example", ""):
        assert chat.post(token, "x", origin=origin).status_code == 403
        assert chat.session(origin=origin).status_code == 403
        if origin:  # (no Origin: a same-origin or non-browser reader, below)
            r = chat.client.get(chat.url("events"), params={"visitor": token},
                                headers={"Origin": origin})
            assert r.status_code == 403
        pre = chat.client.options(chat.url("messages"), headers={
            "Origin": origin, "Access-Control-Request-Method": "POST"})
        assert pre.status_code == 403 and "access-control-allow-origin" not in pre.headers
    assert count(db) == 0
    ok = chat.client.options(chat.url("messages"), headers={
        "Origin": ORIGIN, "Access-Control-Request-Method": "POST"})
    assert ok.status_code == 204 and ok.headers["access-control-allow-origin"] == ORIGIN
    # A stream without an Origin is served, with no CORS header: no other page can read it
    with chat.client.stream("GET", chat.url("events"), params={"visitor": token}) as r:
        assert r.status_code == 200 and "access-control-allow-origin" not in r.headers


def test_the_console_session_is_not_read_and_no_csrf_token_is_asked(chat: Chat, db) -> None:
    # A console cookie rides along (the same site): the widget neither needs nor uses it,
    # and the console's CSRF check does not stand in the way of the widget's POSTs.
    chat.client.cookies.set("kartabl_session", "whatever")
    token = chat.visitor()
    assert chat.post(token, "hi").status_code == 200


def test_a_signed_identity_lands_on_the_customers_phone(chat: Chat, db) -> None:
    from router.route import route_message
    from tests.factories import routing_args

    identity = "09121234567"
    token = chat.visitor(identity=identity, identity_hmac=identity_mac(SECRET, identity))
    assert chat.post(token, "سلام").status_code == 200
    with db() as s:
        visitor = s.scalars(select(WebchatVisitor)).one()
        assert (visitor.identity_kind, visitor.identity_address) == ("phone", "+989121234567")
        mid = s.scalars(select(Message.id)).one()
        outcome = route_message(s, mid, **routing_args())
        assert outcome is not None
        from kartabl.models import Identity
        ident = s.scalars(select(Identity).where(Identity.customer_id == outcome.customer_id))
        assert [(i.kind, i.address) for i in ident] == [("phone", "+989121234567")]


def test_a_forged_identity_is_refused_and_nothing_stored(chat: Chat, db) -> None:
    good = identity_mac(SECRET, "09121234567")
    for identity, mac in (("09121234567", "0" * 64), ("09127654321", good),
                          ("09121234567", identity_mac("another secret", "09121234567")),
                          ("09121234567", "")):
        r = chat.session(identity=identity, identity_hmac=mac)
        assert r.status_code == 403, (identity, mac)
    assert (count(db, WebchatVisitor), count(db)) == (0, 0)


def test_a_typed_contact_is_a_hint_never_an_identity(chat: Chat, db) -> None:
    from kartabl.ingest import store
    from kartabl.messages import InboundMessage
    from router.route import route_message
    from tests.factories import routing_args

    # Given a customer with an SMS history on +989121234567
    with db() as s:
        sms = store(s, InboundMessage(channel=Channel.SMS, external_id="kv:1",
                                      sender="+989121234567", text="سابقه"))
        sms_customer = route_message(s, sms.message_id, **routing_args()).customer_id
    # When a visitor types that number in the pre-chat form
    token = chat.visitor()
    assert chat.post(token, "کارم را بگو", contact="۰۹۱۲ ۱۲۳ ۴۵۶۷").status_code == 200
    with db() as s:
        m = s.scalars(select(Message).where(Message.channel == Channel.WEBCHAT)).one()
        assert m.meta["contact"] == {"kind": "phone", "address": "+989121234567",
                                     "verified": False}
        outcome = route_message(s, m.id, **routing_args())
        # Then they are a customer of their own: the SMS history is not theirs to read
        assert outcome is not None and outcome.customer_id != sms_customer


def test_the_honeypot_answers_as_if_stored_and_drops(chat: Chat, db) -> None:
    token = chat.visitor()
    r = chat.post(token, "buy cheap pills", website="http://spam.example")
    assert r.status_code == 200 and r.json()["stored"] is True
    assert (count(db), count(db, WebchatEvent)) == (0, 0)


def test_the_size_cap(chat: Chat, db) -> None:
    token = chat.visitor()
    assert chat.post(token, "x" * 501).status_code == 413  # the test config: 500
    assert chat.post(token, "x" * 500).status_code == 200
    assert chat.client.post(chat.url("messages"), content=b"{" + b" " * 70_000 + b"}",
                            headers={"Origin": ORIGIN, "X-Kartabl-Visitor": token,
                                     "Content-Type": "application/json"}).status_code == 413
    assert count(db) == 1


def test_the_rate_limits(chat: Chat, db, webchat_config) -> None:
    webchat_config.per_visitor_per_min = 3
    token = chat.visitor()
    codes = [chat.post(token, f"m{i}").status_code for i in range(5)]
    assert codes == [200, 200, 200, 429, 429]
    assert chat.post(chat.visitor(), "another visitor").status_code == 200  # per visitor
    webchat_config.per_ip_per_min = 7  # 6 taken from this address so far (the 429s too)
    codes = [chat.post(chat.visitor(), "x").status_code for _ in range(3)]
    assert codes == [200, 429, 429]
    assert count(db) == 5


def test_the_loader_carries_the_widgets_settings_and_no_html(chat: Chat, db) -> None:
    from tests.channels.webchat.conftest import make_widget

    wid = make_widget(db, greeting_fa="</script><b>سلام</b>")
    r = chat.client.get(f"/widget/{wid}/loader.js")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/javascript")
    assert "</script>" not in r.text and "\\u003c/script>" in r.text and wid in r.text
    assert chat.client.get("/widget/nope/loader.js").status_code == 404
    assert chat.client.get(f"/widget/{wid}/chat.js").status_code == 200


def test_preparing_and_closed_notices_never_carry_the_draft(chat: Chat, db) -> None:
    from channels.webchat.log import sync_notices
    from kartabl import workflow
    from responders.preview import REPLY_CHECK
    from router.route import route_message
    from tests.factories import person, routing_args

    token = chat.visitor()
    chat.post(token, "سلام")
    with db() as s:
        mid = s.scalars(select(Message.id)).one()
        conv = route_message(s, mid, **routing_args()).conversation_id
        agent = person(s, role="admin")
        workflow.draft(s, agent, conv, "the secret draft text", check=REPLY_CHECK)
        s.commit()
        sync_notices(s)
        assert sync_notices(s) == 0  # written once, whoever noticed first
    events = chat.events(token)
    assert [e["kind"] for e in events] == ["message", "preparing"]
    assert "text" not in events[1] and "secret draft" not in str(events)


def test_a_signed_out_page_on_the_same_browser_gets_a_chat_of_its_own(chat: Chat, db) -> None:
    identity = "09121234567"
    signed = dict(identity=identity, identity_hmac=identity_mac(SECRET, identity))
    token = chat.visitor(**signed)
    assert chat.post(token, "my order, signed in").status_code == 200
    # The same browser (the token and the cookie), the site signed out: another chat
    anonymous = chat.session(token=token).json()["visitor"]
    assert anonymous != token and chat.events(anonymous) == []
    # Signed in again: their chat again
    again = chat.session(token=token, **signed).json()["visitor"]
    assert again == token and [e["text"] for e in chat.events(again)] == ["my order, signed in"]
    # Another person signing in on that browser: a chat of their own
    other = "09351112233"
    theirs = chat.session(token=token, identity=other,
                          identity_hmac=identity_mac(SECRET, other)).json()["visitor"]
    assert theirs not in (token, anonymous) and chat.events(theirs) == []


def test_a_signed_in_customer_finds_their_chat_on_another_browser(chat: Chat, db) -> None:
    identity = "customer@example.ir"
    signed = dict(identity=identity, identity_hmac=identity_mac(SECRET, identity))
    first = chat.visitor(**signed)
    assert chat.post(first, "from the laptop").status_code == 200
    # An anonymous browser with a chat of its own signs in: the customer's chat, not that one
    anonymous = chat.visitor()
    assert chat.post(anonymous, "before signing in").status_code == 200
    assert chat.session(token=anonymous, **signed).json()["visitor"] == first
    assert [e["text"] for e in chat.events(first)] == ["from the laptop"]
    # (a fresh browser that has written nothing yet becomes the customer's too)
    fresh = chat.visitor()
    assert chat.session(token=fresh, **signed).json()["visitor"] == first
