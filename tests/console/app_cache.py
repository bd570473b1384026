"""One console app per test process, pointed afresh at each test's settings.

FastAPI (0.165) analyses each route's dependencies lazily, per app, on the app's first
request: about 100-250 ms of CPU for the console's hundred routes. The console's page, API
and security tests made a new app per test, so over a thousand tests paid it. An app keeps
nothing of a test but what :func:`console.app.attach` sets (its ``state``: settings,
channels and routing files, the live hub) and ``dependency_overrides``; both are replaced
here, before each test, so a test sees what ``create_app()`` would have given it. The
routers are module-level objects whatever the app, and the lifespan starts the new hub at
each ``TestClient`` entry.
"""

from __future__ import annotations

from fastapi import FastAPI
from starlette.datastructures import State

from config.settings import get_settings
from console.app import attach, create_app

_app: FastAPI | None = None


def shared_app() -> FastAPI:
    """What ``create_app()`` returns for the current settings, reusing this process's app."""
    global _app
    if _app is None:
        _app = create_app()
        return _app
    _app.state = State()
    _app.dependency_overrides.clear()
    attach(_app, get_settings())
    return _app
