"""The example configuration files shipped in config/ are valid: a newcomer copies them."""

from pathlib import Path

import pytest

import config.channels
import config.routing
from config.settings import DEFAULT_ROUTING_FILE

CHANNELS_EXAMPLE = Path(config.channels.__file__).with_name("channels.example.toml")


def test_the_example_routing_file_loads():
    routing = config.routing.load(DEFAULT_ROUTING_FILE)
    assert {t.name for t in routing.teams} >= {"support", "sales", "billing"}


def test_the_example_channels_file_loads_with_its_passwords_from_the_environment(monkeypatch):
    monkeypatch.setenv("KARTABL_SUPPORT_IMAP_PASSWORD", "imap-secret")
    monkeypatch.setenv("KARTABL_SUPPORT_SMTP_PASSWORD", "smtp-secret")
    channels = config.channels.load(CHANNELS_EXAMPLE)
    box = channels.email.mailbox("support")
    assert box is not None and box.imap is not None and box.smtp is not None
    assert box.imap.password.get_secret_value() == "imap-secret"
    # the secret never shows in a repr or a log line of the config
    assert "smtp-secret" not in repr(channels)


def test_a_missing_password_variable_is_a_clear_error(monkeypatch):
    monkeypatch.delenv("KARTABL_SUPPORT_IMAP_PASSWORD", raising=False)
    monkeypatch.setenv("KARTABL_SUPPORT_SMTP_PASSWORD", "x")
    with pytest.raises(SystemExit, match="KARTABL_SUPPORT_IMAP_PASSWORD is not set"):
        config.channels.load(CHANNELS_EXAMPLE)


@pytest.mark.parametrize(("text", "reason"), [
    ("[[teams]\nname = 'x'", "is not valid TOML"),
    ("[[rules]]\nname = 'r'\nteam = 'nobody'\nchannels = ['sms']", "unknown team 'nobody'"),
    ("[[teams]]\nname = 'Bad Name!'", "is invalid"),
])
def test_a_bad_routing_file_stops_with_its_name_and_the_reason(tmp_path, text, reason):
    path = tmp_path / "routing.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(SystemExit) as stop:
        config.routing.load(path)
    assert str(path) in str(stop.value) and reason in str(stop.value)


def test_a_missing_channels_file_is_named(tmp_path):
    with pytest.raises(SystemExit, match=r"channels file not found: .*nowhere\.toml"):
        config.channels.load(tmp_path / "nowhere.toml")
