"""Building test mails: real MIME from the stdlib, or literal bytes from fixtures/."""

from __future__ import annotations

from email.message import EmailMessage
from email.policy import SMTP
from pathlib import Path

FIXTURES = Path(__file__).parent / "fixtures"
OURS = ("support@kartabl.example",)


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def mail(
    text: str | None = "Hello",
    *,
    html: str | None = None,
    subject: str = "Question",
    sender: str = "Customer <customer@example.com>",
    to: str = "support@kartabl.example",
    message_id: str | None = "<m1@example.com>",
    headers: dict[str, str] | None = None,
) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = subject
    msg["Date"] = "Tue, 03 Oct 2023 10:30:00 +0000"
    if message_id:
        msg["Message-ID"] = message_id
    for name, value in (headers or {}).items():
        msg[name] = value
    if text is not None:
        msg.set_content(text)
    if html is not None:
        if text is None:
            msg.set_content(html, subtype="html")
        else:
            msg.add_alternative(html, subtype="html")
    return msg


def raw(msg: EmailMessage) -> bytes:
    return msg.as_bytes(policy=SMTP)


def literal(headers: str, body: bytes) -> bytes:
    """A mail from header lines (ASCII) and body bytes exactly as given."""
    return headers.strip().replace("\n", "\r\n").encode("ascii") + b"\r\n\r\n" + body
