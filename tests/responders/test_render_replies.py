"""Rendering replies: the sandbox, StrictUndefined, autoescaping, and the size limit."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from kartabl.errors import PermanentDeliveryError
from responders import render
from responders.render import has_template, render_reply, reply_subject

SSTI = [
    "{{ 7*7 }}",
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{% for x in range(3) %}{{ x }}{% endfor %}",
    "{{ config }} {{ self._TemplateReference__context }}",
]


@pytest.mark.parametrize("body", SSTI)
@pytest.mark.parametrize("channel", ["email", "sms", "telegram", "bale"])
def test_customer_and_agent_text_is_data_never_template(body: str, channel: str) -> None:
    out = render_reply(channel, body, context={"subject": body, "customer_name": body})
    assert out.text == body
    if channel == "email":
        assert out.subject == f"Re: {body}"


def test_default_email_has_subject_text_and_escaped_html() -> None:
    out = render_reply("email", '<script>alert(1)</script>\nسلام', context={"subject": "سفارش"})
    assert out.subject == "Re: سفارش"
    assert out.text == "<script>alert(1)</script>\nسلام"
    assert out.html is not None and "<script>" not in out.html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in out.html


def test_a_subject_cannot_smuggle_headers() -> None:
    out = render_reply("email", "x", context={"subject": "hi\r\nBcc: victim@example.com"})
    assert out.subject == "Re: hi Bcc: victim@example.com"


def test_messenger_and_sms_get_the_body_only() -> None:
    out = render_reply("sms", "  سلام  ", context={"subject": "ignored"})
    assert (out.text, out.subject, out.html) == ("سلام", "", None)


def test_reply_prefixes_are_not_stacked() -> None:
    assert reply_subject("Re: RE: Fwd: سفارش") == "سفارش"
    assert reply_subject("پاسخ: سفارش") == "سفارش"
    assert reply_subject("Report") == "Report"


@pytest.fixture
def templates(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setattr(render, "TEMPLATES_DIR", tmp_path)
    render._env.cache_clear()
    yield tmp_path
    render._env.cache_clear()


def write(root: Path, name: str, channel: str, source: str) -> None:
    (root / name).mkdir(exist_ok=True)
    (root / name / f"{channel}.txt").write_text(source, encoding="utf-8")


@pytest.mark.parametrize(
    "source",
    [
        "{{ 'x' * 100000000 }}",
        "{{ 10 ** 100000 }}",
        "{% for i in range(99999) %}{{ body }}{% endfor %}",
    ],
)
def test_renders_are_bounded(templates: Path, source: str) -> None:
    write(templates, "huge", "sms", source)
    with pytest.raises(PermanentDeliveryError, match="huge"):
        render_reply("sms", "0123456789", template="huge")


def test_strict_undefined_and_missing_templates_are_permanent(templates: Path) -> None:
    write(templates, "typo", "sms", "{{ bdy }}")
    with pytest.raises(PermanentDeliveryError, match="undefined"):
        render_reply("sms", "x", template="typo")
    with pytest.raises(PermanentDeliveryError):
        render_reply("telegram", "x", template="typo")  # no telegram.txt
    with pytest.raises(PermanentDeliveryError, match="invalid template name"):
        render_reply("sms", "x", template="../typo")
    assert has_template("typo", "sms") and not has_template("typo", "bale")
    assert not has_template("../typo", "sms")


def test_named_templates_get_the_context(templates: Path) -> None:
    write(templates, "thanks", "telegram", "{{ customer_name }} عزیز،\n{{ body }}")
    out = render_reply("telegram", "ممنون", template="thanks", context={"customer_name": "سارا"})
    assert out.text == "سارا عزیز،\nممنون"
