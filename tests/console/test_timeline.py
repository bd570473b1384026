"""The conversation view: its timeline after the whole workflow, scope, the customer's
history, a bounded number of queries, and the mail HTML sanitised once at ingest."""

from __future__ import annotations

from collections.abc import Iterator
from html.parser import HTMLParser

import pytest
from sqlalchemy import event
from sqlalchemy.orm import Session, sessionmaker

from channels.email.html import sanitize
from config.routing import ApprovalPolicy
from console.timeline import (
    ActivityItem,
    MessageItem,
    ReplyItem,
    conversation_view,
)
from kartabl import outbound, workflow
from kartabl.errors import NotFound
from kartabl.models import (
    Channel,
    Conversation,
    ConversationStatus,
    Direction,
    Person,
    ReplyState,
    Role,
    Team,
)
from responders.dispatch import dispatch_reply, poll_delivery
from responders.preview import REPLY_CHECK
from responders.sandbox import SandboxSender
from tests.factories import conversation, inbound, mail_html, person, team

REVIEWED = ApprovalPolicy(mode="all")


@pytest.fixture
def sandbox(db: sessionmaker[Session]) -> Iterator[None]:
    """Sandbox senders on this test's database, reporting deliveries as delivered."""
    before = outbound.registered()
    for ch in Channel:
        outbound.register(SandboxSender(ch, session_factory=db))
    yield
    for ch in Channel:
        outbound.unregister(ch)
    for sender in before.values():
        outbound.register(sender)


def people(session: Session) -> tuple[Team, Team, Person, Person, Person, Person]:
    support, sales = team(session, "support"), team(session, "sales")
    maryam = person(session, "maryam", Role.COORDINATOR)
    maryam.display_name = "مریم"
    ali = person(session, "ali", teams=[support])
    sara = person(session, "sara", teams=[support])
    bob = person(session, "bob", teams=[sales])
    return support, sales, maryam, ali, sara, bob


def test_the_timeline_tells_the_whole_story_in_order(
    session: Session, db: sessionmaker[Session], sandbox: None
) -> None:
    support, _, maryam, ali, sara, _ = people(session)
    conv = conversation(session, subject="سفارش ۱۲", text="سلام، سفارشم کجاست؟")
    session.commit()
    # The workflow, step by step, through the real functions
    workflow.assign(session, maryam, conv.id, person_id=ali.id, team_id=support.id)
    workflow.refer(session, ali, conv.id, person_id=sara.id, note="سارا پیگیری کند")
    reply = workflow.draft(session, sara, conv.id, "فردا", check=REPLY_CHECK)
    workflow.submit(session, sara, reply.id, policy=REVIEWED, check=REPLY_CHECK)
    workflow.reject(session, maryam, reply.id, "کامل‌تر بنویسید")
    workflow.update_draft(session, sara, reply.id, "سفارش شما فردا می‌رسد")
    workflow.submit(session, sara, reply.id, policy=REVIEWED, check=REPLY_CHECK)
    workflow.approve(session, maryam, reply.id, edited_body="سفارش شما فردا صبح می‌رسد",
                     check=REPLY_CHECK)
    session.commit()
    assert dispatch_reply(db, reply.id) == "sent"
    assert poll_delivery(db) == 1
    session.expire_all()
    answer = inbound(session, conv, text="ممنون")
    workflow.note(session, maryam, conv.id, "مشتری راضی است")
    workflow.close(session, sara, conv.id)
    workflow.reopen(session, maryam, conv.id)
    session.commit()

    view = conversation_view(session, maryam, conv.id)
    items = view.timeline
    assert [i.kind for i in items] == [
        "message", "assigned", "referred", "reply", "message", "note", "closed", "reopened"]
    assert [i.at for i in items] == sorted(i.at for i in items)
    first, assigned, referred, sent, later, noted, closed, reopened = items
    assert isinstance(first, MessageItem) and isinstance(later, MessageItem)
    assert (first.direction, first.text, first.channel) == (
        Direction.IN, "سلام، سفارشم کجاست؟", Channel.EMAIL)
    assert later.message_id == answer.id
    assert isinstance(assigned, ActivityItem) and isinstance(referred, ActivityItem)
    assert (assigned.actor, assigned.to_person, assigned.to_team) == ("مریم", "ali", "support")
    assert (referred.actor, referred.note, referred.from_person, referred.to_person) == (
        "ali", "سارا پیگیری کند", "ali", "sara")
    # One reply item: current state, both bodies, the review, the delivery, the history
    assert isinstance(sent, ReplyItem)
    assert (sent.state, sent.actor, sent.approver) == (ReplyState.DELIVERED, "sara", "مریم")
    assert sent.body == "سفارش شما فردا صبح می‌رسد"
    assert sent.original_body == "سفارش شما فردا می‌رسد"
    assert sent.review_comment == "کامل‌تر بنویسید"
    assert sent.sent_at is not None and sent.delivered_at is not None and sent.error is None
    assert sent.at == sent.sent_at and sent.message_id is not None
    assert [(s.step, s.actor) for s in sent.history] == [
        ("drafted", "sara"), ("submitted", "sara"), ("rejected", "مریم"), ("edited", "sara"),
        ("submitted", "sara"), ("approved", "مریم"), ("sending", None), ("sent", None),
        ("delivered", None)]
    assert sent.history[2].note == "کامل‌تر بنویسید" and sent.history[5].note == "edited"
    # The outbound row of the reply is folded into it, not shown as a second message
    assert not any(isinstance(i, MessageItem) and i.direction == Direction.OUT for i in items)
    assert isinstance(noted, ActivityItem) and noted.note == "مشتری راضی است"
    assert (closed.actor, reopened.actor) == ("sara", "مریم")
    assert view.conversation.status == ConversationStatus.OPEN
    assert (view.conversation.assignee_name, view.conversation.team_name) == ("sara", "support")
    assert view.conversation.first_response_at == sent.sent_at


def test_a_stranger_gets_not_found_exactly_as_for_a_missing_conversation(
    session: Session,
) -> None:
    support, _, maryam, ali, _, bob = people(session)
    conv = conversation(session, team=support, assignee=ali)
    ghost = person(session, "ghost", teams=[support], active=False)
    session.commit()
    assert conversation_view(session, ali, conv.id).conversation.id == conv.id
    assert conversation_view(session, maryam, conv.id).conversation.id == conv.id
    with pytest.raises(NotFound) as stranger:
        conversation_view(session, bob, conv.id)
    with pytest.raises(NotFound) as missing:
        conversation_view(session, bob, conv.id + 1000)
    assert str(stranger.value) == f"conversation {conv.id} does not exist"
    assert str(missing.value) == f"conversation {conv.id + 1000} does not exist"
    with pytest.raises(NotFound):
        conversation_view(session, ghost, conv.id)  # deactivated: sees nothing


def test_the_customer_history_spans_channels_and_hides_other_teams(session: Session) -> None:
    support, sales, maryam, ali, _, bob = people(session)
    conv = conversation(session, channel=Channel.EMAIL, team=support, assignee=ali)
    same_customer = {"customer_id": conv.customer_id}
    sms = Conversation(channel=Channel.SMS, team_id=support.id, subject="پیامک",
                       status=ConversationStatus.CLOSED, **same_customer)
    telegram = Conversation(channel=Channel.TELEGRAM, team_id=sales.id, subject="تلگرام",
                            **same_customer)
    bale = Conversation(channel=Channel.BALE, subject="بله", **same_customer)  # triage
    session.add_all([sms, telegram, bale])
    session.commit()

    mine = conversation_view(session, ali, conv.id)
    assert [(c.id, c.channel, c.status) for c in mine.history.conversations] == [
        (sms.id, Channel.SMS, ConversationStatus.CLOSED)]
    assert (mine.history.hidden, mine.history.more) == (2, 0)
    assert [i.kind for i in mine.customer.identities] == ["email"]
    everything = conversation_view(session, maryam, conv.id)
    assert {c.id for c in everything.history.conversations} == {sms.id, telegram.id, bale.id}
    assert everything.history.hidden == 0
    # From the sales side, bob sees the telegram one and nothing of support's
    with pytest.raises(NotFound):
        conversation_view(session, bob, conv.id)
    theirs = conversation_view(session, bob, telegram.id)
    assert theirs.history.conversations == [] and theirs.history.hidden == 3


def count_queries(session: Session, conv_id: int, actor: Person) -> int:
    statements: list[str] = []
    engine = session.get_bind()

    def grab(*args: object) -> None:
        statements.append(str(args[2]))

    session.expire_all()
    event.listen(engine, "before_cursor_execute", grab)
    try:
        conversation_view(session, actor, conv_id)
    finally:
        event.remove(engine, "before_cursor_execute", grab)
    return len(statements)


def test_the_view_costs_the_same_few_queries_however_long_the_conversation(
    session: Session,
) -> None:
    support, _, maryam, ali, sara, _ = people(session)
    short = conversation(session, team=support, assignee=ali)
    long = conversation(session, team=support, assignee=ali)
    for n in range(8):
        inbound(session, long, text=f"پیام {n}")
        author = ali if n % 2 else sara
        reply = workflow.draft(session, author, long.id, f"پاسخ {n}", check=REPLY_CHECK)
        workflow.submit(session, author, reply.id, policy=REVIEWED, check=REPLY_CHECK)
        workflow.note(session, maryam, long.id, f"یادداشت {n}")
    session.commit()
    assert len(conversation_view(session, ali, long.id).timeline) == 1 + 8 + 8 + 8
    # 13 on SQLite (its BEGIN IMMEDIATE is a statement too), 12 on PostgreSQL, as before
    # windows: the reply events are read apart from the activity ones (a window reads only
    # its own rows, console.timeline_rows), the people's and the teams' names together
    assert count_queries(session, long.id, ali) == count_queries(session, short.id, ali) <= 13


def test_messages_carry_the_html_sanitised_at_ingest_and_list_attachments(
        session: Session) -> None:
    support, _, _, ali, _, _ = people(session)
    conv = conversation(session, team=support, assignee=ali)
    msg = inbound(session, conv, text="فاکتور پیوست است")
    mail_html(msg, '<p dir="rtl">فاکتور<img src="cid:logo@x" alt="logo">'
                   '<img src="https://track.example/p.gif" alt="pixel"></p><script>x()</script>',
              {"logo@x": "k1"})
    msg.attachments = [
        {"filename": "invoice.pdf", "content_type": "application/pdf", "size": 1200,
         "storage_key": "k2", "content_id": None},
        {"filename": "logo.png", "content_type": "image/png", "size": 300,
         "storage_key": "k1", "content_id": "logo@x"},
        "not an attachment",
    ]
    session.commit()
    [item] = [i for i in conversation_view(session, ali, conv.id).timeline
              if isinstance(i, MessageItem) and i.message_id == msg.id]
    assert item.html == msg.safe_html  # as stored; the raw column is never read
    assert [(a.filename, a.size, a.storage_key) for a in item.attachments] == [
        ("invoice.pdf", 1200, "k2"), ("logo.png", 300, "k1")]
    shown = item.safe_html()
    assert shown is not None and canonical(shown) == canonical(
        '<p dir="rtl">فاکتور<img src="attachment:k1" alt="logo"><img alt="pixel"></p>')


def test_html_nobody_sanitised_is_never_shown(session: Session) -> None:
    """A row whose HTML did not come from the sanitiser (written by hand, or stored before
    ``safe_html`` existed) shows its text only."""
    support, _, _, ali, _, _ = people(session)
    conv = conversation(session, team=support, assignee=ali)
    msg = inbound(session, conv, text="متن")
    msg.html = "<p>raw</p><script>alert(1)</script>"
    session.commit()
    [item] = [i for i in conversation_view(session, ali, conv.id).timeline
              if isinstance(i, MessageItem) and i.message_id == msg.id]
    assert item.html is None and item.safe_html() is None


# -- safe_html -------------------------------------------------------------------------------


class _Canonical(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.out: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.out.append(f"<{tag}" + "".join(f' {k}="{v}"' for k, v in sorted(attrs)) + ">")

    def handle_endtag(self, tag: str) -> None:
        self.out.append(f"</{tag}>")

    def handle_data(self, data: str) -> None:
        self.out.append(data)


def canonical(html: str) -> str:
    """The markup with each tag's attributes sorted: nh3 does not fix their order."""
    parser = _Canonical()
    parser.feed(html)
    parser.close()
    return "".join(parser.out)



def test_safe_html_removes_scripts_handlers_and_javascript_urls_and_keeps_text() -> None:
    dirty = ('<div onclick="steal()">سلام <b>دوست</b><script>alert(1)</script>'
             '<img src=x onerror="alert(2)" alt="عکس">'
             '<a href="javascript:alert(3)">بد</a> <a href="https://shop.example/o/12">سفارش</a>'
             '<iframe src="https://evil.example"></iframe><form action="/x"><input></form>'
             '<style>body{display:none}</style>'
             '<p style="color:red;position:fixed;background:url(https://t.example/x)">قرمز</p>'
             '</div>')
    clean = sanitize(dirty, {})
    for banned in ("<script", "alert", "onerror", "onclick", "javascript:", "<iframe", "<form",
                   "<style", "position", "url(", "src="):
        assert banned not in clean, banned
    assert canonical(clean) == canonical(
        '<div>سلام <b>دوست</b><img alt="عکس"><a target="_blank" '
        'rel="noopener noreferrer nofollow">بد</a> <a href="https://shop.example/o/12" '
        'target="_blank" rel="noopener noreferrer nofollow">سفارش</a>'
        '<p style="color:red">قرمز</p></div>')


def test_safe_html_blocks_remote_images_and_keeps_own_inline_ones() -> None:
    html = ('<img src="https://t.example/pixel.gif" alt="p"><img src="cid:k1@x" alt="a">'
            '<img src="attachment:forged" alt="f"><img src="data:image/png;base64,AAAA" alt="d">'
            '<a href="cid:k1@x">پیوست</a><img src="cid:other@x" alt="o">')
    assert canonical(sanitize(html, {"k1@x": "k1"})) == canonical(
        '<img alt="p"><img src="attachment:k1" alt="a"><img alt="f"><img alt="d">'
        '<a target="_blank" rel="noopener noreferrer nofollow">پیوست</a><img alt="o">')
