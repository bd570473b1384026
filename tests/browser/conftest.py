"""Browser tests: a real ``kartabl web`` (uvicorn serving ``console.app:app``) driven in
Debian's Chromium by Playwright (``executable_path``; never ``playwright install``).

Run: ``.venv/bin/pytest -m browser`` (``make test`` installs chromium and runs them too).
Without chromium they skip, but fail when CI=true or KARTABL_REQUIRE_BROWSER=1.
Screenshots: $KARTABL_SCREENSHOTS_DIR (e.g. ``var/screenshots``), by default ``screenshots/``
in pytest's base temp (``/tmp/pytest-of-$USER/pytest-current/``), as ``<test>--<name>.png``.

Fixtures: ``live_server`` (per test: a fresh migrated SQLite file, its server, ``.url``,
``.db_url``, ``.session()`` to seed), ``kartabl_command`` (override for ``run --no-demo``),
``kartabl_env`` (override for extra ``KARTABL_*`` settings of the server),
``browser`` (session), ``page`` (fresh context; an uncaught JS error fails the test),
``screenshots_dir``, ``screenshot(name, of=None) -> Path``.
"""

from __future__ import annotations

import os
import re
import shutil
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, ConsoleMessage, Page, sync_playwright
from pydantic import SecretStr
from sqlalchemy.orm import Session

import config.routing
import config.settings
from bench.ports import free_port
from kartabl import reply_tokens, service_clock
from kartabl.db import make_engine
from tests.forkserver import ForkServer

HERE = Path(__file__).resolve().parent
REQUIRE_BROWSER = os.environ.get("CI") == "true" or os.environ.get("KARTABL_REQUIRE_BROWSER") == "1"
START_TIMEOUT_S = 20.0
BROWSER_LOCALE = {"fa": "fa-IR", "en": "en-US"}  # Accept-Language: the sign-in page's language
SECRET_KEY = "browser-tests-only"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:  # every test under tests/browser is a browser test
        if HERE in item.path.parents:
            item.add_marker(pytest.mark.browser)


@dataclass(frozen=True)
class LiveServer:
    url: str  # http://127.0.0.1:PORT, no trailing slash
    db_url: str  # the server's database: seed it with session()
    log: Path  # the server's stdout and stderr

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session on the server's database, committed when the block ends. The test
        steps the workflow in its own process, so it configures the service clock and the
        reply tokens' key as the server did at its start (settings' defaults, the default
        routing file, the server's secret)."""
        service_clock.configure(config.settings.get_settings(),
                                config.routing.load(config.settings.DEFAULT_ROUTING_FILE))
        reply_tokens.configure(SecretStr(SECRET_KEY))
        engine = make_engine(self.db_url)
        try:
            with Session(engine, expire_on_commit=False) as s:
                yield s
                s.commit()
        finally:
            engine.dispose()




def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as r:
            return r.status == 200
    except OSError:
        return False


def _slug(text: str) -> str:
    return re.sub(r"[^\w.-]+", "_", text)


@pytest.fixture
def kartabl_command() -> list[str]:
    """What ``live_server`` runs; override it in a module, e.g. ``["run", "--no-demo"]`` for
    the in-process workers and sweeps that a flow through routing and sending needs."""
    return ["web"]


@pytest.fixture
def kartabl_env() -> dict[str, str]:
    """Extra ``KARTABL_*`` settings for the server, applied over the fixture's own; override
    it in a module, e.g. a short ``KARTABL_SWEEP_INTERVAL_S`` so that ``run`` routes seeded
    messages and polls deliveries within a second."""
    return {}


@pytest.fixture
def live_server(
    tmp_path: Path, sqlite_template: Path, kartabl_command: list[str],
    kartabl_env: dict[str, str], forkserver: ForkServer,
) -> Iterator[LiveServer]:
    """``kartabl web`` on a free loopback port against a fresh migrated SQLite file (a copy of
    the suite's ``sqlite_template``, made by ``kartabl.migrate.upgrade``)."""
    db_path = tmp_path / "kartabl.db"
    shutil.copy(sqlite_template, db_path)
    port, log = free_port(), tmp_path / "server.log"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("KARTABL_")},
        "KARTABL_DATABASE_URL": f"sqlite:///{db_path}",
        "KARTABL_BROKER": "stub",
        "KARTABL_SECRET_KEY": SECRET_KEY,
        "KARTABL_ATTACHMENTS_DIR": str(tmp_path / "attachments"),
        "KARTABL_WEB_HOST": "127.0.0.1",
        "KARTABL_WEB_PORT": str(port),
        **kartabl_env,
    }
    # cwd=tmp_path: no developer's .env is read. Forked from the worker's fork server
    # (tests/forkserver.py): the same `kartabl` process, without 1.5 s of imports each.
    proc = forkserver.spawn(kartabl_command, env, tmp_path, log)
    server = LiveServer(f"http://127.0.0.1:{port}", env["KARTABL_DATABASE_URL"], log)
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not _answers(server.url + "/healthz"):
            if not proc.alive() or time.monotonic() > deadline:
                tail = log.read_text(errors="replace")[-3000:]
                pytest.fail(f"kartabl {kartabl_command} did not answer /healthz "
                            f"(running: {proc.alive()}):\n{tail}")
            time.sleep(0.05)
        yield server
    finally:
        proc.stop(timeout=10)  # SIGTERM: uvicorn drains and exits; SIGKILL after 10 s


@pytest.fixture(scope="session", autouse=True)
def chromium() -> str:
    """Debian's chromium binary; autouse, so a test without it skips before any server starts."""
    path = shutil.which("chromium")
    if path is None:
        reason = "chromium is not installed (make chromium, or apt-get install chromium)"
        if REQUIRE_BROWSER:
            pytest.fail(reason + "; it is required in CI", pytrace=False)
        pytest.skip(reason)
    return path


@pytest.fixture(scope="module")
def browser(chromium: str) -> Iterator[Browser]:
    # Module scope, not session: while Playwright's sync API is open, the main thread has a
    # running asyncio loop, and every later test calling asyncio.run() (the Telegram poller
    # and sender tests) failed with "cannot be called from a running event loop".
    with sync_playwright() as pw:
        # Playwright passes --no-sandbox itself (chromium_sandbox=False), which root needs
        b = pw.chromium.launch(executable_path=chromium, headless=True)
        yield b
        b.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(locale="fa-IR", viewport={"width": 1280, "height": 800})
    context.set_default_timeout(10_000)
    p = context.new_page()
    errors: list[str] = []
    p.on("pageerror", lambda exc: errors.append(str(exc)))
    yield p
    context.close()
    assert not errors, f"uncaught JavaScript errors on the page: {errors}"


@pytest.fixture(scope="session")
def screenshots_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    configured = os.environ.get("KARTABL_SCREENSHOTS_DIR")
    path = Path(configured) if configured else tmp_path_factory.getbasetemp() / "screenshots"
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture
def screenshot(
    request: pytest.FixtureRequest, page: Page, screenshots_dir: Path
) -> Callable[..., Path]:
    """``screenshot("after-login")`` saves the whole page as ``<test>--after-login.png``."""
    prefix = _slug(request.node.name)

    def take(name: str, of: Page | None = None) -> Path:
        path = screenshots_dir / f"{prefix}--{_slug(name)}.png"
        (of or page).screenshot(path=str(path), full_page=True)
        return path

    return take


@pytest.fixture
def page_init_scripts() -> list[str]:
    """Scripts every page of ``new_page`` runs before the site's own; override it in a
    module (e.g. a recorder in place of a browser API headless Chromium lacks)."""
    return []


@pytest.fixture
def new_page(browser: Browser, page_init_scripts: list[str]) -> Iterator[Callable[[str], Page]]:
    """A page in a browser context of its own per call, for one person each (``"fa"`` or
    ``"en"``: the browser's language); the test fails on any JavaScript error of any."""
    contexts: list[BrowserContext] = []
    errors: list[str] = []

    def make(locale: str) -> Page:
        context = browser.new_context(locale=BROWSER_LOCALE[locale],
                                      viewport={"width": 1280, "height": 900})
        context.set_default_timeout(10_000)
        for script in page_init_scripts:
            context.add_init_script(script)
        contexts.append(context)
        p = context.new_page()
        p.on("pageerror", lambda exc: errors.append(str(exc)))

        def on_console(msg: ConsoleMessage) -> None:
            if msg.type == "error":
                errors.append(msg.text)

        p.on("console", on_console)
        return p

    yield make
    for c in contexts:
        c.close()
    assert not errors, f"JavaScript errors: {errors}"
