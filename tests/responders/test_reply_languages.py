"""The reply wrappers (templates/replies: greeting, signature) speak the customer's
language, whoever answers: an English customer gets the English greeting (issue 14: a
Persian-only greeting went to an English customer, "Sophie Martin عزیز، سلام …")."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from kartabl import workflow
from kartabl.errors import PermanentDeliveryError
from kartabl.models import Channel, Message, Reply, Role, SandboxDelivery
from responders import render
from responders.dispatch import dispatch_reply
from responders.preview import REPLY_CHECK, preview_reply
from responders.render import has_template, render_reply, template_names, template_title
from tests import factories as f


@pytest.mark.parametrize("channel", list(Channel))
def test_the_greeting_exists_in_both_languages(channel: Channel) -> None:
    en = render_reply(channel, "Your parcel ships today.", template="greeting",
                      language="en", context={"customer_name": "Sophie Martin"})
    fa = render_reply(channel, "بسته امروز ارسال می‌شود.", template="greeting",
                      language="fa", context={"customer_name": "سارا"})
    assert en.text.startswith("Dear Sophie Martin,") and "عزیز" not in en.text
    assert "سلام" not in en.text and "Best regards" in en.text
    assert fa.text.startswith("سارا عزیز، سلام.") and "Dear" not in fa.text
    if channel is Channel.EMAIL:
        assert en.html is not None and "Dear Sophie Martin," in en.html
        assert fa.html is not None and "عزیز" in fa.html


def test_the_default_subject_follows_the_language() -> None:
    assert render_reply("email", "x", language="en").subject == "Your request"
    assert render_reply("email", "x", language="fa").subject == "پاسخ به درخواست شما"
    with pytest.raises(PermanentDeliveryError, match="language"):
        render_reply("email", "x", language="de")


def test_wrappers_are_named_in_the_reader_s_language() -> None:
    assert template_title("greeting", "en") == "Greeting and signature"
    assert template_title("greeting", "fa") == "سلام و امضا"
    assert template_title("nothing-here", "fa") == "nothing-here"
    assert template_names("sms") == ["default", "greeting"]


@pytest.fixture
def templates(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setattr(render, "TEMPLATES_DIR", tmp_path)
    render._env.cache_clear()
    yield tmp_path
    render._env.cache_clear()


def test_a_template_missing_a_language_is_not_offered(templates: Path) -> None:
    # Given a wrapper written in Persian only, and one shared by both languages
    (templates / "thanks" / "fa").mkdir(parents=True)
    (templates / "thanks" / "fa" / "sms.txt").write_text("{{ body }} ممنون", encoding="utf-8")
    (templates / "plain").mkdir()
    (templates / "plain" / "sms.txt").write_text("{{ body }}", encoding="utf-8")
    # Then only the shared one is offered: the English customer would get Persian otherwise
    assert not has_template("thanks", "sms") and has_template("plain", "sms")
    assert template_names("sms") == ["plain"]
    # and rendering the Persian-only one for an English customer fails, never falls back
    with pytest.raises(PermanentDeliveryError):
        render_reply("sms", "x", template="thanks", language="en")
    assert render_reply("sms", "x", template="thanks", language="fa").text == "x ممنون"


def _greeted(s: Session, text: str, name: str) -> int:
    support = f.team(s)
    agent = f.person(s, teams=[support])
    agent.locale = "fa"  # a Persian-speaking agent answers: the customer's language decides
    coordinator = f.person(s, role=Role.COORDINATOR)
    conv = f.conversation(s, channel=Channel.EMAIL, team=support, assignee=agent, text=text,
                          subject="My order")
    for msg in s.scalars(select(Message).where(Message.conversation_id == conv.id)):
        msg.sender_name = name
    reply = workflow.draft(s, agent, conv.id, "Your parcel ships today.", template="greeting",
                           check=REPLY_CHECK)
    workflow.submit(s, agent, reply.id, check=REPLY_CHECK)
    workflow.approve(s, coordinator, reply.id, check=REPLY_CHECK)
    s.commit()
    return reply.id


def test_an_english_customer_gets_the_english_greeting(
    db: sessionmaker[Session], sandbox: object, enqueued: object,
) -> None:
    with db() as s:
        rid = _greeted(s, "Hello, where is my parcel?", "Sophie Martin")
        reply = s.get(Reply, rid)
        assert reply is not None
        shown = preview_reply(s, reply)  # what the approver saw
    assert shown.text.startswith("Dear Sophie Martin,")
    assert dispatch_reply(db, rid) == "sent"
    with db() as s:
        [d] = s.scalars(select(SandboxDelivery))
        assert d.body.startswith("Dear Sophie Martin,\n\nYour parcel ships today.")
        assert "عزیز" not in d.body and "سلام" not in d.body
        assert d.subject == "Re: My order"


def test_a_persian_customer_gets_the_persian_greeting(
    db: sessionmaker[Session], sandbox: object, enqueued: object,
) -> None:
    with db() as s:
        rid = _greeted(s, "سلام، بسته‌ام کجاست؟", "سارا")
    assert dispatch_reply(db, rid) == "sent"
    with db() as s:
        [d] = s.scalars(select(SandboxDelivery))
        assert d.body.startswith("سارا عزیز، سلام.") and "Dear" not in d.body
