"""Demo data and a driver that plays customers, agents and the coordinator, so a newcomer
running ``make run`` watches messages flow through every state in the log and on the
overview page. Only the embedded mode runs it; it acts through the same workflow functions
as the console, so every step is a real, audited transition. With the stand-in channels of
:mod:`boot.demo_channels`, customers write by SMS, Telegram and Bale through the real
adapters instead of being stored directly.

The driver's people are accounts of its own (:data:`BOTS`, "demo bot — coordinator", ...),
which nobody can sign in as: it never acts as the visitor, whose name is on the steps they
took and on no other. It works only on what its bots hold (conversations they were given,
replies they wrote) and leaves the newest :data:`KEEP_IN_TRIAGE` conversations in triage,
so the visitor always finds work to assign, answer and approve by hand."""

from __future__ import annotations

import logging
import random
import secrets
import threading
import uuid
from collections.abc import Callable, Collection
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import TYPE_CHECKING

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from channels.email import parse
from config.routing import get_routing
from kartabl import db, ingest, workflow
from kartabl.messages import InboundMessage
from kartabl.models import (
    Channel,
    Conversation,
    ConversationStatus,
    Person,
    Reply,
    ReplyState,
    Role,
    Team,
    TeamMember,
)
from kartabl.passwords import hash_password
from responders.preview import REPLY_CHECK
from router.identity import identity_for, link_identity
from router.identity_many import match_or_create_many
from router.teams import sync_teams

if TYPE_CHECKING:
    from boot.demo_channels import DemoChannels

log = logging.getLogger("kartabl.demo")

DEMO_PASSWORD = "kartabl-demo"  # noqa: S105 - local demo accounts only, printed by `make run`
PEOPLE = [  # username, role, teams, display name, locale
    ("admin", Role.ADMIN, [], "مدیر سامانه", "fa"),
    ("maryam", Role.COORDINATOR, [], "مریم (هماهنگ‌کننده)", "fa"),
    ("ali", Role.AGENT, ["support"], "علی", "fa"),
    ("neda", Role.AGENT, ["support"], "Neda", "en"),
    ("sara", Role.AGENT, ["sales"], "سارا", "fa"),
    ("reza", Role.AGENT, ["billing"], "رضا", "fa"),
]
# The demo's own accounts (username, role, team, display name): the driver acts only as
# these. Their passwords are random and never printed: nobody signs in as a bot.
BOT_COORDINATOR = "demo-coordinator"
BOTS = [
    (BOT_COORDINATOR, Role.COORDINATOR, None, "demo bot — coordinator"),
    ("demo-support", Role.AGENT, "support", "demo bot — support agent"),
    ("demo-sales", Role.AGENT, "sales", "demo bot — sales agent"),
    ("demo-billing", Role.AGENT, "billing", "demo bot — billing agent"),
]
KEEP_IN_TRIAGE = 4  # the newest conversations in triage wait for the visitor
CUSTOMERS = [  # name, {channel: address}: the first two write on several channels
    ("مینا احمدی", {"email": "mina@example.ir", "sms": "0912 345 6789"}),
    ("Daniel Brown", {"email": "daniel@example.com", "telegram": "5550001"}),
    ("حسین رضایی", {"sms": "۰۹۳۵۱۲۳۴۵۶۷"}),
    ("زهرا کریمی", {"bale": "7770002"}),
    ("Sophie Martin", {"email": "sophie@example.fr"}),
    ("امیر", {"telegram": "5550003"}),
    ("نگار موسوی", {"api": "demo-shop:u-1042"}),  # a user of the shop's app (API channel)
    ("پریسا نوری", {"whatsapp": "+989121112233"}),  # Meta (boot.demo_meta)
    ("Lina", {"instagram": "2000000000000777"}),
    ("نگار صالحی", {"rubika": "u0demoNegar5e1a7c"}),
]
TEXTS = [
    "سلام، سفارش ۱۲۳۴ هنوز نرسیده. لطفاً پیگیری کنید.",
    "قیمت اشتراک سالانه چقدر است؟",
    "فاكتور ماه قبل را دوباره بفرستید",  # Arabic kaf, still routed to billing
    "Hello, the app logs me out every few minutes.",
    "Can I get a refund for order 5678?",
    "ممنون، مشکل حل شد.",
]


DEMO_MAILBOX = "support@kartabl.localhost"
MESSENGERS = (Channel.TELEGRAM, Channel.BALE, Channel.INSTAGRAM)  # no delivery reports
# Replies on their way out. (A rejected one is not: one left behind by a referral would
# keep its conversation open for ever.)
IN_PROGRESS = (ReplyState.DRAFT, ReplyState.PENDING_APPROVAL, ReplyState.APPROVED,
               ReplyState.SENDING)


def demo_mail(name: str, sender: str, text: str, rnd: random.Random) -> bytes:
    """A customer's mail as raw bytes: what a mailbox would hold."""
    mail = EmailMessage()
    mail["From"] = Address(name, addr_spec=sender)
    mail["To"] = DEMO_MAILBOX
    mail["Subject"] = text[:40]
    mail["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2])
    mail["Date"] = formatdate(localtime=False)
    quoted = "\n\nدر تاریخ ۱ آذر ۱۴۰۵، پشتیبانی نوشت:\n> پیام قبلی ما\n"
    body = text + (quoted if rnd.random() < 0.5 else "\n")
    # windows-1256 has no Persian ye (U+06CC): such mail arrives with Arabic ye instead.
    charset = "windows-1256" if rnd.random() < 0.3 else "utf-8"
    try:
        body.encode(charset)
    except UnicodeEncodeError:
        charset = "utf-8"
    mail.set_content(body, charset=charset)
    return bytes(mail)


def seed(session: Session) -> None:
    """Teams from the routing file, the demo people and customers (idempotent)."""
    sync_teams(session, get_routing())
    teams = {t.name: t for t in session.scalars(select(Team))}
    hashed = hash_password(DEMO_PASSWORD)
    for username, role, team_name, name in BOTS:
        if session.scalar(select(Person).where(Person.username == username)):
            continue
        bot = Person(username=username, role=role, display_name=name, locale="en",
                     password_hash=hash_password(secrets.token_urlsafe(32)), capacity=50)
        session.add(bot)
        session.flush()
        if team_name in teams:
            session.add(TeamMember(team_id=teams[team_name].id, person_id=bot.id))
    for username, role, team_names, name, locale in PEOPLE:
        if session.scalar(select(Person).where(Person.username == username)):
            continue
        person = Person(
            username=username,
            role=role,
            display_name=name,
            locale=locale,
            password_hash=hashed,
            capacity=5,
            can_merge=role is Role.ADMIN,
        )
        session.add(person)
        session.flush()
        for t in team_names:
            session.add(TeamMember(team_id=teams[t].id, person_id=person.id))
    # The demo's history is the bots' too: the visitor's name is on no step they did not take.
    linker = session.scalar(select(Person).where(Person.username == BOT_COORDINATOR))
    assert linker is not None  # created just above
    for name, addresses in CUSTOMERS:
        (kind, addr), *others = [identity_for(ch, a) for ch, a in addresses.items()]
        [(customer, created)] = match_or_create_many(session, {(kind, addr): name}).values()
        if created:
            # Customers who write on several channels were linked by a person, explicitly.
            for k, a in others:
                link_identity(session, linker, customer.id, k, a)


def print_login(host: str, port: int) -> None:
    """How to sign in, printed once the console answers: its last line is the sign-in URL
    with the coordinator's credentials, what a newcomer copies."""
    print("\n  Kartabl is running. Demo accounts (password for all: " + DEMO_PASSWORD + "):")
    for username, role, teams, _, _ in PEOPLE:
        print(f"    {username:<8} {role.value:<12} {', '.join(teams)}")
    print("  The demo's bots (" + ", ".join(b[0] for b in BOTS) + ") play the other people;"
          " they never act as you, and leave the newest conversations in triage for you.")
    print("  The log shows demo messages flowing through every state. Ctrl-C stops.\n")
    print(f"  Sign in: http://{host}:{port}/login  (user maryam, password {DEMO_PASSWORD})\n",
          flush=True)


class DemoDriver(threading.Thread):
    """Every few seconds: a customer writes; agents act on their conversations; the
    coordinator triages and reviews. Stops when ``stop`` is set."""

    def __init__(
        self, stop: threading.Event, interval_s: float = 3.0, seed_: int | None = None, *,
        channels: DemoChannels | None = None, only: Collection[str] | None = None,
    ) -> None:
        super().__init__(name="demo-driver", daemon=True)
        self.stop_event, self.interval_s = stop, interval_s
        self.rnd = random.Random(seed_)
        # SMS, Telegram and Bale go through their stand-ins when the demo runs them.
        self.channels = channels
        # Only these channels (those served by the sandbox, when real channels are
        # configured): a demo customer's reply must never leave by a real account.
        self.only = None if only is None else set(only)

    def run(self) -> None:
        while not self.stop_event.wait(self.interval_s):
            self.tick()

    def tick(self) -> None:
        # Each step in its own transaction, and a failing one does not hold up the others.
        self._step(self.customer_writes)
        for step in (self.coordinator_triages, self.agents_work, self.coordinator_reviews,
                     self.agents_close):
            self._step(step, with_session=True)

    def _step(self, step: Callable[..., None], *, with_session: bool = False) -> None:
        try:
            if with_session:
                with db.session_scope() as s:
                    step(s)
            else:
                step()
        except Exception:
            log.exception("demo step %s failed", step.__name__)

    def customer_writes(self) -> None:
        writers = [
            (name, addresses, usable) for name, addresses in CUSTOMERS
            if (usable := [c for c in sorted(addresses) if self.only is None or c in self.only])
        ]
        if not writers:
            return  # every channel is a real one: the demo's customers stay silent
        name, addresses, usable = self.rnd.choice(writers)
        channel = self.rnd.choice(usable)
        _, sender = identity_for(channel, addresses[channel])
        text = self.rnd.choice(TEXTS)
        if self.channels is not None and channel != "email":
            # Through the stand-in provider, to the real poller (or the SMS callback).
            self.channels.customer_writes(Channel(channel), name, addresses[channel], text)
            return
        if channel == "email":
            # Mail goes through the real parser, as the IMAP poller's would: an encoded
            # Persian subject, sometimes windows-1256, with quoted history to cut.
            msg = parse(demo_mail(name, sender, text, self.rnd), our_addresses=[DEMO_MAILBOX])
        else:
            msg = InboundMessage(
                channel=Channel(channel), external_id=f"demo-{uuid.uuid4().hex[:12]}",
                sender=sender, sender_name=name, text=text,
            )
        with db.session_factory()() as s:
            ingest.store(s, msg)

    def _person(self, s: Session, username: str) -> Person:
        person = s.scalar(select(Person).where(Person.username == username))
        assert person is not None
        return person

    def _bot_agents(self, s: Session) -> list[Person]:
        names = [b[0] for b in BOTS if b[1] is Role.AGENT]
        return list(s.scalars(select(Person).where(Person.username.in_(names))
                              .order_by(Person.username)))

    def _bot_ids(self, s: Session) -> list[int]:
        return list(s.scalars(select(Person.id).where(Person.username.in_([b[0] for b in BOTS]))))

    def coordinator_triages(self, s: Session) -> None:
        """The bot coordinator hands the oldest of triage to the bot agents, leaving the
        newest KEEP_IN_TRIAGE for the visitor."""
        coordinator = self._person(s, BOT_COORDINATOR)
        bots = self._bot_agents(s)
        waiting = (select(Conversation).where(Conversation.status == ConversationStatus.OPEN,
                                              Conversation.assignee_id.is_(None)))
        waiting_n = s.scalar(select(func.count()).select_from(waiting.subquery())) or 0
        extra = waiting_n - KEEP_IN_TRIAGE
        if extra <= 0 or not bots:
            return
        members = {(m.team_id, m.person_id) for m in s.scalars(select(TeamMember))}
        for conv in s.scalars(waiting.order_by(Conversation.opened_at, Conversation.id)
                              .limit(min(3, extra))):
            # a bot of the conversation's team when there is one, so it stays in its team
            agent = next((b for b in bots if (conv.team_id, b.id) in members),
                         self.rnd.choice(bots))
            workflow.assign(s, coordinator, conv.id, person_id=agent.id)

    def agents_work(self, s: Session) -> None:
        # A conversation needs an answer when no reply was written since its newest message.
        answered = (
            select(Reply.id)
            .where(
                Reply.conversation_id == Conversation.id,
                Reply.created_at >= Conversation.last_message_at,
            )
            .exists()
        )
        for conv in s.scalars(
            select(Conversation)
            .where(
                Conversation.status == ConversationStatus.OPEN,
                Conversation.assignee_id.in_(self._bot_ids(s)),  # what the bots hold
                ~answered,
            )
            .limit(3)
        ):
            agent = s.get(Person, conv.assignee_id)
            assert agent is not None
            roll = self.rnd.random()
            if roll < 0.15:
                other = s.scalar(
                    select(Team).where(Team.id != conv.team_id).order_by(func.random())
                )
                if other is not None:
                    workflow.refer(
                        s, agent, conv.id, team_id=other.id, note="این مورد مربوط به واحد شماست"
                    )
                    continue
            if roll < 0.25:
                workflow.note(s, agent, conv.id, "با مشتری تماس تلفنی گرفتم")
            reply = workflow.draft(
                s, agent, conv.id, "با سلام، درخواست شما بررسی شد و پیگیری می‌شود. با تشکر",
                check=REPLY_CHECK,
            )
            workflow.submit(s, agent, reply.id, check=REPLY_CHECK)
        for reply in s.scalars(
            select(Reply)
            .join(Conversation, Conversation.id == Reply.conversation_id)
            .where(
                Reply.state == ReplyState.REJECTED,
                Conversation.status == ConversationStatus.OPEN,  # else submit is illegal
                # A conversation referred since belongs to someone else now: the author may
                # no longer edit it, and its new assignee answers the customer's next message.
                Conversation.assignee_id == Reply.author_id,
                Reply.author_id.in_(self._bot_ids(s)),
            )
            .limit(3)
        ):
            author = s.get(Person, reply.author_id)
            assert author is not None
            workflow.update_draft(s, author, reply.id, reply.body + "\nشماره پیگیری: ۴۴۲۱")
            workflow.submit(s, author, reply.id, check=REPLY_CHECK)

    def coordinator_reviews(self, s: Session) -> None:
        """The bot coordinator reviews the bots' replies; the visitor's wait for a person."""
        coordinator = self._person(s, BOT_COORDINATOR)
        for reply in s.scalars(
            select(Reply).where(Reply.state == ReplyState.PENDING_APPROVAL,
                                Reply.author_id.in_(self._bot_ids(s))).limit(5)
        ):
            roll = self.rnd.random()
            if roll < 0.15:
                workflow.reject(s, coordinator, reply.id, "لطفاً شماره پیگیری را هم بنویسید")
            elif roll < 0.3:
                workflow.approve(s, coordinator, reply.id, check=REPLY_CHECK,
                                 edited_body=reply.body + "\nپشتیبانی کارتابل")
            else:
                workflow.approve(s, coordinator, reply.id, check=REPLY_CHECK)

    def agents_close(self, s: Session) -> None:
        # Answered: a reply delivered, or sent on a messenger (Telegram and Bale never
        # report delivery, so their replies stay 'sent').
        answered = select(Reply.conversation_id).where(
            (Reply.state == ReplyState.DELIVERED)
            | ((Reply.state == ReplyState.SENT) & Reply.channel.in_(MESSENGERS))
        )
        # Nobody closes a conversation while a reply in it is still on its way.
        in_progress = select(Reply.conversation_id).where(Reply.state.in_(IN_PROGRESS))
        for conv in s.scalars(
            select(Conversation)
            .where(
                Conversation.status == ConversationStatus.OPEN,
                Conversation.id.in_(answered),
                Conversation.id.not_in(in_progress),
                Conversation.assignee_id.in_(self._bot_ids(s)),
            )
            .limit(2)
        ):
            if self.rnd.random() < 0.5 and conv.assignee_id is not None:
                agent = s.get(Person, conv.assignee_id)
                assert agent is not None
                workflow.close(s, agent, conv.id)
