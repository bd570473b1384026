"""The broker module for the dramatiq CLI::

    dramatiq workers.setup workers.actors -p 2 -t 8 -Q inbound outbound

dramatiq imports this module in each worker process (after the fork), before the actor
modules listed after it, so the broker is set before any actor is declared. ``-Q`` goes
last: it swallows every module named after it. Use ``workers.setup_metrics`` instead to
also serve Prometheus metrics on port 9191.
"""

from __future__ import annotations

from config.settings import get_settings
from kartabl import logs
from workers.broker import setup_broker

settings = get_settings()
settings.check_fleet()
logs.configure(settings)
broker = setup_broker(settings)

# Every worker process may dispatch replies, so it needs a sender for every channel.
from responders.setup import install_senders  # noqa: E402 - after the broker, like the actors

install_senders()
