"""A local Kavenegar stand-in (:mod:`channels.sms.standin`) and an ``[sms]`` config
pointing at it: the real ``kavenegar`` library talks real HTTP to it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker

from channels.runner import PassResult, Runner, poll_each
from channels.sms.poller import lines
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


def poll_sms(config: SmsConfig, db: sessionmaker[Session], **runner: Any) -> PassResult:
    """One pass over every line of ``config``, as ``kartabl sms poll --once`` makes it."""
    return poll_each(Runner(line, db, **runner) for line in lines(config))
