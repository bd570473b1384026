"""A local Graph API stand-in (:mod:`channels.meta.standin`), a ``[meta]`` config pointing
at it, and the webhook mounted as the console mounts it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from channels.meta import webhook
from channels.meta.standin import GraphStandin
from channels.webhooks import routers
from config.meta import MetaConfig
from kartabl.models import Message
from tests.factories import enqueued  # noqa: F401 (a fixture: the flow tests)

# Distinctive, so a leak into logs or errors cannot hide.
APP_SECRET = "META-app-secret-value-KlMnOp"
VERIFY = "meta-verify-token-0123456789"
IG_ID, IG_TOKEN = "17841400000000001", "IGAAT-very-secret-token-QwErTy"
WA_ID, WA_TOKEN = "106540352242922", "EAAG-whatsapp-secret-token-AsDf"
URL = "/webhooks/meta"


@pytest.fixture
def standin() -> Iterator[GraphStandin]:
    server = GraphStandin().start()
    server.add_account(IG_ID, IG_TOKEN)
    server.add_account(WA_ID, WA_TOKEN)
    yield server
    server.stop()


def make_config(standin: GraphStandin, *, human_agent: bool = False) -> MetaConfig:
    return MetaConfig(
        app_secret=APP_SECRET, verify_token=VERIFY, graph_url=standin.graph_url,
        instagram=[{"id": IG_ID, "access_token": IG_TOKEN, "team": "support",
                    "human_agent": human_agent}],
        whatsapp=[{"phone_number_id": WA_ID, "access_token": WA_TOKEN, "team": "support"}],
        connect_timeout_s=1.0, timeout_s=2.0)


@pytest.fixture
def meta_config(standin: GraphStandin) -> MetaConfig:
    return make_config(standin)


@pytest.fixture
def client(meta_config: MetaConfig, settings: Any, db: sessionmaker[Session],
           tmp_path: Path) -> Iterator[TestClient]:
    app = FastAPI()
    app.include_router(routers()["meta"], prefix=URL)  # as the console does
    files = settings.model_copy(update={"attachments_dir": tmp_path / "att",
                                        "attachment_max_bytes": 50_000})
    app.dependency_overrides[webhook.meta_config] = lambda: meta_config
    app.dependency_overrides[webhook.meta_settings] = lambda: files
    app.dependency_overrides[webhook.session_factory] = lambda: db
    with TestClient(app) as c:
        yield c


def count(db: sessionmaker[Session]) -> int:
    with db() as s:
        return s.scalar(select(func.count()).select_from(Message)) or 0
