"""`kartabl run` (what `make run` starts), as a real process: it migrates a fresh SQLite
database, serves the console, and the demo's messages flow through to delivered replies."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from bench.ports import free_port

ROOT = Path(__file__).resolve().parent.parent




def _get(url: str, cookie: str = "") -> dict:
    request = urllib.request.Request(url, headers={"Cookie": cookie} if cookie else {})
    with urllib.request.urlopen(request, timeout=2) as r:
        return json.loads(r.read())


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


def _sign_in(base: str) -> str:
    """The session cookie of the demo's admin (the counts are not public)."""
    form = urllib.parse.urlencode({"username": "admin", "password": "kartabl-demo"}).encode()
    opener = urllib.request.build_opener(_NoRedirect)
    try:
        opener.open(base + "/login", data=form, timeout=5)
    except urllib.error.HTTPError as exc:  # the 303 after sign-in, not followed
        if exc.code != 303:
            raise
        # A refusal is a 303 too, back to /login with a notice cookie (post/redirect/get);
        # only a session cookie says it worked (too early: the demo's people are not there)
        for cookie in exc.headers.get_all("set-cookie") or []:
            if cookie.startswith("kartabl_session="):
                return cookie.split(";", 1)[0]
        raise OSError(f"sign-in refused: {exc.headers['location']}") from None
    raise AssertionError("sign-in did not answer 303")


def test_run_serves_console_and_demo_reaches_delivered(tmp_path: Path) -> None:
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("KARTABL_")},
        "KARTABL_DATABASE_URL": f"sqlite:///{tmp_path / 'k.db'}",
        "KARTABL_WEB_PORT": str(port),
        "KARTABL_DEMO_INTERVAL_S": "0.5",
    }
    kartabl = Path(sys.executable).with_name("kartabl")
    proc = subprocess.Popen(
        [str(kartabl), "run"], env=env, cwd=tmp_path,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    lines: list[str] = []  # the log so far, read as it comes

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()

    def logged(text: str) -> bool:
        return any(text in line for line in list(lines))

    def stand_ins_served() -> bool:
        # a reply left by the real SMS or bot sender and reached its stand-in (which one
        # comes first is the demo's dice; tests/test_demo_channels.py covers each)
        return logged("Kavenegar stand-in: SMS") or logged("Bot API stand-in: @kartabl_demo")

    try:
        status: dict = {}
        cookie = ""
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                cookie = cookie or _sign_in(f"http://127.0.0.1:{port}")
                status = _get(f"http://127.0.0.1:{port}/api/v1/status", cookie)
            except OSError:
                status = {}
            if (status.get("replies", {}).get("delivered", 0) >= 1 and status.get("customers")
                    and stand_ins_served()):
                break
            time.sleep(0.5)
        # Then the demo went all the way: routed, drafted, approved, sent, delivered
        assert status.get("replies", {}).get("delivered", 0) >= 1, (status, lines[-50:])
        assert status["messages_in"] >= 1 and status["unrouted"] <= status["messages_in"]
        assert _get(f"http://127.0.0.1:{port}/readyz")["status"] == "ok"
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=60)
        reader.join(timeout=10)
    out = "".join(lines)
    # It printed how to log in, and stopped cleanly on Ctrl-C
    assert "Demo accounts" in out and f"http://127.0.0.1:{port}" in out
    # the sign-in URL with the demo credentials, once the console answers (after uvicorn's
    # start-up lines, so it is the last thing the terminal shows before the demo's log)
    signin = f"Sign in: http://127.0.0.1:{port}/login  (user maryam, password kartabl-demo)"
    assert signin in out and out.index(signin) > out.index("Uvicorn running on"), out[:3000]
    assert proc.returncode == 0, out[-3000:]
    assert "reply.delivered" in out
    # SMS or messenger replies left by the real senders to the local stand-ins
    assert stand_ins_served(), out[-3000:]
    assert "sms replies leave by Kavenegar" in out and "telegram replies leave by" in out
    # and the stand-ins' key and tokens (random per run) never reached the log
    assert "/v1/demo-" not in out and "6100001:" not in out and "6200001:" not in out


def test_run_with_real_channels_refuses_the_development_secret(tmp_path: Path) -> None:
    # Given a channels file (real mailboxes) and no KARTABL_SECRET_KEY
    channels = tmp_path / "channels.toml"
    channels.write_text('[[email.mailboxes]]\nname = "support"\naddress = "s@example.com"\n',
                        encoding="utf-8")
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("KARTABL_")},
        "KARTABL_DATABASE_URL": f"sqlite:///{tmp_path / 'k.db'}",
        "KARTABL_CHANNELS_FILE": str(channels),
        "KARTABL_WEB_PORT": str(free_port()),
    }
    kartabl = Path(sys.executable).with_name("kartabl")
    done = subprocess.run([str(kartabl), "run", "--no-demo"], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=60)
    # Then it refuses to start, saying what to set, before touching the database
    assert done.returncode != 0
    assert "KARTABL_SECRET_KEY" in done.stderr
    assert not (tmp_path / "k.db").exists()
