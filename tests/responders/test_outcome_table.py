"""One test per row of the outcome table (:data:`responders.outcomes.RULES`), through the
outbox, against the real stand-ins over real connections: the Kavenegar and Bot API
stand-ins over HTTP, aiosmtpd over SMTP, Redis over TCP. Nothing of the libraries is mocked.

For each row: the fault, then what the reply becomes and how many times the provider got the
message. ``not_sent`` rows also prove the retry sends it exactly once."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta

import pytest
from dramatiq.rate_limits import WindowRateLimiter
from dramatiq.rate_limits.backends import RedisBackend, StubBackend
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from channels.meta.graph import classify
from channels.meta.standin import GraphStandin
from channels.rubika.standin import RubikaStandin
from channels.sms.standin import KavenegarStandin
from channels.telegram.standin import BotApiStandin
from config.meta import MetaConfig
from config.rubika import RubikaBot
from config.settings import get_settings
from config.sms import SmsConfig
from config.telegram import BotConfig
from kartabl import outbound
from kartabl.errors import OutcomeUnknown, RetryableDeliveryError
from kartabl.models import Channel, Message, Reply, ReplyState
from responders.dispatch import dispatch_reply, reconcile_stale_sending
from responders.email import SmtpSender
from responders.meta import MetaSender
from responders.outcomes import RULES, table
from responders.rubika import RubikaSender
from responders.sms import KavenegarSender
from responders.telegram import BLOCKED_REASON, TelegramSender
from tests.conftest import REDIS_URL
from tests.responders import smtp_server as smtp
from tests.responders.limits import kavenegar, sms_limiter

RS = ReplyState
STALE = timedelta(0)
TG_TOKEN, BALE_TOKEN = "9200001:TABLE-tg-token-QaWsEd", "9300001:TABLE-bale-token-RfTgYh"
SMS_KEY = "KAVE-table-key-UjMnBv"
META_IG, META_WA = "17841400000000003", "106540352242903"
RUBIKA_TOKEN = "RUBIKA-table-token-IkOlPp"


def closed_port() -> int:
    with socket.socket() as s:  # bound, never listening, closed: connections are refused
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


@dataclass
class Env:
    db: sessionmaker[Session]
    approved: Callable[..., int]
    request: pytest.FixtureRequest

    def reply(self, rid: int) -> Reply:
        with self.db() as s:
            r = s.get(Reply, rid)
            assert r is not None
            return r

    # -- the channels, on their stand-ins -----------------------------------------------

    def smtp(self) -> smtp.SmtpServer:
        server: smtp.SmtpServer = self.request.getfixturevalue("smtp_server")
        outbound.register(SmtpSender(server.email_config(timeout_s=0.5, data_timeout_s=0.5)))
        return server

    def kavenegar(self, **sender_kw: object) -> tuple[KavenegarStandin, KavenegarSender]:
        server = KavenegarStandin(SMS_KEY).start()
        self.request.addfinalizer(server.stop)
        sender = kavenegar(self.sms_config(server.base_url), **sender_kw)
        outbound.register(sender)
        return server, sender

    @staticmethod
    def sms_config(base_url: str) -> SmsConfig:
        return SmsConfig(api_key=SMS_KEY, base_url=base_url, line="10008663",
                         connect_timeout_s=1.0, timeout_s=0.5)

    def bot_api(self, channel: Channel = Channel.TELEGRAM,
                base_url: str | None = None) -> BotApiStandin:
        server = BotApiStandin().start()
        self.request.addfinalizer(server.stop)
        server.add_bot(TG_TOKEN, "shop_bot")
        server.add_bot(BALE_TOKEN, "bale_shop_bot")
        outbound.register(TelegramSender(channel, self.bots(base_url or server.base_url)))
        return server

    @staticmethod
    def bots(url: str) -> list[BotConfig]:
        # 2 s: the Bot API timeout bounds the connect too, which a busy CI machine has
        # exceeded at 0.5 s; the "slow" answer comes after 3 s.
        return [BotConfig(name="shop", token=TG_TOKEN, mode="polling", base_url=url,
                          timeout_s=2.0),
                BotConfig(name="bale-shop", kind="bale", token=BALE_TOKEN, mode="polling",
                          base_url=url, timeout_s=2.0)]

    # -- the outcomes --------------------------------------------------------------------

    def not_sent_then_once(self, rid: int, sent: Callable[[], int], *,
                           retry_after_s: float | None = None, fix: Callable[[], object] = (
                               lambda: None)) -> None:
        """The fault was 'not sent': the reply is back to approved, the provider has
        nothing; the retry (after ``fix``) sends it, once."""
        with pytest.raises(RetryableDeliveryError) as err:
            dispatch_reply(self.db, rid)
        if retry_after_s is not None:
            assert err.value.retry_after_s == retry_after_s
        r = self.reply(rid)
        assert r.state == RS.APPROVED and r.error and sent() == 0
        fix()
        assert dispatch_reply(self.db, rid) == "sent"
        assert self.reply(rid).state == RS.SENT and sent() == 1

    def refused(self, rid: int, reason: str, sent: Callable[[], int], expect_sent: int = 0
                ) -> None:
        assert dispatch_reply(self.db, rid) == "failed"
        r = self.reply(rid)
        assert r.state == RS.FAILED and reason in (r.error or ""), r.error
        assert dispatch_reply(self.db, rid) == "skipped" and sent() == expect_sent


@pytest.fixture
def env(db: sessionmaker[Session], approved_reply: Callable[..., int], sandbox: object,
        request: pytest.FixtureRequest) -> Iterator[Env]:
    # sandbox: every channel has a sender, and the registry is restored afterwards
    yield Env(db, approved_reply, request)


# -- every channel ----------------------------------------------------------------------------


def own_error_redis_down(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given the SMS sender's rate limiter on a Redis that does not answer (the fleet's
    # limiter: the one the composition hands in, workers.broker.rate_limiter, on
    # KARTABL_REDIS_URL)
    monkeypatch.setenv("KARTABL_BROKER", "redis")
    monkeypatch.setenv("KARTABL_REDIS_URL", f"redis://127.0.0.1:{closed_port()}/0")
    get_settings.cache_clear()
    server, sender = env.kavenegar()
    assert isinstance(sender.limiter.backend, RedisBackend)
    rid = env.approved(Channel.SMS)
    # Then nothing was sent and the reply is released, never left 'sending'
    with pytest.raises(RetryableDeliveryError, match=r"before the provider call.*Connection"):
        dispatch_reply(env.db, rid)
    r = env.reply(rid)
    assert r.state == RS.APPROVED and "ConnectionError" in (r.error or "")
    assert server.calls == [] and server.sent == []
    # When Redis is back, the retry sends it once
    sender.limiter = WindowRateLimiter(RedisBackend(url=REDIS_URL),
                                       f"{get_settings().redis_namespace}:t", limit=10, window=1)
    assert dispatch_reply(env.db, rid) == "sent" and len(server.sent) == 1


# -- email ------------------------------------------------------------------------------------


def smtp_case(step: str, fault: str) -> Callable[[Env, pytest.MonkeyPatch], None]:
    def case(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
        server = env.smtp()
        rid = env.approved(Channel.EMAIL)
        server.recorder.fail(step, fault)
        received = lambda: len(server.recorder.received)  # noqa: E731
        if fault.startswith("5"):
            env.refused(rid, fault, received)
        else:
            env.not_sent_then_once(rid, received)
    return case


def smtp_answer_lost(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    server = env.smtp()
    rid = env.approved(Channel.EMAIL)
    server.recorder.fail("DATA", "drop")
    with pytest.raises(OutcomeUnknown, match="may have accepted"):
        dispatch_reply(env.db, rid)
    assert env.reply(rid).state == RS.SENDING and len(server.recorder.received) == 1
    # The sweep sends it again (at least once), with the same Message-ID
    assert reconcile_stale_sending(env.db, older_than=STALE) == 1
    assert dispatch_reply(env.db, rid) == "sent"
    first, second = server.messages()
    assert first["Message-ID"] == second["Message-ID"] == env.reply(rid).idempotency_key


# -- SMS --------------------------------------------------------------------------------------


def sms_unreachable(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    server = KavenegarStandin(SMS_KEY).start()
    env.request.addfinalizer(server.stop)
    outbound.register(kavenegar(env.sms_config(f"http://127.0.0.1:{closed_port()}")))
    rid = env.approved(Channel.SMS)
    env.not_sent_then_once(rid, lambda: len(server.sent), fix=lambda: outbound.register(
        kavenegar(env.sms_config(server.base_url))))


def sms_over_rate(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    # A window of two one-second buckets: the second send, well under a second after the
    # first, is over the rate wherever the second boundary falls.
    server, _ = env.kavenegar(limiter=WindowRateLimiter(StubBackend(), "t", limit=1, window=2))
    first, second = env.approved(Channel.SMS), env.approved(Channel.SMS)
    assert dispatch_reply(env.db, first) == "sent"
    env.not_sent_then_once(second, lambda: len(server.sends_of(str(second))),
                           retry_after_s=1.0, fix=lambda: time.sleep(2.1))
    assert server.calls.count("send") == 2


def sms_busy(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    server, _ = env.kavenegar()
    rid = env.approved(Channel.SMS)
    server.fail_next("send", "http", 502)
    env.not_sent_then_once(rid, lambda: len(server.sent))
    assert "statuslocalmessageid" in server.calls  # asked before saying "not sent"


def sms_refused(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    server, _ = env.kavenegar()
    rid = env.approved(Channel.SMS)
    server.fail_next("send", "api", 418)
    env.refused(rid, "418: account credit is not enough", lambda: len(server.sent))


def sms_answer_lost(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    server, _ = env.kavenegar()
    rid = env.approved(Channel.SMS)
    server.fail_next("send", "slow", 1.5)  # recorded, answered after the 0.5 s timeout
    with pytest.raises(OutcomeUnknown):
        dispatch_reply(env.db, rid)
    assert env.reply(rid).state == RS.SENDING
    assert reconcile_stale_sending(env.db, older_than=STALE) == 1
    [sent] = server.sends_of(str(rid))
    r = env.reply(rid)
    assert (r.state, r.provider_id) == (RS.SENT, str(sent.messageid))
    assert server.calls.count("send") == 1


# -- Telegram and Bale ------------------------------------------------------------------------


def tg_unreachable(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    server = env.bot_api(base_url=f"http://127.0.0.1:{closed_port()}/bot")
    rid = env.approved(Channel.TELEGRAM)
    env.not_sent_then_once(rid, lambda: len(server.sent), fix=lambda: outbound.register(
        TelegramSender(Channel.TELEGRAM, env.bots(server.base_url))))


def tg_fault(kind: str, value: float) -> Callable[[Env, pytest.MonkeyPatch], None]:
    def case(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
        server = env.bot_api()
        rid = env.approved(Channel.TELEGRAM)
        server.fail_next("sendMessage", kind, value)
        sent = lambda: len(server.sent)  # noqa: E731
        if kind in ("blocked", "chat_not_found"):
            reason = BLOCKED_REASON if kind == "blocked" else "Chat not found"
            env.refused(rid, reason, sent)
        else:
            env.not_sent_then_once(rid, sent,
                                   retry_after_s=value if kind == "retry_after" else None)
    return case


def tg_unknown(channel: Channel, kind: str, value: float, *, after_send: bool
               ) -> Callable[[Env, pytest.MonkeyPatch], None]:
    def case(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
        server = env.bot_api(channel)
        rid = env.approved(channel)
        # Given Telegram (or a proxy before it) fails, before or after taking the message
        server.fail_next("sendMessage", kind, value, after_send=after_send)
        # Then the reply fails at once, with the reason, for a coordinator
        assert dispatch_reply(env.db, rid) == "failed"
        r = env.reply(rid)
        assert r.state == RS.FAILED
        provider = "Bale" if channel == Channel.BALE else "Telegram"
        assert f"{provider} may have sent the message" in (r.error or "")
        assert (r.error or "").endswith("check with the customer before resending")
        # and it is never sent again: not by a retried task, not by the sweep
        assert dispatch_reply(env.db, rid) == "skipped"
        assert reconcile_stale_sending(env.db, older_than=STALE) == 0
        assert len(server.sent) == (1 if after_send or kind == "slow" else 0)
        assert server.calls.count("sendMessage") == 1
    return case


def tg_partly_sent(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    server = env.bot_api()
    rid = env.approved(Channel.TELEGRAM, body="a" * 5000)  # two messages
    original = server._api_sendMessage

    def block_after_first(bot, params):  # type: ignore[no-untyped-def]
        answer = original(bot, params)  # the first part goes out; the customer then blocks
        server.blocked_users.add(str(params.get("chat_id")))
        return answer

    monkeypatch.setattr(server, "_api_sendMessage", block_after_first)
    env.refused(rid, "partly sent: parts 1-1 of 2", lambda: len(server.sent), expect_sent=1)


# -- generic API channels ---------------------------------------------------------------------


def api_case(fault: dict[str, object] | None, *, retry_after_s: float | None = None,
             refused: str = "") -> Callable[[Env, pytest.MonkeyPatch], None]:
    def case(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
        from channels.api.standin import ApiSystemStandin
        from config.api_channel import ApiChannelConfig
        from responders.api_channel import ApiChannelSender
        from tests.channels.api.flow import approved_reply

        secret = "table-api-secret-0123456789abcdef-0123"
        system = ApiSystemStandin(secret).start()
        env.request.addfinalizer(system.stop)

        def sender(url: str) -> ApiChannelSender:
            made = ApiChannelSender([ApiChannelConfig(
                name="shop", secret=secret, callback_url=url, connect_timeout_s=1.0,
                timeout_s=0.5)])
            env.request.addfinalizer(made.close)
            return made

        rid = approved_reply(env.db)
        held = lambda: len(system.of_key(str(rid)))  # noqa: E731
        if fault is None:  # nobody listens where the callback goes
            outbound.register(sender(f"http://127.0.0.1:{closed_port()}/callback"))
            env.not_sent_then_once(rid, held, fix=lambda: outbound.register(
                sender(system.callback_url)))
            return
        outbound.register(sender(system.callback_url))
        system.fail_next(**fault)  # type: ignore[arg-type]
        if refused:
            env.refused(rid, refused, held)
            return
        with pytest.raises(RetryableDeliveryError) as err:
            dispatch_reply(env.db, rid)
        assert err.value.retry_after_s == retry_after_s
        assert env.reply(rid).state == RS.APPROVED
        before = held()  # 1 when the receiver took it before the answer was lost
        assert dispatch_reply(env.db, rid) == "sent"
        assert held() == 1 and system.requests == 2, before  # resent once, held once
    return case


# -- Instagram and WhatsApp --------------------------------------------------------------------


def meta_approved(env: Env, standin: GraphStandin, channel: Channel) -> int:
    """An approved reply on ``channel`` to a customer who just wrote (the window is open
    at Meta too)."""
    from kartabl import workflow
    from kartabl.models import Conversation, Customer, Direction, Identity, Message, Role
    from responders.preview import REPLY_CHECK
    from tests import factories as f

    address = "+989121234567" if channel is Channel.WHATSAPP else "2000000000000042"
    account = META_WA if channel is Channel.WHATSAPP else META_IG
    standin.customer_wrote(account, address)
    with env.db() as s:
        customer = Customer(display_name="x")
        s.add(customer)
        s.flush()
        s.add(Identity(customer_id=customer.id, address=address,
                       kind="phone" if channel is Channel.WHATSAPP else "instagram"))
        support = f.team(s)
        agent, coord = f.person(s, teams=[support]), f.person(s, role=Role.COORDINATOR)
        conv = Conversation(customer_id=customer.id, channel=channel, team_id=support.id,
                            assignee_id=agent.id)
        s.add(conv)
        s.flush()
        s.add(Message(channel=channel, external_id=f"meta-in-{conv.id}", direction=Direction.IN,
                      conversation_id=conv.id, customer_id=customer.id, sender=address,
                      recipient=account, text="سلام", meta={}))
        reply = workflow.draft(s, agent, conv.id, "سلام، در خدمتم", check=REPLY_CHECK)
        workflow.submit(s, agent, reply.id, check=REPLY_CHECK)
        workflow.approve(s, coord, reply.id, check=REPLY_CHECK)
        s.commit()
        return reply.id


def meta_env(env: Env, channel: Channel, graph_url: str | None = None) -> GraphStandin:
    server = GraphStandin().start()
    env.request.addfinalizer(server.stop)
    server.add_account(META_IG, "ig-table-token")
    server.add_account(META_WA, "wa-table-token")
    sender = MetaSender(channel, meta_config(graph_url or server.graph_url))
    env.request.addfinalizer(sender.close)
    outbound.register(sender)
    return server


def meta_config(graph_url: str) -> MetaConfig:
    return MetaConfig(app_secret="s", verify_token="table-verify-token", graph_url=graph_url,
                      connect_timeout_s=1.0, timeout_s=1.0,
                      instagram=[{"id": META_IG, "access_token": "ig-table-token"}],
                      whatsapp=[{"phone_number_id": META_WA, "access_token": "wa-table-token"}])


def meta_unreachable(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    server = meta_env(env, Channel.WHATSAPP, f"http://127.0.0.1:{closed_port()}/v21.0")
    rid = meta_approved(env, server, Channel.WHATSAPP)

    def fix() -> None:
        sender = MetaSender(Channel.WHATSAPP, meta_config(server.graph_url))
        env.request.addfinalizer(sender.close)
        outbound.register(sender)

    env.not_sent_then_once(rid, lambda: len(server.sent), fix=fix)


def meta_fault(channel: Channel, status: int, code: int | None, subcode: int | None = None
               ) -> Callable[[Env, pytest.MonkeyPatch], None]:
    def case(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
        server = meta_env(env, channel)
        rid = meta_approved(env, server, channel)
        server.fail_next(status, code, subcode, message=f"fault {code}")
        sent = lambda: len(server.sent)  # noqa: E731
        kind = "refused" if code is None else graph_kind(code, subcode)
        if code is None:  # a proxy's page: it may have gone out
            assert dispatch_reply(env.db, rid) == "failed"
            r = env.reply(rid)
            assert r.state == RS.FAILED and "may have sent the message" in (r.error or "")
            assert dispatch_reply(env.db, rid) == "skipped" and sent() == 0
        elif kind in ("rate", "retry"):
            env.not_sent_then_once(rid, sent,
                                   retry_after_s=60.0 if kind == "rate" else None)
        else:
            env.refused(rid, f"fault {code}", sent)
    return case


def meta_answer_lost(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    server = meta_env(env, Channel.INSTAGRAM)
    rid = meta_approved(env, server, Channel.INSTAGRAM)
    server.slow_next(1.5)  # taken, answered after the 1 s timeout
    assert dispatch_reply(env.db, rid) == "failed"
    r = env.reply(rid)
    assert r.state == RS.FAILED and "Instagram may have sent the message" in (r.error or "")
    assert dispatch_reply(env.db, rid) == "skipped"
    assert reconcile_stale_sending(env.db, older_than=STALE) == 0
    assert len(server.sent) == 1


def graph_kind(code: int, subcode: int | None) -> str:
    from channels.meta.graph import GraphError

    return classify(GraphError(400, code, subcode, ""))
# -- Rubika ------------------------------------------------------------------------------------


RUBIKA_CHAT = "b0tableChat"


def rubika(env: Env, base_url: str | None = None) -> RubikaStandin:
    server = RubikaStandin().start()
    env.request.addfinalizer(server.stop)
    server.add_bot(RUBIKA_TOKEN)
    server.chats.add(RUBIKA_CHAT)
    outbound.register(rubika_sender(env, base_url or server.base_url))
    return server


def rubika_sender(env: Env, url: str) -> RubikaSender:
    sender = RubikaSender([RubikaBot(name="shop", token=RUBIKA_TOKEN, base_url=url,
                                     timeout_s=2.0)], sessions=env.db)
    env.request.addfinalizer(sender.close)
    return sender


def rubika_reply(env: Env, chat: str | None = RUBIKA_CHAT, body: str = "سفارش شما ارسال شد"
                 ) -> int:
    """An approved reply to a customer who wrote to bot ``shop`` from ``chat``."""
    rid = env.approved(Channel.RUBIKA, body=body)
    with env.db() as s, s.begin():
        msg = s.scalars(select(Message).join(Reply, Reply.conversation_id
                                             == Message.conversation_id)
                        .where(Reply.id == rid)).one()
        msg.recipient, msg.meta = "shop", {"chat_id": chat} if chat else {}
    return rid


def rubika_unreachable(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    server = rubika(env, base_url=f"http://127.0.0.1:{closed_port()}/v3")
    rid = rubika_reply(env)
    env.not_sent_then_once(rid, lambda: len(server.sent), fix=lambda: outbound.register(
        rubika_sender(env, server.base_url)))


def rubika_fault(kind: str, value: float = 0) -> Case:
    def case(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
        server = rubika(env)
        rid = rubika_reply(env)
        server.fail_next("sendMessage", kind, value)
        sent = lambda: len(server.sent)  # noqa: E731
        if kind.startswith("invalid_"):
            env.refused(rid, kind.upper(), sent)
        else:
            env.not_sent_then_once(rid, sent)
    return case


def rubika_no_chat(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    server = rubika(env)
    rid = rubika_reply(env, chat=None)
    env.refused(rid, "has no Rubika chat with bot shop", lambda: len(server.sent))
    assert server.calls == []


def rubika_unknown(kind: str, value: float, *, after_send: bool) -> Case:
    def case(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
        server = rubika(env)
        rid = rubika_reply(env)
        server.fail_next("sendMessage", kind, value, after_send=after_send)
        assert dispatch_reply(env.db, rid) == "failed"
        r = env.reply(rid)
        assert r.state == RS.FAILED and "Rubika may have sent the message" in (r.error or "")
        assert (r.error or "").endswith("check with the customer before resending")
        assert dispatch_reply(env.db, rid) == "skipped"
        assert reconcile_stale_sending(env.db, older_than=STALE) == 0
        assert len(server.sent) == (1 if after_send or kind == "slow" else 0)
        assert server.calls.count("sendMessage") == 1
    return case


def rubika_partly_sent(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    server = rubika(env)
    rid = rubika_reply(env, body="a" * 5000)  # two messages
    server.fail_next("sendMessage", "ok")
    server.fail_next("sendMessage", "invalid_input")
    env.refused(rid, "partly sent: parts 1-1 of 2", lambda: len(server.sent), expect_sent=1)


Case = Callable[[Env, pytest.MonkeyPatch], None]
SCENARIOS: dict[str, dict[str, Case]] = {
    "own-error-before-call": {"sms-limiter-redis-down": own_error_redis_down},
    "smtp-unreachable": {"disconnect-at-mail": smtp_case("MAIL", "drop"),
                         "timeout-at-rcpt": smtp_case("RCPT", "stall:2")},
    "smtp-4xx": {"451-at-rcpt": smtp_case("RCPT", "451 4.3.0 Temporary lookup failure"),
                 "451-after-data": smtp_case("DATA", "451 4.7.1 Greylisted, try again")},
    "smtp-5xx": {"550-at-rcpt": smtp_case("RCPT", "550 5.1.1 User unknown"),
                 "554-after-data": smtp_case("DATA", "554 5.7.1 Message rejected as spam")},
    "smtp-answer-lost": {"drop-after-data": smtp_answer_lost},
    "sms-unreachable": {"refused": sms_unreachable},
    "sms-over-rate": {"limit-1": sms_over_rate},
    "sms-busy": {"http-502": sms_busy},
    "sms-refused": {"418": sms_refused},
    "sms-answer-lost": {"slow": sms_answer_lost},
    "tg-unreachable": {"refused": tg_unreachable},
    "tg-429": {"retry-after-2": tg_fault("retry_after", 2)},
    "tg-other-4xx": {"429-no-retry-after": tg_fault("status", 429)},
    "tg-refused": {"blocked": tg_fault("blocked", 0),
                   "chat-not-found": tg_fault("chat_not_found", 0)},
    "tg-5xx": {
        "json-502-after-send": tg_unknown(Channel.TELEGRAM, "server_error", 502,
                                          after_send=True),
        "html-502-after-send": tg_unknown(Channel.TELEGRAM, "proxy_error", 502,
                                          after_send=True),
        "json-500-before-send": tg_unknown(Channel.TELEGRAM, "server_error", 500,
                                           after_send=False),
        "bale-json-502-after-send": tg_unknown(Channel.BALE, "server_error", 502,
                                               after_send=True),
    },
    "tg-answer-lost": {"slow": tg_unknown(Channel.TELEGRAM, "slow", 3.0, after_send=False),
                       "drop-after-send": tg_unknown(Channel.TELEGRAM, "drop", 0,
                                                     after_send=True)},
    "tg-partly-sent": {"second-part-blocked": tg_partly_sent},
    "api-unreachable": {"refused": api_case(None)},
    "api-busy": {"503": api_case({"kind": "http", "value": 503}),
                 "429-retry-after-4": api_case({"kind": "http", "value": 429,
                                                "retry_after": "4"}, retry_after_s=4.0)},
    "api-answer-lost": {"slow-after-taking-it": api_case({"kind": "slow", "value": 0.8}),
                        "drop": api_case({"kind": "drop"})},
    "api-refused": {"422": api_case({"kind": "http", "value": 422}, refused="HTTP 422"),
                    "301": api_case({"kind": "http", "value": 301}, refused="HTTP 301")},
    "meta-unreachable": {"refused": meta_unreachable},
    "meta-rate": {"wa-130429": meta_fault(Channel.WHATSAPP, 400, 130429),
                  "ig-4": meta_fault(Channel.INSTAGRAM, 400, 4)},
    "meta-transient": {"wa-2": meta_fault(Channel.WHATSAPP, 503, 2)},
    "meta-refused": {"wa-131047": meta_fault(Channel.WHATSAPP, 400, 131047),
                     "ig-10-2018278": meta_fault(Channel.INSTAGRAM, 400, 10, 2018278),
                     "ig-190": meta_fault(Channel.INSTAGRAM, 401, 190)},
    "meta-5xx": {"html-502": meta_fault(Channel.WHATSAPP, 502, None)},
    "meta-answer-lost": {"slow": meta_answer_lost},
    "rubika-unreachable": {"refused": rubika_unreachable},
    "rubika-busy": {"too-requests": rubika_fault("too_requests"),
                    "proxy-403": rubika_fault("http", 403)},
    "rubika-refused": {"invalid-input": rubika_fault("invalid_input"),
                       "invalid-access": rubika_fault("invalid_access")},
    "rubika-no-chat": {"never-wrote": rubika_no_chat},
    "rubika-5xx": {
        "json-500-after-send": rubika_unknown("server_error", 500, after_send=True),
        "html-502-before-send": rubika_unknown("proxy_error", 502, after_send=False),
    },
    "rubika-answer-lost": {"slow": rubika_unknown("slow", 3.0, after_send=False),
                           "drop-after-send": rubika_unknown("drop", 0, after_send=True)},
    "rubika-partly-sent": {"second-refused": rubika_partly_sent},
}


def test_every_row_of_the_table_has_a_case_and_every_case_a_row() -> None:
    assert list(SCENARIOS) == [r.id for r in RULES]
    assert all(SCENARIOS.values())
    assert len(table().splitlines()) == len(RULES)


@pytest.mark.parametrize(("rule", "case"), [
    pytest.param(rule, case, id=f"{rule}:{case}")
    for rule, cases in SCENARIOS.items() for case in cases])
def test_rule(env: Env, monkeypatch: pytest.MonkeyPatch, rule: str, case: str) -> None:
    outcome = next(r.outcome for r in RULES if r.id == rule)
    assert outcome in ("not_sent", "refused", "unknown")
    SCENARIOS[rule][case](env, monkeypatch)


def test_the_sms_limiter_of_the_fleet_is_on_redis(monkeypatch: pytest.MonkeyPatch,
                                                  settings: object) -> None:
    # The Redis row above uses the production limiter, not a stand-in for it.
    monkeypatch.setenv("KARTABL_BROKER", "redis")
    get_settings.cache_clear()
    limiter = sms_limiter(Env.sms_config("http://127.0.0.1:9"))
    assert isinstance(limiter.backend, RedisBackend)
