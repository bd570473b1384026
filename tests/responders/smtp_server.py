"""A local SMTP server for the SMTP sender's tests: aiosmtpd on 127.0.0.1, a free port, a
handler that records what it received and can be told to answer with an error code, drop
the connection, or stall (at MAIL, RCPT or the end of DATA). Variants: STARTTLS or implicit
TLS with a self-signed certificate made by the openssl CLI, and AUTH PLAIN/LOGIN."""

from __future__ import annotations

import asyncio
import ssl
from collections import deque
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from bench.ports import free_port
from config.channels import EmailConfig

QUEUE_ID = "4XkP1Ab"
Fault = str  # an SMTP answer ("451 4.3.0 try later"), "drop", or "stall:<seconds>"


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes

    @property
    def message(self) -> EmailMessage:
        msg = BytesParser(policy=policy.default).parsebytes(self.data)
        assert isinstance(msg, EmailMessage)
        return msg


@dataclass
class Recorder:
    """The aiosmtpd handler. ``faults[step]`` answers the next commands of that step
    ("MAIL", "RCPT", "DATA": the answer after the message data) instead of accepting."""

    received: list[Received] = field(default_factory=list)
    faults: dict[str, deque[Fault]] = field(
        default_factory=lambda: {"MAIL": deque(), "RCPT": deque(), "DATA": deque()})
    logins: list[tuple[str, str]] = field(default_factory=list)

    def fail(self, step: str, *faults: Fault) -> None:
        self.faults[step].extend(faults)

    async def _fault(self, step: str, server: Any) -> str | None:
        if not self.faults[step]:
            return None
        return await self._apply(self.faults[step].popleft(), server)

    async def _apply(self, fault: Fault, server: Any) -> str:
        if fault == "drop":
            server.transport.close()
            return "421 4.4.2 connection dropped"  # never reaches the client
        if fault.startswith("stall:"):
            await asyncio.sleep(float(fault.partition(":")[2]))
            return "250 OK (too late)"
        return fault

    async def handle_MAIL(self, server: Any, session: Any, envelope: Any, address: str,
                          mail_options: list[str]) -> str:
        fault = await self._fault("MAIL", server)
        if fault:
            return fault
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str,
                          rcpt_options: list[str]) -> str:
        fault = await self._fault("RCPT", server)
        if fault:
            return fault
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        fault = self.faults["DATA"].popleft() if self.faults["DATA"] else None
        if fault is None or fault == "drop" or fault.startswith("stall:"):
            # Accepted (perhaps with the answer lost on the way): the mail is here.
            self.received.append(Received(envelope.mail_from, list(envelope.rcpt_tos),
                                          envelope.original_content or envelope.content))
        if fault is None:
            return f"250 2.0.0 Ok: queued as {QUEUE_ID}"
        return await self._apply(fault, server)

    def authenticate(self, server: Any, session: Any, envelope: Any, mechanism: str,
                     auth_data: Any) -> AuthResult:
        assert isinstance(auth_data, LoginPassword)
        user, password = auth_data.login.decode(), auth_data.password.decode()
        self.logins.append((mechanism, user))
        return AuthResult(success=(user, password) == ("support", "s3cret-pass"), handled=False)




@dataclass
class SmtpServer:
    recorder: Recorder
    controller: Controller
    port: int
    security: str = "plain"  # what a client must speak: plain, starttls or tls
    cafile: Path | None = None

    def messages(self) -> list[EmailMessage]:
        return [r.message for r in self.recorder.received]

    def client_context(self) -> ssl.SSLContext:
        """A client context that trusts this server's self-signed certificate."""
        return ssl.create_default_context(cafile=str(self.cafile) if self.cafile else None)

    def email_config(self, *, username: str = "", password: str = "", timeout_s: float = 5.0,
                     data_timeout_s: float = 5.0, security: str | None = None,
                     extra: list[dict[str, Any]] = ()) -> EmailConfig:
        smtp = {"host": "127.0.0.1", "port": self.port, "security": security or self.security,
                "username": username, "password": password, "timeout_s": timeout_s,
                "data_timeout_s": data_timeout_s}
        return EmailConfig.model_validate({"mailboxes": [
            {"name": "support", "address": "support@kartabl.example",
             "display_name": "پشتیبانی کارتابل", "aliases": ["help@kartabl.example"],
             "smtp": smtp},
            *extra,
        ]})


def start(*, security: str = "plain", cert: tuple[Path, Path] | None = None,
          auth: bool = False) -> SmtpServer:
    recorder = Recorder()
    port = free_port()
    kwargs: dict[str, Any] = {}
    if security != "plain":
        assert cert is not None
        server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        server_ctx.load_cert_chain(str(cert[0]), str(cert[1]))
        if security == "tls":
            kwargs["ssl_context"] = server_ctx
        else:
            kwargs.update(tls_context=server_ctx, require_starttls=True)
    if auth:
        kwargs.update(authenticator=recorder.authenticate, auth_required=True,
                      auth_require_tls=False)
    controller = Controller(recorder, hostname="127.0.0.1", port=port, **kwargs)
    controller.start()
    return SmtpServer(recorder, controller, port, security, cert[0] if cert else None)


