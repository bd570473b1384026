"""`kartabl web` trusts X-Forwarded-For only from the proxies in KARTABL_FORWARDED_ALLOW_IPS
(issue 12: it trusted any local process, so one could pick the address the login limits
count by). A real `kartabl web` process; the address it saw is the sign-in's recorded one."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from bench.ports import free_port


def _seen_address(tmp_path: Path, template: Path, extra: dict[str, str]) -> str:
    db_path = tmp_path / "k.db"
    shutil.copy(template, db_path)
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("KARTABL_")},
        "KARTABL_DATABASE_URL": f"sqlite:///{db_path}", "KARTABL_BROKER": "stub",
        "KARTABL_WEB_HOST": "127.0.0.1", "KARTABL_WEB_PORT": str(port), **extra,
    }
    log = (tmp_path / "web.log").open("wb")
    proc = subprocess.Popen([str(Path(sys.executable).with_name("kartabl")), "web"], env=env,
                            cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, (
                tmp_path / "web.log").read_text()
            time.sleep(0.2)
        r = httpx.post(base + "/login", data={"username": "nobody", "password": "not-it-at-all"},
                       headers={"X-Forwarded-For": "203.0.113.7"}, timeout=30)
        assert r.status_code == 303 and r.headers["location"].startswith("/login")  # refused
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        log.close()
    with sqlite3.connect(db_path) as conn:
        [(ip,)] = conn.execute("SELECT ip FROM login_attempt").fetchall()
    db_path.unlink()
    return str(ip)


@pytest.mark.parametrize(("setting", "seen"), [
    ({}, "127.0.0.1"),  # default: no proxy trusted, the header is ignored
    ({"KARTABL_FORWARDED_ALLOW_IPS": "127.0.0.1"}, "203.0.113.7"),  # our proxy: believed
    ({"KARTABL_FORWARDED_ALLOW_IPS": "10.0.0.5"}, "127.0.0.1"),  # someone else's: ignored
])
def test_forwarded_for_is_trusted_only_from_the_named_proxies(
    tmp_path: Path, sqlite_template: Path, setting: dict[str, str], seen: str
) -> None:
    assert _seen_address(tmp_path, sqlite_template, setting) == seen
