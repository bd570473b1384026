"""A local Kavenegar stand-in (:mod:`channels.sms.standin`) and an ``[sms]`` config
pointing at it: the real ``kavenegar`` library talks real HTTP to it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from channels.sms.standin import KavenegarStandin
from config.sms import SmsConfig

# Distinctive, so a leak into logs or errors cannot hide.
API_KEY = "KAVE-very-secret-api-key-PqRsTu"
SECRET = "sms-callback-s3cret-value-0123"
LINE = "10008663"


@pytest.fixture
def standin() -> Iterator[KavenegarStandin]:
    server = KavenegarStandin(API_KEY).start()
    yield server
    server.stop()


@pytest.fixture
def sms_config(standin: KavenegarStandin) -> SmsConfig:
    return SmsConfig(api_key=API_KEY, base_url=standin.base_url, line=LINE,
                     more_lines=["30001234"], team="support", webhook_secret=SECRET,
                     connect_timeout_s=1.0, timeout_s=1.0)
