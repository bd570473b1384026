"""The demo's SMS, Telegram, Bale, Rubika and API channel: the real adapters against their
local stand-ins.

``kartabl run --demo`` with no channels file starts, in this process, a Kavenegar stand-in
(:mod:`channels.sms.standin`), a Bot API stand-in (:mod:`channels.telegram.standin`)
with one Telegram bot and one Bale bot, and a Rubika stand-in (:mod:`channels.rubika.standin`)
with one polling bot, and builds a :class:`ChannelsConfig` in memory that
points the ``[sms]`` section and both bots at them. Everything else is the production path:

- a demo customer's SMS is put into the stand-in, and reaches Kartabl by the real
  :mod:`channels.sms.poller` and, about half the time, *also* by the real receive callback of the
  console (so the log shows the same SMS twice and stored once);
- a Telegram or Bale message is an update queued on the stand-in, fetched by the real
  :mod:`channels.telegram.poller` (polling mode: the demo needs no public URL); a Rubika
  message likewise, by the real :mod:`channels.rubika.poller`;
- approved replies leave by the real :class:`KavenegarSender` and :class:`TelegramSender`;
  the Kavenegar stand-in reports a sent SMS delivered a moment later (now and then failed),
  so the sweep's delivery polling moves the reply on as it would with Kavenegar.

- an API channel's user (``demo-shop``) writes through the external system's stand-in
  (:mod:`channels.api.standin`), which signs and POSTs to the console's real webhook; the
  reply comes back to it by the real :class:`ApiChannelSender`, and it reports the reply
  delivered a moment later by the signed status callback.

Email stays on the sandbox sender. The API key, the bot tokens and the callback secret are
random per run and never logged: the adapters register them with their redaction filters.
A configured channels file wins: then no stand-in starts (:func:`start_unless_configured`).
"""

from __future__ import annotations

import itertools
import logging
import random
import secrets
import threading
from dataclasses import dataclass, field

from fastapi import FastAPI
from pydantic import SecretStr

from boot.demo_meta import DemoMeta
from channels.api.standin import ApiSystemStandin
from channels.rubika.standin import RubikaStandin
from channels.rubika.standin import text_update as rubika_update
from channels.sms.standin import KavenegarStandin
from channels.telegram.standin import BotApiStandin
from channels.telegram.standin_wire import text_update
from config.api_channel import ApiChannelConfig
from config.channels import ChannelsConfig
from config.rubika import RubikaBot, RubikaConfig
from config.settings import Settings
from config.sms import SmsConfig
from config.telegram import BotConfig, TelegramConfig
from kartabl.models import Channel
from router.identity import identity_for

log = logging.getLogger("kartabl.demo")

LINE = "10008663"  # the demo's Kavenegar line: customers text it, replies leave from it
BOTS = {  # channel: (bot name in the config, its username on the stand-in, its numeric id)
    Channel.TELEGRAM: ("demo-telegram", "kartabl_demo_bot", 6100001),
    Channel.BALE: ("demo-bale", "kartabl_demo_bale_bot", 6200001),
}
RUBIKA_BOT = "demo-rubika"  # the demo's Rubika bot (polling, on the Rubika stand-in)
DELIVER_AFTER_S = 2.0  # how long the stand-in's "carrier" takes to report a sent SMS
FAIL_RATIO = 0.05  # the share of sent SMS it reports failed: the coordinator sees a few
CALLBACK_SHARE = 0.5  # the share of inbound SMS that also come by the receive callback
API_CHANNEL = "demo-shop"  # the demo's generic API channel: a shop's backend


def national(phone_e164: str) -> str:
    """How Kavenegar shows an Iranian sender: 09121234567, not +989121234567."""
    return "0" + phone_e164.removeprefix("+98") if phone_e164.startswith("+98") else phone_e164


@dataclass
class DemoChannels:
    kavenegar: KavenegarStandin
    bot_api: BotApiStandin
    config: ChannelsConfig
    rubika: RubikaStandin | None = None
    rnd: random.Random = field(default_factory=random.Random)
    meta: DemoMeta | None = None  # Instagram and WhatsApp (boot.demo_meta)
    _chat_message_ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    api_system: ApiSystemStandin | None = None  # the demo API channel's external system

    @classmethod
    def start(cls, *, poll_interval_s: float = 1.0, deliver_after_s: float = DELIVER_AFTER_S,
              fail_ratio: float = FAIL_RATIO, seed: int | None = None) -> DemoChannels:
        """Start both stand-ins and build the in-memory channels config pointing at them
        (nothing is installed or polled yet: the ``run`` process boots with :attr:`config`, and
        starts a poller per source of it, as of any channels file: :mod:`channels.polled`)."""
        api_key = "demo-" + secrets.token_urlsafe(16)
        kavenegar = KavenegarStandin(api_key, deliver_after_s=deliver_after_s,
                                     fail_ratio=fail_ratio, seed=seed, announce=True).start()
        bot_api = BotApiStandin(announce=True).start()
        bots = []
        for channel, (name, username, bot_id) in BOTS.items():
            token = f"{bot_id}:{secrets.token_urlsafe(24)}"
            bot_api.add_bot(token, username)
            bots.append(BotConfig(
                name=name, kind="bale" if channel is Channel.BALE else "telegram",
                token=SecretStr(token), base_url=bot_api.base_url, mode="polling",
                poll_timeout_s=1,  # the stand-in long-polls briefly: Ctrl-C stays quick
                timeout_s=5.0,
            ))
        sms = SmsConfig(
            api_key=SecretStr(api_key), base_url=kavenegar.base_url, line=LINE,
            webhook_secret=SecretStr(secrets.token_urlsafe(24)), poll=True,
            poll_interval_s=poll_interval_s, connect_timeout_s=2.0, timeout_s=5.0,
        )
        api_secret = secrets.token_urlsafe(32)
        api_system = ApiSystemStandin(api_secret, channel=API_CHANNEL,
                                      deliver_after_s=deliver_after_s, announce=True).start()
        api = ApiChannelConfig(name=API_CHANNEL, secret=SecretStr(api_secret),
                               callback_url=api_system.callback_url, timeout_s=5.0)
        meta = DemoMeta.start()
        rubika = RubikaStandin(announce=True).start()
        rubika_token = secrets.token_urlsafe(32)
        rubika.add_bot(rubika_token, "Kartabl demo")
        rubika_bot = RubikaBot(name=RUBIKA_BOT, token=SecretStr(rubika_token),
                               base_url=rubika.base_url, poll_interval_s=poll_interval_s,
                               timeout_s=5.0)
        config = ChannelsConfig(sms=sms, telegram=TelegramConfig(bots=bots), api=[api],
                                meta=meta.config, rubika=RubikaConfig(bots=[rubika_bot]))
        log.info("demo channels: SMS by a Kavenegar stand-in at %s (line %s); Telegram bot "
                 "@%s and Bale bot @%s on a Bot API stand-in at %s", kavenegar.base_url,
                 LINE, BOTS[Channel.TELEGRAM][1], BOTS[Channel.BALE][1],
                 bot_api.base_url.removesuffix("/bot"))
        log.info("demo channels: Rubika bot %s on a Rubika stand-in at %s", RUBIKA_BOT,
                 rubika.origin)
        return cls(kavenegar, bot_api, config, rubika, rnd=random.Random(seed), meta=meta,
                   api_system=api_system)

    @property
    def sms_config(self) -> SmsConfig:
        assert self.config.sms is not None  # built with one in start()
        return self.config.sms

    # -- Kartabl's side: the real senders and pollers ----------------------------------------

    def serve_callback(self, app: FastAPI, web_host: str, web_port: int) -> None:
        """Let the console's real receive callback (``/webhooks/sms/receive/<secret>``)
        take the stand-in's callbacks. The webhooks read the channels the app was made with;
        the demo's live in memory, so they replace them."""
        app.state.channels = self.config
        host = "127.0.0.1" if web_host in ("0.0.0.0", "::", "") else web_host  # noqa: S104
        secret = self.sms_config.webhook_secret.get_secret_value()
        self.kavenegar.callback_url = f"http://{host}:{web_port}/webhooks/sms/receive/{secret}"
        if self.api_system is not None:
            self.api_system.kartabl_url = f"http://{host}:{web_port}"
        if self.meta is not None:
            self.meta.serve(host, web_port)

    # -- the customers' side ------------------------------------------------------------------

    def customer_writes(self, channel: Channel, name: str, address: str, text: str) -> None:
        """A demo customer writes on ``channel`` from ``address`` (as in demo.CUSTOMERS)."""
        if channel is Channel.SMS:
            self.customer_texts(address, text)
        elif channel is Channel.API:
            self.customer_posts(address, name, text)
        elif channel in (Channel.INSTAGRAM, Channel.WHATSAPP) and self.meta is not None:
            self.meta.customer_writes(channel, name, address, text)
        elif channel is Channel.RUBIKA:
            self.customer_writes_on_rubika(address, text)
        else:
            self.customer_messages(channel, address, name, text)

    def customer_texts(self, phone: str, text: str, *, via: str | None = None) -> None:
        """An SMS to our line: always in the receive queue (the poller's path); about half
        the time also POSTed to the callback, as Kavenegar does when both are set up."""
        if via is None:
            via = "both" if self.rnd.random() < CALLBACK_SHARE else "queue"
        if not self.kavenegar.callback_url:
            via = "queue"
        _, e164 = identity_for(Channel.SMS, phone)
        try:
            entry = self.kavenegar.inbound(national(e164), text, LINE, via=via)
        except OSError as exc:  # the console is not serving yet: the queue still has it
            log.warning("demo SMS callback not delivered (%s); the poller will fetch it",
                        type(exc).__name__)
            return
        log.info("demo customer %s texts line %s (SMS %s, by %s)", national(e164), LINE,
                 entry["messageid"], "callback and polling" if via == "both" else "polling")
        if entry.get("callback_status", 200) != 200:
            log.warning("demo SMS callback answered %s; the poller will fetch it",
                        entry["callback_status"])

    def customer_messages(self, channel: Channel, user_id: str, name: str, text: str) -> None:
        """A private-chat message from Telegram or Bale user ``user_id`` to the demo bot."""
        first, _, last = name.partition(" ")
        bot = next(b for b in self.config.telegram.of_channel(channel))
        update = self.bot_api.add_update(bot.token.get_secret_value(), text_update(
            int(user_id), text, first_name=first, last_name=last,
            message_id=next(self._chat_message_ids)))
        log.info("demo customer %s writes to %s bot @%s (update %s)", user_id, channel.value,
                 BOTS[channel][1], update["update_id"])

    def customer_posts(self, address: str, name: str, text: str) -> None:
        """A user of the demo shop writes: its system signs and POSTs the message to the
        console's webhook (``address`` is ``demo-shop:<user id>``)."""
        system = self.api_system
        if system is None or not system.kartabl_url:
            log.warning("demo API message dropped: the console is not serving yet")
            return
        channel, _, user_id = address.partition(":")
        key = f"demo-{secrets.token_hex(6)}"
        try:
            answer = system.send(system.kartabl_url, channel, {
                "idempotency_key": key, "user": {"id": user_id, "name": name}, "text": text})
        except OSError as exc:
            log.warning("demo API message not delivered (%s)", type(exc).__name__)
            return
        log.info("demo shop user %s writes through the API channel %s (message %s: HTTP %s)",
                 user_id, channel, key, answer.status_code)
    def customer_writes_on_rubika(self, user_id: str, text: str) -> None:
        """A message from Rubika user ``user_id`` to the demo's Rubika bot (in their private
        chat with it, whose id the stand-in derives from theirs)."""
        assert self.rubika is not None  # started with the others
        (bot,) = self.config.rubika.bots
        chat = "b0" + user_id.removeprefix("u0")
        message_id = str(next(self._chat_message_ids))
        self.rubika.add_update(bot.token.get_secret_value(),
                               rubika_update(chat, user_id, text, message_id=message_id))
        log.info("demo customer %s writes to Rubika bot %s (message %s)", user_id,
                 RUBIKA_BOT, message_id)

    # -- shutdown -------------------------------------------------------------------------------

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop the stand-ins (after the pollers, senders and sweeps using them stopped)."""
        # Side by side: each server's shutdown waits out its serve_forever poll (0.5 s).
        stops = [self.kavenegar.stop, self.bot_api.stop,
                 *([self.meta.stop] if self.meta is not None else []),
                 *([self.api_system.stop] if self.api_system is not None else []),
                 *([self.rubika.stop] if self.rubika is not None else [])]
        stopping = [threading.Thread(target=stop, name="standin-stop") for stop in stops]
        for thread in stopping:
            thread.start()
        for thread in stopping:
            thread.join(timeout=timeout_s)


def start_unless_configured(settings: Settings) -> DemoChannels | None:
    """The demo's stand-in channels, unless a channels file is configured: real channels
    win, and the demo does not mix stand-ins with them."""
    if settings.channels_file is not None:
        log.info("a channels file is configured (%s): the demo starts no SMS or Telegram "
                 "stand-ins; the configured channels serve", settings.channels_file)
        return None
    return DemoChannels.start(poll_interval_s=min(2.0, settings.demo_interval_s))
