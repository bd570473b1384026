"""The Graph API as Kartabl uses it, over httpx: the error shape, media downloads, and one
JSON POST. Shared by the webhook (media in) and the sender (:mod:`responders.meta`).

Every Graph error is ``{"error": {"message", "type", "code", "error_subcode",
"fbtrace_id"}}`` (WhatsApp adds ``error_data.details``); :class:`GraphError` keeps the
codes, and :func:`classify` says what a code means for a send:

    rate limits: 4 (app), 17 (user), 32 (page), 613, 80007 (WhatsApp account),
      130429 (Cloud API throughput), 131056 (pair rate)          → "rate": not sent, later
    transient: 1 (unknown), 2 (service unavailable), 133004
      (WhatsApp server temporarily unavailable)                  → "retry": not sent
    10 with subcode 2018278 / 2534022, 131047 (re-engagement):
      outside the customer service window                         → "window": refused
    190 (token), 200-299 (permissions), 100 (invalid parameter),
      131026 (undeliverable) and every other code                  → "refused"

Tokens go in the ``Authorization: Bearer`` header, never in a URL, so no log line carries
one. A media URL from a webhook is fetched only over https, or from the configured Graph
origin (the stand-in): a payload cannot point Kartabl at an internal address.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Final, Literal
from urllib.parse import urlsplit

import httpx

from config.meta import MetaConfig

RATE_CODES: Final = frozenset({4, 17, 32, 613, 80007, 130429, 131056})
TRANSIENT_CODES: Final = frozenset({1, 2, 133004})
WINDOW_SUBCODES: Final = frozenset({2018278, 2534022})
WINDOW_CODES: Final = frozenset({131047})
Kind = Literal["rate", "retry", "window", "refused"]
MAX_REASON: Final = 300


@dataclass(frozen=True, slots=True)
class GraphError(Exception):
    status: int
    code: int | None
    subcode: int | None
    message: str
    fbtrace_id: str = ""

    def __str__(self) -> str:
        sub = f"/{self.subcode}" if self.subcode else ""
        return f"Graph API error {self.code}{sub} (HTTP {self.status}): {self.message}"


def error_of(response: httpx.Response) -> GraphError | None:
    """The Graph error in ``response``, or None when its body is not one (a proxy's page)."""
    try:
        body = response.json()
    except (ValueError, UnicodeDecodeError):
        return None
    err = body.get("error") if isinstance(body, dict) else None
    if not isinstance(err, dict):
        return None
    code, sub = err.get("code"), err.get("error_subcode")
    details = (err.get("error_data") or {}).get("details") if isinstance(
        err.get("error_data"), dict) else None
    text = str(err.get("message") or "")
    if details:
        text = f"{text} ({details})"
    return GraphError(response.status_code, code if isinstance(code, int) else None,
                      sub if isinstance(sub, int) else None, text[:MAX_REASON],
                      str(err.get("fbtrace_id") or ""))


def classify(err: GraphError) -> Kind:
    if err.code in RATE_CODES:
        return "rate"
    if err.code in TRANSIENT_CODES:
        return "retry"
    if err.code in WINDOW_CODES or (err.code == 10 and err.subcode in WINDOW_SUBCODES) \
            or err.subcode in WINDOW_SUBCODES:
        return "window"
    return "refused"


class MediaError(Exception):
    """A media file could not be fetched (or is over the cap); the reason, never a token."""


def client(config: MetaConfig) -> httpx.Client:
    return httpx.Client(timeout=httpx.Timeout(config.timeout_s, connect=config.connect_timeout_s),
                        follow_redirects=False)


def post_json(http: httpx.Client, url: str, token: str, payload: dict[str, Any]
              ) -> httpx.Response:
    return http.post(url, content=json.dumps(payload, ensure_ascii=False).encode(),
                     headers={"Authorization": f"Bearer {token}",
                              "Content-Type": "application/json"})


def _allowed(url: str, config: MetaConfig) -> bool:
    parts = urlsplit(url)
    graph = urlsplit(config.graph_url)
    return parts.scheme == "https" or (parts.scheme, parts.netloc) == (graph.scheme,
                                                                      graph.netloc)


def download(http: httpx.Client, url: str, config: MetaConfig, max_bytes: int, *,
             token: str | None = None) -> bytes | None:
    """The bytes at ``url`` (with the bearer ``token`` when given: WhatsApp's media URLs
    need it, Instagram's CDN URLs do not); None when larger than ``max_bytes`` (read no
    further). :class:`MediaError` when it cannot be fetched."""
    if not _allowed(url, config):
        raise MediaError("a media URL that is neither https nor the Graph API's origin")
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        with http.stream("GET", url, headers=headers) as response:
            if response.status_code != 200:
                raise MediaError(f"media answered HTTP {response.status_code}")
            data = bytearray()
            for chunk in response.iter_bytes():
                data += chunk
                if len(data) > max_bytes:
                    return None
            return bytes(data)
    except httpx.HTTPError as exc:
        raise MediaError(f"media unavailable: {type(exc).__name__}") from None


def whatsapp_media(http: httpx.Client, media_id: str, config: MetaConfig, token: str
                   ) -> dict[str, Any]:
    """``GET /<media-id>``: ``{"url", "mime_type", "sha256", "file_size", "id"}``."""
    if not media_id.isdigit():
        raise MediaError("a media id is digits")
    try:
        response = http.get(f"{config.graph_url}/{media_id}",
                            headers={"Authorization": f"Bearer {token}"})
    except httpx.HTTPError as exc:
        raise MediaError(f"media lookup unavailable: {type(exc).__name__}") from None
    if response.status_code != 200:
        err = error_of(response)
        raise MediaError(str(err) if err else f"media lookup answered {response.status_code}")
    try:
        body = response.json()
    except (ValueError, UnicodeDecodeError):  # a proxy's page: the file, not the message
        raise MediaError("media lookup answered 200 without JSON") from None
    if not isinstance(body, dict) or not isinstance(body.get("url"), str):
        raise MediaError("media lookup without a url")
    return body
