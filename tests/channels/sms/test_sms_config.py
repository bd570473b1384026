"""The [sms] section: secrets from the environment, validated up front, never in a repr."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import ValidationError

import config.channels
from config.sms import SmsConfig

EXAMPLE = Path(config.channels.__file__).with_name("channels.example.toml")


def test_the_example_block_loads_with_its_secrets_from_the_environment(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    block = text[text.index("# [sms]"):].split("\n\n")[0]  # to the next section
    path = tmp_path / "channels.toml"
    path.write_text(re.sub(r"(?m)^# ?", "", block), encoding="utf-8")
    monkeypatch.setenv("KARTABL_KAVENEGAR_API_KEY", "kave-key-from-env")
    monkeypatch.setenv("KARTABL_SMS_WEBHOOK_SECRET", "a-long-enough-webhook-secret")
    sms = config.channels.load(path).sms
    assert sms is not None and sms.api_key.get_secret_value() == "kave-key-from-env"
    assert sms.lines == ["10008663"] and sms.team == "support"
    assert "kave-key-from-env" not in repr(sms) and "a-long-enough" not in repr(sms)


@pytest.mark.parametrize(("fields", "reason"), [
    ({}, "api_key or api_key_env is required"),
    ({"api_key_env": "NOT_SET_ANYWHERE_42"}, "NOT_SET_ANYWHERE_42"),
    ({"api_key": "k", "webhook_secret": "short"}, "at least 16 characters"),
    ({"api_key": "k", "base_url": "ftp://x"}, "base_url"),
    ({"api_key": "k", "timeout_s": 0}, "timeout_s"),
])
def test_a_bad_sms_section_is_a_clear_error(fields: dict[str, object], reason: str) -> None:
    with pytest.raises(ValidationError, match=reason):
        SmsConfig(line="10008663", **fields)  # type: ignore[arg-type]


def test_lines_are_the_line_then_the_others() -> None:
    sms = SmsConfig(api_key="k", line="10008663", more_lines=["3000", "10008663"],
                    base_url="http://127.0.0.1:1/")
    assert sms.lines == ["10008663", "3000"] and sms.base_url == "http://127.0.0.1:1"
