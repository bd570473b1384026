"""Files on a draft through the JSON API: base64 in JSON, the console's limits and rules
(SMS refused, not base64 refused), listed on the reply; another team's reply shows none."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

import pytest
from fastapi import FastAPI
from sqlalchemy import select

from kartabl.models import Reply, ReplyAttachment

C = "/api/v1/conversations"
PDF = b"%PDF-1.4\n" + b"a" * 500 + b"\n%%EOF\n"


@pytest.fixture
def files_dir(app: FastAPI, settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    from config.settings import get_settings

    monkeypatch.setenv("KARTABL_ATTACHMENTS_DIR", str(tmp_path / "att"))
    monkeypatch.setenv("KARTABL_REPLY_FILE_MAX_BYTES", "1000")
    get_settings.cache_clear()
    app.state.settings = get_settings()
    return tmp_path / "att"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def test_a_draft_with_files_through_the_api(api, world, db, files_dir) -> None:
    agent = api(world.agent_b)  # conv_b: email
    r = agent.post(f"{C}/{world.conv_b}/replies", {
        "body": "invoice attached", "files": [{"filename": "فاکتور.pdf",
                                               "content_base64": b64(PDF)}]})
    assert r.status_code == 201, r.text
    [listed] = r.json()["files"]
    assert {k: listed[k] for k in ("filename", "content_type", "size")} == {
        "filename": "فاکتور.pdf", "content_type": "application/pdf", "size": len(PDF)}
    key = hashlib.sha256(PDF).hexdigest()
    assert (files_dir / key[:2] / key).read_bytes() == PDF
    again = agent.get(f"/api/v1/replies/{r.json()['id']}").json()
    assert again["files"] == r.json()["files"]
    # a reply without files lists none
    assert agent.get(f"/api/v1/replies/{world.draft_b}").json()["files"] == []


@pytest.mark.parametrize(("conv", "files", "words"), [
    ("conv_b", [{"filename": "x.pdf", "content_base64": "not base64!"}], "not base64"),
    ("conv_b", [{"filename": "big.pdf", "content_base64": b64(b"%PDF" + b"x" * 2000)}],
     "per file"),
    ("conv_a", [{"filename": "x.pdf", "content_base64": b64(PDF)}], "SMS cannot carry files"),
])
def test_refused_files_store_nothing(api, world, db, files_dir, conv, files, words) -> None:
    agent = api(world.agent_b if conv == "conv_b" else world.agent_a)
    cid = getattr(world, conv)
    with db() as s:
        before = len(s.scalars(select(Reply.id).where(Reply.conversation_id == cid)).all())
    r = agent.post(f"{C}/{cid}/replies", {"body": "x", "files": files})
    assert r.status_code == 400 and words in r.json()["detail"], r.text
    with db() as s:
        assert len(s.scalars(select(Reply.id).where(Reply.conversation_id == cid)).all()) == before
        assert s.scalars(select(ReplyAttachment)).all() == []
