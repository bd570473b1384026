"""Where an API token may be used: under ``/api/v1`` only.

A token is made for an integration and narrowed to its scopes there. A page route signs
its caller in with the session cookie and its CSRF token; a token sent to a page would act
with its person's every power and need no CSRF token (issue 12: a ``reports`` token minted a
full token through ``POST /account/tokens``). So a request that carries
``Authorization: Bearer ...`` anywhere else is answered 401 before any route runs
(:class:`TokenBoundary`), and :func:`console.deps.optional_principal` refuses it again
should a route ever be reached another way.

Two places outside ``/api/v1`` read no person's credentials and keep their own:
``/webhooks/...`` (the providers' secrets) and ``/metrics`` (``KARTABL_METRICS_TOKEN``).
"""

from __future__ import annotations

import json
from typing import Final

from starlette.types import ASGIApp, Receive, Scope, Send

API_PREFIX: Final = "/api/v1/"
# Not person-signed: a bearer header there is the route's own business (see the docstring).
OWN_CREDENTIALS: Final = ("/webhooks/", "/metrics")
REFUSAL: Final = ("API tokens work only under /api/v1; pages need a signed-in session "
                  "(sign in at /login)")


def token_allowed(path: str) -> bool:
    """May a person's API token sign a request to ``path``?"""
    return path.startswith(API_PREFIX)


def _checked(path: str) -> bool:
    return not token_allowed(path) and not (
        path.startswith(OWN_CREDENTIALS[0]) or path == OWN_CREDENTIALS[1])


def _bearer(scope: Scope) -> bool:
    for name, value in scope.get("headers", ()):
        if name == b"authorization":
            return value.split(b" ", 1)[0].strip().lower() == b"bearer"
    return False


class TokenBoundary:
    """Pure ASGI (no per-request task, unlike ``BaseHTTPMiddleware``): a bearer token off
    ``/api/v1`` gets 401 and the app never sees the request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not _bearer(scope) or not _checked(scope["path"]):
            await self.app(scope, receive, send)
            return
        body = json.dumps({"detail": REFUSAL}).encode()
        await send({"type": "http.response.start", "status": 401, "headers": [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"www-authenticate", b'Bearer realm="/api/v1"'),
        ]})
        await send({"type": "http.response.body", "body": body})
