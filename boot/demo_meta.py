"""The demo's Instagram and WhatsApp: the real webhook and senders against the Graph API
stand-in (:mod:`channels.meta.standin`).

:meth:`DemoMeta.start` starts the stand-in with one Instagram account and one WhatsApp
number, with random tokens and app secret (never logged), and builds the ``[meta]`` section
pointing at it. A demo customer's message is a webhook event the stand-in signs with the
app secret and posts to the console's real ``/webhooks/meta`` (so it goes through the
signature check, the parser and ingest as Meta's would); an approved reply leaves by the
real :class:`responders.meta.MetaSender`, and a moment later the stand-in reports a sent
WhatsApp message delivered, then read, to the webhook, as WhatsApp does.
"""

from __future__ import annotations

import itertools
import logging
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from pydantic import SecretStr

from channels.meta.standin import (
    GraphStandin,
    Sent,
    instagram_event,
    whatsapp_event,
    whatsapp_status,
)
from config.meta import InstagramAccount, MetaConfig, WhatsAppNumber
from kartabl.models import Channel

log = logging.getLogger("kartabl.demo")

IG_ACCOUNT = "17841400000000777"  # the demo's Instagram professional account
WA_NUMBER = "106540352240777"  # the demo's WhatsApp phone_number_id
STATUS_AFTER_S = 2.0  # how long "WhatsApp" takes to report a sent message delivered
STATUS_ATTEMPTS = 5  # a status the webhook did not take is posted again, as Meta does


def _post(url: str, *, content: bytes, headers: dict[str, str]) -> httpx.Response:
    return httpx.post(url, content=content, headers=headers, timeout=10.0)


@dataclass
class DemoMeta:
    standin: GraphStandin
    config: MetaConfig
    webhook_url: str = ""
    post: Callable[..., Any] = _post
    pending: list[dict[str, Any]] = field(default_factory=list)  # before the console served
    _timers: list[threading.Timer] = field(default_factory=list)
    _stopped: threading.Event = field(default_factory=threading.Event)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    @classmethod
    def start(cls) -> DemoMeta:
        standin = GraphStandin().start()
        ig_token, wa_token = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
        standin.add_account(IG_ACCOUNT, ig_token)
        standin.add_account(WA_NUMBER, wa_token)
        config = MetaConfig(
            app_secret=SecretStr(secrets.token_urlsafe(24)),
            verify_token=SecretStr(secrets.token_urlsafe(24)), graph_url=standin.graph_url,
            instagram=[InstagramAccount(id=IG_ACCOUNT, name="demo",
                                        access_token=SecretStr(ig_token))],
            whatsapp=[WhatsAppNumber(phone_number_id=WA_NUMBER, name="demo",
                                     access_token=SecretStr(wa_token))],
            connect_timeout_s=2.0, timeout_s=5.0)
        demo = cls(standin, config)
        standin.on_sent = demo._report_statuses
        log.info("demo channels: Instagram and WhatsApp by a Graph API stand-in at %s",
                 standin.origin)
        return demo

    def serve(self, host: str, port: int) -> None:
        """Post the customers' events to the console's webhook at ``host:port``."""
        self.webhook_url = f"http://{host}:{port}/webhooks/meta"

    def customer_writes(self, channel: Channel, name: str, address: str, text: str) -> None:
        n = next(self._ids)
        if channel is Channel.INSTAGRAM:
            event = instagram_event(IG_ACCOUNT, address, f"demo-ig-{secrets.token_hex(8)}", text)
        else:
            event = whatsapp_event(WA_NUMBER, address.lstrip("+"),
                                   f"wamid.DEMO{secrets.token_hex(10).upper()}", text, name=name)
        if not self.webhook_url:  # kept, and posted once the console serves
            log.info("demo %s message %d waits for the console's webhook", channel.value, n)
            self.pending.append(event)
            return
        while self.pending:
            self._deliver(self.pending.pop(0))
        answer = self._deliver(event)
        log.info("demo customer %s writes on %s (webhook answered %s)", address, channel.value,
                 getattr(answer, "status_code", "?"))

    def _deliver(self, event: dict[str, Any]) -> Any:
        try:
            return self.standin.deliver(self.post, self.webhook_url, event,
                                        self.config.app_secret.get_secret_value())
        except httpx.HTTPError as exc:
            log.warning("demo webhook not delivered: %s", type(exc).__name__)
            return None

    def _report_statuses(self, sent: Sent) -> None:
        if sent.account != WA_NUMBER or not self.webhook_url:
            return  # Instagram reports no delivery

        def report() -> None:
            for status in ("delivered", "read"):
                event = whatsapp_status(WA_NUMBER, sent.message_id, status, sent.recipient)
                # As Meta does, again later when the answer is not 200 (a 503 while another
                # WhatsApp reply is being sent: channels/meta/statuses.py), a few times here
                for _attempt in range(STATUS_ATTEMPTS):
                    if self._stopped.is_set():
                        return
                    answer = self._deliver(event)
                    if getattr(answer, "status_code", None) == 200:
                        break
                    self._stopped.wait(STATUS_AFTER_S)

        timer = threading.Timer(STATUS_AFTER_S, report)
        timer.daemon = True
        self._timers = [t for t in self._timers if t.is_alive()] + [timer]
        timer.start()

    def stop(self) -> None:
        """No more reports (a pending one is cancelled, a running one finishes), then the
        stand-in stops."""
        self._stopped.set()
        self.standin.on_sent = None
        for timer in self._timers:
            timer.cancel()
            timer.join(timeout=10)
        self.standin.stop()
