"""The demo's website with the chat widget: a small shop page on a port of its own (another
origin than the console's, as a real shop is), under a strict Content-Security-Policy, with
the widget's snippet. A newcomer opens it, writes, and sees the conversation arrive in the
console (``/queues``), be answered and approved, and the answer come back in the widget.

The demo widget (``wdemo``, the ``support`` team) is made on the first run and its allowed
origin set to this run's page; an admin can edit it at ``/widgets``.
"""

from __future__ import annotations

import logging
import secrets
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from config.settings import Settings
from kartabl.models import Team, Widget

log = logging.getLogger("kartabl.demo")
PUBLIC_ID = "wdemo"
PAGE = """<!doctype html>
<html lang="{lang}" dir="{dir}"><head><meta charset="utf-8"><title>{title}</title></head>
<body><h1>{title}</h1><p>{text}</p><p><a href="/?lang={other}">{other_name}</a></p>
<script src="{base}/widget/{wid}/loader.js" data-lang="{lang}" async></script>
</body></html>"""
TEXTS = {
    "fa": {"title": "فروشگاه نمونه", "dir": "rtl", "other": "en", "other_name": "English",
           "text": "دکمهٔ گفتگو در پایین صفحه است. بنویسید و گفتگو را در کارتابل ببینید."},
    "en": {"title": "Demo shop", "dir": "ltr", "other": "fa", "other_name": "فارسی",
           "text": "The chat button is at the bottom. Write, and watch the conversation "
                   "arrive in the console."},
}


def ensure_widget(session: Session, origin: str) -> None:
    widget = session.scalar(select(Widget).where(Widget.public_id == PUBLIC_ID))
    if widget is None:
        team = session.scalar(select(Team.id).where(Team.name == "support"))
        widget = Widget(public_id=PUBLIC_ID, name="Demo shop", secret=secrets.token_hex(32),
                        team_id=team, greeting_fa="سلام! چطور می‌توانیم کمک کنیم؟",
                        greeting_en="Hello! How can we help?", ask_phone=True)
        session.add(widget)
    widget.origins = [origin]
    session.flush()  # the caller's transaction commits


def start_shop(settings: Settings, session: Session) -> ThreadingHTTPServer:
    """Serve the shop page on a free loopback port; returns the server (``shutdown()``)."""
    host = "127.0.0.1"
    web_host = host if settings.web_host in ("0.0.0.0", "::", "") else settings.web_host  # noqa: S104
    base = f"http://{web_host}:{settings.web_port}"
    csp = (f"default-src 'none'; script-src {base}; connect-src {base}; style-src 'none'; "
           "img-src 'none'; base-uri 'none'; form-action 'none'")

    class Shop(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # http.server's name for it
            lang = "en" if "lang=en" in self.path else "fa"
            page = PAGE.format(lang=lang, base=base, wid=PUBLIC_ID, **TEXTS[lang]).encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Security-Policy", csp)
            self.send_header("Content-Length", str(len(page)))
            self.end_headers()
            self.wfile.write(page)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer((host, 0), Shop)
    origin = f"http://{host}:{server.server_address[1]}"
    ensure_widget(session, origin)
    threading.Thread(target=server.serve_forever, name="demo-shop", daemon=True).start()
    log.info("demo shop with the website chat widget at %s/", origin)
    print(f"\n  Website chat demo: {origin}/  (write there; it arrives in the console)", flush=True)
    return server
