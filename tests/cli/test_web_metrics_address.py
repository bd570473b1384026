"""`KARTABL_METRICS_ADDRESS`: a real `kartabl web` serves /metrics on a listener of its own
(for an interface only the monitoring reaches), and the console's port answers 404 for it
(issue 12: /metrics can be bound to a separate address or require a token)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx

from bench.ports import free_port


def _wait_up(url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
        time.sleep(0.2)


def test_metrics_on_an_address_of_their_own(tmp_path: Path, sqlite_template: Path) -> None:
    db_path = tmp_path / "k.db"
    shutil.copy(sqlite_template, db_path)
    port, metrics_port = free_port(), free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("KARTABL_")},
        "KARTABL_DATABASE_URL": f"sqlite:///{db_path}", "KARTABL_BROKER": "stub",
        "KARTABL_WEB_HOST": "127.0.0.1", "KARTABL_WEB_PORT": str(port),
        "KARTABL_METRICS_ADDRESS": f"127.0.0.1:{metrics_port}",
    }
    log_path = tmp_path / "web.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen([str(Path(sys.executable).with_name("kartabl")), "web"],
                                env=env, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT)
    try:
        # Given `kartabl web` with a metrics address
        _wait_up(f"http://127.0.0.1:{port}/healthz", proc, log_path)
        # Then the metrics are on that address
        served = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5)
        assert served.status_code == 200
        assert "kartabl_messages_ingested_total" in served.text
        # And not on the console's port, whatever the caller sends
        assert httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).status_code == 404
    finally:
        proc.terminate()
        proc.wait(timeout=20)
