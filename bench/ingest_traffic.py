"""The ingest bench's traffic, as the providers send it: raw MIME mail (as IMAP hands it to
the poller), Telegram and Bale updates (the webhook's JSON body) and Kavenegar receive
callbacks (the webhook's form body). Nothing here builds an ``InboundMessage``: the
channels' own entry points do (:mod:`bench.ingest_feed`).

Per channel message, a share of it refers to an earlier one: an email's ``In-Reply-To``
(and ``References``) names our earlier reply's Message-ID when the customer has one (a
signed reply token, found by the router), else the customer's own earlier mail (not ours:
looked up and not found); a Telegram / Bale update carries ``reply_to_message``, naming our
earlier reply's message id when there is one. A share of the mail is automatic: out-of-office
auto-replies (``Auto-Submitted: auto-replied``) and DSN bounces (``multipart/report``), the
bounces naming our earlier reply when the customer has one (which fails that reply).
"""

from __future__ import annotations

import dataclasses
import json
import random
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage
from urllib.parse import urlencode

from bench.corpus import ENGLISH, PERSIAN, Person

OUR_ADDRESS = "support@kartabl.example"
SMS_LINE = "10004000"
BOTS = {"telegram": "bench", "bale": "benchbale"}  # the bots' names (bench.ingest_feed)
REFERENCE_SHARE = 0.25  # of customer mail and messenger messages
AUTO_REPLY_SHARE = 0.05  # of mail
BOUNCE_SHARE = 0.03  # of mail


@dataclass(frozen=True, slots=True)
class History:
    """What a customer received from us before the run, per channel: the Message-ID of our
    reply (email) or the Bot API message id of our reply (telegram, bale)."""

    email: str | None = None
    telegram: int | None = None
    bale: int | None = None


@dataclass(frozen=True, slots=True)
class Raw:
    channel: str  # email | sms | telegram | bale
    body: bytes  # the mail, the update's JSON, the callback's form
    kind: str  # message | auto_reply | bounce
    reference: str  # "" | "ours" (names our earlier reply) | "other" (names something else)
    who: str = ""  # "<person>:<channel>": whose conversation it continues


def traffic(persons: list[Person], n: int, *, phase: int, history: dict[int, History],
            seed: int) -> list[Raw]:
    """``n`` raw inputs from ``persons``; ``phase`` (1, 2, ...) keeps ids unique across
    the bench's phases."""
    rnd = random.Random(seed)
    out: list[Raw] = []
    for k in range(n):
        p = rnd.choice(persons)
        ch = rnd.choice(sorted(p.addresses))
        text = rnd.choice(PERSIAN if rnd.random() < 0.7 else ENGLISH)
        uid = phase * 10_000_000 + k
        past = history.get(p.idx, History())
        if ch == "email":
            raw = _mail(rnd, p, uid, text, past.email)
        elif ch == "sms":
            form = {"from": p.addresses["sms"], "message": text, "to": SMS_LINE,
                    "messageid": str(uid)}
            raw = Raw("sms", urlencode(form).encode(), "message", "")
        else:
            ours = past.telegram if ch == "telegram" else past.bale
            raw = _update(rnd, p, ch, uid, text, ours)
        out.append(dataclasses.replace(raw, who=f"{p.idx}:{ch}" if raw.kind != "bounce" else ""))
    return out


def _update(rnd: random.Random, p: Person, channel: str, uid: int, text: str,
            ours: int | None) -> Raw:
    user = int(p.addresses[channel])
    first, _, last = p.name.partition(" ")
    msg: dict[str, object] = {
        "message_id": uid % 1_000_000 + 1000, "date": 1_764_000_000 + uid % 1_000_000,
        "chat": {"id": user, "type": "private"},
        "from": {"id": user, "is_bot": False, "first_name": first, "last_name": last},
        "text": text,
    }
    reference = ""
    if rnd.random() < REFERENCE_SHARE:
        reference = "ours" if ours is not None else "other"
        answered = ours if ours is not None else uid % 1_000_000 + 999
        msg["reply_to_message"] = {"message_id": answered, "date": 1_763_000_000,
                                   "chat": {"id": user, "type": "private"}}
    body = json.dumps({"update_id": uid, "message": msg}, ensure_ascii=False).encode()
    return Raw(channel, body, "message", reference)


def _mail(rnd: random.Random, p: Person, uid: int, text: str, ours: str | None) -> Raw:
    r = rnd.random()
    if r < BOUNCE_SHARE:
        return Raw("email", _bounce(uid, ours or f"<gone-{uid}@kartabl.example>"), "bounce",
                   "ours" if ours else "other")
    msg = EmailMessage()
    msg["From"] = f"{p.name} <{p.addresses['email']}>"
    msg["To"] = f"Support <{OUR_ADDRESS}>"
    msg["Date"] = "Tue, 02 Dec 2025 10:30:00 +0330"
    msg["Message-ID"] = f"<m{uid}.{p.idx}@mail.example.ir>"
    kind, reference = "message", ""
    if r < BOUNCE_SHARE + AUTO_REPLY_SHARE:
        kind = "auto_reply"
        msg["Auto-Submitted"] = "auto-replied"
        msg["Subject"] = "Out of office / خارج از دفتر"
        body = "I am away until Monday. / تا دوشنبه در دسترس نیستم."
        if ours:
            msg["In-Reply-To"], reference = ours, "ours"
    else:
        msg["Subject"] = ("Re: " if rnd.random() < 0.5 else "") + text[:40]
        body = text
        if rnd.random() < REFERENCE_SHARE:
            # Our reply when there was one; else the customer's own earlier mail, which is
            # not ours and is looked up in vain.
            parent = ours or f"<m{uid - 1}.{p.idx}@mail.example.ir>"
            msg["In-Reply-To"], msg["References"] = parent, parent
            reference = "ours" if ours else "other"
            body += ("\n\nOn Mon, 1 Dec 2025 Support <support@kartabl.example> wrote:\n"
                     "> سفارش شما ارسال شد\n")
    msg.set_content(body)
    if rnd.random() < 0.3:
        msg.add_alternative(f'<div dir="auto">{body.splitlines()[0]}</div>'
                            '<div class="gmail_quote"><blockquote>earlier</blockquote></div>',
                            subtype="html")
    return Raw("email", msg.as_bytes(policy=policy.SMTP), kind, reference)


def _bounce(uid: int, original: str) -> bytes:
    b = f"b{uid}"
    return (
        f"From: MAILER-DAEMON@mx.example.net\r\nTo: {OUR_ADDRESS}\r\n"
        f"Subject: Undelivered Mail Returned to Sender\r\nReturn-Path: <>\r\n"
        f"Date: Thu, 4 Dec 2025 11:00:00 +0000\r\nMessage-ID: <dsn-{uid}@mx.example.net>\r\n"
        f"MIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status;"
        f' boundary="{b}"\r\n\r\n'
        f"--{b}\r\nContent-Type: text/plain\r\n\r\nYour message could not be delivered.\r\n"
        f"--{b}\r\nContent-Type: message/delivery-status\r\n\r\n"
        f"Reporting-MTA: dns; mx.example.net\r\n\r\nFinal-Recipient: rfc822; gone{uid}@"
        f"example.net\r\nAction: failed\r\nStatus: 5.1.1\r\nDiagnostic-Code: smtp; 550 5.1.1 "
        f"unknown\r\n\r\n--{b}\r\nContent-Type: text/rfc822-headers\r\n\r\n"
        f"From: {OUR_ADDRESS}\r\nTo: gone{uid}@example.net\r\nSubject: Re: x\r\n"
        f"Message-ID: {original}\r\n\r\n--{b}--\r\n"
    ).encode()
