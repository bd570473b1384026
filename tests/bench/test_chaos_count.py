"""The counters of ``make chaos`` can fail: a reply sent twice is found at each stand-in by
its idempotency key (sent to them over real connections), and a lost, duplicated or twice
routed inbound message is found in the database."""

from __future__ import annotations

import smtplib
import urllib.parse
import urllib.request
from email.message import EmailMessage
from types import SimpleNamespace
from typing import cast

from sqlalchemy.orm import Session, sessionmaker

from bench import chaos_count
from bench.chaos_env import Deployment
from bench.chaos_load import Replies, Sent
from channels.sms.standin import KavenegarStandin
from channels.telegram.standin import BotApiStandin
from kartabl.models import Channel, Direction, Event, Message, utcnow
from tests.responders import smtp_server as smtp

TOKEN = "77:count-token"


def _post(url: str, form: dict[str, str]) -> None:
    data = urllib.parse.urlencode(form).encode()
    with urllib.request.urlopen(urllib.request.Request(url, data=data), timeout=5):
        pass


def _deployment(db: sessionmaker[Session], times: int) -> tuple[Deployment, Replies]:
    kv, tg, mail = KavenegarStandin(api_key="k").start(), BotApiStandin().start(), smtp.start()
    tg.add_bot(TOKEN, "count_bot")
    replies = Replies(approved={1: ("telegram", "chaos-out-1"), 2: ("sms", "chaos-out-2"),
                                3: ("email", "chaos-out-3")})
    for n in range(times):
        _post(f"{tg.base_url}{TOKEN}/sendMessage", {"chat_id": "5", "text": "ok chaos-out-1"})
        # A resend under another localid passes Kavenegar's guard: found by the marker
        _post(f"{kv.base_url}/v1/k/sms/send.json",
              {"receptor": "09120000000", "message": "ok chaos-out-2", "localid": f"2-{n}"})
        msg = EmailMessage()
        msg["From"], msg["To"], msg["Subject"] = "s@kartabl.example", "c@example.ir", "Re"
        msg["Message-ID"] = "<kartabl.3.abc@kartabl.example>"
        msg.set_content("ok chaos-out-3")
        with smtplib.SMTP("127.0.0.1", mail.port, timeout=5) as client:
            client.send_message(msg)
    dep = SimpleNamespace(db=db, kavenegar=kv, bot_api=tg, smtp=mail)
    return cast(Deployment, dep), replies


def test_a_reply_sent_twice_is_counted_at_every_stand_in(db: sessionmaker[Session]) -> None:
    for times, expected in ((1, 0), (2, 3)):
        dep, replies = _deployment(db, times)
        try:
            fig = chaos_count.Figures()
            chaos_count.outbound(dep, replies, fig)
        finally:
            dep.smtp.controller.stop()
            dep.bot_api.stop()
            dep.kavenegar.stop()
        assert fig.double_sent == expected, fig.details
    assert {"telegram sent twice: replies [1]", "sms sent twice: replies [2]",
            "email sent twice: replies [3]"} <= set(fig.details)


def test_lost_duplicated_and_twice_routed_messages_are_counted(
    db: sessionmaker[Session],
) -> None:
    sent = Sent(keys={"chaos-in-1": "sms", "chaos-in-2": "telegram", "chaos-in-3": "sms",
                      "<m@x>-0": "email"})
    now = utcnow()
    with db() as s:
        rows = [Message(channel=ch, external_id=ext, direction=Direction.IN, sender="+98912",
                        text=text, received_at=now, created_at=now, routed_at=now)
                for ch, ext, text in [
                    (Channel.SMS, "kv:1", "hi chaos-in-1"),
                    (Channel.TELEGRAM, "shop:1", "hi chaos-in-2"),  # stored twice
                    (Channel.TELEGRAM, "shop:2", "hi chaos-in-2"),
                    (Channel.EMAIL, "<m@x>-0", "mail")]]  # chaos-in-3: never stored
        s.add_all(rows)
        s.flush()
        s.add_all([Event(kind="message.routed", message_id=rows[0].id) for _ in range(2)])
        s.commit()
    fig = chaos_count.Figures()
    chaos_count.inbound(cast(Deployment, SimpleNamespace(db=db)), sent, fig)
    assert (fig.chaos_in, fig.lost, fig.duplicated, fig.double_routed) == (4, 1, 1, 1)
    assert fig.unrouted == 0 and fig.worst_route_delay_s == 0
    assert "lost: ['chaos-in-3']" in fig.details
