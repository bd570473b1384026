"""The Rubika Bot API over httpx: one call, its envelope, its errors, and the token kept out
of every log and error text.

Every method is ``POST <base_url>/<token>/<method>`` with a JSON body. The answer is an
envelope, and the envelope, not the HTTP status, says whether the call worked::

    {"status": "OK", "data": {...}}                              done
    {"status": "INVALID_INPUT", "dev_message": "..."}            refused (HTTP 200 too)

So :meth:`RubikaApi.call` reads the envelope whatever the HTTP status, and raises

- :class:`Refused` for any status but ``OK`` (``INVALID_INPUT``, ``INVALID_ACCESS``,
  ``TOO_REQUESTS``, or one we do not know), with ``dev_message``;
- :class:`ServerAnswered` for a 5xx without an envelope (Rubika's own failure, or a
  proxy's HTML page), or a 2xx whose body is no envelope at all;
- :class:`NotProcessed` for a 4xx without an envelope (a proxy, a wrong base URL);
- httpx's own errors (``ConnectError``, ``ReadTimeout`` ...) unchanged: the caller knows
  whether the request had left (the sender's outcome table, :mod:`responders.rubika`).

Why not a library: ``rubka`` (README, "Rubika"). The token is in every URL and httpx logs
request URLs at INFO: :func:`quiet_logs` raises httpx's logger to WARNING and masks the
token in what it still logs (:func:`kartabl.logs.hide_secret`); errors are built here from
the method's name, never from httpx's text, which may carry the URL.
"""

from __future__ import annotations

import json
import logging
from typing import Any, Final

import httpx

from config.rubika import RubikaBot
from kartabl.logs import hide_secret, redact

MASK: Final = "<rubika-token>"
MAX_ANSWER: Final = 2_000_000  # an envelope is a few KB; 100 updates a few hundred
REFUSAL_STATUSES: Final = ("INVALID_INPUT", "INVALID_ACCESS", "TOO_REQUESTS")


class RubikaError(Exception):
    """Any answer of the Bot API that is not a done call."""


class Refused(RubikaError):
    """The envelope's status is not ``OK``: Rubika (not a proxy) answered and said no."""

    def __init__(self, method: str, status: str, dev_message: str = "") -> None:
        self.method, self.status, self.dev_message = method, status, dev_message
        detail = f": {dev_message}" if dev_message else ""
        super().__init__(f"{method}: {status}{detail}")


class ServerAnswered(RubikaError):
    """A 5xx (or an unreadable 2xx): the request was received, what became of it is unknown."""

    def __init__(self, method: str, http_status: int, what: str) -> None:
        self.method, self.http_status = method, http_status
        super().__init__(f"{method}: HTTP {http_status} {what}".strip())


class NotProcessed(RubikaError):
    """A 4xx without Rubika's envelope: refused before the Bot API saw it (a proxy)."""

    def __init__(self, method: str, http_status: int) -> None:
        self.method, self.http_status = method, http_status
        super().__init__(f"{method}: HTTP {http_status} without a Bot API answer")


def quiet_logs(token: str) -> None:
    """Remember ``token`` as a secret, masked in httpx's logs and in :func:`redact`."""
    names = [n for n in logging.root.manager.loggerDict
             if n.split(".")[0] in ("httpx", "httpcore")]
    hide_secret(token, MASK, loggers={"httpx", "httpcore", *names})
    logging.getLogger("httpx").setLevel(logging.WARNING)  # "HTTP Request: POST <url>"


def _text(value: Any, limit: int = 300) -> str:
    return redact(value if isinstance(value, str) else json.dumps(value))[:limit]


class RubikaApi:
    """One bot's client: a pooled ``httpx.Client`` with the bot's timeouts. Thread-safe
    (httpx's client is); close it when done (:meth:`close`, or ``with``)."""

    def __init__(self, bot: RubikaBot, *, timeout_s: float | None = None) -> None:
        self.bot = bot
        self._token = bot.token.get_secret_value()
        quiet_logs(self._token)
        t = bot.timeout_s if timeout_s is None else timeout_s
        # No redirects: a redirect would carry the token in its URL to wherever it points.
        self._http = httpx.Client(timeout=httpx.Timeout(t), follow_redirects=False,
                                  headers={"User-Agent": "Kartabl"})

    def __repr__(self) -> str:  # never the token
        return f"<RubikaApi {self.bot.name}>"

    def __enter__(self) -> RubikaApi:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def url(self, method: str) -> str:
        return f"{self.bot.base_url}/{self._token}/{method}"

    def call(self, method: str, payload: dict[str, Any] | None = None) -> dict[str, Any]:
        """``method`` with ``payload``; its ``data`` (``{}`` when the envelope has none)."""
        response = self._http.post(self.url(method), json=payload or {})
        return self.envelope(method, response)

    @staticmethod
    def envelope(method: str, response: httpx.Response) -> dict[str, Any]:
        """The ``data`` of a Bot API answer, or the error it stands for (module docstring)."""
        code = response.status_code
        body: Any = None
        if len(response.content) <= MAX_ANSWER:
            try:
                body = response.json()
            except ValueError:
                body = None
        status = body.get("status") if isinstance(body, dict) else None
        if isinstance(status, str) and status:
            if status == "OK" and code < 300:
                data = body.get("data")
                return data if isinstance(data, dict) else {}
            if status != "OK":
                return _raise(Refused(method, status, _text(body.get("dev_message") or "")))
        if code >= 500 or code < 300:
            what = "with a Bot API answer but no status" if isinstance(body, dict) \
                else "(not a Bot API answer)"
            return _raise(ServerAnswered(method, code, what))
        return _raise(NotProcessed(method, code))

    def download(self, url: str, max_bytes: int) -> bytes | None:
        """The bytes at ``url`` (a ``getFile`` download link), or None when there are more
        than ``max_bytes`` (read no further than that). Raises httpx's errors and
        :class:`ServerAnswered` for a status other than 200."""
        with self._http.stream("GET", url) as response:
            if response.status_code != 200:
                raise ServerAnswered("download", response.status_code, "")
            declared = response.headers.get("Content-Length")
            if declared is not None and declared.isdigit() and int(declared) > max_bytes:
                return None
            chunks: list[bytes] = []
            size = 0
            for chunk in response.iter_bytes():
                size += len(chunk)
                if size > max_bytes:
                    return None
                chunks.append(chunk)
        return b"".join(chunks)

    def upload(self, upload_url: str, filename: str, content_type: str, data: bytes) -> str:
        """POST ``data`` as the multipart field ``file`` to a ``requestSendFile`` upload
        URL; the ``file_id`` Rubika gives it."""
        response = self._http.post(upload_url, files={"file": (filename, data, content_type)})
        file_id = self.envelope("upload", response).get("file_id")
        if not isinstance(file_id, str) or not file_id:
            raise ServerAnswered("upload", response.status_code, "without a file_id")
        return file_id


def _raise(exc: RubikaError) -> dict[str, Any]:
    raise exc
