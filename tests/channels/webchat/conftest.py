"""A console app with the widget's endpoints, a widget, and helpers to speak to them."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from config.channels import ChannelsConfig
from config.settings import Settings
from config.webchat import WebchatConfig
from kartabl.models import Widget

ORIGIN = "https://shop.example"
SECRET = "widget-secret-0123456789abcdef"


@dataclass
class Chat:
    client: TestClient
    widget: str

    def url(self, what: str) -> str:
        return f"/widget/{self.widget}/{what}"

    def session(self, token: str = "", origin: str = ORIGIN, **body: Any) -> Any:
        headers = {"Origin": origin, **({"X-Kartabl-Visitor": token} if token else {})}
        return self.client.post(self.url("session"), json=body, headers=headers)

    def visitor(self, **body: Any) -> str:
        """A new visitor (a browser without the cookie of the last one)."""
        self.client.cookies.clear()
        r = self.session(**body)
        assert r.status_code == 200, r.text
        return str(r.json()["visitor"])

    def post(self, token: str, text: str, client_id: str | None = None,
             origin: str = ORIGIN, **more: Any) -> Any:
        body = {"client_id": client_id or uuid.uuid4().hex, "text": text, **more}
        return self.client.post(self.url("messages"), json=body,
                                headers={"Origin": origin, "X-Kartabl-Visitor": token})

    def events(self, token: str, last: int | None = None, *, header: bool = True,
               origin: str = ORIGIN) -> list[dict[str, Any]]:
        """The stream until it ends (the test config gives it a short life)."""
        headers = {"Origin": origin}
        params = {"visitor": token}
        if last is not None:
            if header:
                headers["Last-Event-ID"] = str(last)
            else:
                params["last_event_id"] = str(last)
        out: list[dict[str, Any]] = []
        with self.client.stream("GET", self.url("events"), headers=headers,
                                params=params) as r:
            assert r.status_code == 200, r.read()
            assert r.headers["access-control-allow-origin"] == origin
            event_id = None
            for line in r.iter_lines():
                if line.startswith("id: "):
                    event_id = int(line[4:])
                elif line.startswith("data: "):
                    data = json.loads(line[6:])
                    assert data["seq"] == event_id
                    out.append(data)
        return out


def make_widget(db: sessionmaker[Session], **kw: Any) -> str:
    public_id = "w" + uuid.uuid4().hex[:12]
    with db() as s:
        s.add(Widget(public_id=public_id, name="shop", secret=SECRET, origins=[ORIGIN], **kw))
        s.commit()
    return public_id


@pytest.fixture
def webchat_config() -> WebchatConfig:
    return WebchatConfig(stream_s=0.6, heartbeat_s=0.2, poll_s=0.05, per_visitor_per_min=200,
                         per_ip_per_min=400, max_chars=500)


@pytest.fixture
def chat(settings: Settings, db: sessionmaker[Session],
         webchat_config: WebchatConfig) -> Iterator[Chat]:
    from console.app import create_app

    app = create_app(settings, channels=ChannelsConfig(webchat=webchat_config))
    with TestClient(app, base_url="https://kartabl.test") as client:
        yield Chat(client, make_widget(db))
