"""``python -m bench.email``: email parsing and ingest throughput against the parse ceiling.

On one generated corpus (``--mails``, default 5,000: Persian and English, utf-8 and
windows-1256, plain and HTML with quoted history, inline images and attachments, some
auto-replies and DSN bounces), in the same run:

a. **ceiling**: ``BytesParser(policy=policy.default).parsebytes`` + ``get_body`` +
   ``get_content``, the least any parser built on the stdlib must do;
b. **parse**: :func:`channels.email.parse` (charsets, quote cutting, sanitised HTML,
   attachments, kind, key);
c. **ingest**: parse + :func:`kartabl.ingest.store_many` in batches (``--batch``) on a
   private PostgreSQL database (idempotent insert + commit; the routing enqueue goes
   nowhere, as no broker is attached, which is what a poller without workers does).

The last line is ``email_parse_msgs_per_s=<b> email_ingest_msgs_per_s=<c>
bytesparser_msgs_per_s=<a> parse_ratio=<b/a>``. Progress goes to stderr.
"""

from __future__ import annotations

import argparse
import base64
import random
import sys
import time
from collections.abc import Callable
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser

from bench.ingest import bench_database

OURS = ("support@kartabl.example",)

PERSIAN = [
    "سلام، سفارش من هنوز نرسیده است. لطفاً پیگیری کنید.",
    "فاكتور خرید را برایم بفرستید، ممنون می‌شوم.",
    "می‌خواهم اشتراکم را تمدید کنم ولی پرداخت انجام نمی‌شود.",
    "رمز عبورم را فراموش کرده‌ام و ایمیل بازیابی نمی‌رسد.",
]
ENGLISH = [
    "Hello, where is my order? It has been two weeks.",
    "Please send the invoice again, the amount on line 3 is wrong.",
    "The app crashes when I log in from my phone.",
]
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4


def say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _customer_mail(rng: random.Random, i: int) -> EmailMessage:
    persian = rng.random() < 0.6
    text = "\n".join(rng.choices(PERSIAN if persian else ENGLISH, k=rng.randint(1, 4)))
    msg = EmailMessage()
    name = "علی رضایی" if persian else "Sara Smith"
    msg["From"] = f"{name} <customer{rng.randint(1, 2000)}@example.com>"
    msg["To"] = "Support <support@kartabl.example>"
    msg["Subject"] = ("Re: پیگیری سفارش " if persian else "Re: Order ") + str(i)
    msg["Date"] = "Tue, 03 Oct 2023 10:30:00 +0330"
    msg["Message-ID"] = f"<bench-{i}-{rng.random():.8f}@example.com>"
    if rng.random() < 0.5:
        msg["In-Reply-To"] = f"<reply-{i}@kartabl.example>"
        msg["References"] = f"<first-{i}@example.com> <reply-{i}@kartabl.example>"
    if persian:
        quote = ("\n\nدر تاریخ دوشنبه ۱۰ مهر ۱۴۰۲ ساعت ۱۲:۰۰ پشتیبانی "
                 "<support@kartabl.example> نوشت:\n> پاسخ قبلی ما\n> " + PERSIAN[0])
    else:
        quote = "\n\nOn Mon, Oct 2, 2023 Support <support@kartabl.example> wrote:\n> Earlier"
    charset = "windows-1256" if persian and rng.random() < 0.3 else "utf-8"
    msg.set_content(text + quote, charset=charset if charset == "utf-8" else "utf-8")
    if charset == "windows-1256":
        # EmailMessage cannot encode to windows-1256 itself: set the bytes by hand.
        msg.set_payload(base64.encodebytes((text + quote).encode("cp1256", "replace")))
        msg.replace_header("Content-Type", 'text/plain; charset="windows-1256"')
        msg.replace_header("Content-Transfer-Encoding", "base64")
    if rng.random() < 0.5:
        html = (f'<div dir="{"rtl" if persian else "ltr"}">' + text.replace("\n", "<br>")
                + '</div><div class="gmail_quote"><blockquote class="gmail_quote">'
                + PERSIAN[1] + "</blockquote></div>")
        if rng.random() < 0.3:
            html += '<img src="cid:logo@bench">'
        msg.add_alternative(html, subtype="html")
        if "cid:logo" in html:
            msg.get_payload()[1].add_related(PNG, maintype="image", subtype="png",
                                             cid="<logo@bench>")
    if rng.random() < 0.2:
        msg.add_attachment(rng.randbytes(rng.randint(2_000, 60_000)), maintype="application",
                           subtype="pdf", filename=f"فاکتور-{i}.pdf")
    if rng.random() < 0.05:
        msg["Auto-Submitted"] = "auto-replied"
    return msg


def _bounce(rng: random.Random, i: int) -> bytes:
    boundary = f"b{i}"
    return (
        f"From: MAILER-DAEMON@mx.example.net\r\nTo: support@kartabl.example\r\n"
        f"Subject: Undelivered Mail Returned to Sender\r\nReturn-Path: <>\r\n"
        f"Date: Thu, 5 Oct 2023 11:00:00 +0000\r\nMessage-ID: <dsn-{i}@mx.example.net>\r\n"
        f"MIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status;"
        f' boundary="{boundary}"\r\n\r\n'
        f"--{boundary}\r\nContent-Type: text/plain\r\n\r\nYour message could not be "
        f"delivered.\r\n--{boundary}\r\nContent-Type: message/delivery-status\r\n\r\n"
        f"Reporting-MTA: dns; mx.example.net\r\n\r\nFinal-Recipient: rfc822; gone{i}@"
        f"example.net\r\nAction: failed\r\nStatus: 5.1.1\r\nDiagnostic-Code: smtp; 550 5.1.1 "
        f"unknown\r\n\r\n--{boundary}\r\nContent-Type: message/rfc822\r\n\r\n"
        f"From: support@kartabl.example\r\nTo: gone{i}@example.net\r\nSubject: Re: x\r\n"
        f"Message-ID: <reply-{i}@kartabl.example>\r\n\r\nYour order shipped.\r\n"
        f"--{boundary}--\r\n"
    ).encode()


def corpus(n: int, seed: int = 11) -> list[bytes]:
    from rich.console import Console
    from rich.progress import Progress

    rng = random.Random(seed)
    out: list[bytes] = []
    with Progress(console=Console(stderr=True), transient=True) as progress:
        task = progress.add_task("generating mails", total=n)
        for i in range(n):
            if rng.random() < 0.05:
                out.append(_bounce(rng, i))
            else:
                out.append(_customer_mail(rng, i).as_bytes(policy=policy.SMTP))
            progress.advance(task)
    return out


def rate(label: str, raws: list[bytes], fn: Callable[[bytes], object]) -> float:
    start = time.perf_counter()
    for data in raws:
        fn(data)
    value = len(raws) / (time.perf_counter() - start)
    say(f"{label}: {value:.0f} mails/s")
    return value


def ceiling(data: bytes) -> None:
    msg = BytesParser(policy=policy.default).parsebytes(data)
    body = msg.get_body(preferencelist=("plain", "html"))
    if body is not None:
        body.get_content()


def ingest_rate(raws: list[bytes], batch: int) -> float:
    from channels.email import parse
    from config.settings import Settings
    from kartabl import db, ingest
    from kartabl.migrate import upgrade

    with bench_database() as url:
        upgrade(url)
        db.reset()
        db.configure(Settings(database_url=url))
        try:
            start = time.perf_counter()
            with db.session_factory()() as s:
                for i in range(0, len(raws), batch):
                    msgs = [parse(r, our_addresses=OURS) for r in raws[i : i + batch]]
                    ingest.store_many(s, msgs)
            value = len(raws) / (time.perf_counter() - start)
        finally:
            db.reset()
    say(f"parse + ingest (PostgreSQL, batches of {batch}): {value:.0f} mails/s")
    return value


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--mails", type=int, default=5_000)
    ap.add_argument("--batch", type=int, default=200, help="mails per store_many commit")
    args = ap.parse_args()

    from channels.email import parse

    raws = corpus(args.mails)
    say(f"corpus: {len(raws)} mails, {sum(map(len, raws)) / 1e6:.1f} MB")
    rate("warm-up", raws[:200], lambda r: parse(r, our_addresses=OURS))
    a = rate("BytesParser(policy.default) + get_body/get_content", raws, ceiling)
    b = rate("channels.email.parse", raws, lambda r: parse(r, our_addresses=OURS))
    c = ingest_rate(raws, args.batch)
    print(
        f"email_parse_msgs_per_s={b:.1f} email_ingest_msgs_per_s={c:.1f} "
        f"bytesparser_msgs_per_s={a:.1f} parse_ratio={b / a:.3f}"
    )


if __name__ == "__main__":
    main()
