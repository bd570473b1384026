"""Feeding the ingest bench's traffic through the channels' own entry points, as deployed.

- **Telegram and Bale updates, Kavenegar callbacks**: what the webhook handlers do once the
  secret is verified (``channels/telegram/webhook.py``, ``channels/sms/webhook.py``): parse
  the body (``json.loads`` + :func:`channels.telegram.updates.to_message`, or the form +
  :func:`channels.sms.inbound.to_message`), then the handlers' own store, one message per
  request and commit (:func:`channels.webhooks.store_one`, what ``Webhook.receive`` runs:
  :func:`kartabl.ingest.store`, routing enqueued after the commit).
  ``--webhook-threads`` requests are in flight at once, as the web process runs its
  handlers' stores in a thread pool. HTTP itself is ``bench.webhooks``'s subject.
- **Mail**: the IMAP poller's ingest step (:class:`channels.email.ingest.MailIngester`):
  :func:`channels.email.parse` per mail, attachments written, one
  :func:`kartabl.ingest.add_many` and commit per fetch batch (``fetch_batch``, 50 by default),
  on one thread, as one mailbox's poller.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from urllib.parse import parse_qsl

from pydantic import SecretStr
from sqlalchemy.orm import Session, sessionmaker

from bench.ingest_traffic import OUR_ADDRESS, SMS_LINE, Raw
from channels.email.imap import Fetched
from channels.email.ingest import MailIngester
from channels.sms import inbound as sms_inbound
from channels.telegram import updates as tg_updates
from channels.webhooks import store_one
from config.channels import ImapAccount, Mailbox
from config.settings import Settings
from config.sms import SmsConfig
from config.telegram import BotConfig

UIDVALIDITY = 1


class Entry:
    """The channels' entry points, configured as a deployment would be: one Telegram bot and
    one Bale bot in webhook mode, one Kavenegar line, one mailbox polled over IMAP."""

    def __init__(self, settings: Settings, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions
        secret = SecretStr("bench-webhook-secret")
        self.bots = {
            "telegram": BotConfig(name="bench", kind="telegram", token=SecretStr("1:bench"),
                                  mode="webhook", webhook_secret=secret),
            "bale": BotConfig(name="benchbale", kind="bale", token=SecretStr("2:bench"),
                              mode="webhook", webhook_secret=secret),
        }
        self.sms = SmsConfig(line=SMS_LINE, api_key=SecretStr("bench"), webhook_secret=secret)
        self.mailbox = Mailbox(
            name="support", address=OUR_ADDRESS,
            imap=ImapAccount(host="127.0.0.1", username="support",
                             password=SecretStr("unused")),
        )
        self.fetch_batch = self.mailbox.imap.fetch_batch if self.mailbox.imap else 50
        self.mail = MailIngester(self.mailbox, settings, sessions, self.mailbox.addresses)
        self._uids = itertools.count(1)

    def webhook(self, raw: Raw) -> int:
        """One webhook request's parse and store; 1 when it stored a new message."""
        if raw.channel == "sms":
            fields = dict(parse_qsl(raw.body.decode("utf-8"), keep_blank_values=True))
            msg = sms_inbound.to_message(fields, self.sms)
            return int(store_one(self.sessions, msg))
        update = tg_updates.to_message(json.loads(raw.body), self.bots[raw.channel])
        if update is None:
            return 0
        return int(store_one(self.sessions, update))

    def mails(self, raws: list[Raw]) -> int:
        """One fetch batch through the poller's ingest; how many new messages it stored."""
        fetched = [Fetched(next(self._uids), r.body) for r in raws]
        return self.mail.ingest(UIDVALIDITY, fetched).created


class Feeder:
    """Runs the entry points: webhook requests on a pool of threads, mail on one thread."""

    def __init__(self, entry: Entry, webhook_threads: int) -> None:
        self.entry = entry
        self.webhooks = ThreadPoolExecutor(webhook_threads, thread_name_prefix="webhook")
        self.poller = ThreadPoolExecutor(1, thread_name_prefix="poller")
        self._futures: list[Future[int]] = []
        self._lock = threading.Lock()

    def submit(self, raws: list[Raw]) -> None:
        mail = [r for r in raws if r.channel == "email"]
        futures = [self.webhooks.submit(self.entry.webhook, r) for r in raws
                   if r.channel != "email"]
        for start in range(0, len(mail), self.entry.fetch_batch):
            futures.append(self.poller.submit(
                self.entry.mails, mail[start : start + self.entry.fetch_batch]))
        with self._lock:
            self._futures += futures

    def flat_out(self, raws: list[Raw]) -> int:
        """Everything at once (the pool keeps ``webhook_threads`` requests in flight);
        returns how many new messages were stored."""
        self.submit(raws)
        return self.wait()

    def paced(self, raws: list[Raw], rate: float, tick_s: float = 0.02) -> int:
        """``rate`` inputs a second, released every ``tick_s`` (mail due in a tick is one
        fetch batch, as IDLE would bring it)."""
        per_tick = rate * tick_s
        t0 = time.perf_counter()
        done = 0
        tick = 0
        while done < len(raws):
            tick += 1
            due = min(len(raws), int(tick * per_tick))
            if due > done:
                self.submit(raws[done:due])
                done = due
            if (wait := t0 + tick * tick_s - time.perf_counter()) > 0:
                time.sleep(wait)
        return self.wait()

    def wait(self) -> int:
        with self._lock:
            futures, self._futures = self._futures, []
        return sum(f.result() for f in futures)

    def close(self) -> None:
        self.webhooks.shutdown(cancel_futures=True)
        self.poller.shutdown(cancel_futures=True)


def attachments_dir(base: Path) -> Path:
    path = base / "attachments"
    path.mkdir(parents=True, exist_ok=True)
    return path
