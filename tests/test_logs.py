"""The one secret-masking filter (kartabl.logs.SECRETS): registered secrets never reach a
log line, whichever named logger or our own handler writes it, nor an error text we build."""

from __future__ import annotations

import io
import logging
import re

import pytest
import structlog

from config.settings import Settings
from kartabl import logs


def test_a_registered_secret_is_masked_in_the_named_loggers(
        caplog: pytest.LogCaptureFixture) -> None:
    # Given a library logger that prints request URLs carrying a key
    logs.hide_secret("k3y-abc-123", "<test-key>", loggers=["tests.lib.http"])
    lib = logging.getLogger("tests.lib.http")
    # When it logs the URL, as message or as an argument
    with caplog.at_level(logging.DEBUG, logger="tests.lib.http"):
        lib.info('"POST /v1/%s/sms/send.json HTTP/1.1" 200', "k3y-abc-123")
        lib.info("GET /v1/k3y-abc-123/account")
    # Then the key is gone and the mask is there
    assert "k3y-abc-123" not in caplog.text
    assert caplog.text.count("<test-key>") == 2
    # And error texts we build are cleaned the same way
    assert logs.redact("refused: /v1/k3y-abc-123/x") == "refused: /v1/<test-key>/x"


def test_a_pattern_rewrites_a_secret_path(caplog: pytest.LogCaptureFixture) -> None:
    logs.hide_pattern(re.compile(r"(/tests-hook/)[^/?\s\"]+"), r"\1***",
                      loggers=["tests.lib.access"])
    with caplog.at_level(logging.INFO, logger="tests.lib.access"):
        logging.getLogger("tests.lib.access").info('"%s %s"', "POST", "/tests-hook/s3cr3t")
    assert "s3cr3t" not in caplog.text and "/tests-hook/***" in caplog.text


def test_a_masked_argument_keeps_the_records_arguments() -> None:
    # uvicorn's AccessFormatter unpacks (client, method, path, version, status) from
    # record.args: masking must leave them a tuple of the same shape
    logs.hide_pattern(re.compile(r"(/tests-hook/)[^/?\s\"]+"), r"\1***")
    record = logging.LogRecord("tests.lib.access", logging.INFO, __file__, 1,
                               '%s - "%s %s HTTP/%s" %d',
                               ("127.0.0.1:5", "POST", "/tests-hook/s3cr3t", "1.1", 200), None)
    assert logs.SECRETS.filter(record)
    assert record.args == ("127.0.0.1:5", "POST", "/tests-hook/***", "1.1", 200)
    assert record.getMessage() == '127.0.0.1:5 - "POST /tests-hook/*** HTTP/1.1" 200'


def test_our_handler_masks_secrets_and_credential_fields(settings: Settings) -> None:
    # Given the process's logging, as every process kind configures it
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    logs.hide_secret("t0ken-xyz-789", "<test-token>")  # no named logger: the handler only
    try:
        logs.configure(settings.model_copy(update={"log_format": "json"}))
        out = io.StringIO()
        handler = root.handlers[0]
        assert isinstance(handler, logging.StreamHandler)
        handler.setStream(out)
        # When any logger writes the secret, or a field named like a credential
        logging.getLogger("tests.anywhere").warning("token is t0ken-xyz-789",
                                                     extra={"data": {"x": 1}})
        structlog.get_logger("tests.anywhere").warning("login", password="hunter2", user="ali")
    finally:
        root.handlers[:], _ = saved[0], root.setLevel(saved[1])
    # Then neither reaches the line
    text = out.getvalue()
    assert "t0ken-xyz-789" not in text and "<test-token>" in text
    assert "hunter2" not in text and '"password": "***"' in text and '"user": "ali"' in text


def test_an_empty_secret_masks_nothing() -> None:
    logs.hide_secret("", "<nothing>")
    assert logs.redact("plain text") == "plain text"
