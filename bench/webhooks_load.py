"""The client side of ``python -m bench.webhooks``: the webhook bodies it sends, where the
retries go in the plan, and the closed-loop client that keeps ``concurrency`` requests in
flight and records each answer (see :mod:`bench.webhooks` for the whole bench)."""

from __future__ import annotations

import json
import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlencode

import httpx

BOT = "bench"
LINE = "10008663"
PERSIAN = [
    "سلام، سفارش من هنوز نرسیده است. لطفاً پیگیری کنید.",
    "فاکتور خرید را برایم بفرستید، ممنون می‌شوم.",
    "می‌خواهم اشتراکم را تمدید کنم ولی پرداخت انجام نمی‌شود.",
    "رمز عبورم را فراموش کرده‌ام و پیامک بازیابی نمی‌رسد.",
    "کد رهگیری مرسوله ۴۵۸۲۱۰۳ است، کی می‌رسد؟",
]
ENGLISH = ["Hello, where is my order?", "The app crashes when I log in from my phone."]
NAMES = ["سارا", "علی", "مریم", "رضا", "Sara", "John"]


@dataclass(frozen=True, slots=True)
class Req:
    path: str
    body: bytes
    headers: dict[str, str]
    key: tuple[str, str]  # (channel, external_id) of the message it carries


def bodies(n: int, first: int, rng: random.Random, tg_secret: str, sms_secret: str) -> list[Req]:
    """``n`` distinct webhook requests, about 55 % Telegram and 45 % SMS, numbered from
    ``first`` (so warm-up and timed bodies never collide). Encoded here, not while timing."""
    from channels.sms.standin import callback_form
    from channels.telegram.standin_wire import text_update

    tg_headers = {"Content-Type": "application/json", "X-Telegram-Bot-Api-Secret-Token": tg_secret}
    sms_headers = {"Content-Type": "application/x-www-form-urlencoded"}
    out: list[Req] = []
    for i in range(first, first + n):
        if rng.random() < 0.55:
            user = 500_000 + rng.randrange(300)
            text = "\n".join(rng.choices(PERSIAN if rng.random() < 0.7 else ENGLISH,
                                         k=rng.randint(1, 3)))
            update = {"update_id": 700_000_000 + i,
                      **text_update(user, text, first_name=rng.choice(NAMES), message_id=i)}
            out.append(Req(f"/webhooks/telegram/{BOT}", json.dumps(update).encode(),
                           tg_headers, ("telegram", f"{BOT}:{700_000_000 + i}")))
        else:
            phone = f"0912{rng.randrange(400):07d}"
            if rng.random() < 0.2:  # some handsets report Persian digits
                phone = phone.translate(str.maketrans("0123456789", "۰۱۲۳۴۵۶۷۸۹"))
            messageid = 9_000_000_000 + i
            form = callback_form({"sender": phone, "message": rng.choice(PERSIAN),
                                  "receptor": LINE, "messageid": messageid})
            out.append(Req(f"/webhooks/sms/receive/{sms_secret}", urlencode(form).encode(),
                           sms_headers, ("sms", f"kv:{messageid}")))
    return out


def plan_with_retries(originals: list[Req], retries: int, concurrency: int,
                      rng: random.Random) -> list[Req | None]:
    plan: list[Req | None] = list(originals)
    lo = min(len(plan), 4 * concurrency)
    for _ in range(retries):
        plan.insert(rng.randint(lo, len(plan)), None)
    return plan


@dataclass
class Load:
    """State shared by the client threads; :meth:`take` and :meth:`record` hold the lock."""

    plan: list[Req | None]  # None: resend a body already answered 200
    rng: random.Random
    advance: Callable[[], None] | None = None
    answered: list[Req] = field(default_factory=list)
    new_ms: list[float] = field(default_factory=list)
    retry_ms: list[float] = field(default_factory=list)
    failures: Counter[str] = field(default_factory=Counter)
    dedup_errors: int = 0
    _next: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def take(self) -> tuple[Req, bool] | None:
        with self._lock:
            while self._next < len(self.plan):
                req = self.plan[self._next]
                self._next += 1
                if req is not None:
                    return req, False
                # Retries start after 4 × concurrency slots, so at least 3 × concurrency
                # requests are back: none answered 200 is already a failed run.
                if self.answered:
                    return self.rng.choice(self.answered), True
                self.failures["retry with no original answered yet"] += 1
            return None

    def record(self, req: Req, retry: bool, ms: float, status: str, created: object) -> None:
        with self._lock:
            if status != "200":
                self.failures[status] += 1
            else:
                # An original must create its message; a resend must find it (deduplicated).
                if created != (not retry):
                    self.dedup_errors += 1
                (self.retry_ms if retry else self.new_ms).append(ms)
                if not retry:
                    self.answered.append(req)
        if self.advance is not None:
            self.advance()


def _client_thread(base: str, load: Load) -> None:
    # One client and one keep-alive connection per thread. (httpx's AsyncClient was tried
    # first: without sniffio installed, httpcore retries a failing import on every request,
    # and the client ate most of a core that the server needs on this 2-core machine.)
    with httpx.Client(base_url=base, timeout=30,
                      limits=httpx.Limits(max_connections=1)) as client:
        while (slot := load.take()) is not None:
            req, retry = slot
            t0 = time.perf_counter()
            try:
                resp = client.post(req.path, content=req.body, headers=req.headers)
            except Exception as exc:  # any error is counted, and fails the run
                load.record(req, retry, 0.0, type(exc).__name__, None)
                continue
            ms = (time.perf_counter() - t0) * 1000
            status, created = str(resp.status_code), None
            if resp.status_code == 200:
                try:
                    created = resp.json().get("created")
                except ValueError:  # a 200 that is not the webhook's JSON answer
                    status = "200-not-json"
            load.record(req, retry, ms, status, created)


def run_load(base: str, load: Load, concurrency: int) -> float:
    """Send the plan with ``concurrency`` requests in flight; returns the wall time (s)."""
    threads = [threading.Thread(target=_client_thread, args=(base, load), daemon=True)
               for _ in range(concurrency)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - t0
