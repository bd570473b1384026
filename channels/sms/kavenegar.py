"""The ``kavenegar`` package's ``KavenegarAPI`` with a transport of our own.

kavenegar 1.1.2 (its only release) calls ``requests.post`` with no timeout, builds
``https://<host>/v1/<APIKEY>/<action>/<method>.json`` with https fixed, puts the key in its
``HTTPException`` text and its repr, and raises ``APIException`` with bytes. :class:`Kavenegar`
keeps the library's methods (``sms_send``, ``sms_status``, ...) and replaces ``_request``:

- the URL starts with the configured ``base_url`` (http for the local stand-in);
- connect and read timeouts, and a ``requests.Session`` of its own;
- the key masked (:data:`MASK`) in every error text we raise, in the repr, and in the logs
  of urllib3 (which logs each request path, key included, at DEBUG);
- errors mapped onto three kinds, by what they say about the request::

    KavenegarError
    ├── ApiError(status, message)  Kavenegar answered with an error envelope (418, 411 ...)
    ├── NotSent                    surely not processed: connection refused, connect
    │                              timeout, HTTP 5xx / 429 without an envelope

    and kartabl.errors.OutcomeUnknown: the request went out and no usable answer came back
    (read timeout, connection dropped, a garbled answer)

The sender (:mod:`responders.sms`) maps these onto :mod:`kartabl.errors`.
"""

from __future__ import annotations

import json
from typing import Any

import requests
from kavenegar import KavenegarAPI
from urllib3.exceptions import ConnectTimeoutError, MaxRetryError, NewConnectionError

from config.sms import SmsConfig
from kartabl.errors import KartablError, OutcomeUnknown
from kartabl.logs import hide_secret, redact

MASK = "<kavenegar-key>"
# Loggers that may print a request URL, which carries the key
# (urllib3.connectionpool logs '"POST /v1/<key>/sms/send.json HTTP/1.1" 200').
_URL_LOGGERS = ("urllib3", "urllib3.connectionpool", "requests", "kavenegar")


def _remember(key: str) -> None:
    hide_secret(key, MASK, loggers=_URL_LOGGERS)


class KavenegarError(KartablError):
    pass


class ApiError(KavenegarError):
    def __init__(self, status: int, message: str) -> None:
        self.status, self.message = status, message
        super().__init__(f"{status}: {message}")


class NotSent(KavenegarError):
    """``answered``: something answered (a 5xx, a 429) rather than nobody (refused)."""

    def __init__(self, reason: str, *, answered: bool) -> None:
        self.answered = answered
        super().__init__(reason)


def _never_sent(exc: requests.RequestException) -> bool:
    """True when no byte of the request can have reached Kavenegar."""
    if isinstance(exc, requests.ConnectTimeout):
        return True
    if isinstance(exc, requests.ConnectionError):
        # urllib3 wraps connect failures in MaxRetryError(reason=NewConnectionError); a
        # connection dropped after the request went out is a bare ProtocolError instead.
        inner = exc.args[0] if exc.args else None
        return isinstance(inner, MaxRetryError) and isinstance(
            inner.reason, (NewConnectionError, ConnectTimeoutError))
    return False


class Kavenegar(KavenegarAPI):  # kavenegar ships no type information: Any
    def __init__(self, config: SmsConfig) -> None:
        key = config.api_key.get_secret_value()
        super().__init__(key)
        _remember(key)
        self.base_url = config.base_url
        self.host = config.base_url.split("://", 1)[1]  # for anything reading the attribute
        self.timeout = (config.connect_timeout_s, config.timeout_s)
        self._session = requests.Session()

    def __repr__(self) -> str:
        return f"<Kavenegar {self.base_url} key={MASK}>"

    __str__ = __repr__

    def close(self) -> None:
        self._session.close()

    def _request(self, action: str, method: str, params: dict[str, Any] | None = None) -> Any:
        url = f"{self.base_url}/{self.version}/{self.apikey}/{action}/{method}.json"
        try:
            resp = self._session.post(url, headers=self.headers, data=params or {},
                                      timeout=self.timeout)
        except requests.RequestException as exc:
            # `from None`: the cause's text holds the URL, hence the key.
            what = f"{action}/{method}: {type(exc).__name__}: {redact(str(exc))}"
            if _never_sent(exc):
                raise NotSent(f"Kavenegar unreachable ({what})", answered=False) from None
            raise OutcomeUnknown(f"no answer from Kavenegar ({what})") from None
        try:
            envelope = json.loads(resp.content.decode("utf-8"))
            ret = envelope["return"]
            status, message = int(ret["status"]), str(ret.get("message", ""))
        except (ValueError, KeyError, TypeError):
            if resp.status_code == 429 or resp.status_code >= 500:
                # A proxy or an overloaded server refused it before Kavenegar's API saw it.
                raise NotSent(f"{action}/{method}: HTTP {resp.status_code}",
                              answered=True) from None
            raise OutcomeUnknown(
                f"{action}/{method}: HTTP {resp.status_code} with no Kavenegar answer") from None
        if status != 200:
            raise ApiError(status, redact(message))
        return envelope.get("entries")
