"""The customers and the console of ``make chaos``.

Inbound, paced evenly over the run, each logical message carrying a unique marker
(``chaos-in-<n>``) in its text, delivered as the providers deliver, retrying until our
answer says it is stored (a provider's retry timer):

- Telegram updates POSTed by the Bot API stand-in to the ``web`` process's webhook;
- Kavenegar receive callbacks POSTed to ``web``, and SMS left in Kavenegar's receive queue
  for the ``sms`` poller (a resend of those goes by callback: one SMS, both paths);
- email through ``kartabl inject`` (a batch per call, one sender; the external ids are the
  key; the command is run again when it fails).

``resend`` of them (5 %) are delivered once more after they were stored.

The console: a coordinator drafts a reply (marker ``chaos-out-<n>``) on a routed
conversation of SMS, email and Telegram in turn, and another approves it, through
:mod:`kartabl.workflow` on the fleet's database; the approval enqueues to the fleet's Redis.
"""

from __future__ import annotations

import logging
import random
import subprocess
import sys
import threading
import time
import urllib.error
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import select

from bench.chaos_env import BOT_TOKEN, SMS_LINE, Deployment
from channels.telegram.standin_wire import text_update
from kartabl import workflow
from kartabl.models import Channel, Conversation, ConversationStatus, Person, Reply
from responders.preview import REPLY_CHECK

log = logging.getLogger("bench.chaos")
ROOT = Path(__file__).resolve().parent.parent
EMAIL_BATCH = 40
SHARES = {"telegram": 0.40, "sms_callback": 0.20, "sms_queue": 0.15, "email": 0.25}


@dataclass
class Sent:
    """What the customers sent: logical key -> channel. Telegram and SMS are keyed by their
    marker, email by its external id (``kartabl inject`` gives a batch one text)."""

    keys: dict[str, str] = field(default_factory=dict)
    resent: int = 0
    attempts: int = 0
    failed_attempts: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, key: str, channel: str) -> None:
        with self.lock:
            self.keys[key] = channel


@dataclass
class Replies:
    """What the console approved: reply id -> (channel, marker)."""

    approved: dict[int, tuple[str, str]] = field(default_factory=dict)
    errors: int = 0


def _until_ok(sent: Sent, deliver: Callable[[], int], patience_s: float = 120) -> None:
    """Deliver until the answer is 200, as a provider retries; back off a little."""
    deadline = time.monotonic() + patience_s
    delay = 0.2
    while True:
        with sent.lock:
            sent.attempts += 1
        try:
            status = deliver()
        except (urllib.error.URLError, OSError) as exc:
            status = -1
            log.debug("delivery failed: %s", exc)
        if status == 200:
            return
        with sent.lock:
            sent.failed_attempts += 1
        if time.monotonic() > deadline:
            raise RuntimeError(f"not accepted within {patience_s} s (last status {status})")
        time.sleep(delay)
        delay = min(delay * 2, 3.0)


def _paced(n: int, seconds: float, stop: threading.Event, each: Callable[[int], None]) -> None:
    start = time.monotonic()
    for i in range(n):
        if stop.wait(max(0.0, start + seconds * i / max(n, 1) - time.monotonic())):
            return
        try:
            each(i)
        except Exception:
            log.exception("a delivery or an approval gave up")


def produce(dep: Deployment, total: int, seconds: float, resend: float, sent: Sent,
            stop: threading.Event, seed: int = 12) -> list[threading.Thread]:
    """Start one paced producer thread per path; they stop after ``seconds``."""
    rnd = random.Random(seed)
    counts = {k: int(total * share) for k, share in SHARES.items()}
    counts["telegram"] += total - sum(counts.values())
    seq = iter(range(10**9))
    seq_lock = threading.Lock()

    def marker() -> str:
        with seq_lock:
            return f"chaos-in-{next(seq)}"

    def again() -> bool:
        with seq_lock:
            return rnd.random() < resend

    def telegram(i: int) -> None:
        key = marker()
        update = {"update_id": 900_000 + i,
                  **text_update(700_000 + i % 250, f"سلام، سفارشم کجاست؟ {key}")}
        sent.add(key, "telegram")
        _until_ok(sent, lambda: dep.bot_api.deliver_webhook(BOT_TOKEN, update))
        if again():
            sent.resent += 1
            _until_ok(sent, lambda: dep.bot_api.deliver_webhook(BOT_TOKEN, update))

    def sms(via: str) -> Callable[[int], None]:
        def one(i: int) -> None:
            key = marker()
            phone = f"0912{(3_000_000 if via == 'queue' else 4_000_000) + i % 200:07d}"
            sent.add(key, "sms")
            text = f"سلام، پیگیری {key}"
            if via == "queue":  # read by the `sms` poller
                entry = dep.kavenegar.inbound(phone, text, SMS_LINE, via="queue")
            else:  # Kavenegar's receive callback to `web`
                entry = {"messageid": 60_000_000 + i, "message": text, "sender": phone,
                         "receptor": SMS_LINE, "date": int(time.time())}
                _until_ok(sent, lambda: dep.kavenegar.post_callback(entry))
            if again():  # the same SMS by callback (as well as by the poller's queue)
                sent.resent += 1
                _until_ok(sent, lambda: dep.kavenegar.post_callback(entry))
        return one

    def email(i: int) -> None:
        base = f"<chaos-{uuid.uuid4().hex[:12]}@example.ir>"
        keys = [f"{base}-{k}" for k in range(EMAIL_BATCH)]
        for key in keys:
            sent.add(key, "email")
        argv = [str(Path(sys.executable).parent / "kartabl"), "inject", "--channel", "email",
                "--from", f"chaos-{i}@example.ir", "--name", "Chaos", "--subject", "Order",
                "--text", f"Where is my order? chaos-mail-{i}", "--id", base,
                "--count", str(EMAIL_BATCH)]

        def run() -> int:
            done = subprocess.run(argv, cwd=ROOT, env=dep.env, capture_output=True,
                                  timeout=120, check=False)
            return 200 if done.returncode == 0 else done.returncode

        _until_ok(sent, run)
        if again():
            sent.resent += EMAIL_BATCH
            _until_ok(sent, run)

    plans: list[tuple[str, int, Callable[[int], None]]] = [
        ("telegram", counts["telegram"], telegram),
        ("sms-callback", counts["sms_callback"], sms("callback")),
        ("sms-queue", counts["sms_queue"], sms("queue")),
        ("email", -(-counts["email"] // EMAIL_BATCH), email),
    ]
    threads = [threading.Thread(target=_paced, args=(n, seconds, stop, fn), name=name,
                                daemon=True) for name, n, fn in plans]
    for t in threads:
        t.start()
    return threads


def _conversations(dep: Deployment, channel: str, done: set[int]) -> list[int]:
    with dep.db() as s:
        ids = s.scalars(select(Conversation.id).where(
            Conversation.channel == channel, Conversation.status == ConversationStatus.OPEN)
            .order_by(Conversation.id).limit(2000)).all()
    fresh = [i for i in ids if i not in done]
    return fresh or list(ids)  # few mail conversations (a sender per batch): answer again


def approve_one(dep: Deployment, conversation_id: int, body: str) -> int:
    with dep.db() as s:
        drafter = s.scalar(select(Person).where(Person.username == "chaos-drafter"))
        coordinator = s.scalar(select(Person).where(Person.username == "chaos-coordinator"))
        reply: Reply = workflow.draft(s, drafter, conversation_id, body, check=REPLY_CHECK)
        workflow.submit(s, drafter, reply.id, check=REPLY_CHECK)
        workflow.approve(s, coordinator, reply.id, check=REPLY_CHECK)
        s.commit()  # the dispatch is enqueued after this commit (or left to the sweep)
        return reply.id


def reply(dep: Deployment, total: int, seconds: float, replies: Replies,
          stop: threading.Event) -> threading.Thread:
    """One paced thread approving ``total`` replies, SMS, email and Telegram in turn."""
    channels = [Channel.SMS, Channel.EMAIL, Channel.TELEGRAM]
    done: set[int] = set()

    def each(i: int) -> None:
        for k in range(len(channels)):  # a channel without a conversation yet: the next
            channel = channels[(i + k) % len(channels)]
            todo = _conversations(dep, channel, done)
            if not todo:
                continue
            conv = todo[i % len(todo)]
            done.add(conv)
            marker = f"chaos-out-{i}"
            try:
                rid = approve_one(dep, conv, f"پاسخ ما: پیگیری شد. {marker}")
            except Exception:
                replies.errors += 1
                log.exception("approving a reply on conversation %d failed", conv)
                return
            replies.approved[rid] = (str(channel), marker)
            return

    # Replies start once some conversations exist, and end with the faults.
    thread = threading.Thread(target=_paced, args=(total, seconds * 0.9, stop, each),
                              name="console", daemon=True)
    thread.start()
    return thread
