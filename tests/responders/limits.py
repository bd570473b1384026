"""The rate limiters the composition hands the senders (:func:`workers.broker.rate_limiter`,
through :func:`boot.kinds.start`), for tests that build senders or call
:func:`responders.setup.install_senders` themselves. Under the tests' settings (the stub
broker) they count in this process, as in the embedded mode."""

from __future__ import annotations

from functools import partial
from typing import Any

from config.settings import get_settings
from config.sms import SmsConfig
from kartabl.outbound import RateLimiter, RateLimiterFactory
from responders.sms import KavenegarSender
from workers.broker import rate_limiter


def limiters() -> RateLimiterFactory:
    """What :func:`boot.kinds.start` passes to ``install_senders``, on today's settings."""
    return partial(rate_limiter, get_settings())


def sms_limiter(config: SmsConfig) -> RateLimiter:
    """The limiter ``install_senders`` builds for the SMS sender of ``config``."""
    return limiters()("sms-send", config.rate_per_s)


def kavenegar(config: SmsConfig, **kw: Any) -> KavenegarSender:
    """A Kavenegar sender as ``install_senders`` builds it (``limiter=`` replaces its
    limiter)."""
    kw.setdefault("limiter", sms_limiter(config))
    return KavenegarSender(config, **kw)
