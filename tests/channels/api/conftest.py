"""The generic API channel's fixtures: the external system's stand-in (it receives our
callbacks and signs its own requests), the channel's settings pointing at it, and the
webhook routes served as the console serves them, on the test's database."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from channels.api import webhook
from channels.api.standin import ApiSystemStandin
from channels.webhooks import routers
from config.api_channel import ApiChannelConfig
from config.channels import ChannelsConfig
from config.settings import Settings
from kartabl.models import Message

SECRET = "shop-secret-0123456789abcdef-0123456789"
OTHER_SECRET = "crm-secret-fedcba9876543210-fedcba98765"


@pytest.fixture(scope="module")
def system_server() -> Iterator[ApiSystemStandin]:
    server = ApiSystemStandin(SECRET).start()  # one per module: stopping one costs 0.5 s
    yield server
    server.stop()


@pytest.fixture
def system(system_server: ApiSystemStandin) -> ApiSystemStandin:
    system_server.reset()
    return system_server


@pytest.fixture
def api_config(system: ApiSystemStandin) -> ApiChannelConfig:
    return ApiChannelConfig(name="shop", secret=SECRET, callback_url=system.callback_url,
                            team="support", connect_timeout_s=1.0, timeout_s=0.5)


@pytest.fixture
def other_config() -> ApiChannelConfig:
    return ApiChannelConfig(name="crm", secret=OTHER_SECRET)  # inbound only


@pytest.fixture
def files_settings(settings: Settings, tmp_path: Path) -> Settings:
    """The test's settings, with an attachments directory of its own."""
    return settings.model_copy(update={"attachments_dir": tmp_path / "attachments"})


@pytest.fixture
def web(api_config: ApiChannelConfig, other_config: ApiChannelConfig,
        files_settings: Settings, db: sessionmaker[Session]) -> FastAPI:
    app = FastAPI()
    app.state.settings = files_settings  # what console.app.attach hands the routes
    app.state.channels = ChannelsConfig(api=[api_config, other_config])
    app.include_router(routers()["api"], prefix="/webhooks/api")  # as the console does
    app.dependency_overrides[webhook.session_factory] = lambda: db
    return app


@pytest.fixture
def client(web: FastAPI) -> Iterator[TestClient]:
    with TestClient(web) as c:
        yield c


def count(db: sessionmaker[Session]) -> int:
    with db() as s:
        return s.scalar(select(func.count()).select_from(Message)) or 0


def message(key: str = "m-1", *, text: str = "سلام، سفارش ۷۷ کجاست؟", user: str = "u-1042",
            **extra: Any) -> dict[str, Any]:
    return {"idempotency_key": key, "user": {"id": user, "name": "سارا"}, "text": text, **extra}


def signed_post(client: TestClient, path: str, payload: Any, *, secret: str = SECRET,
                now: float | None = None, raw: bytes | None = None,
                headers: dict[str, str] | None = None) -> Any:
    """POST ``payload`` (JSON, or ``raw`` bytes) to ``path``, signed as the contract says."""
    import json

    from channels.api import signing

    body = raw if raw is not None else json.dumps(payload, ensure_ascii=False).encode()
    return client.post(path, content=body, headers={
        "Content-Type": "application/json", **signing.headers(secret, body, now=now),
        **(headers or {})})
