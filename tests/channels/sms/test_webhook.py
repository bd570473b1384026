"""The receive callback: verify the secret path, commit, then 200; nothing stored otherwise.
The same SMS by callback and by polling, or a callback retried, is one message."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from channels.sms import webhook
from channels.sms.standin import KavenegarStandin, callback_form
from channels.webhooks import routers
from config.sms import SmsConfig
from kartabl.models import Message
from tests.channels.sms.conftest import LINE, SECRET, poll_sms

URL = f"/webhooks/sms/receive/{SECRET}"


@pytest.fixture
def client(sms_config: SmsConfig, db: sessionmaker[Session]) -> Iterator[TestClient]:
    app = FastAPI()
    app.include_router(routers()["sms"], prefix="/webhooks/sms")  # as the console does
    app.dependency_overrides[webhook.sms_config] = lambda: sms_config
    app.dependency_overrides[webhook.session_factory] = lambda: db
    with TestClient(app) as c:
        yield c


def count(db: sessionmaker[Session]) -> int:
    with db() as s:
        return s.scalar(select(func.count()).select_from(Message)) or 0


def test_a_callback_retried_three_times_is_one_message(client: TestClient, db) -> None:
    form = {"from": "09121234567", "message": "سلام، سفارشم کجاست؟", "to": LINE,
            "messageid": "123456789"}
    # Given Kavenegar resends its callback (no 2xx in time) three times
    assert [client.post(URL, data=form).status_code for _ in range(3)] == [200, 200, 200]
    # Then one message, committed, with the sender in E.164 and the line's team
    assert count(db) == 1
    with db() as s:
        msg = s.scalars(select(Message)).one()
        assert (msg.channel, msg.external_id, msg.sender) == ("sms", "kv:123456789",
                                                               "+989121234567")
        assert msg.recipient == LINE and msg.meta["default_team"] == "support"


def test_a_callback_without_messageid_dedupes_on_its_content(client: TestClient, db) -> None:
    form = {"from": "+98 912 123 4567", "message": "بله", "to": LINE}
    assert [client.post(URL, data=form).status_code for _ in range(2)] == [200, 200]
    assert count(db) == 1


def test_the_same_sms_by_callback_and_by_polling_is_one_message(
        client: TestClient, standin: KavenegarStandin, sms_config: SmsConfig, db) -> None:
    # Given a customer texts our line: Kavenegar queues it AND calls back
    entry = standin.inbound("09351112233", "کی می‌رسد؟", LINE, via="queue")
    assert client.post(URL, data=callback_form(entry)).status_code == 200
    # When the poller reads the receive queue too
    result = poll_sms(sms_config, db)
    # Then it saw the SMS, and it is still one message
    assert (result.fetched, result.created, result.duplicates) == (1, 0, 1)
    assert count(db) == 1


@pytest.mark.parametrize("secret", ["wrong-secret-wrong-secret", SECRET + "x", SECRET[:-1]])
def test_a_forged_callback_is_403_and_stores_nothing(client: TestClient, db,
                                                     secret: str) -> None:
    form = {"from": "09121234567", "message": "forged", "to": LINE, "messageid": "1"}
    assert client.post(f"/webhooks/sms/receive/{secret}", data=form).status_code == 403
    assert client.post("/webhooks/sms/receive/", data=form).status_code in (404, 405)
    assert count(db) == 0


def test_no_secret_configured_is_404(client: TestClient, sms_config: SmsConfig, db) -> None:
    client.app.dependency_overrides[webhook.sms_config] = (  # type: ignore[attr-defined]
        lambda: sms_config.model_copy(update={"webhook_secret": SecretStr("")}))
    form = {"from": "09121234567", "message": "x", "messageid": "1"}
    assert client.post("/webhooks/sms/receive/anything", data=form).status_code == 404
    client.app.dependency_overrides[webhook.sms_config] = lambda: None  # type: ignore[attr-defined]
    assert client.post(URL, data=form).status_code == 404
    assert count(db) == 0


@pytest.mark.parametrize("form", [
    {"message": "no sender", "to": LINE},
    {"from": "09121234567", "to": LINE},  # no text
    {"from": "09121234567", "message": "   ", "to": LINE},
    {"from": "not-a-phone", "message": "سلام", "to": LINE},
    {"from": "12", "message": "سلام", "to": LINE},
    {"from": "09121234567", "message": "سلام", "messageid": "abc"},
])
def test_a_malformed_callback_is_400_and_stores_nothing(client: TestClient, db,
                                                        form: dict[str, str]) -> None:
    assert client.post(URL, data=form).status_code == 400
    assert count(db) == 0


def test_the_secret_path_is_hidden_in_access_logs(caplog: pytest.LogCaptureFixture) -> None:
    # uvicorn's access logger formats (client, method, path, version, status)
    access = logging.getLogger("uvicorn.access")
    with caplog.at_level(logging.INFO, logger="uvicorn.access"):
        access.info('%s - "%s %s HTTP/%s" %d', "127.0.0.1:5", "POST", URL, "1.1", 200)
    assert SECRET not in caplog.text and "/webhooks/sms/receive/***" in caplog.text


def test_the_console_app_mounts_the_callback_from_the_channels_file(
        tmp_path, standin: KavenegarStandin, settings, db, monkeypatch) -> None:
    import config.channels
    import config.settings
    from console.app import create_app

    path = tmp_path / "channels.toml"
    path.write_text(f'[sms]\napi_key = "k"\nbase_url = "{standin.base_url}"\nline = "{LINE}"\n'
                    'webhook_secret_env = "TEST_SMS_SECRET"\n', encoding="utf-8")
    monkeypatch.setenv("TEST_SMS_SECRET", SECRET)
    monkeypatch.setenv("KARTABL_CHANNELS_FILE", str(path))
    config.settings.get_settings.cache_clear()
    config.channels.get_channels.cache_clear()
    try:
        with TestClient(create_app()) as c:
            form = {"from": "09121234567", "message": "سلام", "to": LINE, "messageid": "77"}
            assert c.post("/webhooks/sms/receive/not-the-secret", data=form).status_code == 403
            assert c.post(URL, data=form).status_code == 200
    finally:
        config.channels.get_channels.cache_clear()
    assert count(db) == 1


@pytest.mark.parametrize("date", [str(10**12), "99999999999999999999999", "-5", "garbage",
                                  "1.5e9", "0", "12"])
def test_a_callback_with_a_date_out_of_range_is_400_and_stores_nothing(
        client: TestClient, db, date: str) -> None:
    """Kavenegar's date is metadata: garbage is a malformed callback, never a 500 (a long
    run of digits overflowed datetime before) and never a back-dated message."""
    form = {"from": "09121234567", "message": "سلام", "to": LINE, "messageid": "55",
            "date": date}
    r = client.post(URL, data=form)
    assert r.status_code == 400, r.text
    assert count(db) == 0


def test_the_callback_time_is_its_arrival_and_kavenegars_date_is_metadata(
        client: TestClient, db) -> None:
    before = datetime.now(UTC)
    form = {"from": "09121234567", "message": "سلام", "to": LINE, "messageid": "56",
            "date": "1300000000"}
    assert client.post(URL, data=form).status_code == 200
    with db() as s:
        msg = s.scalars(select(Message)).one()
        assert before <= msg.received_at <= datetime.now(UTC)
        assert msg.meta["sent_at"] == "2011-03-13T07:06:40+00:00"
