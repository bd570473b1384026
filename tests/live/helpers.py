"""Real ``kartabl web`` processes and a server-sent events reader for the live tests."""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bench.ports import free_port

SECRET = "live-tests-secret-key-not-for-production"


@dataclass
class Web:
    url: str
    proc: subprocess.Popen[bytes]
    log: Path

    def logs(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]


def _start(tmp_path: Path, name: str, env: dict[str, str]) -> Web:
    port = free_port()
    full = {**{k: v for k, v in os.environ.items() if not k.startswith("KARTABL_")},
            "KARTABL_SECRET_KEY": SECRET, "KARTABL_WEB_HOST": "127.0.0.1",
            "KARTABL_WEB_PORT": str(port), **env}
    log = tmp_path / f"{name}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([str(Path(sys.executable).with_name("kartabl")), "web"],
                                env=full, cwd=tmp_path, stdout=out, stderr=subprocess.STDOUT)
    return Web(f"http://127.0.0.1:{port}", proc, log)


def _wait_healthy(web: Web) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(web.url + "/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert web.proc.poll() is None and time.monotonic() < deadline, web.logs()
        time.sleep(0.1)


def _stop(web: Web) -> None:
    web.proc.terminate()  # also proves the streams end on SIGTERM: wait() would time out
    try:
        web.proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        web.proc.kill()
        web.proc.wait()
        raise AssertionError("kartabl web did not stop on SIGTERM\n" + web.logs()) from None


@contextmanager
def web_processes(tmp_path: Path, names: list[str], env: dict[str, str]) -> Iterator[list[Web]]:
    """``kartabl web`` per name with ``env`` over the test's settings, started together,
    until the block ends."""
    webs = [_start(tmp_path, name, env) for name in names]
    try:
        for web in webs:
            _wait_healthy(web)
        yield webs
    finally:
        for web in webs:
            if web.proc.returncode is None:
                _stop(web)


@contextmanager
def web_process(tmp_path: Path, name: str, env: dict[str, str]) -> Iterator[Web]:
    with web_processes(tmp_path, [name], env) as (web,):
        yield web


@dataclass
class Pushed:
    id: str
    data: dict[str, Any]


@dataclass
class Stream:
    """A ``GET /live`` read in a thread; ``next()`` waits for the next event."""

    status: int = 0
    events: queue.Queue[Pushed] = field(default_factory=queue.Queue)
    opened: threading.Event = field(default_factory=threading.Event)
    stop: threading.Event = field(default_factory=threading.Event)

    def next(self, timeout: float = 5.0) -> Pushed:
        return self.events.get(timeout=timeout)

    def quiet(self, for_s: float) -> list[Pushed]:
        """Whatever arrives within ``for_s`` seconds."""
        got = []
        deadline = time.monotonic() + for_s
        while (left := deadline - time.monotonic()) > 0:
            try:
                got.append(self.events.get(timeout=left))
            except queue.Empty:
                break
        return got


def _read(url: str, cookie: str, headers: dict[str, str], stream: Stream) -> None:
    with httpx.Client(timeout=httpx.Timeout(5, read=30), cookies={"kartabl_session": cookie}) \
            as client, client.stream("GET", url, headers=headers) as r:
        stream.status = r.status_code
        stream.opened.set()
        if r.status_code != 200:
            return
        sse_id, data = "", ""
        for line in r.iter_lines():
            if stream.stop.is_set():
                return
            if line.startswith("id: "):
                sse_id = line[4:]
            elif line.startswith("data: "):
                data = line[6:]
            elif line == "" and data:
                stream.events.put(Pushed(sse_id, json.loads(data)))
                data = ""


@contextmanager
def sse(url: str, cookie: str, *, last_event_id: str = "", query: str = "") -> Iterator[Stream]:
    stream = Stream()
    headers = {"Last-Event-ID": last_event_id} if last_event_id else {}
    path = url + "/live" + (f"?{query}" if query else "")
    thread = threading.Thread(target=_read, args=(path, cookie, headers, stream),
                              daemon=True)
    thread.start()
    assert stream.opened.wait(10), "no answer from /live"
    try:
        yield stream
    finally:
        stream.stop.set()  # the thread ends at the next line (a heartbeat at the latest)
