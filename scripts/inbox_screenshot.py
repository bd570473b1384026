"""Take the README's screenshot of the inbox in Persian: ``kartabl run --demo`` on a fresh
SQLite file, signed in as the demo coordinator (maryam, whose language is Persian), the
triage queue with its newest conversation open in the pane. Debian's chromium through
Playwright, as the browser tests drive it.

    PYTHONPATH=. .venv/bin/python scripts/inbox_screenshot.py docs/inbox-fa.png
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from playwright.sync_api import sync_playwright

from bench.ports import free_port
from boot.demo import DEMO_PASSWORD


def main(out: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory() as tmp:
        env = {**{k: v for k, v in os.environ.items() if not k.startswith("KARTABL_")},
               "KARTABL_DATABASE_URL": f"sqlite:///{tmp}/demo.db",
               "KARTABL_ATTACHMENTS_DIR": f"{tmp}/attachments",
               "KARTABL_WEB_PORT": str(port)}
        kartabl = str(Path(sys.executable).with_name("kartabl"))
        log = open(Path(tmp) / "run.log", "wb")  # noqa: SIM115 - closed with the process
        proc = subprocess.Popen([kartabl, "run", "--demo"], env=env, cwd=tmp,  # noqa: S603
                                stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    with urllib.request.urlopen(url + "/healthz", timeout=1):  # noqa: S310
                        break
                except OSError:
                    if time.monotonic() > deadline or proc.poll() is not None:
                        raise SystemExit((Path(tmp) / "run.log").read_text()[-3000:]) from None
                    time.sleep(0.3)
            time.sleep(8)  # the demo's customers write and its bots work for a few rounds
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=shutil.which("chromium"))
                page = browser.new_page(viewport={"width": 1440, "height": 900})
                page.goto(url + "/login")
                page.fill("input[name=username]", "maryam")
                page.fill("input[name=password]", DEMO_PASSWORD)
                page.click('form[action="/login"] button[type=submit]')
                page.wait_for_url(lambda u: "/login" not in u)
                page.goto(url + "/queues?queue=open")
                page.locator(".queue-row .row-link").first.click()
                page.wait_for_selector("#inbox-pane #conversation")
                time.sleep(1.5)  # the pane's live panels settle
                page.evaluate("window.scrollTo(0, 0)")  # the header, with its counts
                page.screenshot(path=str(out))
                browser.close()
        finally:
            proc.terminate()
            proc.wait(timeout=15)
            log.close()
    print(out)


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/inbox-fa.png"))
