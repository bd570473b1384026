"""Every polled channel, by name: the registry ``kartabl run`` starts its pollers from.

A polled channel is one adapter module on the inbound contract (:mod:`kartabl.inbound`)
with a ``sources(channels, settings, sessions)`` function that lists its sources in a
channels file (every mailbox, every polling bot, every SMS line), and one line here. The
runner (:mod:`channels.runner`) gives each source the same guarantees.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence

from sqlalchemy.orm import Session, sessionmaker

from channels.email import service as email
from channels.rubika import poller as rubika
from channels.runner import Runner
from channels.sms import poller as sms
from channels.telegram import poller as telegram
from config.channels import ChannelsConfig
from config.settings import Settings
from kartabl.inbound import PolledSource

Sources = Callable[[ChannelsConfig, Settings, sessionmaker[Session]], Sequence[PolledSource]]

POLLED: dict[str, Sources] = {
    "email": email.sources,
    "telegram": telegram.sources,  # Bale bots too
    "sms": sms.sources,
    "rubika": rubika.sources,
}


def runners(channels: ChannelsConfig, settings: Settings, sessions: sessionmaker[Session],
            stop: threading.Event) -> list[Runner]:
    """A runner for every source of every polled channel configured in ``channels``."""
    return [Runner(source, sessions, stop)
            for sources in POLLED.values() for source in sources(channels, settings, sessions)]
