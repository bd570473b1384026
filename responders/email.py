"""The email sender: an approved reply leaves by SMTP (smtplib), over TLS, STARTTLS or plain,
with a login when the account has a username, and a timeout on every connection.

The mailbox that answers is the one the customer wrote to (``msg.meta["from"]``, looked up in
the channels file), else the first mailbox with an SMTP account. The MIME message is built by
:mod:`responders.email_mime` (header safety lives there).

Errors are mapped here, at the edge, by *when* they happen, following the sender contract
(:mod:`kartabl.outbound`)::

    before the message data went out (connect, TLS, EHLO, AUTH, MAIL, RCPT, DATA → 354):
        refused / reset / timeout / DNS / TLS handshake, server disconnected,
        SMTP 4xx (421, 450, 451, 452, 454 ...)         → RetryableDeliveryError
        SMTP 5xx (535 auth, 550/553 recipient, 554)    → PermanentDeliveryError(server's text)
        no STARTTLS / AUTH offered, certificate does
        not verify: a configuration error              → PermanentDeliveryError
    after the data went out (the body, then "." and the final answer):
        final 2xx                                       → sent; provider id returned
        final 4xx / 5xx: the server said no             → Retryable / Permanent as above
        timeout / disconnect / reset: outcome unknown   → OutcomeUnknown, so the outbox
            leaves the reply 'sending' for the reconcile sweep (this channel's rows of the
            table in :mod:`responders.outcomes`)

The provider id is the Message-ID, followed by the server's queue id when its final answer
names one (``250 2.0.0 Ok: queued as 4XkP1``): ``<kartabl...@dom> queued-as 4XkP1``.

``unknown_outcome = "at_least_once"``: SMTP cannot be asked whether a mail was accepted
(:meth:`SmtpSender.lookup` raises ``NotImplementedError``), so a reply left 'sending' by a
crash is sent again. A duplicate carries the same Message-ID (fixed at approval), so it is
recognisable and most clients and archives collapse it; a reply lost silently is worse (the
customer waits, nobody knows: Zammad #1239). :meth:`SmtpSender.status` is None: delivery
failures come back later as bounces, which :mod:`router.bounces` turns into failed replies.

One connection per reply: replies are few and reviewed by hand, and a fresh connection never
inherits a half-broken session.
"""

from __future__ import annotations

import logging
import re
import smtplib
import ssl
from pathlib import Path
from typing import Final

from config.channels import EmailConfig, Mailbox, SmtpAccount
from kartabl.errors import (
    DeliveryError,
    OutcomeUnknown,
    PermanentDeliveryError,
    RetryableDeliveryError,
)
from kartabl.messages import OutboundAttachment, OutboundMessage
from kartabl.outbound import DeliveryStatus, Sender, UnknownOutcomePolicy
from responders.email_mime import SMTP_POLICY, build_email, plain_address
from responders.outcomes import request_leaves
from responders.reply_files import read_all

log = logging.getLogger(__name__)

MAX_REASON_CHARS: Final = 1000
_QUEUED = re.compile(rb"queued as ([A-Za-z0-9][A-Za-z0-9._-]{0,99})", re.IGNORECASE)
_DOT_LINE = re.compile(rb"(?m)^\.")
_EOL = re.compile(rb"\r\n|\r|\n")


class SmtpSender(Sender):
    """Sends email replies through the mailboxes of ``email`` that have an SMTP account.
    ``ssl_context`` replaces the default (system CAs, hostname checked), e.g. in tests."""

    channel: str = "email"
    unknown_outcome: UnknownOutcomePolicy = "at_least_once"
    can_look_up = False

    def __init__(
        self, email: EmailConfig, *, ssl_context: ssl.SSLContext | None = None,
        sending_stale_s: float | None = None, attachments_dir: Path | None = None,
    ) -> None:
        self._email = email
        self._files_dir = attachments_dir  # where a reply's attached files are stored
        self._mailboxes = [m for m in email.mailboxes if m.smtp is not None]
        if not self._mailboxes:
            raise ValueError("no mailbox in the channels file has an smtp account")
        if sending_stale_s is not None:
            # The reconcile sweep treats a reply 'sending' for longer than sending_stale_s as
            # crashed, and this sender's policy then sends it again: a send still waiting
            # for its answer must never be that old, or the customer gets it twice.
            for m in self._mailboxes:
                assert m.smtp is not None
                if m.smtp.worst_case_s >= sending_stale_s:
                    raise ValueError(
                        f"mailbox {m.name}: one SMTP send may take {m.smtp.worst_case_s:.0f} s "
                        f"(8 x timeout_s + data_timeout_s), not less than "
                        f"KARTABL_SENDING_STALE_S={sending_stale_s:.0f}: raise the setting or "
                        "lower the timeouts")
        self._ssl = ssl_context

    def __repr__(self) -> str:  # names only: never hosts' passwords
        return f"<SmtpSender {', '.join(m.name for m in self._mailboxes)}>"

    def mailbox_for(self, msg: OutboundMessage) -> Mailbox:
        """The mailbox the customer wrote to, if it can send; else the first that can."""
        wrote_to = str(msg.meta.get("from") or "")
        found = self._email.for_address(wrote_to) if wrote_to else None
        return found if found is not None and found.smtp is not None else self._mailboxes[0]

    def send(self, msg: OutboundMessage) -> str:
        mailbox = self.mailbox_for(msg)
        assert mailbox.smtp is not None  # mailbox_for only returns mailboxes that can send
        em = build_email(msg, from_address=mailbox.address, display_name=mailbox.display_name,
                         files=self._files(msg))
        envelope_from = plain_address(mailbox.address, "sender address").addr_spec
        rcpt = plain_address(msg.recipient).addr_spec
        payload = em.as_bytes(policy=SMTP_POLICY)
        final = _deliver(mailbox.smtp, self._context(), envelope_from, rcpt, payload)
        provider_id = str(em["Message-ID"])
        queued = _QUEUED.search(final)
        if queued:
            provider_id = f"{provider_id} queued-as {queued[1].decode('ascii')}"
        log.info("reply %s sent by SMTP via mailbox %s as %s", msg.reply_id, mailbox.name,
                 provider_id)
        return provider_id

    def _files(self, msg: OutboundMessage) -> list[tuple[OutboundAttachment, bytes]]:
        return read_all(self._files_dir, msg.attachments)

    def lookup(self, msg: OutboundMessage) -> str | None:
        raise NotImplementedError("SMTP cannot tell whether a server accepted a message")

    def status(self, provider_id: str) -> DeliveryStatus | None:
        return None  # failures come back as bounces (router.bounces)

    def _context(self) -> ssl.SSLContext:
        return self._ssl if self._ssl is not None else ssl.create_default_context()


def _deliver(account: SmtpAccount, context: ssl.SSLContext, envelope_from: str, rcpt: str,
             payload: bytes) -> bytes:
    """One SMTP transaction; returns the server's final answer text."""
    host = f"{account.host}:{account.effective_port}"
    conn: smtplib.SMTP | None = None
    request_leaves()  # errors before the data are still mapped below, by what they say
    try:
        try:
            conn = _connect(account, context, envelope_from.rpartition("@")[2])
            _expect(conn.mail(envelope_from), (250,), host, "MAIL FROM")
            _expect(conn.rcpt(rcpt), (250, 251), host, "RCPT TO")
            conn.putcmd("data")
            _expect(conn.getreply(), (354,), host, "DATA")
        except Exception as exc:
            raise _before_data(exc, host) from exc
        # From here the server may have the message: a lost answer is an unknown outcome.
        try:
            conn.send(_wire_data(payload))
            if conn.sock is not None:
                conn.sock.settimeout(account.data_timeout_s)
            code, text = conn.getreply()
        except OSError as exc:  # timeouts, resets and SMTPServerDisconnected alike
            raise OutcomeUnknown(
                f"SMTP {host}: no answer after the message data was sent ({exc}); "
                "the server may have accepted it") from exc
        if code < 0:  # smtplib's -1: an answer it could not read, so accepted or not?
            raise OutcomeUnknown(
                f"SMTP {host}: unreadable answer after the message data was sent "
                f"({text!r:.200}); the server may have accepted it")
        _expect((code, text), (250, 251, 252), host, "end of data")
        return text
    finally:
        if conn is not None:
            _close(conn)


def _connect(account: SmtpAccount, context: ssl.SSLContext, helo_name: str) -> smtplib.SMTP:
    port, timeout = account.effective_port, account.timeout_s
    conn: smtplib.SMTP
    if account.security == "tls":
        conn = smtplib.SMTP_SSL(account.host, port, local_hostname=helo_name, timeout=timeout,
                                context=context)
    else:
        conn = smtplib.SMTP(account.host, port, local_hostname=helo_name, timeout=timeout)
    try:
        conn.ehlo_or_helo_if_needed()
        if account.security == "starttls":
            # Raises SMTPNotSupportedError when not offered: never go on in clear text.
            conn.starttls(context=context)
            conn.ehlo()
        if account.username:
            conn.login(account.username, account.password.get_secret_value())
    except BaseException:
        _close(conn)
        raise
    return conn


def _expect(answer: tuple[int, bytes], ok: tuple[int, ...], host: str, step: str) -> None:
    code, text = answer
    if code not in ok:
        raise _refused(code, text, host, step)


def _refused(code: int, text: bytes | str, host: str, step: str) -> DeliveryError:
    """The server said no: 4xx is worth another try, anything else is final."""
    reason = text.decode("utf-8", "replace") if isinstance(text, bytes) else str(text)
    message = f"SMTP {host} refused at {step}: {code} {' '.join(reason.split())}"
    message = message[:MAX_REASON_CHARS]
    if 400 <= code < 500 or code < 0:  # smtplib uses -1 for "no answer at all"
        return RetryableDeliveryError(message)
    return PermanentDeliveryError(message)


def _before_data(exc: Exception, host: str) -> Exception:
    """Map an error raised before the message data went out: nothing was accepted."""
    if isinstance(exc, DeliveryError):
        return exc
    if isinstance(exc, smtplib.SMTPResponseException):  # connect, HELO, AUTH, MAIL, DATA
        return _refused(exc.smtp_code, exc.smtp_error, host, type(exc).__name__)
    if isinstance(exc, smtplib.SMTPNotSupportedError):
        return PermanentDeliveryError(f"SMTP {host}: {exc} (check the channels file)")
    if isinstance(exc, ssl.SSLCertVerificationError):
        return PermanentDeliveryError(f"SMTP {host}: the server's certificate: {exc}")
    detail = f"SMTP {host}: {type(exc).__name__}: {exc}"
    if isinstance(exc, smtplib.SMTPServerDisconnected):
        return RetryableDeliveryError(detail)
    if isinstance(exc, smtplib.SMTPException):  # e.g. no AUTH mechanism both sides know
        return PermanentDeliveryError(detail)
    if isinstance(exc, OSError):  # refused, reset, timeout, DNS, a TLS handshake cut short
        return RetryableDeliveryError(detail)
    return PermanentDeliveryError(detail)  # anything else (a bug) recurs on every try


def _wire_data(payload: bytes) -> bytes:
    """The DATA section as smtplib's ``data()`` sends it: CRLF line ends, leading dots
    doubled, and the terminating ``.`` line."""
    data = _DOT_LINE.sub(b"..", _EOL.sub(b"\r\n", payload))
    if not data.endswith(b"\r\n"):
        data += b"\r\n"
    return data + b".\r\n"


def _close(conn: smtplib.SMTP) -> None:
    try:
        conn.quit()
    except (smtplib.SMTPException, OSError):
        conn.close()
