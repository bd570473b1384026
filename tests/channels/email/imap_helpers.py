"""Mail to deliver over IMAP, and what the tests read back from the database."""

from __future__ import annotations

import contextlib
import socket
import threading
import uuid
from datetime import datetime

from imapclient import IMAPClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from kartabl.models import Channel, MailboxState, Message, PollerState, QuarantinedMail


def mail(
    n: int, *, message_id: str | None = "auto", sender: str | None = None,
    subject: str | None = None, body: str | None = None,
    date: str = "Mon, 23 Nov 2026 10:00:00 +0330",
) -> bytes:
    """A plain customer mail; ``message_id=None`` leaves the header out."""
    if message_id == "auto":
        message_id = f"<m{n}.{uuid.uuid4().hex[:8]}@customer.example>"
    headers = [
        f"From: Customer {n} <{sender or f'customer{n}@example.ir'}>",
        "To: Support <support@kartabl.example>",
        f"Subject: {subject or f'order {n}'}",
        f"Date: {date}",
        "MIME-Version: 1.0",
        "Content-Type: text/plain; charset=utf-8",
        "Content-Transfer-Encoding: 8bit",
    ]
    if message_id is not None:
        headers.append(f"Message-ID: {message_id}")
    text = body or f"سلام، سفارش شماره {n} من کجاست؟"
    return ("\r\n".join(headers) + "\r\n\r\n" + text + "\r\n").encode()


BAD_MAIL = b"Subject: no sender at all\r\n\r\nnobody wrote this\r\n"


def append(
    client: IMAPClient, raw: bytes, folder: str = "INBOX", flags: tuple[bytes, ...] = (),
    when: datetime | None = None,
) -> None:
    client.append(folder, raw, flags=flags, msg_time=when)


# Each read ends its transaction: on SQLite every transaction is BEGIN IMMEDIATE, so a test
# session left open would hold the write lock the poller needs. (expire_on_commit is off.)


def email_messages(session: Session) -> list[Message]:
    session.expire_all()
    rows = list(session.scalars(
        select(Message).where(Message.channel == Channel.EMAIL).order_by(Message.id)
    ))
    session.commit()
    return rows


def quarantined(session: Session) -> list[QuarantinedMail]:
    session.expire_all()
    rows = list(session.scalars(select(QuarantinedMail).order_by(QuarantinedMail.id)))
    session.commit()
    return rows


def count_messages(session: Session) -> int:
    session.expire_all()
    n = int(session.scalar(
        select(func.count()).select_from(Message).where(Message.channel == Channel.EMAIL)
    ) or 0)
    session.commit()
    return n


def maybe_state(session: Session, name: str = "support") -> MailboxState | None:
    session.expire_all()
    row = session.get(MailboxState, name)
    session.commit()
    return row


def mailbox_state(session: Session, name: str = "support") -> MailboxState:
    row = maybe_state(session, name)
    assert row is not None
    return row


def maybe_health(session: Session, name: str = "support") -> PollerState | None:
    """The mailbox's health, as the runner records it (``email:<name>``)."""
    session.expire_all()
    row = session.get(PollerState, f"email:{name}")
    session.commit()
    return row


def mailbox_health(session: Session, name: str = "support") -> PollerState:
    row = maybe_health(session, name)
    assert row is not None
    return row


def flags_by_uid(client: IMAPClient, folder: str = "INBOX") -> dict[int, set[bytes]]:
    client.select_folder(folder, readonly=True)
    return {
        uid: set(data[b"FLAGS"])
        for uid, data in client.fetch(client.search(["ALL"]), ["FLAGS"]).items()
    }


class Proxy:
    """A TCP relay to the real Dovecot that a test can switch off and on: off, its port is
    closed (connection refused) and every open connection is cut, as in an outage."""

    def __init__(self, port: int, target: tuple[str, int]) -> None:
        self.port, self.target = port, target
        self._server: socket.socket | None = None
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()

    def start(self) -> None:
        server = socket.create_server(("127.0.0.1", self.port))
        server.settimeout(0.2)
        self._server = server
        threading.Thread(target=self._accept, args=(server,), daemon=True).start()

    def stop(self) -> None:
        if self._server is not None:
            # shutdown first: a bare close() leaves the socket listening while the accept
            # thread still holds it, and the port could not be bound again.
            with contextlib.suppress(OSError):
                self._server.shutdown(socket.SHUT_RDWR)
            self._server.close()
            self._server = None
        with self._lock:
            for c in self._conns:
                with contextlib.suppress(OSError):
                    c.shutdown(socket.SHUT_RDWR)
                c.close()
            self._conns.clear()

    def _accept(self, server: socket.socket) -> None:
        while self._server is server:
            try:
                client, _ = server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            with self._lock:
                self._conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                dst.shutdown(socket.SHUT_RDWR)
