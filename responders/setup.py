"""Which sender serves each channel in this process.

Until the channel issues land their real senders (SMTP, Kavenegar, Telegram/Bale), every
channel is served by the sandbox sender, which records what it would send in the database
and reports it delivered. Any process that dispatches replies calls :func:`install_senders`
once at start-up; a missing sender is a configuration error (``LookupError``), never a
silent fallback.
"""

from __future__ import annotations

import logging

from responders.sandbox import install as install_sandbox

log = logging.getLogger(__name__)


def install_senders() -> list[str]:
    """Register a sender for every channel; returns the channels served by the sandbox."""
    sandboxed = [s.channel for s in install_sandbox()]
    if sandboxed:
        log.warning(
            "channels served by the sandbox sender (nothing leaves this machine): %s",
            ", ".join(sandboxed),
        )
    return sandboxed
